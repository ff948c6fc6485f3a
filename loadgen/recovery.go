package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/bits"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"time"

	"github.com/herald-push/herald/poller"
)

// The recovery scenarios (jitter, deploy) give every connection index a
// client that outlives its connections: it subscribes to Config.Channel
// with {"op":"sub"} after each handshake, with since (its last offset and
// epoch, herald's protocol) after the first, and records which published
// messages it has had, by seq, so that every message is counted once per
// client however many connections it took to get it.

// client is one recovering client. drv belongs to the goroutine that dials
// and cuts its connections (the ramp's, then its driver); the other fields
// belong to the loop of its current connection, handed over from one
// connection to the next through the closed channel and Enroll.
type client struct {
	id  int
	drv driverState

	seen         []uint64 // bit seq: received
	unique, dups int64
	epoch        string
	offset       uint64 // latest offset received (or announced by a reply)
	subscribed   bool   // a subscribed reply has been had
	recovered    int64  // resubscriptions answered recovered:true
	notRecovered int64  // and recovered:false
	downAt       int64  // Unix ns the last connection was lost, 0 once delivering again
}

// driverState is what the dialing side knows of a client.
type driverState struct {
	node       int // index into the fleet's targets of the current (or next) node
	conn       *poller.Conn
	closed     chan struct{}
	cuts       int64 // connections the jitter scenario cut
	drops      int64 // connections lost otherwise
	reconnects int64 // reconnections that succeeded
	failures   int64 // reconnection attempts that failed
	lastDown   time.Time
}

// mark records seq and reports whether the client had it already.
func (cl *client) mark(seq uint64) (dup bool) {
	w := int(seq / 64)
	if w >= len(cl.seen) {
		cl.seen = append(cl.seen, make([]uint64, w+1-len(cl.seen)+len(cl.seen)/2)...)
	}
	bit := uint64(1) << (seq % 64)
	if cl.seen[w]&bit != 0 {
		return true
	}
	cl.seen[w] |= bit
	return false
}

// has reports whether the client has every seq below n but those in
// skip (the seqs whose publish failed).
func (cl *client) has(n int64, skip map[uint64]bool) bool {
	var c int64
	for _, w := range cl.seen {
		c += int64(bits.OnesCount64(w))
	}
	if c < n-int64(len(skip)) {
		return false
	}
	for s := range uint64(n) {
		if skip[s] {
			continue
		}
		if int(s/64) >= len(cl.seen) || cl.seen[s/64]&(1<<(s%64)) == 0 {
			return false
		}
	}
	return true
}

// appendSub appends a subscribe command for channel, with since when
// withSince.
func appendSub(dst []byte, channel string, withSince bool, offset uint64, epoch string) []byte {
	ch, _ := json.Marshal(channel)
	dst = append(dst, `{"op":"sub","channel":`...)
	dst = append(dst, ch...)
	if withSince {
		ep, _ := json.Marshal(epoch)
		dst = append(dst, `,"since":{"offset":`...)
		dst = strconv.AppendUint(dst, offset, 10)
		dst = append(dst, `,"epoch":`...)
		dst = append(dst, ep...)
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// subscribe returns the subscribe command for wc's client, with since
// once the client knows an epoch. It runs on the loop.
func (f *fleet) subscribe(wc *wsConn) []byte {
	cl := wc.cl
	wc.awaitReply = true
	if cl.epoch == "" {
		return f.subFirst
	}
	wc.since, wc.sinceOff = true, cl.offset
	return appendSub(nil, f.cfg.Channel, true, cl.offset, cl.epoch)
}

var (
	opSubscribed = []byte(`"op":"subscribed"`)
	opError      = []byte(`"op":"error"`)
	keyOffset    = []byte(`"offset":`)
	keyEpoch     = []byte(`"epoch":"`)
	recoveredYes = []byte(`"recovered":true`)
	errSubscribe = errors.New("loadgen: subscribe refused")
)

// findUint returns the number after key in p.
func findUint(p, key []byte) (uint64, bool) {
	i := bytes.Index(p, key)
	if i < 0 {
		return 0, false
	}
	return parseUint(p[i+len(key):])
}

// receiveClient handles a message on a client's connection; false means
// the connection must close (its subscription was refused). It runs on
// the loop.
func (f *fleet) receiveClient(ls *loopState, wc *wsConn, p []byte, now int64) bool {
	cl := wc.cl
	if bytes.Contains(p, opSubscribed) {
		ls.other.Add(1)
		f.onSubscribed(ls, wc, p, now)
		return true
	}
	t, seq, ok := parseStamp(p)
	if !ok {
		ls.other.Add(1)
		if wc.awaitReply && bytes.Contains(p, opError) {
			wc.finish(errSubscribe)
			return false
		}
		return true
	}
	if off, ok := findUint(p, keyOffset); ok && off > cl.offset {
		cl.offset = off
	}
	replay := wc.awaitReply || wc.replayWait
	if replay {
		wc.replayN++
		ls.replayed++
		if wc.replayWait && cl.offset >= wc.replayTarget {
			ls.replay.Record(time.Duration(now - wc.reconnAt))
			wc.replayWait = false
		}
	}
	if cl.mark(seq) {
		ls.dups.Add(1)
		cl.dups++
		return true
	}
	cl.unique++
	ls.deliveries.Add(1)
	ls.lastRecv = now
	if cl.downAt > 0 {
		ls.downtime.Record(time.Duration(now - cl.downAt))
		cl.downAt = 0
	}
	if !replay {
		ls.lat.Record(time.Duration(max(now-t, 0)))
	}
	return true
}

// onSubscribed takes a subscribed reply: the epoch and offset to resume
// from next time, and the end of the replay, if anything was missed.
func (f *fleet) onSubscribed(ls *loopState, wc *wsConn, p []byte, now int64) {
	cl := wc.cl
	if !wc.awaitReply {
		return
	}
	wc.awaitReply = false
	off, _ := findUint(p, keyOffset)
	if i := bytes.Index(p, keyEpoch); i >= 0 {
		rest := p[i+len(keyEpoch):]
		if j := bytes.IndexByte(rest, '"'); j >= 0 {
			cl.epoch = string(rest[:j])
		}
	}
	switch {
	case !wc.since:
		if !cl.subscribed {
			cl.offset = off
		}
	case bytes.Contains(p, recoveredYes):
		cl.recovered++
		if off > wc.sinceOff {
			if cl.offset >= off {
				// The replay came before the reply.
				ls.replay.Record(time.Duration(now - wc.reconnAt))
			} else {
				wc.replayWait, wc.replayTarget = true, off
			}
		}
	default:
		// A new epoch (or a gap older than the history): what was missed
		// is lost, offsets start again from here.
		cl.notRecovered++
		cl.offset = off
	}
	cl.subscribed = true
	wc.finish(nil)
}

// startDrivers starts one driver per client: from now on, lost
// connections are reconnected, and for jitter cut at random.
func (f *fleet) startDrivers(ctx context.Context) {
	f.driveCtx, f.driveStop = context.WithCancel(ctx)
	for _, cl := range f.clients {
		f.drivers.Go(func() { f.drive(f.driveCtx, cl) })
	}
}

// endPhase stops the cuts (reconnections go on).
func (f *fleet) endPhase() {
	select {
	case <-f.phaseEnded:
	default:
		close(f.phaseEnded)
	}
}

// stopDrivers stops every driver and waits for them.
func (f *fleet) stopDrivers() {
	if f.driveStop == nil {
		return
	}
	f.endPhase()
	f.driveStop()
	f.drivers.Wait()
}

// nextCut draws the time until a client's next cut.
func (f *fleet) nextCut() time.Duration {
	T := float64(f.cfg.JitterEvery)
	if f.cfg.JitterDist == JitterUniform {
		return time.Duration(T/2 + rand.Float64()*T)
	}
	return time.Duration(rand.ExpFloat64() * T)
}

// drive keeps one client connected until ctx ends: it reconnects a lost
// connection (for deploy, to the next node) and, for jitter until the
// main phase ends, cuts the connection at random, stays offline for
// Config.Offline and reconnects.
func (f *fleet) drive(ctx context.Context, cl *client) {
	d := &cl.drv
	phase := f.phaseEnded
	jitter := f.cfg.Scenario == ScenarioJitter
	for ctx.Err() == nil {
		if d.conn == nil {
			f.reconnect(ctx, cl)
			continue
		}
		var cut <-chan time.Time
		var timer *time.Timer
		if jitter && phase != nil {
			timer = time.NewTimer(f.nextCut())
			cut = timer.C
		}
		select {
		case <-ctx.Done():
		case <-phase:
			phase = nil
		case <-d.closed:
			d.conn, d.lastDown = nil, time.Now()
			d.drops++
			f.down.Add(1)
			if len(f.targets) > 1 {
				d.node = (d.node + 1) % len(f.targets)
			}
		case <-cut:
			c, closed := d.conn, d.closed
			_ = c.Loop().Run(func() {
				if wc, ok := c.Context().(*wsConn); ok {
					wc.local = true
				}
				c.Close()
			})
			select {
			case <-closed:
			case <-ctx.Done():
				return
			}
			d.conn, d.lastDown = nil, time.Now()
			d.cuts++
			f.down.Add(1)
			sleepCtx(ctx, f.cfg.Offline)
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// reconnect opens a new connection for cl, retrying with backoff (and,
// for deploy, moving on to the next node after each failure) until one
// is subscribed again or ctx ends.
func (f *fleet) reconnect(ctx context.Context, cl *client) {
	d := &cl.drv
	began := time.Now().UnixNano()
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		c, closed, err := f.attemptTo(ctx, cl.id, d.node, cl, began)
		f.attempts.Add(1)
		if err == nil {
			d.conn, d.closed = c, closed
			d.reconnects++
			f.down.Add(-1)
			return
		}
		if ctx.Err() != nil {
			return
		}
		f.countFailure(err)
		d.failures++
		if len(f.targets) > 1 {
			d.node = (d.node + 1) % len(f.targets)
		}
		sleepCtx(ctx, backoff+time.Duration(rand.Int64N(int64(backoff))))
		backoff = min(2*backoff, time.Second)
	}
}

// openAtEnd reports whether the driver's connection is still open.
func (d *driverState) openAtEnd() bool {
	if d.conn == nil {
		return false
	}
	select {
	case <-d.closed:
		return false
	default:
		return true
	}
}

// RecoveryResult is what the recovery scenarios (jitter, deploy)
// measured, per client: a client is a connection index, whatever
// connections it took.
type RecoveryResult struct {
	// Clients is the number of clients; Expected is Clients × Published,
	// Delivered the (client, message) pairs received at least once and
	// DeliveredPct their share of Expected; Duplicates the repeats.
	Clients      int64   `json:"clients"`
	Expected     int64   `json:"expected"`
	Delivered    int64   `json:"delivered"`
	DeliveredPct float64 `json:"delivered_pct"`
	Duplicates   int64   `json:"duplicates"`
	// CompleteClients had every published message exactly once.
	CompleteClients int64 `json:"complete_clients"`
	// Cuts are the connections jitter cut; Drops those lost otherwise
	// (the server closed them or went away).
	Cuts  int64 `json:"cuts"`
	Drops int64 `json:"drops"`
	// Reconnects are reconnections that succeeded (subscribed again),
	// ReconnectFailures the failed attempts; ReconnectedClients the
	// clients that reconnected at least once.
	Reconnects         int64 `json:"reconnects"`
	ReconnectFailures  int64 `json:"reconnect_failures"`
	ReconnectedClients int64 `json:"reconnected_clients"`
	// Recovered and NotRecovered count the resubscriptions with since
	// answered "recovered":true and false.
	Recovered    int64 `json:"recovered"`
	NotRecovered int64 `json:"not_recovered"`
	// AffectedClients lost at least one connection; RecoveredClients are
	// those of them open at the end with every message exactly once, and
	// RecoveredPct their share; NeverReturned those not open at the end.
	AffectedClients  int64   `json:"affected_clients"`
	RecoveredClients int64   `json:"recovered_clients"`
	RecoveredPct     float64 `json:"recovered_pct"`
	NeverReturned    int64   `json:"never_returned"`
	// ReplayLatency is, per reconnection that missed messages, the time
	// from its first attempt (after the offline time, for a cut) to the
	// last missed message; Replayed counts the messages received that way.
	// Downtime is, per lost connection, the time until the client's next
	// delivery (offline time and replay included). Result.Latency holds
	// the live deliveries only.
	ReplayLatency Hist  `json:"replay_latency"`
	Replayed      int64 `json:"replayed"`
	Downtime      Hist  `json:"downtime"`
	// OpenByNode is the clients open at the end on each node (URLs).
	OpenByNode []int64 `json:"open_by_node"`
	// Deploy: when DeployCmd ran (seconds into the main phase), what it
	// was and how it failed, if it did.
	DeployAt  float64 `json:"deploy_at_s,omitempty"`
	DeployCmd string  `json:"deploy_cmd,omitempty"`
	DeployErr string  `json:"deploy_error,omitempty"`
}

// recoveryResult sums the clients. It runs once the loops and drivers
// have stopped; open tells which clients were open when the drivers did.
// published messages went out; the seqs in failed did not (their publish
// failed, e.g. while the only node restarted), so a complete client has
// every seq below published + len(failed) but those.
func (f *fleet) recoveryResult(published int64, failed []uint64, open []bool) *RecoveryResult {
	r := &RecoveryResult{Clients: int64(len(f.clients)), OpenByNode: make([]int64, len(f.targets))}
	skip := make(map[uint64]bool, len(failed))
	for _, s := range failed {
		skip[s] = true
	}
	total := published + int64(len(skip))
	for i, cl := range f.clients {
		d := &cl.drv
		r.Delivered += cl.unique
		r.Duplicates += cl.dups
		complete := cl.dups == 0 && cl.has(total, skip)
		if complete {
			r.CompleteClients++
		}
		r.Cuts += d.cuts
		r.Drops += d.drops
		r.Reconnects += d.reconnects
		r.ReconnectFailures += d.failures
		if d.reconnects > 0 {
			r.ReconnectedClients++
		}
		r.Recovered += cl.recovered
		r.NotRecovered += cl.notRecovered
		if open[i] {
			r.OpenByNode[d.node]++
		}
		if d.cuts+d.drops > 0 {
			r.AffectedClients++
			switch {
			case !open[i]:
				r.NeverReturned++
			case complete:
				r.RecoveredClients++
			}
		}
	}
	for _, ls := range f.loops {
		r.ReplayLatency.Merge(ls.replay)
		r.Downtime.Merge(ls.downtime)
		r.Replayed += ls.replayed
	}
	r.derive(published)
	return r
}

func (r *RecoveryResult) derive(published int64) {
	r.Expected = r.Clients * published
	if r.Expected > 0 {
		r.DeliveredPct = 100 * float64(r.Delivered) / float64(r.Expected)
	}
	if r.AffectedClients > 0 {
		r.RecoveredPct = 100 * float64(r.RecoveredClients) / float64(r.AffectedClients)
	}
}

// runDeploy waits until at, then runs cfg.Deploy or cfg.DeployCmd, and
// returns when it was run (since start) and its error.
func runDeploy(ctx context.Context, cfg Config, start time.Time) (float64, error) {
	sleepCtx(ctx, time.Until(start.Add(cfg.DeployAt)))
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	at := time.Since(start).Seconds()
	switch {
	case cfg.Deploy != nil:
		return at, cfg.Deploy()
	case cfg.DeployCmd != "":
		out, err := exec.CommandContext(ctx, "sh", "-c", cfg.DeployCmd).CombinedOutput()
		if err != nil {
			return at, errors.Join(err, errors.New(string(bytes.TrimSpace(out))))
		}
	}
	return at, nil
}

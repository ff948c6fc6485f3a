package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/herald-push/herald/codec"
	"github.com/herald-push/herald/poller"
)

// fleet is one process's receiving connections: it dials them, runs the
// client side of the WebSocket protocol on poller's event loops and counts
// what arrives. Its Handler methods (OnOpen, OnData, OnTimer, OnClose) run
// on the loops; ramp, storm and echo are called by one coordinating
// goroutine at a time; the atomics may be read from anywhere.
type fleet struct {
	cfg                  Config
	hostport, host, uri  string
	cl                   *poller.Client
	loops                []*loopState // by poller.Loop.Index
	dec                  codec.DecoderConfig
	started              time.Time
	open, failed, gaveUp atomic.Int64
	attempts             atomic.Int64
	// down counts the recovering clients without a connection now (cut
	// or dropped, not yet subscribed again): the drain waits for them.
	down atomic.Int64
	// phase is the Unix nanosecond time the main phase began (0 before):
	// connections opened later are not steady.
	phase atomic.Int64
	// stopping makes closes from now on local, not drops.
	stopping atomic.Bool
	// echoStart is the Unix ns the echo phase began, 0 if none.
	echoStart atomic.Int64

	// targets are the nodes (Config.nodes) parsed; recovery is set for
	// the scenarios whose connections belong to clients (jitter, deploy),
	// and clients holds those, by connection index.
	targets  []target
	recovery bool
	clients  []*client
	subFirst []byte // the first {"op":"sub"} of a client
	// tokens are the connections' own tokens (Config.TokenSecret), nil
	// without.
	tokens *tokenMinter
	// drivers run the clients' cuts and reconnections (see drive).
	drivers    sync.WaitGroup
	driveCtx   context.Context
	driveStop  context.CancelFunc
	phaseEnded chan struct{}

	mu        sync.Mutex           // guards the fields below
	pending   map[string]*dialInfo // by pendingKey, until OnOpen takes it
	failures  map[string]int64
	dropped   map[string]int64
	handshake Hist
	conns     []*poller.Conn // every connection established, in order
}

// loopState is one loop's counters and histograms. The plain fields are
// owned by the loop goroutine; the atomics are written by it and read by
// the progress reporter.
type loopState struct {
	lat        Hist
	completion []int64 // by broadcast seq: latest delivery, µs
	lastRecv   int64
	payload    []byte // scratch for echo payloads
	// replay is, per reconnection that missed messages, the time from the
	// reconnection's first attempt to the last missed message; downtime
	// the time from a lost connection to the next delivery (recovery
	// scenarios).
	replay, downtime Hist
	replayed         int64 // messages received as replay

	deliveries, dups, other, sent atomic.Int64
	p50, p99                      atomic.Int64 // µs, refreshed on request
}

// wsConn is the client state of one connection, owned by its loop.
type wsConn struct {
	key    string     // Sec-WebSocket-Key until the handshake is done
	done   chan error // receives the handshake's outcome once
	opened int64      // Unix ns the handshake completed, 0 before
	dec    codec.Decoder
	win    window
	unique uint64 // distinct stamped messages received
	sent   uint64 // echo messages sent
	state  uint8
	// local marks a close the load generator asked for.
	local bool
	// closeCode is the code of a close frame received, for the drop cause.
	closeCode uint16

	// The fields below are for a client's connection (recovery
	// scenarios): cl is the client, closed is closed by OnClose, reconnAt
	// is when its reconnection began (0 for the first connection).
	cl       *client
	closed   chan struct{}
	reconnAt int64
	// sinceOff is the offset resubscribed from; awaitReply is set until
	// the subscribed reply, replayWait until the replay's last message
	// (offset replayTarget) has arrived; replayN counts replayed messages.
	sinceOff, replayTarget uint64
	since                  bool
	awaitReply, replayWait bool
	replayN                int64
}

// target is one node to dial; tokenBase is uri ready for a token (see
// requestURI).
type target struct{ hostport, host, uri, tokenBase string }

// dialInfo carries a client's connection to OnOpen.
type dialInfo struct {
	cl       *client
	t        target
	closed   chan struct{}
	reconnAt int64
}

const (
	stateHandshake = iota
	stateOpen
	stateClosed
)

func newFleet(cfg Config) (*fleet, error) {
	f := &fleet{cfg: cfg, started: time.Now()}
	var err error
	f.hostport, f.host, f.uri, err = cfg.target()
	if err != nil {
		return nil, err
	}
	for _, u := range cfg.nodes() {
		var t target
		if t.hostport, t.host, t.uri, err = parseTarget(u); err != nil {
			return nil, err
		}
		t.tokenBase = tokenBase(t.uri)
		f.targets = append(f.targets, t)
	}
	if f.tokens, err = newTokenMinter(cfg); err != nil {
		return nil, err
	}
	if cfg.Scenario == ScenarioJitter || cfg.Scenario == ScenarioDeploy {
		f.recovery = true
		f.subFirst = appendSub(nil, cfg.Channel, false, 0, "")
		f.clients = make([]*client, cfg.Conns)
		for i := range f.clients {
			f.clients[i] = &client{id: i, drv: driverState{node: i % len(f.targets)}}
		}
		f.phaseEnded = make(chan struct{})
	}
	f.dec = codec.DecoderConfig{Role: codec.RoleClient}
	pc := poller.Config{Loops: cfg.Loops, TCPNoDelay: true, Logger: slog.New(slog.DiscardHandler)}
	f.cl, err = poller.NewClient(pc, f)
	if err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	f.loops = make([]*loopState, f.cl.NumLoops())
	for i := range f.loops {
		ls := &loopState{lat: newHist()}
		if cfg.Scenario == ScenarioBroadcast {
			ls.completion = make([]int64, cfg.Count)
		}
		f.loops[i] = ls
	}
	if err := f.cl.Start(); err != nil {
		return nil, fmt.Errorf("loadgen: %w", err)
	}
	return f, nil
}

// pendingKey names a dialed connection by both of its ends: with
// IP_BIND_ADDRESS_NO_PORT the kernel gives one local address:port to
// connections to different nodes at once, so the local end alone does
// not tell two attempts apart (the deploy and multi-node jitter runs
// then gave one client's connection to another).
func pendingKey(local, remote net.Addr) string {
	var l, r string
	if local != nil {
		l = local.String()
	}
	if remote != nil {
		r = remote.String()
	}
	return l + ">" + r
}

// OnOpen sends the upgrade request. It runs on the connection's loop.
func (f *fleet) OnOpen(c *poller.Conn) {
	// A connection with its own token comes with its request URI (see
	// attemptTo).
	reqURI, _ := c.Context().(string)
	key, err := codec.NewClientKey(nil)
	wc := &wsConn{done: make(chan error, 1), key: key}
	wc.dec.Init(&f.dec)
	c.SetContext(wc)
	host, uri := f.host, f.uri
	if f.recovery && err == nil {
		key := pendingKey(c.LocalAddr(), c.RemoteAddr())
		f.mu.Lock()
		di := f.pending[key]
		delete(f.pending, key)
		f.mu.Unlock()
		if di == nil {
			// Not one of ours to resume: without its client it would
			// open unsubscribed and count as a plain connection.
			err = errors.New("loadgen: no client for connection " + key)
		} else {
			wc.cl, wc.closed, wc.reconnAt = di.cl, di.closed, di.reconnAt
			host, uri = di.t.host, di.t.uri
		}
	}
	if err != nil {
		wc.finish(err)
		c.Close()
		return
	}
	if reqURI != "" {
		uri = reqURI
	}
	c.Write(codec.AppendClientRequest(nil, host, uri, key, f.cfg.Headers...))
}

// OnData completes the handshake, then decodes frames and counts messages.
func (f *fleet) OnData(c *poller.Conn, in []byte) int {
	wc := c.Context().(*wsConn)
	used := 0
	now := time.Now().UnixNano()
	if wc.state == stateHandshake {
		n, err := codec.ParseResponse(in, wc.key)
		if errors.Is(err, codec.ErrIncomplete) {
			return 0
		}
		if err != nil {
			wc.finish(err)
			c.Close()
			return len(in)
		}
		used = n
		wc.state, wc.key, wc.opened = stateOpen, "", now
		f.open.Add(1)
		if wc.cl != nil {
			// The attempt succeeds with the subscribed reply.
			c.Write(codec.AppendMaskedFrame(nil, codec.OpText, true, f.subscribe(wc), maskKey()))
		} else {
			if f.cfg.SubMsg != "" {
				c.Write(codec.AppendMaskedFrame(nil, codec.OpText, true, []byte(f.cfg.SubMsg), maskKey()))
			}
			wc.finish(nil)
		}
	}
	ls := f.loops[c.Loop().Index()]
	buf := in[used:]
	for {
		msg, n, err := wc.dec.Next(buf)
		if err != nil {
			wc.closeCode = codec.CloseProtocolError
			c.Close()
			return len(in)
		}
		used += n
		buf = buf[n:]
		switch msg.Op {
		case 0:
			return used
		case codec.OpText, codec.OpBinary:
			if wc.cl != nil {
				if !f.receiveClient(ls, wc, msg.Payload, now) {
					c.Close()
					return len(in)
				}
				continue
			}
			f.receive(ls, wc, msg.Payload, now)
		case codec.OpPing:
			c.Write(codec.AppendMaskedFrame(nil, codec.OpPong, true, msg.Payload, maskKey()))
		case codec.OpClose:
			wc.closeCode = msg.CloseCode
			c.Write(codec.AppendMaskedClose(nil, msg.CloseCode, "", maskKey()))
			c.Close()
			return len(in)
		}
	}
}

// receive counts one data message. It runs on the loop and allocates
// nothing.
func (f *fleet) receive(ls *loopState, wc *wsConn, p []byte, now int64) {
	t, seq, ok := parseStamp(p)
	if !ok {
		ls.other.Add(1)
		return
	}
	if wc.win.add(seq) {
		ls.dups.Add(1)
		return
	}
	wc.unique++
	ls.deliveries.Add(1)
	ls.lastRecv = now
	lat := time.Duration(max(now-t, 0))
	ls.lat.Record(lat)
	if seq < uint64(len(ls.completion)) {
		ls.completion[seq] = max(ls.completion[seq], lat.Microseconds())
	}
}

// OnTimer is unused: deadlines are kept by the dialing goroutines.
func (f *fleet) OnTimer(*poller.Conn) {}

// OnClose reports a handshake that did not complete, or counts a drop.
func (f *fleet) OnClose(c *poller.Conn, err error) {
	wc, _ := c.Context().(*wsConn)
	if wc == nil {
		return
	}
	wc.dec.Reset()
	if wc.cl != nil {
		if wc.state == stateOpen && wc.cl.downAt == 0 {
			wc.cl.downAt = time.Now().UnixNano()
		}
		if wc.state != stateClosed {
			close(wc.closed)
		}
	}
	switch wc.state {
	case stateHandshake:
		if err == nil {
			err = errors.New("closed during handshake")
		}
		wc.finish(err)
	case stateOpen:
		f.open.Add(-1)
		if !wc.local && !f.stopping.Load() {
			f.mu.Lock()
			f.dropped = addCounts(f.dropped, map[string]int64{dropCause(err, wc.closeCode): 1})
			f.mu.Unlock()
		}
	}
	wc.state = stateClosed
}

// finish reports the handshake's outcome to the dialing goroutine.
func (wc *wsConn) finish(err error) {
	select {
	case wc.done <- err:
	default:
	}
}

func maskKey() [4]byte {
	v := rand.Uint32()
	return [4]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
}

// dropCause names why an established connection closed.
func dropCause(err error, code uint16) string {
	if code != 0 {
		return fmt.Sprintf("close-%d", code)
	}
	return cause(err)
}

// cause names an error for the failure tables.
func cause(err error) string {
	var he *codec.HandshakeError
	var ne net.Error
	switch {
	case err == nil:
		return "closed"
	case errors.As(err, &he):
		return fmt.Sprintf("http-%d", he.Status)
	case errors.Is(err, codec.ErrBadResponse):
		return "bad-response"
	case errors.Is(err, errHandshakeTimeout):
		return "handshake-timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "addr-not-available"
	case errors.Is(err, syscall.EADDRINUSE):
		return "addr-in-use"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "too-many-open-files"
	case errors.Is(err, syscall.EPIPE):
		return "broken-pipe"
	case errors.Is(err, io.EOF):
		return "eof"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "other"
}

var errHandshakeTimeout = errors.New("loadgen: handshake timed out")

// appendMasked appends payload as one masked text frame.
func appendMasked(dst, payload []byte) []byte {
	return codec.AppendMaskedFrame(dst, codec.OpText, true, payload, maskKey())
}

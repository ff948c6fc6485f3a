package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/herald-push/herald/poller"
)

// member is one process's share of the connections, seen from the
// coordinator: the local fleet, or a worker process driven over a pipe.
// Its methods are called from the coordinating goroutine, one at a time,
// except live, which the progress reporter calls.
type member interface {
	// ramp opens the member's connections.
	ramp(ctx context.Context) error
	// begin marks the start of the main phase.
	begin(ctx context.Context) error
	// act runs the member's own part of the main phase (echo sends, the
	// storm); members of other scenarios return at once.
	act(ctx context.Context) error
	// live returns the member's counters so far.
	live() liveStats
	// finish ends the member and returns its result.
	finish(ctx context.Context) (*Result, error)
}

// liveStats are a member's counters during a run.
type liveStats struct {
	Open   int64 `json:"open"`
	Failed int64 `json:"failed"`
	// Down counts recovering clients between a lost connection and their
	// next subscription (jitter, deploy).
	Down       int64 `json:"down"`
	Deliveries int64 `json:"deliveries"`
	Dups       int64 `json:"dups"`
	Sent       int64 `json:"sent"`
	P50        int64 `json:"p50_us"`
	P99        int64 `json:"p99_us"`
	// At is when the counters were read (Unix ns).
	At int64 `json:"at"`
}

func (a liveStats) add(b liveStats) liveStats {
	return liveStats{
		Open: a.Open + b.Open, Failed: a.Failed + b.Failed, Down: a.Down + b.Down,
		Deliveries: a.Deliveries + b.Deliveries, Dups: a.Dups + b.Dups, Sent: a.Sent + b.Sent,
		P50: max(a.P50, b.P50), P99: max(a.P99, b.P99),
		At: minNonZero(a.At, b.At),
	}
}

func minNonZero(a, b int64) int64 {
	if a == 0 || (b != 0 && b < a) {
		return b
	}
	return a
}

// fdHeadroom is the number of files a load generator process keeps besides
// its connections (loops' epoll and event fds, publishers, std streams).
const fdHeadroom = 64

// fdLimit is this process's open-file limit (a large number when unknown).
func fdLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 1 << 30
	}
	return int(rl.Cur)
}

// localMember holds connections in this process: a fleet, plus the
// connections that stop reading in the slow scenario.
type localMember struct {
	cfg   Config
	f     *fleet
	slow  []net.Conn
	rampT time.Duration
	// connected is the number open when the ramp ended.
	connected int
	// stormTook and stormN are the storm's recovery time and reconnections.
	stormTook time.Duration
	stormN    int
	// published is set by Run before finish, for the recovery scenarios'
	// per-client counts.
	published int64
	// failedSeqs are the seqs whose publish failed: no client expects them.
	failedSeqs []uint64
}

func newLocalMember(cfg Config) (*localMember, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && uint64(cfg.Conns)+fdHeadroom > uint64(rl.Cur) {
		return nil, fmt.Errorf("loadgen: %d connections do not fit this process's open-file limit (%d): use more processes (Procs, -procs)", cfg.Conns, rl.Cur)
	}
	f, err := newFleet(cfg)
	if err != nil {
		return nil, err
	}
	return &localMember{cfg: cfg, f: f}, nil
}

func (m *localMember) ramp(ctx context.Context) error {
	n := m.cfg.Conns
	slow := 0
	if m.cfg.Scenario == ScenarioSlow {
		slow = int(float64(n) * m.cfg.SlowShare)
	}
	if m.cfg.Scenario == ScenarioShootout {
		n = m.cfg.ShootoutStart
	}
	m.rampT = m.f.ramp(ctx, 0, n-slow)
	for i := n - slow; i < n; i++ {
		if c, err := m.dialSlow(ctx, i); err == nil {
			m.slow = append(m.slow, c)
		}
	}
	m.connected = int(m.f.open.Load()) + len(m.slow)
	return nil
}

// dialSlow opens connection i, which will never be read after its
// handshake, with a small receive buffer so that it fills soon.
func (m *localMember) dialSlow(ctx context.Context, i int) (net.Conn, error) {
	uri := m.f.uri
	if m.f.tokens != nil {
		var err error
		if uri, err = m.f.requestURI(0, i); err != nil {
			return nil, err
		}
	}
	src := m.f.source(i)
	d := net.Dialer{Timeout: m.cfg.ConnectTimeout, Control: func(network, address string, rc syscall.RawConn) error {
		_ = rc.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return bindNoPort(network, address, rc)
	}}
	if ip := net.ParseIP(src); ip != nil {
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	c, err := d.DialContext(ctx, "tcp", m.f.hostport)
	if err != nil {
		return nil, err
	}
	if err := clientHandshake(c, m.f.host, uri, m.cfg.Headers, m.cfg.ConnectTimeout); err != nil {
		_ = c.Close()
		return nil, err
	}
	if m.cfg.SubMsg != "" {
		_, _ = c.Write(appendMasked(nil, []byte(m.cfg.SubMsg)))
	}
	return c, nil
}

func (m *localMember) begin(ctx context.Context) error {
	m.f.phase.Store(time.Now().UnixNano())
	if m.f.recovery {
		m.f.startDrivers(ctx)
	}
	return nil
}

func (m *localMember) act(ctx context.Context) error {
	switch m.cfg.Scenario {
	case ScenarioEcho:
		m.f.echo(ctx, m.cfg.Rate, m.cfg.Duration)
	case ScenarioStorm:
		m.stormTook, m.stormN = m.f.storm(ctx)
	}
	return nil
}

func (m *localMember) live() liveStats {
	s := liveStats{Open: m.f.open.Load(), Failed: m.f.failed.Load(), Down: m.f.down.Load(), At: time.Now().UnixNano()}
	for _, ls := range m.f.loops {
		s.Deliveries += ls.deliveries.Load()
		s.Dups += ls.dups.Load()
		s.Sent += ls.sent.Load()
		s.P50 = max(s.P50, ls.p50.Load())
		s.P99 = max(s.P99, ls.p99.Load())
	}
	// Ask the loops for fresh percentiles; they arrive by the next call.
	for _, l := range m.f.cl.Loops() {
		ls := m.f.loops[l.Index()]
		_ = l.Run(func() {
			ls.p50.Store(ls.lat.Quantile(50).Microseconds())
			ls.p99.Store(ls.lat.Quantile(99).Microseconds())
		})
	}
	return s
}

// loopResult is what one loop contributes to a member's result.
type loopResult struct {
	lat                         Hist
	completion                  []int64
	lastRecv                    int64
	open, steady                int64
	steadyUnique, steadySent    int64
	sent, deliveries, dups, oth int64
}

func (m *localMember) finish(ctx context.Context) (*Result, error) {
	f := m.f
	var open []bool
	if f.recovery {
		f.stopDrivers()
		open = make([]bool, len(f.clients))
		for i, cl := range f.clients {
			open[i] = cl.drv.openAtEnd()
		}
	}
	phase := f.phase.Load()
	ch := make(chan loopResult, len(f.loops))
	loops := f.cl.Loops()
	for _, l := range loops {
		ls := f.loops[l.Index()]
		err := l.Run(func() {
			lr := loopResult{lat: ls.lat, completion: ls.completion, lastRecv: ls.lastRecv,
				deliveries: ls.deliveries.Load(), dups: ls.dups.Load(), oth: ls.other.Load()}
			ls.lat, ls.completion = newHist(), nil
			l.Each(func(c *poller.Conn) bool {
				wc, ok := c.Context().(*wsConn)
				if !ok || wc.state != stateOpen {
					return true
				}
				lr.open++
				lr.sent += int64(wc.sent)
				if phase > 0 && wc.opened < phase {
					lr.steady++
					lr.steadyUnique += int64(wc.unique)
					lr.steadySent += int64(wc.sent)
				}
				return true
			})
			ch <- lr
		})
		if err != nil {
			ch <- loopResult{}
		}
	}
	r := &Result{Scenario: m.cfg.Scenario, URL: m.cfg.URL, Procs: 1, Started: f.started, ConnsTarget: m.cfg.Conns}
	for range loops {
		var lr loopResult
		select {
		case lr = <-ch:
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
		}
		r.Latency.Merge(lr.lat)
		if len(lr.completion) > len(r.CompletionBySeq) {
			r.CompletionBySeq = append(r.CompletionBySeq, make([]int64, len(lr.completion)-len(r.CompletionBySeq))...)
		}
		for i, v := range lr.completion {
			r.CompletionBySeq[i] = max(r.CompletionBySeq[i], v)
		}
		r.LastRecvNano = max(r.LastRecvNano, lr.lastRecv)
		r.OpenAtEnd += int(lr.open)
		r.SteadyConns += lr.steady
		r.SteadyDeliveries += lr.steadyUnique
		r.SteadySent += lr.steadySent
		r.Sent += lr.sent
		r.Deliveries += lr.deliveries
		r.Duplicates += lr.dups
		r.Other += lr.oth
	}
	f.stopping.Store(true)
	r.SlowConns = int64(len(m.slow))
	r.SlowCut = countCut(m.slow)
	_ = f.cl.Stop()
	if f.recovery {
		// The loops and drivers are done: the clients are ours.
		r.Recovery = f.recoveryResult(m.published, m.failedSeqs, open)
	}

	f.mu.Lock()
	r.ConnectFailures = f.failures
	r.Dropped = f.dropped
	r.Handshake = f.handshake
	f.mu.Unlock()
	if m.cfg.Scenario == ScenarioStorm {
		r.RecoverySeconds, r.Reconnected = m.stormTook.Seconds(), m.stormN
	}
	r.Connected = m.connected
	r.RampSeconds = m.rampT.Seconds()
	r.ConnectAttempts = f.attempts.Load()
	r.GaveUp = f.gaveUp.Load()
	r.Elapsed = time.Since(f.started).Seconds()
	r.FirstSendNano = f.echoStart.Load()
	return r, nil
}

// countCut reads every slow connection until it ends or a short deadline
// passes, and counts those the server closed. It closes them all.
func countCut(conns []net.Conn) int64 {
	var mu sync.Mutex
	var cut int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	deadline := time.Now().Add(3 * time.Second)
	for _, c := range conns {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			defer func() { _ = c.Close() }()
			_ = c.SetReadDeadline(deadline)
			buf := make([]byte, 64<<10)
			for {
				if _, err := c.Read(buf); err != nil {
					var ne net.Error
					if !errors.As(err, &ne) || !ne.Timeout() {
						mu.Lock()
						cut++
						mu.Unlock()
					}
					return
				}
			}
		})
	}
	wg.Wait()
	return cut
}

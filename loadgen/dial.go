package loadgen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/herald-push/herald/poller"
)

// ramp opens n connections, indices first to first+n-1, at the configured
// rate and concurrency, retrying failed attempts with backoff, and returns
// when every one is open or has given up, or ctx ends. It runs on the
// caller's goroutine and ConnectConcurrency dialing goroutines.
func (f *fleet) ramp(ctx context.Context, first, n int) time.Duration {
	start := time.Now()
	idx := make(chan int, f.cfg.ConnectConcurrency)
	var wg sync.WaitGroup
	for range min(f.cfg.ConnectConcurrency, n) {
		wg.Go(func() {
			for i := range idx {
				f.connect(ctx, i)
			}
		})
	}
	pace(ctx, n, f.cfg.ConnectRate, start, func(i int) { idx <- first + i })
	close(idx)
	wg.Wait()
	return time.Since(start)
}

// pace calls fn(i) for i in [0, n) at rate per second from start (as fast
// as fn returns when rate <= 0), until ctx ends. It sleeps only when more
// than a millisecond ahead, so high rates are kept without a timer per call.
func pace(ctx context.Context, n int, rate float64, start time.Time, fn func(i int)) {
	for i := range n {
		if ctx.Err() != nil {
			return
		}
		if rate > 0 {
			due := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if d := time.Until(due); d > time.Millisecond {
				select {
				case <-ctx.Done():
					return
				case <-time.After(d):
				}
			}
		}
		fn(i)
	}
}

// connect establishes connection i, retrying up to cfg.Retries times.
func (f *fleet) connect(ctx context.Context, i int) {
	backoff := 50 * time.Millisecond
	for try := 0; ; try++ {
		began := time.Now()
		var c *poller.Conn
		var err error
		if f.recovery {
			cl := f.clients[i]
			var closed chan struct{}
			if c, closed, err = f.attemptTo(ctx, i, cl.drv.node, cl, 0); err == nil {
				cl.drv.conn, cl.drv.closed = c, closed
			}
		} else {
			c, err = f.attempt(ctx, i)
		}
		f.attempts.Add(1)
		if err == nil {
			f.mu.Lock()
			f.handshake.Record(time.Since(began))
			f.conns = append(f.conns, c)
			f.mu.Unlock()
			return
		}
		f.countFailure(err)
		if try >= f.cfg.Retries || ctx.Err() != nil {
			f.gaveUp.Add(1)
			return
		}
		jitter := time.Duration(rand.Int64N(int64(backoff)))
		select {
		case <-ctx.Done():
		case <-time.After(backoff + jitter):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// countFailure counts one failed attempt.
func (f *fleet) countFailure(err error) {
	f.failed.Add(1)
	f.mu.Lock()
	f.failures = addCounts(f.failures, map[string]int64{cause(err): 1})
	f.mu.Unlock()
}

// source returns the local address for connection i.
func (f *fleet) source(i int) string {
	if len(f.cfg.SourceAddrs) == 0 {
		return ""
	}
	return f.cfg.SourceAddrs[i%len(f.cfg.SourceAddrs)]
}

// attempt dials connection i, enrolls it on a loop and waits for the
// handshake's outcome.
func (f *fleet) attempt(ctx context.Context, i int) (*poller.Conn, error) {
	c, _, err := f.attemptTo(ctx, i, 0, nil, 0)
	return c, err
}

// attemptTo dials connection i to node, for client cl when not nil (then
// the attempt succeeds with the subscribed reply, and closed is closed
// when the connection ends), and waits for the outcome.
func (f *fleet) attemptTo(ctx context.Context, i, node int, cl *client, reconnAt int64) (_ *poller.Conn, closed chan struct{}, _ error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.ConnectTimeout)
	defer cancel()
	t := f.targets[node]
	src := f.source(i)
	// With tokens per connection, OnOpen gets the request URI as the
	// connection's context.
	var reqURI any
	if f.tokens != nil {
		uri, err := f.requestURI(node, i)
		if err != nil {
			return nil, nil, err
		}
		reqURI = uri
	}
	d := net.Dialer{Control: bindNoPort}
	if src != "" {
		ip := net.ParseIP(src)
		if ip == nil {
			return nil, nil, fmt.Errorf("loadgen: bad source address %q", src)
		}
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	nc, err := d.DialContext(ctx, "tcp", t.hostport)
	if err != nil {
		return nil, nil, fmt.Errorf("loadgen: dial %s: %w", t.hostport, err)
	}
	var key string
	if cl != nil {
		closed = make(chan struct{})
		key = pendingKey(nc.LocalAddr(), nc.RemoteAddr())
		f.mu.Lock()
		if f.pending == nil {
			f.pending = make(map[string]*dialInfo)
		}
		f.pending[key] = &dialInfo{cl: cl, t: t, closed: closed, reconnAt: reconnAt}
		f.mu.Unlock()
	}
	c, err := f.cl.EnrollContext(nc, reqURI)
	if cl != nil {
		f.mu.Lock()
		delete(f.pending, key)
		f.mu.Unlock()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("loadgen: %w", err)
	}
	// OnOpen has run (Enroll waits for it) and set the context, which is
	// never replaced: reading it here is ordered after that write.
	wc, _ := c.Context().(*wsConn)
	if wc == nil {
		return nil, nil, fmt.Errorf("loadgen: connection closed before it opened")
	}
	select {
	case err := <-wc.done:
		if err != nil {
			return nil, nil, fmt.Errorf("loadgen: handshake: %w", err)
		}
		return c, closed, nil
	case <-ctx.Done():
		c.CloseAsync()
		return nil, nil, errHandshakeTimeout
	}
}

// each runs fn on every loop's goroutine for each of its connections and
// waits for all loops to finish (or ctx to end).
func (f *fleet) each(ctx context.Context, fn func(ls *loopState, c *poller.Conn, wc *wsConn)) {
	var wg sync.WaitGroup
	for _, l := range f.cl.Loops() {
		ls := f.loops[l.Index()]
		wg.Add(1)
		err := l.Run(func() {
			defer wg.Done()
			l.Each(func(c *poller.Conn) bool {
				if wc, ok := c.Context().(*wsConn); ok {
					fn(ls, c, wc)
				}
				return true
			})
		})
		if err != nil {
			wg.Done()
		}
	}
	waitCtx(ctx, &wg)
}

// onLoops runs fn once on every loop's goroutine and waits.
func (f *fleet) onLoops(ctx context.Context, fn func(ls *loopState)) {
	var wg sync.WaitGroup
	for _, l := range f.cl.Loops() {
		ls := f.loops[l.Index()]
		wg.Add(1)
		if err := l.Run(func() { defer wg.Done(); fn(ls) }); err != nil {
			wg.Done()
		}
	}
	waitCtx(ctx, &wg)
}

func waitCtx(ctx context.Context, wg *sync.WaitGroup) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// storm closes every connection at once, waits until they are closed and
// opens as many again; it returns the time from the drop until the last
// reconnection and how many reconnected.
func (f *fleet) storm(ctx context.Context) (time.Duration, int) {
	f.mu.Lock()
	n := len(f.conns)
	f.conns = nil
	f.mu.Unlock()
	start := time.Now()
	f.each(ctx, func(_ *loopState, c *poller.Conn, wc *wsConn) {
		wc.local = true
		c.Close()
	})
	for f.open.Load() > 0 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	before := f.open.Load()
	f.ramp(ctx, 0, n)
	return time.Since(start), int(f.open.Load() - before)
}

// echo makes the connections send rate messages per second in total, in
// turn, for d; each carries its intended send time. It returns when d has
// passed or ctx ends.
func (f *fleet) echo(ctx context.Context, rate float64, d time.Duration) {
	f.mu.Lock()
	conns := append([]*poller.Conn(nil), f.conns...)
	f.mu.Unlock()
	if len(conns) == 0 || rate <= 0 {
		sleepCtx(ctx, d)
		return
	}
	type item struct {
		c *poller.Conn
		t int64
	}
	start := time.Now()
	f.echoStart.Store(start.UnixNano())
	total := int(rate * d.Seconds())
	batches := make(map[*poller.Loop][]item)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for sent := 0; sent < total; {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		due := min(int(time.Since(start).Seconds()*rate), total)
		for ; sent < due; sent++ {
			c := conns[sent%len(conns)]
			t := start.UnixNano() + int64(float64(sent)/rate*1e9)
			batches[c.Loop()] = append(batches[c.Loop()], item{c, t})
		}
		for l, items := range batches {
			ls := f.loops[l.Index()]
			size := f.cfg.PayloadSize
			_ = l.Run(func() {
				out := make([]byte, 0, len(items)*(max(size, 64)+16))
				for _, it := range items {
					wc, ok := it.c.Context().(*wsConn)
					if !ok || wc.state != stateOpen {
						continue
					}
					ls.payload = appendPayload(ls.payload[:0], it.t, wc.sent, size)
					wc.sent++
					ls.sent.Add(1)
					start := len(out)
					out = appendMasked(out, ls.payload)
					it.c.Write(out[start:])
				}
			})
			delete(batches, l)
		}
	}
	// A barrier: each loop runs its queued funcs in order, so once this
	// has run everywhere, every batch has been written and counted.
	f.onLoops(ctx, func(*loopState) {})
	sleepCtx(ctx, time.Until(start.Add(d)))
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

package poller

import (
	"fmt"
	"time"
)

// iovMax is the most buffers one writev(2) may carry (IOV_MAX on Linux and
// the BSDs); a longer list is sent in several calls.
const iovMax = 1024

// Loop is one event loop: a goroutine that owns a set of connections and
// runs every callback for them. All connections of a loop, and the loop's
// own state, are touched only on its goroutine, so they need no locks.
// Index and Run are safe for concurrent use; every other method must be
// called on the loop's goroutine (from a Handler method or a Run func).
type Loop struct {
	k   *core
	drv driver // the backend's side of the loop; set once, before it runs
	idx int

	// Loop goroutine only from here on.

	// depth counts the nested entry points (Handler calls, Run funcs,
	// ticks) in progress; queued writes are flushed when it drops to 0.
	depth int
	// conns holds the open connections; Conn.pos indexes it.
	conns []*Conn
	// dirty lists the connections with writes or a close queued during the
	// current entry point; Conn.pend is 1 + the index of its entry. It keeps
	// its capacity (and its entries' buffer lists) between flushes.
	dirty []pending
	wheel wheel
	// scratch is the memory Scratch hands out, reset after each flush.
	scratch scratch
	// lingering lists the connections draining their outbound bytes after
	// Close (see Conn.Close); entries closed since are dropped at the next
	// tick, which closes those that are done or out of time.
	lingering []*Conn
	// waiting lists the connections to tell OnWritable once their outbound
	// bytes have drained (gnet backend only; epoll knows at once).
	waiting []*Conn
	// flushes counts the write calls handed to the backend (one per
	// connection per flush, or more past iovMax buffers); tests read it.
	flushes int
	// now is the time the backend read as the loop woke for the events it
	// is handling, when clocked is set (the epoll backend); see Now.
	now     time.Time
	clocked bool
}

// pending is what one connection has queued during an entry point.
type pending struct {
	c     *Conn
	bufs  [][]byte
	n     int
	close bool
}

// newLoop returns the idx-th loop of k (its Index adds Config.FirstIndex);
// the backend sets drv before the loop runs.
func newLoop(k *core, idx int) *Loop {
	l := &Loop{k: k, idx: k.cfg.FirstIndex + idx}
	l.wheel.init(k.interval)
	return l
}

// Index is the loop's position, from Config.FirstIndex to
// Config.FirstIndex+Config.Loops-1 (see Server.Loops for the order). It never changes; use it to index per-loop state. Safe
// for concurrent use.
func (l *Loop) Index() int { return l.idx }

// Now is the time the loop read when it woke for the events it is
// handling, behind the clock by at most the time it has spent on them
// (with the gnet backend, which does not say when it wakes, the clock
// itself). It serves what needs the time about once per event, a
// token's expiry, a connection's deadline, without a clock reading each:
// a storm's handshakes, many to a wakeup, share one. Loop goroutine only.
func (l *Loop) Now() time.Time {
	if l.clocked {
		return l.now
	}
	return time.Now()
}

// Run queues fn to run on the loop's goroutine and returns at once; it is
// safe for concurrent use. Writes fn makes are flushed when it returns, as
// for a Handler method. fn must not block. Run returns an error wrapping
// ErrStopped once the server or client is stopping; a fn queued just before
// that may not run. A panic in fn brings the process down.
func (l *Loop) Run(fn func()) error {
	if err := l.drv.post(fn); err != nil {
		return fmt.Errorf("poller: run on loop %d: %w", l.idx, err)
	}
	return nil
}

// runTask runs fn, a func given to Run, as an entry point: the backend
// calls it on the loop goroutine.
func (l *Loop) runTask(fn func()) {
	l.enter()
	fn()
	l.leave()
}

// tick advances the timing wheel to now, as an entry point: the backend
// calls it on the loop goroutine about once per TickInterval.
func (l *Loop) tick(now time.Time) {
	l.enter()
	l.wheel.advance(l, now)
	if len(l.lingering) > 0 {
		l.checkLinger(now)
	}
	if len(l.waiting) > 0 {
		l.checkWaiting()
	}
	l.leave()
}

// linger makes c, closed with bytes still in its outbound buffer, drain
// them before its socket is closed (see Conn.Close). The backend has
// stopped reading c, or ignores what it reads. It reports false when
// lingering is off (Config.CloseLinger < 0): the backend closes c at once.
func (l *Loop) linger(c *Conn) bool {
	d := l.k.cfg.CloseLinger
	if d < 0 {
		return false
	}
	x := c.x
	x.closing = true
	x.lingerUntil = time.Now().Add(d).UnixNano()
	c.deadline = 0
	l.lingering = append(l.lingering, c)
	return true
}

// checkLinger closes the lingering connections whose outbound bytes have
// all been taken by the kernel or whose time is up.
func (l *Loop) checkLinger(now time.Time) {
	keep := l.lingering[:0]
	for _, c := range l.lingering {
		switch {
		case c.fd < 0:
		case now.UnixNano() >= c.x.lingerUntil:
			l.drv.finish(c)
		case c.x.draining:
			keep = append(keep, c) // waiting for the peer's EOF
		case l.drv.outbound(c) == 0:
			l.drv.finish(c)
		default:
			keep = append(keep, c)
		}
	}
	clear(l.lingering[len(keep):])
	l.lingering = keep
}

// wait puts c on the list of connections to tell OnWritable once their
// outbound bytes have drained (backends that cannot tell at once).
func (l *Loop) wait(c *Conn) {
	if l.k.writable == nil || c.x.waiting {
		return
	}
	c.x.waiting = true
	l.waiting = append(l.waiting, c)
}

// checkWaiting calls OnWritable for the waiting connections whose
// outbound bytes have drained.
func (l *Loop) checkWaiting() {
	list := l.waiting
	l.waiting = nil
	for _, c := range list {
		switch {
		case c.fd < 0:
		case c.lingering():
			c.x.waiting = false
		case l.drv.outbound(c) == 0:
			c.x.waiting = false
			l.k.writable.OnWritable(c)
		default:
			l.waiting = append(l.waiting, c)
		}
	}
}

// Each calls fn for every open connection of the loop, in no particular
// order, until fn returns false. Loop goroutine only. fn may write to and
// close connections (closes take effect after the current entry point, so
// the iteration is not disturbed).
func (l *Loop) Each(fn func(c *Conn) bool) {
	for i := 0; i < len(l.conns); i++ {
		if !fn(l.conns[i]) {
			return
		}
	}
}

// Len is the number of open connections on the loop. Loop goroutine only.
func (l *Loop) Len() int { return len(l.conns) }

func (l *Loop) enter() { l.depth++ }

func (l *Loop) leave() {
	l.depth--
	if l.depth != 0 {
		return
	}
	if len(l.dirty) > 0 {
		l.flush()
	}
	// Everything queued has now gone to the kernel or been copied to an
	// outbound buffer: nothing points into the scratch memory any more.
	l.scratch.reset()
}

// Scratch returns a zero-length slice with capacity n for bytes to be
// queued with Conn.Write during the current entry point (Handler method,
// Run func or tick). It stays valid until that entry point's writes have
// been flushed, when the loop reuses the memory; slices taken earlier in
// the same entry point are never overwritten by later ones. Loop goroutine
// only. In steady state it allocates nothing for n up to 32 KiB.
func (l *Loop) Scratch(n int) []byte { return l.scratch.alloc(n) }

// add registers a newly opened connection.
func (l *Loop) add(c *Conn) {
	c.pos = int32(len(l.conns))
	l.conns = append(l.conns, c)
}

// remove unregisters a closed connection and disarms its timer.
func (l *Loop) remove(c *Conn) {
	last := len(l.conns) - 1
	if i := c.pos; i >= 0 && int(i) <= last {
		l.conns[i] = l.conns[last]
		l.conns[i].pos = i
		l.conns[last] = nil
		l.conns = l.conns[:last]
	}
	if cap(l.conns) > 1024 && len(l.conns) < cap(l.conns)/4 {
		l.conns = append(make([]*Conn, 0, 2*len(l.conns)), l.conns...)
	}
	c.pos = -1
	c.fd = -1
	c.x = nil
	c.deadline, c.slot = 0, 0
}

// queue returns c's pending entry, creating it.
func (l *Loop) queue(c *Conn) *pending {
	if c.pend > 0 {
		return &l.dirty[c.pend-1]
	}
	n := len(l.dirty)
	if n < cap(l.dirty) {
		l.dirty = l.dirty[:n+1] // reuse the entry and its buffer list
	} else {
		l.dirty = append(l.dirty, pending{})
	}
	p := &l.dirty[n]
	p.c = c
	c.pend = int32(n + 1)
	return p
}

// flush sends what every dirty connection has queued, one write call per
// connection, and performs the queued closes. Handler methods called from
// here (OnClose, after a close or a failed write) may queue more; those are
// flushed in the same pass.
func (l *Loop) flush() {
	l.depth++ // nested entry points must not flush recursively
	for i := 0; i < len(l.dirty); i++ {
		p := &l.dirty[i]
		c, bufs, closing := p.c, p.bufs, p.close
		p.c, p.n, p.close = nil, 0, false
		c.pend = 0
		switch {
		case c.fd < 0:
		case l.k.sealer != nil:
			if out := l.k.sealer.Seal(c, bufs, closing); len(out) > 0 {
				l.send(c, out)
			}
		case len(bufs) > 0:
			l.send(c, bufs)
		}
		if closing && c.fd >= 0 {
			l.drv.shut(c)
		}
		clear(bufs)
		// l.dirty may have grown (and moved) during send or close.
		l.dirty[i].bufs = bufs[:0]
	}
	l.dirty = l.dirty[:0]
	l.depth--
}

// send hands bufs to the backend, at most iovMax at a time: write(2) or
// writev(2) now, and whatever the kernel does not take is kept and sent when
// the socket is writable. On a write error the backend closes c (OnClose
// runs nested), and the rest is dropped.
func (l *Loop) send(c *Conn, bufs [][]byte) {
	for len(bufs) > 0 && c.fd >= 0 {
		n := min(len(bufs), iovMax)
		l.flushes++
		l.drv.write(c, bufs[:n])
		bufs = bufs[n:]
	}
}

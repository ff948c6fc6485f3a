package poller

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
	gerrors "github.com/panjf2000/gnet/v2/pkg/errors"
)

// iovMax is the most buffers one writev(2) may carry (IOV_MAX on Linux and
// the BSDs); gnet passes longer lists to the kernel unchanged.
const iovMax = 1024

// Loop is one event loop: a goroutine that owns a set of connections and
// runs every callback for them. All connections of a loop, and the loop's
// own state, are touched only on its goroutine, so they need no locks.
// Index and Run are safe for concurrent use; every other method must be
// called on the loop's goroutine (from a Handler method or a Run func).
type Loop struct {
	k        *core
	el       gnet.EventLoop
	idx      int
	tickTask gnet.Runnable // l.runTick, bound once so a tick allocates nothing here

	// tickQueued is set by the ticker goroutine when it queues a tick and
	// cleared by the loop when the tick runs.
	tickQueued atomic.Bool

	// Loop goroutine only from here on.

	// depth counts the nested entry points (gnet callbacks, Run funcs,
	// ticks) in progress; queued writes are flushed when it drops to 0.
	depth int
	// conns holds the open connections; Conn.pos indexes it.
	conns []*Conn
	// dirty lists the connections with writes or a close queued during the
	// current entry point; Conn.pend is 1 + the index of its entry. It keeps
	// its capacity (and its entries' buffer lists) between flushes.
	dirty []pending
	wheel wheel
	// flushes counts the write calls handed to gnet (one per connection
	// per flush, or more past iovMax buffers); tests read it.
	flushes int
}

// pending is what one connection has queued during an entry point.
type pending struct {
	c     *Conn
	bufs  [][]byte
	n     int
	close bool
}

func newLoop(k *core, el gnet.EventLoop, idx int) *Loop {
	l := &Loop{k: k, el: el, idx: idx}
	l.tickTask = gnet.RunnableFunc(l.runTick)
	l.wheel.init(k.interval)
	return l
}

// Index is the loop's position, from 0 to Config.Loops-1, in the order loops
// met their first connection. It never changes; use it to index per-loop
// state. Safe for concurrent use.
func (l *Loop) Index() int { return l.idx }

// Run queues fn to run on the loop's goroutine and returns at once; it is
// safe for concurrent use. Writes fn makes are flushed when it returns, as
// for a Handler method. fn must not block. Run returns an error wrapping
// ErrStopped once the server or client is stopping; a fn queued just before
// that may not run. A panic in fn brings the process down.
func (l *Loop) Run(fn func()) error {
	err := l.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		l.enter()
		fn()
		l.leave()
		return nil
	}))
	if err != nil {
		if errors.Is(err, gerrors.ErrEngineInShutdown) {
			err = ErrStopped
		}
		return fmt.Errorf("poller: run on loop %d: %w", l.idx, err)
	}
	return nil
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
	if l.depth == 0 && len(l.dirty) > 0 {
		l.flush()
	}
}

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
	c.gc = nil
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
		if c.gc != nil && len(bufs) > 0 {
			l.send(c, bufs)
		}
		if closing && c.gc != nil {
			if err := c.gc.EventLoop().Close(c.gc); err != nil {
				l.k.log.Debug("poller: close", "conn", c.id, "err", err)
			}
		}
		clear(bufs)
		// l.dirty may have grown (and moved) during send or close.
		l.dirty[i].bufs = bufs[:0]
	}
	l.dirty = l.dirty[:0]
	l.depth--
}

// send hands bufs to gnet: write(2) or writev(2) now, and whatever the
// kernel does not take is copied to gnet's outbound buffer and sent when the
// socket is writable. On a write error gnet closes c (OnClose runs nested).
func (l *Loop) send(c *Conn, bufs [][]byte) {
	if len(bufs) == 1 {
		l.flushes++
		_, _ = c.gc.Write(bufs[0])
		return
	}
	for len(bufs) > 0 && c.gc != nil {
		n := min(len(bufs), iovMax)
		l.flushes++
		_, _ = c.gc.Writev(bufs[:n])
		bufs = bufs[n:]
	}
}

// runTick advances the timing wheel; it runs on the loop as a gnet task.
func (l *Loop) runTick(context.Context) error {
	l.tickQueued.Store(false)
	l.enter()
	l.wheel.advance(l, time.Now())
	l.leave()
	return nil
}

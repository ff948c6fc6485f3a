package server

// TEMPORARY STAND-IN, to be deleted when the transport's output budget
// lands: it provides, on top of today's transport, the connection methods
// the push app is written against (Conn.Room, Conn.Scratch, WritableApp),
// so that this package builds and its tests run meanwhile. When the real
// ones exist, delete this file and the one call of awaitWritable in
// pager.go (the transport then calls OnWritable by itself).

import (
	"sync"
	"time"

	"github.com/herald-push/herald/codec"
)

// Room is how many bytes may still be queued for the connection within
// its output budget (Config.WriteBufferLimit minus Buffered, never below
// 0). Loop goroutine only.
func (c *Conn) Room() int {
	return max(0, c.srv.cfg.WriteBufferLimit-c.pc.Buffered())
}

// Scratch returns a zero-length slice with capacity n, valid until the
// current entry point's writes are flushed. Loop goroutine only.
func (c *Conn) Scratch(n int) []byte {
	return c.srv.loops[c.li].out.alloc(n)
}

// WritableApp is an App told when a connection's queued output has fully
// drained after bytes had to wait for the peer.
type WritableApp interface {
	// OnWritable runs on the connection's loop once its output drained.
	OnWritable(c *Conn)
}

// writeMessageBudgeted is WriteMessage with the budget check the
// transport's WriteMessage makes itself: past the budget the connection is
// closed with 1008 "output budget exceeded". It reports whether the
// message was queued.
func writeMessageBudgeted(c *Conn, op codec.OpCode, payload []byte) bool {
	if c.state != stateOpen {
		return false
	}
	if codec.FrameHeaderLen(len(payload), false)+len(payload) > c.Room() {
		c.Close(codec.ClosePolicyViolation, "output budget exceeded")
		return false
	}
	c.WriteMessage(op, payload)
	return true
}

// polling holds the connections awaitWritable watches.
var polling sync.Map // *Conn → struct{}

// awaitWritable emulates the transport's drain notification: it checks
// the connection every few milliseconds, on its loop, and calls the app's
// OnWritable once nothing is buffered any more.
func awaitWritable(c *Conn) {
	if _, busy := polling.LoadOrStore(c, struct{}{}); busy {
		return
	}
	l := c.pc.Loop()
	go func() {
		for {
			time.Sleep(2 * time.Millisecond)
			done := make(chan bool, 1)
			if err := l.Run(func() {
				if !c.Open() {
					polling.Delete(c)
					done <- true
					return
				}
				if c.pc.Buffered() > 0 {
					done <- false
					return
				}
				polling.Delete(c)
				if w, ok := c.srv.app.(WritableApp); ok {
					w.OnWritable(c)
				}
				done <- true
			}); err != nil {
				polling.Delete(c)
				return
			}
			if <-done {
				return
			}
		}
	}()
}

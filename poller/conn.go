package poller

import (
	"net"
	"net/netip"
	"time"
)

// Conn is one TCP connection owned by a Loop. It is small on purpose (64
// bytes on 64-bit platforms, see TestConnSize): an idle connection owns no
// goroutine, no timer object and no buffer; queued writes live in its
// loop's table, its deadline in its loop's timing wheel, and bytes in
// flight (a partial inbound frame, outbound bytes the kernel has not taken
// yet) in buffers borrowed for as long as they exist.
//
// ID and Loop are safe for concurrent use. Every other method is owned by
// the loop goroutine: call it only from a Handler method or a Loop.Run func
// of c's loop. Once c is closed (after OnClose) its methods are no-ops.
type Conn struct {
	loop *Loop
	ctx  any
	id   uint64
	// deadline is the wheel tick at which OnTimer is due (0: none); slot is
	// the tick whose wheel bucket holds c's live entry (0: none). See wheel.
	deadline, slot uint32
	// pos is c's index in loop.conns, -1 once closed.
	pos int32
	// pend is 1 + the index of c's entry in loop.dirty, 0 if none.
	pend int32
	// fd is the socket's file descriptor, -1 once closed.
	fd int32
	// x is the backend's per-connection state beyond fd: nil for an idle
	// epoll connection (see connExt).
	x *connExt
}

// ID is a number unique among the connections of one Server or Client,
// never reused: a safe key for c in maps and messages across goroutines.
func (c *Conn) ID() uint64 { return c.id }

// Loop is the loop that owns c.
func (c *Conn) Loop() *Loop { return c.loop }

// RemoteAddr is the peer's address; nil once closed (or, with the epoll
// backend, once the kernel no longer knows it, as after a reset: the
// address is asked of the kernel on each call rather than kept).
func (c *Conn) RemoteAddr() net.Addr {
	if c.fd < 0 {
		return nil
	}
	return c.loop.drv.addr(c, true)
}

// RemoteAddrPort is the peer's IP (an IPv4 address in its 4-byte form)
// and port, as RemoteAddr, without allocating; during OnOpen of a
// connection accepted on the epoll backend it costs no system call
// either. False once closed, or when the peer is not an IP endpoint.
func (c *Conn) RemoteAddrPort() (netip.AddrPort, bool) {
	if c.fd < 0 {
		return netip.AddrPort{}, false
	}
	return c.loop.drv.addrPort(c)
}

// LocalAddr is the local address of the connection; nil once closed (see
// RemoteAddr).
func (c *Conn) LocalAddr() net.Addr {
	if c.fd < 0 {
		return nil
	}
	return c.loop.drv.addr(c, false)
}

// Context returns the value set with SetContext.
func (c *Conn) Context() any { return c.ctx }

// SetContext attaches v to c (typically the protocol state of the
// connection).
func (c *Conn) SetContext(v any) { c.ctx = v }

// Write queues b to be sent on c. b is not copied: it must stay unchanged
// until the current entry point (Handler method or Run func) returns.
// Everything queued for c during one entry point goes out in one write
// system call when it returns (coalescing); bytes the kernel does not take
// then are copied to an outbound buffer and sent as the socket drains.
// Writes after Close, or to a closed connection, are dropped.
func (c *Conn) Write(b []byte) {
	if len(b) == 0 || c.fd < 0 || c.lingering() {
		return
	}
	p := c.loop.queue(c)
	if p.close {
		return
	}
	p.bufs = append(p.bufs, b)
	p.n += len(b)
}

// Touch marks c as having output in the current entry point, so that the
// Handler's Sealer (see Sealer) runs for it when the entry point returns
// even if nothing was written (a TLS layer that owes its peer a record).
func (c *Conn) Touch() {
	if c.fd < 0 || c.lingering() {
		return
	}
	c.loop.queue(c)
}

// Buffered is the number of bytes written to c and not yet taken by the
// kernel: queued in this entry point plus the outbound buffer. Compare it
// with a limit to detect a peer that does not keep up.
func (c *Conn) Buffered() int {
	if c.fd < 0 {
		return 0
	}
	n := c.loop.drv.outbound(c)
	if c.pend > 0 {
		n += c.loop.dirty[c.pend-1].n
	}
	return n
}

// Close closes c once the current entry point returns, after sending what
// was queued for it. If the kernel does not take every byte then, c
// lingers: it is no longer read from (nor are its timer, Write and Close
// honoured), its outbound bytes keep draining, and the socket is closed
// once they are all sent or Config.CloseLinger has passed, whichever comes
// first; OnClose follows, once. A slow peer that eventually reads thus
// gets what was queued for it before the close (a WebSocket close frame
// above all). Closing twice is harmless.
func (c *Conn) Close() {
	if c.fd < 0 || c.lingering() {
		return
	}
	c.loop.queue(c).close = true
}

// lingering reports whether c is closed but still draining its outbound
// bytes (see Close).
func (c *Conn) lingering() bool { return c.x != nil && c.x.closing }

// CloseAsync closes c from any goroutine: it is the concurrency-safe form
// of Close, for connections owned by another loop. It returns at once.
func (c *Conn) CloseAsync() {
	_ = c.loop.Run(c.Close)
}

// Closed reports whether Close has been called or the connection is closed.
func (c *Conn) Closed() bool {
	return c.fd < 0 || c.lingering() || (c.pend > 0 && c.loop.dirty[c.pend-1].close)
}

// SetTimer arms c's single timer: OnTimer(c) runs once d has passed, no
// earlier, and usually within two TickIntervals after. It replaces any
// deadline set before. The timer costs no allocation: it lives in the
// loop's timing wheel. d is capped at about 2^30 ticks.
func (c *Conn) SetTimer(d time.Duration) {
	if c.fd < 0 || c.lingering() {
		return
	}
	c.loop.wheel.set(c, d)
}

// StopTimer disarms c's timer.
func (c *Conn) StopTimer() { c.deadline = 0 }

// connExt is the state a connection needs only at times. The epoll backend
// allocates it while the connection holds borrowed buffers and recycles it
// when both are returned; the gnet backend keeps one per connection for
// gnet's handle.
type connExt struct {
	// in holds inbound bytes a Handler left unconsumed; nil if none.
	in *[]byte
	// out holds outbound bytes the kernel has not taken yet, from
	// (*out)[head:]; nil if none.
	out  *[]byte
	head int
	// inCounted is the number of unconsumed input bytes this connection
	// adds to its core's inbound count.
	inCounted int
	// closing is set while the connection lingers after Close, until
	// lingerUntil (unix nanoseconds); see Close.
	closing     bool
	lingerUntil int64
	// draining is set once a lingering connection's outbound bytes are
	// all with the kernel and its write side is shut: what the peer still
	// sends is read and dropped until its EOF or lingerUntil (epoll).
	draining bool
	// waiting is set while the connection is on its loop's list of those
	// to tell when their outbound bytes have drained (gnet backend, with
	// a WritableHandler).
	waiting bool
	// gc is gnet's connection (gnet backend only).
	gc gnetConn
}

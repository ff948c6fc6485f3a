package poller

// Handler receives a poller's events. Every method runs on the connection's
// own loop goroutine, never two at once for one loop, so a Handler needs no
// locks for per-connection state; it must not block, since a blocked method
// stalls every connection of the loop (hand blocking work to a worker pool
// and come back with Loop.Run).
//
// Writes made during a method (to any connection of the loop) are sent when
// the method returns, one write system call per connection; Close takes
// effect at the same point.
type Handler interface {
	// OnOpen is called once a connection is established, before any other
	// method for it.
	OnOpen(c *Conn)
	// OnData is called with every unconsumed inbound byte of c: bytes left
	// unconsumed by earlier calls first, then the bytes just read. It
	// returns how many bytes it consumed (from the front of in); the rest
	// are presented again, followed by new bytes, on the next call. in is
	// writable (a decoder may unmask in place; changes to unconsumed bytes
	// are kept). It stays valid until the writes queued during the call
	// have been flushed, so OnData may pass parts of in to Write without
	// copying them, but must not keep in after it returns. OnData is not
	// called again for c once c.Close has been called.
	OnData(c *Conn, in []byte) (consumed int)
	// OnTimer is called when the deadline set with c.SetTimer has passed.
	// The timer is disarmed before the call; OnTimer may set it again.
	OnTimer(c *Conn)
	// OnClose is called once when c is closed: by Close, by the peer
	// (err wraps io.EOF), by an I/O error, or by Stop. err is nil when the
	// close was asked for locally. After it, c's methods are no-ops.
	OnClose(c *Conn, err error)
}

// WritableHandler is an optional interface of a Handler: OnWritable(c) is
// called on c's loop once every byte queued for c has been taken by the
// kernel, after some had to wait in c's outbound buffer (Buffered was
// above what one write could send). A producer that stopped queueing at a
// budget uses it to resume. With the epoll backend it is called as soon
// as the buffer drains; with gnet, at the loop's next tick. It is not
// called for a connection that is closing.
type WritableHandler interface {
	OnWritable(c *Conn)
}

// Sealer is an optional interface of a Handler that puts a layer (TLS
// records) between what is written to a connection and the socket: at the
// end of each entry point, for every connection with writes or a close
// queued (or marked with Conn.Touch), the loop calls Seal with the queued
// slices and sends what it returns instead. closing says the connection is
// being closed after this write. The returned slices must stay valid
// until the flush is done (Loop.Scratch memory does); returning bufs
// itself passes them through unchanged. Seal may not write to or close
// connections; it runs on the loop goroutine.
type Sealer interface {
	Seal(c *Conn, bufs [][]byte, closing bool) [][]byte
}

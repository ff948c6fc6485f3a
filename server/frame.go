package server

import (
	"sync"

	"github.com/herald-push/herald/codec"
)

// Frame is one complete, pre-encoded WebSocket frame (final, unmasked, as
// a server sends it) shared by many connections, e.g. a published message
// that every subscriber receives. It owns the choice between the plain
// frame and its permessage-deflate variant: Conn.WriteFrame picks the one
// the connection negotiated, so the code above never looks at what was
// negotiated.
//
// The compressed variant for connections with a full window (the common
// case: no client_max_window_bits below 15) is built once, on the first
// write to such a connection, by whichever loop gets there first; loops
// that need it meanwhile wait for that one compression instead of
// repeating it, so compression costs nothing when no subscriber asked for
// it and does not grow with their number. Connections that negotiated a
// smaller window get a compression of their own, in their loop's scratch
// memory.
//
// Set the plain bytes with NewFrame or Set before the frame is shared;
// afterwards a Frame is safe for concurrent use by every loop, and neither
// it nor the bytes it holds may be modified. A Frame must not be copied
// once used. Frames of one Server may be written to another only when
// both run with the same compression settings.
type Frame struct {
	plain []byte
	once  sync.Once
	// deflated is the full-window compression, or plain when compression
	// does not pay; valid once once has run.
	deflated []byte
}

// NewFrame returns a Frame carrying plain, a complete unmasked frame; the
// Frame keeps plain, which must not change afterwards.
func NewFrame(plain []byte) *Frame { return &Frame{plain: plain} }

// Set makes f carry plain, for a Frame embedded in a value of the
// caller's (one allocation for several frames). It must be called before f
// is shared, at most once.
func (f *Frame) Set(plain []byte) { f.plain = plain }

// Bytes is the plain frame. It must not be modified.
func (f *Frame) Bytes() []byte { return f.plain }

// Len is the plain frame's length: the most bytes any connection is sent
// for it.
func (f *Frame) Len() int { return len(f.plain) }

// deflatedWith returns the full-window compressed variant, building it
// with z on the first call.
func (f *Frame) deflatedWith(z *codec.Deflate) []byte {
	f.once.Do(func() {
		f.deflated = f.plain
		if zf, ok := z.AppendCompressedOf(nil, f.plain, 15); ok {
			f.deflated = zf
		}
	})
	return f.deflated
}

// bytesFor returns the variant of f that c receives: plain, the shared
// compression, or one of c's own in the loop's scratch memory. Loop
// goroutine only.
func (f *Frame) bytesFor(c *Conn) []byte {
	if !c.z.Enabled() {
		return f.plain
	}
	z := c.srv.deflate
	if c.z.ServerWindowBits == 15 {
		return f.deflatedWith(z)
	}
	if zf, ok := z.AppendCompressedOf(c.scratch(len(f.plain)), f.plain, c.z.ServerWindowBits); ok {
		return zf
	}
	return f.plain
}

// WriteFrame queues f for the peer, in the variant the connection
// negotiated, and counts it as a message sent. It queues nothing and
// returns false when the connection is not open or when that variant does
// not fit Room: the caller decides what that means (the push protocol
// applies its slow-consumer policy), and the connection stays open. Loop
// goroutine only.
//
// On an event stream (Stream) f's bytes are written as they are: f then
// holds event-stream text rather than a WebSocket frame.
func (c *Conn) WriteFrame(f *Frame) bool {
	if c.state == stateStream {
		if c.pc.Closed() || len(f.plain) > c.Room() {
			return false
		}
		c.writePrepared(f.plain)
		return true
	}
	if c.state != stateOpen {
		return false
	}
	b := f.bytesFor(c)
	if len(b) > c.Room() {
		return false
	}
	c.writePrepared(b)
	return true
}

package poller

import (
	"bytes"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// TestCloseLingers: a connection closed with far more queued than the
// kernel takes at once keeps draining, unread, until the slow peer has it
// all, the last bytes written before Close included, then sees EOF;
// OnClose runs once, after the peer closed too.
func TestCloseLingers(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{BackendEpoll, BackendGnet} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			opened := make(chan *Conn, 1)
			var closes atomic.Int32
			s := startServer(t, Config{Backend: backend, Loops: 1, TCPNoDelay: true, SocketSendBuffer: 64 << 10, TickInterval: 5 * time.Millisecond, CloseLinger: time.Minute},
				&funcs{open: func(c *Conn) { opened <- c }, close: func(*Conn, error) { closes.Add(1) }})
			nc := dial(t, s)
			if tc, ok := nc.(*net.TCPConn); ok {
				_ = tc.SetReadBuffer(64 << 10)
			}
			c := <-opened
			body := bytes.Repeat([]byte("0123456789abcdef"), 256<<10) // 4 MiB
			last := []byte("the end")
			var buffered int
			var closed bool
			onLoop(t, c.Loop(), func() {
				c.Write(body)
				c.Write(last)
				c.Close()
			})
			onLoop(t, c.Loop(), func() { buffered, closed = c.Buffered(), c.Closed() })
			if buffered == 0 || !closed {
				t.Fatalf("after Close: Buffered %d, Closed %v; want bytes left and closed", buffered, closed)
			}
			if n := closes.Load(); n != 0 {
				t.Fatalf("OnClose ran %d times while bytes were left", n)
			}
			got := expectEOF(t, nc)
			if len(got) != len(body)+len(last) || !bytes.HasSuffix(got, last) {
				t.Fatalf("peer got %d bytes ending %q, want %d ending %q", len(got), got[max(len(got)-10, 0):], len(body)+len(last), last)
			}
			// The server shut its write side and now waits for the peer's
			// EOF (epoll) before it closes, so no reset can destroy what
			// the peer has not read.
			nc.Close()
			waitFor(t, "OnClose", func() bool { return closes.Load() == 1 })
		})
	}
}

// TestCloseLingerEnds: a peer that never reads is cut once the linger
// time has passed; OnClose runs once.
func TestCloseLingerEnds(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{BackendEpoll, BackendGnet} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			opened := make(chan *Conn, 1)
			closed := make(chan error, 2)
			s := startServer(t, Config{Backend: backend, Loops: 1, SocketSendBuffer: 64 << 10, TickInterval: 5 * time.Millisecond, CloseLinger: 20 * time.Millisecond},
				&funcs{open: func(c *Conn) { opened <- c }, close: func(_ *Conn, err error) { closed <- err }})
			nc := dial(t, s)
			if tc, ok := nc.(*net.TCPConn); ok {
				_ = tc.SetReadBuffer(64 << 10)
			}
			c := <-opened
			onLoop(t, c.Loop(), func() {
				c.Write(make([]byte, 8<<20))
				c.Close()
			})
			select {
			case err := <-closed:
				if err != nil {
					t.Errorf("OnClose(%v), want nil (a local close)", err)
				}
			case <-time.After(testTimeout):
				t.Fatal("a lingering connection whose peer never reads was not closed")
			}
			onLoop(t, c.Loop(), func() {})
			if len(closed) != 0 {
				t.Error("OnClose ran twice")
			}
		})
	}
}

// writable is funcs with OnWritable.
type writable struct {
	funcs
	drained chan *Conn
}

func (w *writable) OnWritable(c *Conn) { w.drained <- c }

// TestOnWritable: a WritableHandler hears once a connection's outbound
// bytes that had to wait have all gone to the kernel.
func TestOnWritable(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{BackendEpoll, BackendGnet} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			opened := make(chan *Conn, 1)
			h := &writable{funcs: funcs{open: func(c *Conn) { opened <- c }}, drained: make(chan *Conn, 4)}
			s := startServer(t, Config{Backend: backend, Loops: 1, SocketSendBuffer: 64 << 10, TickInterval: 5 * time.Millisecond}, h)
			nc := dial(t, s)
			c := <-opened
			const n = 4 << 20
			onLoop(t, c.Loop(), func() { c.Write(make([]byte, n)) })
			readN(t, nc, n)
			select {
			case got := <-h.drained:
				if got != c {
					t.Errorf("OnWritable for conn %d, want %d", got.ID(), c.ID())
				}
			case <-time.After(testTimeout):
				t.Fatal("no OnWritable after the outbound bytes drained")
			}
			var left int
			onLoop(t, c.Loop(), func() { left = c.Buffered() })
			if left != 0 {
				t.Errorf("Buffered() = %d at OnWritable", left)
			}
		})
	}
}

// TestInboundBuffered: the bytes a Handler leaves unconsumed are counted
// while held, and uncounted once consumed or closed.
func TestInboundBuffered(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{BackendEpoll, BackendGnet} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, Config{Backend: backend, Loops: 1}, &funcs{data: lineEcho})
			nc := dial(t, s)
			_, _ = nc.Write([]byte("partial"))
			waitFor(t, "7 bytes held", func() bool { return s.InboundBuffered() == 7 })
			_, _ = nc.Write([]byte(" line\n"))
			readN(t, nc, len("partial line\n"))
			waitFor(t, "nothing held", func() bool { return s.InboundBuffered() == 0 })
			_, _ = nc.Write([]byte("more"))
			waitFor(t, "4 bytes held", func() bool { return s.InboundBuffered() == 4 })
			_ = nc.Close()
			waitFor(t, "nothing held after the close", func() bool { return s.InboundBuffered() == 0 })
		})
	}
}

// TestCloseWaitsForPeer: a connection closed from OnData while the peer
// still sends gets everything queued, then EOF, and no reset: the server
// shuts its write side, drops what keeps arriving and closes when the peer
// does, or at once when the socket is quiet both ways (loop ticks run
// meanwhile). OnClose runs once.
func TestCloseWaitsForPeer(t *testing.T) {
	t.Parallel()
	var closes atomic.Int32
	s := startServer(t, Config{Backend: BackendEpoll, Loops: 1, TickInterval: 5 * time.Millisecond, CloseLinger: time.Minute},
		&funcs{
			data: func(c *Conn, in []byte) int {
				if !c.Closed() {
					c.Write([]byte("bye"))
					c.Close()
				}
				return len(in)
			},
			close: func(*Conn, error) { closes.Add(1) },
		})
	nc := dial(t, s)
	if _, err := nc.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	// More input after the close: unread, it would make close(2) reset.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 64 {
			if _, err := nc.Write(make([]byte, 4096)); err != nil {
				return
			}
		}
	}()
	if got := expectEOF(t, nc); string(got) != "bye" {
		t.Fatalf("peer got %q before EOF, want %q", got, "bye")
	}
	<-done
	nc.Close()
	waitFor(t, "OnClose", func() bool { return closes.Load() == 1 })
}

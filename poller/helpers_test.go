package poller

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// testTimeout bounds every wait in this package's tests.
const testTimeout = 10 * time.Second

// funcs is a Handler made of optional funcs; nil ones do nothing (OnData
// then consumes everything).
type funcs struct {
	open  func(c *Conn)
	data  func(c *Conn, in []byte) int
	timer func(c *Conn)
	close func(c *Conn, err error)
}

func (f *funcs) OnOpen(c *Conn) {
	if f.open != nil {
		f.open(c)
	}
}

func (f *funcs) OnData(c *Conn, in []byte) int {
	if f.data != nil {
		return f.data(c, in)
	}
	return len(in)
}

func (f *funcs) OnTimer(c *Conn) {
	if f.timer != nil {
		f.timer(c)
	}
}

func (f *funcs) OnClose(c *Conn, err error) {
	if f.close != nil {
		f.close(c, err)
	}
}

// lineEcho echoes every complete line and leaves a partial line unconsumed,
// so it exercises the retention of unconsumed bytes.
func lineEcho(c *Conn, in []byte) int {
	end := bytes.LastIndexByte(in, '\n') + 1
	if end > 0 {
		// in stays valid until the flush, so it needs no copy.
		c.Write(in[:end])
	}
	return end
}

// startServer serves h on a free loopback port and stops the server when
// the test ends.
func startServer(t *testing.T, cfg Config, h Handler) *Server {
	t.Helper()
	return serveStarted(t, NewServer(cfg, h))
}

// serveStarted serves s on a free loopback port and stops it when the
// test ends.
func serveStarted(t *testing.T, s *Server) *Server {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- s.Serve("127.0.0.1:0") }()
	select {
	case <-s.Ready():
	case <-time.After(testTimeout):
		t.Fatal("server not ready")
	}
	if s.Addr() == nil {
		t.Fatalf("serve: %v", <-errc)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
		if err := <-errc; err != nil {
			t.Errorf("serve returned %v", err)
		}
	})
	return s
}

// dial opens a raw TCP connection to s, closed when the test ends.
func dial(t *testing.T, s *Server) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.Addr().String(), testTimeout)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(testTimeout))
	return nc
}

// readN reads exactly n bytes from r.
func readN(t *testing.T, r io.Reader, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	return b
}

// expectEOF reads from nc until EOF and returns what came before it.
func expectEOF(t *testing.T, nc net.Conn) []byte {
	t.Helper()
	b, err := io.ReadAll(bufio.NewReader(nc))
	if err != nil {
		t.Fatalf("read until EOF: %v (got %q)", err, b)
	}
	return b
}

// waitFor polls cond until it holds or the test times out.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// onLoop runs fn on l and waits for it.
func onLoop(t *testing.T, l *Loop, fn func()) {
	t.Helper()
	done := make(chan struct{})
	if err := l.Run(func() { fn(); close(done) }); err != nil {
		t.Fatalf("run: %v", err)
	}
	select {
	case <-done:
	case <-time.After(testTimeout):
		t.Fatal("Run func did not run")
	}
}

func contextWithTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), testTimeout)
}

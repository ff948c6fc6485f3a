package server

import (
	"bufio"
	"context"
	"encoding/binary"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/herald-push/herald/internal/wstest"
)

// The harness: a Server on the real poller, on loopback, with an App that
// hands each opened connection to the test (recorder), driven by wstest
// clients (an independent RFC 6455 client) or raw sockets. Tests wait for
// frames and counters, never for time.

// testTimeout bounds every wait in this package's tests.
const testTimeout = 10 * time.Second

// recorder is an App that hands every opened connection to the test and
// echoes messages.
type recorder struct {
	EchoApp
	opened chan *Conn
}

func newRecorder() *recorder { return &recorder{opened: make(chan *Conn, 256)} }

func (r *recorder) OnOpen(c *Conn) { r.opened <- c }

// testConfig is DefaultConfig on a free loopback port, one loop.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Loops = 1
	cfg.PingInterval = 0
	return cfg
}

// startServer runs a Server with cfg and app until the test ends.
func startServer(t *testing.T, cfg Config, app App) *Server {
	t.Helper()
	s, err := New(cfg, app, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve() }()
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
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-errc; err != nil {
			t.Errorf("serve returned %v", err)
		}
	})
	return s
}

// onLoop runs fn on c's loop and waits for it.
func onLoop(t *testing.T, c *Conn, fn func()) {
	t.Helper()
	done := make(chan struct{})
	if err := c.Loop().Run(func() { fn(); close(done) }); err != nil {
		t.Fatalf("run: %v", err)
	}
	select {
	case <-done:
	case <-time.After(testTimeout):
		t.Fatal("Run func did not run")
	}
}

// readFrame reads the next frame or fails the test.
func readFrame(t *testing.T, wc *wstest.Conn) wstest.Frame {
	t.Helper()
	f, err := wc.Read(testTimeout)
	if err != nil {
		t.Fatalf("read frame: %v", err)
	}
	return f
}

// expectClose reads frames until a close frame and checks its code and
// reason (reason "" accepts any).
func expectClose(t *testing.T, wc *wstest.Conn, code uint16, reason string) {
	t.Helper()
	for {
		f := readFrame(t, wc)
		if f.Op != wstest.OpClose {
			continue
		}
		if len(f.Payload) < 2 {
			t.Fatalf("close frame without a code: %q", f.Payload)
		}
		got := binary.BigEndian.Uint16(f.Payload)
		if got != code || (reason != "" && string(f.Payload[2:]) != reason) {
			t.Fatalf("close %d %q, want %d %q", got, f.Payload[2:], code, reason)
		}
		return
	}
}

// dialRaw opens a TCP connection to s that sends nothing yet.
func dialRaw(t *testing.T, s *Server) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.Addr().String(), testTimeout)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(testTimeout))
	return nc
}

// expectRefusal reads an HTTP answer from nc and checks its status and
// Retry-After.
func expectRefusal(t *testing.T, nc net.Conn, status int) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatalf("read the refusal: %v", err)
	}
	if resp.StatusCode != status || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("got %d with Retry-After %q, want %d with 1", resp.StatusCode, resp.Header.Get("Retry-After"), status)
	}
}

// waitCounter waits until f reports want.
func waitCounter(t *testing.T, what string, want int64, f func() int64) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for f() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %d, want %d", what, f(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

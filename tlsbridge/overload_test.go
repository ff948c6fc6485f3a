package tlsbridge

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// countingHandler is an slog.Handler that counts warnings.
type countingHandler struct{ n *atomic.Int64 }

func (h countingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h countingHandler) Handle(context.Context, slog.Record) error {
	h.n.Add(1)
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// TestSocketPairFailure: a connection whose socket pair cannot be made
// (the process is out of descriptors) is answered with Config.Overload
// over TLS and closed, counted, and logged at most once a second.
func TestSocketPairFailure(t *testing.T) {
	t.Parallel()
	const overload = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\r\n"
	var warns atomic.Int64
	b, addr, pool := startEcho(t, Config{
		Overload: []byte(overload),
		Logger:   slog.New(countingHandler{&warns}),
	})
	b.pair = func() (net.Conn, net.Conn, error) {
		return nil, nil, os.NewSyscallError("socketpair", syscall.EMFILE)
	}
	const n = 20
	start := time.Now()
	for i := range n {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool})
		if err != nil {
			t.Fatalf("client %d: handshake: %v", i, err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := io.ReadAll(c)
		_ = c.Close()
		if string(got) != overload {
			t.Fatalf("client %d: got %q (%v), want the overload answer then EOF", i, got, err)
		}
	}
	elapsed := time.Since(start)
	waitStat(t, "Overloaded", n, b.Stats().Overloaded.Load)
	if w := warns.Load(); w > 1+int64(elapsed/time.Second) {
		t.Errorf("%d warnings for %d refusals in %v: not rate-limited", w, n, elapsed)
	}
	if a := b.Stats().Active.Load(); a != 0 {
		t.Errorf("%d bridged connections, want 0", a)
	}
}

func TestLogLimit(t *testing.T) {
	t.Parallel()
	var l logLimit
	if ok, _ := l.allow(); !ok {
		t.Fatal("first line not allowed")
	}
	for range 5 {
		if ok, _ := l.allow(); ok {
			t.Fatal("a second line within the second was allowed")
		}
	}
	l.next = time.Now() // as if the second were over
	ok, left := l.allow()
	if !ok || left != 5 {
		t.Fatalf("allow after the second: %v, %d left out, want true, 5", ok, left)
	}
}

package server

import (
	"context"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/herald-push/herald/codec"
	"github.com/herald-push/herald/internal/wstest"
)

// readClose reads frames until a close frame and returns its code and
// reason.
func readClose(t *testing.T, wc *wstest.Conn) (uint16, string) {
	t.Helper()
	for {
		f := readFrame(t, wc)
		if f.Op != wstest.OpClose {
			continue
		}
		if len(f.Payload) < 2 {
			t.Fatalf("close frame without a code: %q", f.Payload)
		}
		return binary.BigEndian.Uint16(f.Payload), string(f.Payload[2:])
	}
}

// TestDrainAdvisesReconnect: a drain's 1001 carries, per connection, a
// reconnect delay within the spread, and the connections get different
// ones.
func TestDrainAdvisesReconnect(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.DrainTimeout = Duration(400 * time.Millisecond)
	cfg.ReconnectSpread = Duration(5 * time.Second)
	app := newRecorder()
	s := startServer(t, cfg, app)
	const n = 20
	conns := make([]*wstest.Conn, n)
	for i := range conns {
		conns[i] = wstest.Dial(t, s.Addr().String(), wstest.Options{})
		<-app.opened
	}
	go func() { _ = s.Shutdown(context.Background()) }()
	seen := map[time.Duration]bool{}
	for _, wc := range conns {
		code, reason := readClose(t, wc)
		if code != codec.CloseGoingAway || !strings.HasPrefix(reason, drainReason+"; "+ReconnectAfterKey+"=") {
			t.Fatalf("close %d %q, want 1001 %q with the advice", code, reason, drainReason)
		}
		d, ok := ParseReconnectAfter(reason)
		if !ok || d < 0 || d >= cfg.ReconnectSpread.D() {
			t.Fatalf("reason %q: advice %v (ok %v), want within [0, %v)", reason, d, ok, cfg.ReconnectSpread)
		}
		seen[d] = true
	}
	if len(seen) < 2 {
		t.Fatalf("%d connections all advised %v", n, seen)
	}
}

// TestDrainWithoutAdvice: a negative spread sends the bare reason.
func TestDrainWithoutAdvice(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.ReconnectSpread = -1
	app := newRecorder()
	s := startServer(t, cfg, app)
	wc := wstest.Dial(t, s.Addr().String(), wstest.Options{})
	<-app.opened
	go func() { _ = s.Shutdown(context.Background()) }()
	if code, reason := readClose(t, wc); code != codec.CloseGoingAway || reason != drainReason {
		t.Fatalf("close %d %q, want 1001 %q", code, reason, drainReason)
	}
}

// TestShutdownDelay: during the delay the server is Stopping but not
// Draining, accepts upgrades and echoes; no close comes sooner than the
// delay.
func TestShutdownDelay(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.ShutdownDelay = Duration(time.Second)
	cfg.DrainTimeout = Duration(200 * time.Millisecond)
	app := newRecorder()
	s := startServer(t, cfg, app)
	a := wstest.Dial(t, s.Addr().String(), wstest.Options{})
	<-app.opened
	if s.Stopping() {
		t.Fatal("Stopping before Shutdown")
	}
	began := time.Now()
	done := make(chan struct{})
	go func() { _ = s.Shutdown(context.Background()); close(done) }()
	waitCounter(t, "stopping", 1, func() int64 {
		if s.Stopping() {
			return 1
		}
		return 0
	})
	// What follows holds while the delay lasts; on a machine too slow to
	// get here within it there is nothing to check.
	b := wstest.Dial(t, s.Addr().String(), wstest.Options{})
	<-app.opened
	b.Send(wstest.Frame{Fin: true, Op: wstest.OpText, Payload: []byte("still here")})
	open := []*wstest.Conn{a, b}
	if f := readFrame(t, b); f.Op == wstest.OpClose {
		open = open[:1] // the delay ended already
	} else if string(f.Payload) != "still here" && time.Since(began) < cfg.ShutdownDelay.D() {
		t.Fatalf("during the delay got %v %q, want the echo", f.Op, f.Payload)
	}
	if s.Draining() && time.Since(began) < cfg.ShutdownDelay.D() {
		t.Fatal("draining before the delay ended")
	}
	for _, wc := range open {
		if code, _ := readClose(t, wc); code != codec.CloseGoingAway {
			t.Fatalf("close %d, want 1001", code)
		}
		if e := time.Since(began); e < cfg.ShutdownDelay.D() {
			t.Fatalf("closed %v after Shutdown began, sooner than the delay %v", e, cfg.ShutdownDelay)
		}
	}
	<-done
}

func TestParseReconnectAfter(t *testing.T) {
	t.Parallel()
	for reason, want := range map[string]time.Duration{
		"server shutting down; reconnect_after_ms=1234": 1234 * time.Millisecond,
		"reconnect_after_ms=0":                          0,
		"reconnect_after_ms=7; more":                    7 * time.Millisecond,
	} {
		if d, ok := ParseReconnectAfter(reason); !ok || d != want {
			t.Errorf("%q: %v %v, want %v", reason, d, ok, want)
		}
	}
	for _, reason := range []string{"", "server shutting down", "reconnect_after_ms=", "reconnect_after_ms=x", "reconnect_after_ms=99999999999999999999"} {
		if d, ok := ParseReconnectAfter(reason); ok {
			t.Errorf("%q: %v, want no advice", reason, d)
		}
	}
	if r := withReconnectAdvice(strings.Repeat("x", 120), time.Second); r != strings.Repeat("x", 120) {
		t.Errorf("advice overflowed the close reason: %d bytes", len(r))
	}
}

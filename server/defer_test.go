package server

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/herald-push/herald/codec"
)

// deferrer is a recorder whose Accept and AcceptStream defer every
// upgrade, handing the connection to the test.
type deferrer struct {
	*recorder
	deferred chan *Conn
}

func newDeferrer() *deferrer {
	return &deferrer{recorder: newRecorder(), deferred: make(chan *Conn, 16)}
}

func (d *deferrer) Accept(c *Conn, _ *codec.Request) (string, error) {
	d.deferred <- c
	return "", ErrDeferred
}

func (d *deferrer) AcceptStream(c *Conn, _ *codec.Request) (bool, error) {
	d.deferred <- c
	return false, ErrDeferred
}

const upgradeRequest = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"

// sendDeferred sends req and waits for the App to defer it.
func sendDeferred(t *testing.T, s *Server, d *deferrer, req string) (net.Conn, *Conn) {
	t.Helper()
	nc := dialRaw(t, s)
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-d.deferred:
		return nc, c
	case <-time.After(testTimeout):
		t.Fatal("upgrade never reached Accept")
		return nil, nil
	}
}

func readStatus(t *testing.T, nc net.Conn) *http.Response {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return resp
}

func TestDeferredComplete(t *testing.T) {
	d := newDeferrer()
	s := startServer(t, testConfig(), d)
	nc, c := sendDeferred(t, s, d, upgradeRequest)
	onLoop(t, c, func() {
		if !c.Deferred() {
			t.Error("not deferred")
		}
	})
	if n := s.Stats().HandshakesInProgress; n != 1 {
		t.Errorf("handshakes in progress %d while deferred, want 1", n)
	}
	onLoop(t, c, func() {
		if !c.Complete("") {
			t.Error("Complete refused")
		}
		if c.Complete("") || c.Refuse(nil) {
			t.Error("a second answer acted")
		}
	})
	if resp := readStatus(t, nc); resp.StatusCode != 101 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := <-d.opened; got != c {
		t.Fatal("OnOpen saw another connection")
	}
	st := s.Stats()
	if st.HandshakesDeferred != 1 || st.HandshakesOK != 1 || st.HandshakesInProgress != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestDeferredRefuse(t *testing.T) {
	d := newDeferrer()
	s := startServer(t, testConfig(), d)
	nc, c := sendDeferred(t, s, d, upgradeRequest)
	onLoop(t, c, func() {
		c.Refuse(&codec.HandshakeError{Status: 503, Reason: "backend down"})
	})
	expectRefusal(t, nc, 503)
	waitCounter(t, "handshakes in progress", 0, func() int64 { return s.Stats().HandshakesInProgress })
}

// TestDeferredTimeout: an upgrade the App never answers is closed at the
// handshake timeout, and a late answer does nothing.
func TestDeferredTimeout(t *testing.T) {
	d := newDeferrer()
	cfg := testConfig()
	cfg.HandshakeTimeout = Duration(50 * time.Millisecond)
	s := startServer(t, cfg, d)
	nc, c := sendDeferred(t, s, d, upgradeRequest)
	if n, err := nc.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes, want the close", n)
	}
	waitCounter(t, "handshake timeouts", 1, func() int64 { return int64(s.Stats().HandshakeTimeouts) })
	onLoop(t, c, func() {
		if c.Deferred() || c.Complete("") || c.Refuse(nil) {
			t.Error("a closed connection's upgrade still waits")
		}
	})
}

// TestDeferredEarlyData: a client that sends before the answer is
// refused with 400, whether the bytes come with the request or after.
func TestDeferredEarlyData(t *testing.T) {
	d := newDeferrer()
	s := startServer(t, testConfig(), d)
	nc, _ := sendDeferred(t, s, d, upgradeRequest)
	if _, err := nc.Write([]byte{0x81}); err != nil {
		t.Fatal(err)
	}
	if resp := readStatus(t, nc); resp.StatusCode != 400 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	nc2 := dialRaw(t, s)
	if _, err := io.WriteString(nc2, upgradeRequest+"\x81"); err != nil {
		t.Fatal(err)
	}
	<-d.deferred
	if resp := readStatus(t, nc2); resp.StatusCode != 400 {
		t.Fatalf("pipelined: status %d", resp.StatusCode)
	}
}

func TestDeferredStream(t *testing.T) {
	d := newDeferrer()
	s := startServer(t, testConfig(), d)
	nc, c := sendDeferred(t, s, d, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
	onLoop(t, c, func() { c.Complete("") })
	resp := readStatus(t, nc)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	<-d.opened
	onLoop(t, c, func() {
		if !c.Stream() {
			t.Error("not a stream")
		}
	})
}

package server

import (
	"bytes"
	"compress/flate"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/herald-push/herald/internal/wstest"
)

func TestHandshakeCapsAtAccept(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		perIP    int
		total    int
		status   int
		refusals func(*Stats) uint64
	}{
		{name: "per-ip", perIP: 2, total: 100, status: 429, refusals: func(st *Stats) uint64 { return st.RefusedHandshakesPerIP }},
		{name: "total", perIP: -1, total: 2, status: 503, refusals: func(st *Stats) uint64 { return st.RefusedHandshakes }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			cfg.MaxHandshakesPerIP, cfg.MaxHandshakes = tc.perIP, tc.total
			s := startServer(t, cfg, newRecorder())
			idle := []net.Conn{dialRaw(t, s), dialRaw(t, s)}
			waitCounter(t, "handshakes in progress", 2, func() int64 { return s.Stats().HandshakesInProgress })
			expectRefusal(t, dialRaw(t, s), tc.status)
			st := s.Stats()
			if n := tc.refusals(&st); n != 1 {
				t.Errorf("refusals counted: %d, want 1", n)
			}
			// A slot comes back when an idle socket goes away.
			_ = idle[0].Close()
			waitCounter(t, "handshakes in progress", 1, func() int64 { return s.Stats().HandshakesInProgress })
			wstest.Dial(t, s.Addr().String(), wstest.Options{})
			waitCounter(t, "handshakes in progress after an upgrade", 1, func() int64 { return s.Stats().HandshakesInProgress })
		})
	}
}

func TestConnsPerIPAtAccept(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.MaxConnsPerIP = 1
	s := startServer(t, cfg, newRecorder())
	first := wstest.Dial(t, s.Addr().String(), wstest.Options{})
	expectRefusal(t, dialRaw(t, s), 429)
	if n := s.Stats().RefusedConnsPerIP; n != 1 {
		t.Errorf("RefusedConnsPerIP = %d, want 1", n)
	}
	_ = first.NC.Close()
	waitCounter(t, "connections", 0, s.Conns)
	wstest.Dial(t, s.Addr().String(), wstest.Options{})
}

func TestFirstByteTimeout(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.FirstByteTimeout = Duration(20 * time.Millisecond)
	s := startServer(t, cfg, newRecorder())
	nc := dialRaw(t, s)
	if n, err := nc.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("read %d bytes, %v; want the connection closed", n, err)
	}
	if n := s.Stats().FirstByteTimeouts; n != 1 {
		t.Errorf("FirstByteTimeouts = %d, want 1", n)
	}
	waitCounter(t, "handshakes in progress", 0, func() int64 { return s.Stats().HandshakesInProgress })
}

func TestMessageTimeout(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.MessageTimeout = Duration(20 * time.Millisecond)
	s := startServer(t, cfg, newRecorder())
	wc := wstest.Dial(t, s.Addr().String(), wstest.Options{})
	wc.Send(wstest.Frame{Op: wstest.OpText, Payload: []byte("the start of a message that never ends")})
	expectClose(t, wc, 1008, "message timeout")
	if n := s.Stats().MessageTimeouts; n != 1 {
		t.Errorf("MessageTimeouts = %d, want 1", n)
	}
}

func TestInboundBufferedCap(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.MaxInboundBuffered = 64 << 10
	cfg.MaxMessageSize = 1 << 20
	s := startServer(t, cfg, newRecorder())
	wc := wstest.Dial(t, s.Addr().String(), wstest.Options{})
	frag := bytes.Repeat([]byte("f"), 16<<10)
	wc.Send(wstest.Frame{Op: wstest.OpBinary, Payload: frag})
	for range 4 {
		wc.Send(wstest.Frame{Op: wstest.OpCont, Payload: frag})
	}
	expectClose(t, wc, 1013, "server busy")
	if n := s.Stats().InboundMemory; n != 1 {
		t.Errorf("InboundMemory = %d, want 1", n)
	}
	waitCounter(t, "inbound bytes", 0, func() int64 { return s.Stats().InboundBuffered })
}

// TestInflateCap: a small compressed message that inflates past
// max_message_size is refused with 1009 once the cap is reached.
func TestInflateCap(t *testing.T) {
	t.Parallel()
	cfg := testConfig() // push mode (an App is given): 64 KiB messages
	s := startServer(t, cfg, newRecorder())
	wc := wstest.Dial(t, s.Addr().String(), wstest.Options{Extensions: "permessage-deflate"})
	if wc.Extensions == "" {
		t.Fatal("permessage-deflate not negotiated")
	}
	var z bytes.Buffer
	fw, _ := flate.NewWriter(&z, flate.BestCompression)
	_, _ = fw.Write(make([]byte, 4<<20))
	_ = fw.Flush()
	payload := bytes.TrimSuffix(z.Bytes(), []byte{0, 0, 0xff, 0xff})
	if len(payload) > 8<<10 {
		t.Fatalf("the bomb is %d bytes compressed", len(payload))
	}
	wc.Send(wstest.Frame{Fin: true, RSV: wstest.RSV1, Op: wstest.OpBinary, Payload: payload})
	expectClose(t, wc, 1009, "")
}

// TestNoPingWithoutPingInterval: with pings off, a timer that fires
// while no deadline is due (one armed for a partial message's deadline,
// fired early by a loop whose wheel lagged behind the clock, or after the
// message completed) sends no ping: it once did, and the next such timer
// then closed the connection as a ping timeout.
func TestNoPingWithoutPingInterval(t *testing.T) {
	t.Parallel()
	cfg := testConfig() // PingInterval 0
	rec := newRecorder()
	s := startServer(t, cfg, rec)
	wc := wstest.Dial(t, s.Addr().String(), wstest.Options{})
	c := <-rec.opened
	for round := range 3 {
		fired := make(chan struct{})
		if err := c.Loop().Run(func() { (*handler)(s).OnTimer(c.pc); close(fired) }); err != nil {
			t.Fatal(err)
		}
		<-fired
		wc.Send(wstest.Frame{Fin: true, Op: wstest.OpText, Payload: []byte("next")})
		f, err := wc.Read(testTimeout)
		if err != nil || f.Op != wstest.OpText || string(f.Payload) != "next" {
			t.Fatalf("round %d: read op %#x %q, %v; want the echo \"next\"", round, f.Op, f.Payload, err)
		}
	}
	if n := s.Stats().PingTimeouts; n != 0 {
		t.Fatalf("PingTimeouts = %d, want 0", n)
	}
}

// TestMessageClockRestartsPerMessage: a client that streams messages with
// every read ending inside a frame is never timed out: each completed
// message restarts the clock for the one that follows. (The clock once
// ran from the first partial read on, and closed such a client with 1008
// "message timeout" after MessageTimeout.)
func TestMessageClockRestartsPerMessage(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.MessageTimeout = Duration(1500 * time.Millisecond)
	s := startServer(t, cfg, newRecorder())
	wc := wstest.Dial(t, s.Addr().String(), wstest.Options{})
	frame := func(i int) []byte {
		return wstest.Encode(wstest.Frame{Fin: true, Op: wstest.OpText, Payload: []byte(fmt.Sprintf("message %03d", i))})
	}
	const steps = 50 // 100 ms apart: more than three message timeouts in all
	next := frame(0)
	half := len(next) / 2
	wc.WriteRaw(next[:half])
	for i := range steps {
		// The rest of message i and the first half of message i+1, in one
		// write: the read ends inside a frame every time.
		time.Sleep(100 * time.Millisecond)
		following := frame(i + 1)
		wc.WriteRaw(append(append([]byte(nil), next[half:]...), following[:len(following)/2]...))
		f, err := wc.Read(testTimeout)
		if want := fmt.Sprintf("message %03d", i); err != nil || f.Op != wstest.OpText || string(f.Payload) != want {
			t.Fatalf("step %d: read op %#x %q, %v; want the echo %q", i, f.Op, f.Payload, err, want)
		}
		next, half = following, len(following)/2
	}
	if n := s.Stats().MessageTimeouts; n != 0 {
		t.Fatalf("MessageTimeouts = %d, want 0", n)
	}
}

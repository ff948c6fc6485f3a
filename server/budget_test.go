package server

import (
	"bytes"
	"testing"
	"time"

	"github.com/herald-push/herald/internal/wstest"
)

// TestWriteMessageBudget: an echo that would pass the output budget closes
// the connection with 1008 instead of queueing; one within it is sent.
func TestWriteMessageBudget(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.WriteBufferLimit = 4 << 10
	s := startServer(t, cfg, EchoApp{})
	wc := wstest.Dial(t, s.Addr().String(), wstest.Options{})
	small := bytes.Repeat([]byte("s"), 1000)
	wc.Send(wstest.Frame{Fin: true, Op: wstest.OpBinary, Payload: small})
	if f := readFrame(t, wc); f.Op != wstest.OpBinary || !bytes.Equal(f.Payload, small) {
		t.Fatalf("echo: op %#x, %d bytes", f.Op, len(f.Payload))
	}
	wc.Send(wstest.Frame{Fin: true, Op: wstest.OpBinary, Payload: bytes.Repeat([]byte("b"), 8<<10)})
	expectClose(t, wc, 1008, "output budget exceeded")
	if n := s.Stats().OutputBudget; n != 1 {
		t.Errorf("Stats.OutputBudget = %d, want 1", n)
	}
}

// TestSlowConsumerSeesClose: a connection closed behind far more queued
// output than the kernel holds still gets its close frame once it reads:
// the socket lingers until its bytes are sent.
func TestSlowConsumerSeesClose(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.SocketSendBuffer = 64 << 10
	app := newRecorder()
	s := startServer(t, cfg, app)
	wc := wstest.Dial(t, s.Addr().String(), wstest.Options{})
	c := <-app.opened
	payload := bytes.Repeat([]byte("x"), 4<<20)
	frame := append([]byte{0x82, 127, 0, 0, 0, 0, 0, 0x40, 0, 0}, payload...)
	onLoop(t, c, func() {
		c.writePrepared(frame)
		c.Close(1013, "slow consumer")
	})
	if f := readFrame(t, wc); f.Op != wstest.OpBinary || len(f.Payload) != len(payload) {
		t.Fatalf("got op %#x with %d bytes, want the 4 MiB message", f.Op, len(f.Payload))
	}
	expectClose(t, wc, 1013, "slow consumer")
}

// TestPingFloodBudget: a client that sends pings and does not read is
// closed with 1008 once its pongs pass the output budget, and sees that
// close when it reads at last.
func TestPingFloodBudget(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.WriteBufferLimit = 16 << 10
	cfg.SocketSendBuffer = 16 << 10
	s := startServer(t, cfg, EchoApp{})
	wc := wstest.Dial(t, s.Addr().String(), wstest.Options{})
	if tc, ok := wc.NC.(interface{ SetReadBuffer(int) error }); ok {
		_ = tc.SetReadBuffer(16 << 10)
	}
	ping := wstest.Encode(wstest.Frame{Fin: true, Op: wstest.OpPing, Payload: bytes.Repeat([]byte("p"), 125)})
	flood := bytes.Repeat(ping, 2000)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		_, _ = wc.NC.Write(flood)
	}()
	// Read only once the server has given up on this client.
	deadline := time.Now().Add(testTimeout)
	for s.Stats().OutputBudget == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the ping flood never passed the output budget")
		}
		time.Sleep(time.Millisecond)
	}
	for {
		f := readFrame(t, wc)
		if f.Op == wstest.OpPong {
			continue
		}
		if f.Op != wstest.OpClose || len(f.Payload) < 2 || f.Payload[0] != 1008>>8 || f.Payload[1] != 1008&0xff || string(f.Payload[2:]) != "output budget exceeded" {
			t.Fatalf("got op %#x %q, want pongs then close 1008 output budget exceeded", f.Op, f.Payload)
		}
		break
	}
	<-sent
	if n := s.Stats().OutputBudget; n != 1 {
		t.Errorf("Stats.OutputBudget = %d, want 1", n)
	}
}

package server

import (
	"bytes"
	"testing"

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
	if n := s.Stats().OutputBudget.Load(); n != 1 {
		t.Errorf("Stats.OutputBudget = %d, want 1", n)
	}
}

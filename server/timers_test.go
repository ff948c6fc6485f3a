package server

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/herald-push/herald/internal/wstest"
)

// TestTimersSameTick fires many connections' timers in one tick of their
// loop: a third have expired credentials (4001), a third missed a pong
// (1001), a third are due a ping. Each must get its own frame, intact:
// the frames are built in the loop's scratch memory, which must not be
// reused before the tick's writes are flushed.
func TestTimersSameTick(t *testing.T) {
	t.Parallel()
	app := newRecorder()
	cfg := testConfig()
	cfg.PingInterval = Duration(time.Hour) // pings on, none due but those the test arms
	s := startServer(t, cfg, app)
	const n = 42
	wcs := make([]*wstest.Conn, n)
	conns := make([]*Conn, n)
	for i := range n {
		wcs[i] = wstest.Dial(t, s.Addr().String(), wstest.Options{})
		conns[i] = <-app.opened
	}
	onLoop(t, conns[0], func() {
		for i, c := range conns {
			switch i % 3 {
			case 0:
				c.expiresAt = time.Now().Add(-time.Second).Unix()
			case 1:
				c.flags |= flagAwaitingPong
			}
			c.pc.SetTimer(time.Millisecond)
		}
	})
	for i, wc := range wcs {
		f := readFrame(t, wc)
		var code uint16
		if f.Op == wstest.OpClose && len(f.Payload) >= 2 {
			code = binary.BigEndian.Uint16(f.Payload)
		}
		switch i % 3 {
		case 0:
			if f.Op != wstest.OpClose || code != CloseTokenExpired || string(f.Payload[2:]) != "token expired" {
				t.Errorf("conn %d: got op %#x %q, want close 4001 token expired", i, f.Op, f.Payload)
			}
		case 1:
			if f.Op != wstest.OpClose || code != 1001 || string(f.Payload[2:]) != "ping timeout" {
				t.Errorf("conn %d: got op %#x %q, want close 1001 ping timeout", i, f.Op, f.Payload)
			}
		case 2:
			if f.Op != wstest.OpPing || len(f.Payload) != 0 || !f.Fin {
				t.Errorf("conn %d: got op %#x %q, want an empty ping", i, f.Op, f.Payload)
			}
		}
	}
}

package poller

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

func TestScratch(t *testing.T) {
	var a scratch
	b1 := append(a.alloc(10), "0123456789"...)
	b2 := append(a.alloc(scratchChunk/4), make([]byte, scratchChunk/4)...)
	b3 := append(a.alloc(scratchChunk/4), make([]byte, scratchChunk/4)...)
	big := a.alloc(scratchChunk)
	if cap(big) < scratchChunk {
		t.Fatalf("big alloc cap %d", cap(big))
	}
	// Slices handed out earlier stay intact while later ones are carved.
	for range 5 {
		_ = append(a.alloc(scratchChunk/3), bytes.Repeat([]byte{0xff}, scratchChunk/3)...)
	}
	if string(b1) != "0123456789" || len(b2) != scratchChunk/4 || len(b3) != scratchChunk/4 || b2[0] != 0 || b3[len(b3)-1] != 0 {
		t.Fatal("earlier allocations were overwritten")
	}
	a.reset()
	if len(a.chunks) > scratchKeep || len(a.big) != 0 || a.cur != 0 {
		t.Fatalf("reset keeps %d chunks, %d big, cur %d", len(a.chunks), len(a.big), a.cur)
	}
	if n := testing.AllocsPerRun(100, func() {
		a.reset()
		_ = a.alloc(100)
		_ = a.alloc(1000)
	}); n != 0 {
		t.Fatalf("steady-state scratch allocs = %v, want 0", n)
	}
}

// TestScratchSharedTick fires the timers of many connections of one loop
// in the same tick; each builds its message in the loop's scratch memory.
// Every peer must get its own bytes: the memory is reused only after the
// tick's writes have been flushed, not between two OnTimer calls.
func TestScratchSharedTick(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{BackendEpoll, BackendGnet} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			msg := func(c *Conn) []byte {
				return fmt.Appendf(nil, "%08d%s\n", c.ID(), bytes.Repeat([]byte{byte('a' + c.ID()%26)}, 100+int(c.ID()%7)*37))
			}
			opened := make(chan *Conn, 64)
			s := startServer(t, Config{Backend: backend, Loops: 1, TickInterval: 5 * time.Millisecond}, &funcs{
				open: func(c *Conn) { opened <- c },
				timer: func(c *Conn) {
					m := msg(c)
					c.Write(append(c.Loop().Scratch(len(m)), m...))
				},
			})
			const n = 40
			peers := make(map[uint64][]byte)
			var conns []*Conn
			ncs := make([]*bufConn, 0, n)
			for range n {
				nc := dial(t, s)
				c := <-opened
				conns = append(conns, c)
				peers[c.ID()] = msg(c)
				ncs = append(ncs, &bufConn{nc: nc, id: c.ID()})
			}
			// Arm every timer in one entry point: they fall due together.
			onLoop(t, conns[0].Loop(), func() {
				for _, c := range conns {
					c.SetTimer(time.Millisecond)
				}
			})
			for _, p := range ncs {
				want := peers[p.id]
				if got := readN(t, p.nc, len(want)); !bytes.Equal(got, want) {
					t.Fatalf("conn %d got %q, want %q", p.id, got, want)
				}
			}
		})
	}
}

type bufConn struct {
	nc interface{ Read([]byte) (int, error) }
	id uint64
}

package poller

import (
	"bytes"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// goid returns the current goroutine's id, parsed from its stack header;
// tests use it to check which goroutine runs a func.
func goid() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	id, _ := strconv.ParseUint(string(b[:bytes.IndexByte(b, ' ')]), 10, 64)
	return id
}

// TestRunFromOtherGoroutines hands work to connections' loops from many
// goroutines at once. Each connection's counter is a plain int: the race
// detector flags any access off the loop, and the func must see the
// goroutine that runs the loop's Handler calls.
func TestRunFromOtherGoroutines(t *testing.T) {
	t.Parallel()
	const (
		nconns     = 16
		goroutines = 8
		perG       = 50
	)
	type state struct {
		count int
		loopG uint64
	}
	var opened atomic.Int64
	connCh := make(chan *Conn, nconns)
	s := startServer(t, Config{Loops: 2}, &funcs{open: func(c *Conn) {
		c.SetContext(&state{loopG: goid()})
		opened.Add(1)
		connCh <- c
	}})
	peers := make([]net.Conn, nconns)
	for i := range peers {
		peers[i] = dial(t, s)
	}
	waitFor(t, "all open", func() bool { return opened.Load() == nconns })
	conns := make([]*Conn, nconns)
	for i := range conns {
		conns[i] = <-connCh
	}
	var wrong atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				c := conns[(g+i)%nconns]
				err := c.Loop().Run(func() {
					st := c.Context().(*state)
					if goid() != st.loopG {
						wrong.Add(1)
					}
					st.count++
					c.Write([]byte{'.'})
				})
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if n := wrong.Load(); n > 0 {
		t.Errorf("%d funcs ran off their connection's loop goroutine", n)
	}
	// Every func ran once, and every write reached the right peer.
	byAddr := map[string]net.Conn{}
	for _, p := range peers {
		byAddr[p.LocalAddr().String()] = p
	}
	total := 0
	for _, c := range conns {
		var count int
		var addr string
		onLoop(t, c.Loop(), func() { count, addr = c.Context().(*state).count, c.RemoteAddr().String() })
		total += count
		p := byAddr[addr]
		if p == nil {
			t.Fatalf("no peer at %s", addr)
		}
		if got := readN(t, p, count); !bytes.Equal(got, bytes.Repeat([]byte{'.'}, count)) {
			t.Errorf("peer %s got %q", addr, got)
		}
	}
	if want := goroutines * perG; total != want {
		t.Errorf("funcs run = %d, want %d", total, want)
	}
}

// TestEachAndCloseAsync drains a server the way a graceful shutdown does:
// every loop lists its connections and closes them.
func TestEachAndCloseAsync(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		async bool
	}{
		{name: "close-in-each"},
		{name: "close-async", async: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const n = 10
			s := startServer(t, Config{Loops: 2}, &funcs{})
			peers := make([]interface{ Read([]byte) (int, error) }, n)
			for i := range peers {
				peers[i] = dial(t, s)
			}
			waitFor(t, "all open", func() bool { return s.Conns() == n })
			var mu sync.Mutex
			var all []*Conn
			seen := 0
			for _, l := range s.Loops() {
				onLoop(t, l, func() {
					l.Each(func(c *Conn) bool {
						seen++
						if tc.async {
							mu.Lock()
							all = append(all, c)
							mu.Unlock()
						} else {
							c.Write(fmt.Appendf(nil, "bye %d", c.ID()))
							c.Close()
						}
						return true
					})
					if got := l.Len(); got == 0 {
						t.Errorf("loop %d: Len() = 0 in a loop with connections", l.Index())
					}
				})
			}
			if seen != n {
				t.Errorf("Each visited %d connections, want %d", seen, n)
			}
			for _, c := range all {
				c.CloseAsync()
			}
			waitFor(t, "all closed", func() bool { return s.Conns() == 0 })
		})
	}
}

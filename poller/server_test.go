package poller

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

func TestConnSize(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("sizes are checked on 64-bit platforms")
	}
	if got := unsafe.Sizeof(Conn{}); got > 64 {
		t.Errorf("unsafe.Sizeof(Conn{}) = %d, want <= 64", got)
	}
}

func TestEcho(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		reusePort bool
		loops     int
		conns     int
	}{
		{name: "one-loop", loops: 1, conns: 20},
		{name: "acceptor", loops: 2, conns: 50},
		{name: "reuseport", reusePort: true, loops: 2, conns: 50},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, Config{Loops: tc.loops, ReusePort: tc.reusePort, TCPNoDelay: true},
				&funcs{data: lineEcho})
			var wg sync.WaitGroup
			errs := make(chan error, tc.conns)
			for i := range tc.conns {
				nc := dial(t, s)
				wg.Go(func() {
					// Lines written in random pieces, so that reads split
					// them anywhere; the echo must come back whole.
					var want bytes.Buffer
					for j := range 20 {
						fmt.Fprintf(&want, "conn %d line %d %s\n", i, j, bytes.Repeat([]byte("x"), j*7))
					}
					msg := want.Bytes()
					go func() {
						rng := rand.New(rand.NewPCG(uint64(i), 1))
						for rest := msg; len(rest) > 0; {
							n := min(len(rest), 1+rng.IntN(40))
							if _, err := nc.Write(rest[:n]); err != nil {
								return
							}
							rest = rest[n:]
							if rng.IntN(4) == 0 {
								time.Sleep(time.Millisecond)
							}
						}
					}()
					got := make([]byte, len(msg))
					if _, err := io.ReadFull(nc, got); err != nil {
						errs <- fmt.Errorf("conn %d: read: %w", i, err)
						return
					}
					if !bytes.Equal(got, msg) {
						errs <- fmt.Errorf("conn %d: echo differs:\n got %q\nwant %q", i, got, msg)
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if got := s.Conns(); got != tc.conns {
				t.Errorf("Conns() = %d, want %d", got, tc.conns)
			}
			if got, max := len(s.Loops()), tc.loops; got < 1 || got > max {
				t.Errorf("len(Loops()) = %d, want 1..%d", got, max)
			}
			for i, l := range s.Loops() {
				if l.Index() != i {
					t.Errorf("Loops()[%d].Index() = %d", i, l.Index())
				}
			}
		})
	}
}

func TestOnDataRetainsUnconsumed(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		consume  int // bytes consumed by the first call
		wantNext string
	}{
		{name: "none", consume: 0, wantNext: "abcdef"},
		{name: "some", consume: 2, wantNext: "cdef"},
		{name: "all", consume: 3, wantNext: "def"},
		{name: "too-many", consume: 10, wantNext: "def"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			seen := make(chan string, 2)
			calls := 0
			s := startServer(t, Config{Loops: 1}, &funcs{data: func(c *Conn, in []byte) int {
				calls++
				seen <- string(in)
				if calls == 1 {
					return tc.consume
				}
				return len(in)
			}})
			nc := dial(t, s)
			if _, err := nc.Write([]byte("abc")); err != nil {
				t.Fatal(err)
			}
			if got := <-seen; got != "abc" {
				t.Fatalf("first OnData got %q, want %q", got, "abc")
			}
			if _, err := nc.Write([]byte("def")); err != nil {
				t.Fatal(err)
			}
			if got := <-seen; got != tc.wantNext {
				t.Errorf("second OnData got %q, want %q", got, tc.wantNext)
			}
		})
	}
}

func TestWriteCoalescing(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		pieces  int
		flushes int // write calls expected for one OnData
	}{
		{name: "one", pieces: 1, flushes: 1},
		{name: "three", pieces: 3, flushes: 1},
		{name: "past-iov-max", pieces: iovMax + 5, flushes: 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var want bytes.Buffer
			pieces := make([][]byte, tc.pieces)
			for i := range pieces {
				pieces[i] = fmt.Appendf(nil, "<%d>", i)
				want.Write(pieces[i])
			}
			var flushes atomic.Int64
			s := startServer(t, Config{Loops: 1}, &funcs{data: func(c *Conn, in []byte) int {
				before := c.Loop().flushes
				for _, p := range pieces {
					c.Write(p)
				}
				if got := c.Buffered(); got < want.Len() {
					t.Errorf("Buffered() = %d before the flush, want >= %d", got, want.Len())
				}
				// Count this entry point's flush from the next one.
				_ = c.Loop().Run(func() { flushes.Store(int64(c.Loop().flushes - before)) })
				return len(in)
			}})
			nc := dial(t, s)
			if _, err := nc.Write([]byte("go")); err != nil {
				t.Fatal(err)
			}
			if got := readN(t, nc, want.Len()); !bytes.Equal(got, want.Bytes()) {
				t.Fatalf("peer got %q, want %q", got, want.Bytes())
			}
			waitFor(t, "flush count", func() bool { return flushes.Load() != 0 })
			if got := flushes.Load(); got != int64(tc.flushes) {
				t.Errorf("write calls = %d, want %d", got, tc.flushes)
			}
		})
	}
}

func TestCloseFlushesQueuedData(t *testing.T) {
	t.Parallel()
	big := bytes.Repeat([]byte("0123456789abcdef"), 2048) // 32 KiB
	cases := []struct {
		name string
		data [][]byte
	}{
		{name: "small", data: [][]byte{[]byte("bye")}},
		{name: "several", data: [][]byte{[]byte("a"), []byte("b"), []byte("c")}},
		{name: "large", data: [][]byte{big, big}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			closed := make(chan error, 1)
			s := startServer(t, Config{Loops: 1}, &funcs{
				data: func(c *Conn, in []byte) int {
					for _, b := range tc.data {
						c.Write(b)
					}
					c.Close()
					if !c.Closed() {
						t.Error("Closed() = false after Close")
					}
					c.Write([]byte("after close")) // dropped
					return len(in)
				},
				close: func(c *Conn, err error) { closed <- err },
			})
			nc := dial(t, s)
			if _, err := nc.Write([]byte("x")); err != nil {
				t.Fatal(err)
			}
			want := bytes.Join(tc.data, nil)
			if got := expectEOF(t, nc); !bytes.Equal(got, want) {
				t.Errorf("peer got %d bytes, want %d", len(got), len(want))
			}
			if err := <-closed; err != nil {
				t.Errorf("OnClose err = %v, want nil for a local close", err)
			}
		})
	}
}

func TestPeerClose(t *testing.T) {
	t.Parallel()
	closed := make(chan error, 1)
	s := startServer(t, Config{Loops: 1}, &funcs{close: func(c *Conn, err error) {
		if !c.Closed() {
			t.Error("Closed() = false in OnClose")
		}
		c.Write([]byte("ignored"))
		closed <- err
	}})
	nc := dial(t, s)
	waitFor(t, "open", func() bool { return s.Conns() == 1 })
	_ = nc.Close()
	select {
	case err := <-closed:
		if !errors.Is(err, io.EOF) {
			t.Errorf("OnClose err = %v, want io.EOF", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("no OnClose")
	}
	waitFor(t, "Conns() == 0", func() bool { return s.Conns() == 0 })
}

func TestStopClosesEverything(t *testing.T) {
	t.Parallel()
	const n = 30
	var opened, closed atomic.Int64
	s := NewServer(Config{Loops: 2}, &funcs{
		open: func(*Conn) { opened.Add(1) },
		close: func(c *Conn, err error) {
			if err != nil {
				t.Errorf("OnClose err = %v on Stop", err)
			}
			closed.Add(1)
		},
	})
	errc := make(chan error, 1)
	go func() { errc <- s.Serve("127.0.0.1:0") }()
	<-s.Ready()
	conns := make([]interface{ Read([]byte) (int, error) }, n)
	for i := range conns {
		conns[i] = dial(t, s)
	}
	waitFor(t, "all open", func() bool { return opened.Load() == n })
	ctx, cancel := contextWithTimeout()
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := <-errc; err != nil {
		t.Errorf("Serve = %v, want nil after Stop", err)
	}
	if got := closed.Load(); got != n {
		t.Errorf("OnClose calls = %d, want %d", got, n)
	}
	if got := s.Conns(); got != 0 {
		t.Errorf("Conns() = %d after Stop", got)
	}
	for i, nc := range conns {
		if _, err := nc.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("conn %d: read after Stop = %v, want EOF", i, err)
		}
	}
	for _, l := range s.Loops() {
		if err := l.Run(func() {}); !errors.Is(err, ErrStopped) {
			t.Errorf("Run after Stop = %v, want ErrStopped", err)
		}
	}
	if err := s.Serve("127.0.0.1:0"); !errors.Is(err, ErrStarted) {
		t.Errorf("second Serve = %v, want ErrStarted", err)
	}
}

func TestStopBeforeServe(t *testing.T) {
	t.Parallel()
	s := NewServer(Config{}, &funcs{})
	ctx, cancel := contextWithTimeout()
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := s.Serve("127.0.0.1:0"); !errors.Is(err, ErrStopped) {
		t.Errorf("Serve after Stop = %v, want ErrStopped", err)
	}
}

func TestServeBadAddress(t *testing.T) {
	t.Parallel()
	s := NewServer(Config{}, &funcs{})
	if err := s.Serve("no-port"); err == nil {
		t.Fatal("Serve(no-port) = nil, want an error")
	}
	select {
	case <-s.Ready():
	default:
		t.Error("Ready not closed after Serve failed")
	}
	if s.Addr() != nil {
		t.Errorf("Addr() = %v after a failed Serve", s.Addr())
	}
}

func TestStopAccepting(t *testing.T) {
	t.Parallel()
	var opened atomic.Int64
	s := startServer(t, Config{Loops: 1}, &funcs{open: func(*Conn) { opened.Add(1) }, data: lineEcho})
	old := dial(t, s)
	waitFor(t, "open", func() bool { return opened.Load() == 1 })
	s.StopAccepting()
	refused := dial(t, s)
	if got := expectEOF(t, refused); len(got) != 0 {
		t.Errorf("refused conn got %q", got)
	}
	if _, err := old.Write([]byte("still here\n")); err != nil {
		t.Fatal(err)
	}
	if got := readN(t, old, 11); string(got) != "still here\n" {
		t.Errorf("old conn echo = %q", got)
	}
	if got := opened.Load(); got != 1 {
		t.Errorf("OnOpen calls = %d, want 1", got)
	}
}

// TestFirstIndex: loops are numbered from Config.FirstIndex, so several
// servers and clients in one process can share one per-loop table.
func TestFirstIndex(t *testing.T) {
	opened := make(chan int, 8)
	s := startServer(t, Config{Loops: 2, FirstIndex: 5, ReusePort: true}, &funcs{
		open: func(c *Conn) { opened <- c.Loop().Index() },
	})
	for i := 0; i < 4; i++ {
		dial(t, s)
	}
	for i := 0; i < 4; i++ {
		select {
		case idx := <-opened:
			if idx < 5 || idx > 6 {
				t.Fatalf("loop index %d, want 5 or 6", idx)
			}
		case <-time.After(testTimeout):
			t.Fatal("no connection opened")
		}
	}
	for _, l := range s.Loops() {
		if l.Index() < 5 || l.Index() > 6 {
			t.Fatalf("Loops() has index %d", l.Index())
		}
	}
}

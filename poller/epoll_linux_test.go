package poller

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// epollOf returns the epoll driver of l.
func epollOf(t *testing.T, l *Loop) *epollLoop {
	t.Helper()
	e, ok := l.drv.(*epollLoop)
	if !ok {
		t.Fatalf("loop %d runs %T, want the epoll backend", l.Index(), l.drv)
	}
	return e
}

// loopCounts reads, on l, the buffers it holds and the connections it
// watches for EPOLLOUT.
func loopCounts(t *testing.T, l *Loop) (held, watching int) {
	t.Helper()
	e := epollOf(t, l)
	onLoop(t, l, func() { held, watching = e.held, e.watching })
	return held, watching
}

func TestEpollLoopsKnownAtReady(t *testing.T) {
	t.Parallel()
	s := startServer(t, Config{Backend: BackendEpoll, Loops: 3}, &funcs{})
	loops := s.Loops()
	if len(loops) != 3 {
		t.Fatalf("len(Loops()) = %d before any connection, want 3", len(loops))
	}
	for i, l := range loops {
		if l.Index() != i {
			t.Errorf("Loops()[%d].Index() = %d", i, l.Index())
		}
	}
}

// TestEpollPartialInput checks that a connection borrows a buffer only
// while a Handler leaves bytes unconsumed, that the bytes come back
// unchanged (edits included) before new ones, and that the buffer grows
// past the loop's read buffer for a long message.
func TestEpollPartialInput(t *testing.T) {
	t.Parallel()
	long := bytes.Repeat([]byte("0123456789"), 30_000) // 300 KB, several reads
	cases := []struct {
		name   string
		pieces [][]byte // sent one after the other; the last ends the line
	}{
		{name: "two-pieces", pieces: [][]byte{[]byte("abc"), []byte("def\n")}},
		{name: "three-pieces", pieces: [][]byte{[]byte("a"), []byte("bc"), []byte("d\n")}},
		{name: "longer-than-read-buffer", pieces: [][]byte{long[:100_000], long[100_000:], []byte("\n")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var seen atomic.Int64 // bytes presented to the last OnData
			opened := make(chan *Conn, 1)
			s := startServer(t, Config{Backend: BackendEpoll, Loops: 1, ReadBufferCap: 16 << 10}, &funcs{
				open: func(c *Conn) { opened <- c },
				data: func(c *Conn, in []byte) int {
					seen.Store(int64(len(in)))
					n := lineEcho(c, in)
					if n < len(in) {
						// An edit to unconsumed bytes is kept: the first
						// one is marked, and the echo shows the mark.
						in[n] = '!'
					}
					return n
				},
			})
			nc := dial(t, s)
			c := <-opened
			sent := 0
			for i, p := range tc.pieces {
				if _, err := nc.Write(p); err != nil {
					t.Fatal(err)
				}
				sent += len(p)
				if i == len(tc.pieces)-1 {
					break
				}
				waitFor(t, "the piece to be read", func() bool { return seen.Load() == int64(sent) })
				if held, _ := loopCounts(t, c.Loop()); held != 1 {
					t.Errorf("after piece %d: loop holds %d buffers, want 1", i, held)
				}
			}
			// The peer sees the line with its first byte marked.
			want := append([]byte{'!'}, bytes.Join(tc.pieces, nil)[1:]...)
			if got := readN(t, nc, sent); !bytes.Equal(got, want) {
				t.Errorf("echo differs (%d bytes, want %d)", len(got), len(want))
			}
			if held, _ := loopCounts(t, c.Loop()); held != 0 {
				t.Errorf("loop holds %d buffers once the line is consumed, want 0", held)
			}
		})
	}
}

// TestEpollOutboundBuffering writes far more than the socket takes to a
// peer that does not read, then lets it read: the bytes arrive whole and
// in order, Buffered reports them meanwhile, and once they are sent the
// buffer is returned and EPOLLOUT disarmed.
func TestEpollOutboundBuffering(t *testing.T) {
	t.Parallel()
	const (
		rounds   = 16
		perRound = 64
		chunk    = 1024
	)
	opened := make(chan *Conn, 1)
	s := startServer(t, Config{Backend: BackendEpoll, Loops: 1, TCPNoDelay: true, SocketSendBuffer: 16 << 10},
		&funcs{open: func(c *Conn) { opened <- c }})
	nc := dial(t, s)
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(32 << 10)
	}
	c := <-opened
	l := c.Loop()
	// Each chunk carries its sequence number, so order is checked too.
	var seq uint32
	var buffered []int
	for range rounds {
		onLoop(t, l, func() {
			for range perRound {
				b := make([]byte, chunk)
				binary.BigEndian.PutUint32(b, seq)
				seq++
				c.Write(b)
			}
		})
		onLoop(t, l, func() { buffered = append(buffered, c.Buffered()) })
	}
	total := rounds * perRound * chunk
	if last := buffered[len(buffered)-1]; last == 0 || last > total {
		t.Errorf("Buffered() = %d with a peer not reading, want 1..%d", last, total)
	}
	if held, watching := loopCounts(t, l); held != 1 || watching != 1 {
		t.Errorf("while blocked: held %d buffers, watching %d conns; want 1, 1", held, watching)
	}
	got := readN(t, nc, total)
	for i := range rounds * perRound {
		if n := binary.BigEndian.Uint32(got[i*chunk:]); n != uint32(i) {
			t.Fatalf("chunk %d carries sequence number %d", i, n)
		}
	}
	waitFor(t, "outbound drained", func() bool {
		held, watching := loopCounts(t, l)
		return held == 0 && watching == 0
	})
	var after int
	onLoop(t, l, func() { after = c.Buffered() })
	if after != 0 {
		t.Errorf("Buffered() = %d after the peer read everything", after)
	}
}

// TestEpollOutboundGrowth queues 1 MiB in small writes, one entry point
// each, to a peer that does not read: the outbound buffer must grow
// geometrically (a few dozen buffers at most, not one per write), and
// every byte must arrive in order.
func TestEpollOutboundGrowth(t *testing.T) {
	t.Parallel()
	const (
		writes = 2048
		chunk  = 512
	)
	opened := make(chan *Conn, 1)
	s := startServer(t, Config{Backend: BackendEpoll, Loops: 1, TCPNoDelay: true, SocketSendBuffer: 64 << 10},
		&funcs{open: func(c *Conn) { opened <- c }})
	nc := dial(t, s)
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(64 << 10)
	}
	c := <-opened
	l := c.Loop()
	e := epollOf(t, l)
	var seq uint32
	for range writes {
		onLoop(t, l, func() {
			b := make([]byte, chunk)
			binary.BigEndian.PutUint32(b, seq)
			seq++
			c.Write(b)
		})
	}
	var grows, buffered int
	onLoop(t, l, func() { grows, buffered = e.grows, c.Buffered() })
	if buffered < writes*chunk/2 {
		t.Fatalf("only %d bytes buffered: the kernel took too much for the test to mean anything", buffered)
	}
	// Growing to the exact size re-copies on every write (about one grow
	// per write); doubling needs about log2(1 MiB / 512 B) = 11, a few
	// more when the kernel happens to drain the buffer between writes.
	if grows > 64 {
		t.Errorf("outbound buffer grew %d times for %d writes, want O(log n) (geometric)", grows, writes)
	}
	got := readN(t, nc, writes*chunk)
	for i := range writes {
		if n := binary.BigEndian.Uint32(got[i*chunk:]); n != uint32(i) {
			t.Fatalf("chunk %d carries sequence number %d", i, n)
		}
	}
}

// openFds counts this process's open file descriptors.
func openFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot list open fds: %v", err)
	}
	return len(ents)
}

// TestEpollManyConnsNoLeak opens and closes many connections, from both
// sides, and checks that no descriptor or buffer is left behind.
func TestEpollManyConnsNoLeak(t *testing.T) {
	// Not parallel: it counts the process's descriptors.
	const batches, perBatch = 4, 500
	before := openFds(t)
	func() {
		var closes atomic.Int64
		s := NewServer(Config{Backend: BackendEpoll, Loops: 2}, &funcs{
			data:  lineEcho,
			close: func(*Conn, error) { closes.Add(1) },
		})
		errc := make(chan error, 1)
		go func() { errc <- s.Serve("127.0.0.1:0") }()
		<-s.Ready()
		for b := range batches {
			conns := make([]net.Conn, perBatch)
			for i := range conns {
				nc, err := net.DialTimeout("tcp", s.Addr().String(), testTimeout)
				if err != nil {
					t.Fatalf("dial %d: %v", i, err)
				}
				conns[i] = nc
			}
			waitFor(t, "all open", func() bool { return s.Conns() == perBatch })
			for i, nc := range conns {
				if i%2 == 0 {
					_ = nc.Close() // the peer closes
				}
			}
			// The server closes the rest.
			for _, l := range s.Loops() {
				onLoop(t, l, func() { l.Each(func(c *Conn) bool { c.Close(); return true }) })
			}
			waitFor(t, "all closed", func() bool { return s.Conns() == 0 })
			for _, nc := range conns {
				_ = nc.Close()
			}
			if got := closes.Load(); got != int64((b+1)*perBatch) {
				t.Fatalf("batch %d: OnClose calls = %d", b, got)
			}
		}
		for _, l := range s.Loops() {
			if held, watching := loopCounts(t, l); held != 0 || watching != 0 {
				t.Errorf("loop %d: held %d, watching %d after every close", l.Index(), held, watching)
			}
		}
		ctx, cancel := contextWithTimeout()
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}()
	// Closed sockets may take a moment to leave the table.
	waitFor(t, "descriptors back", func() bool { return openFds(t) <= before })
}

// TestEpollHalfClose: a peer that shuts down its sending side still gets
// the replies to what it sent, then EOF; OnClose sees io.EOF.
func TestEpollHalfClose(t *testing.T) {
	t.Parallel()
	closed := make(chan error, 1)
	s := startServer(t, Config{Backend: BackendEpoll, Loops: 1}, &funcs{
		data:  lineEcho,
		close: func(c *Conn, err error) { closed <- err },
	})
	nc := dial(t, s)
	if _, err := nc.Write([]byte("last words\n")); err != nil {
		t.Fatal(err)
	}
	if err := nc.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if got := expectEOF(t, nc); string(got) != "last words\n" {
		t.Errorf("peer got %q, want the echo then EOF", got)
	}
	select {
	case err := <-closed:
		if !errors.Is(err, io.EOF) {
			t.Errorf("OnClose err = %v, want io.EOF", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("no OnClose")
	}
}

// TestEpollRunOneWakeupPerBurst posts a burst of funcs from many goroutines
// while the loop is busy: all run, in order per goroutine, after a single
// eventfd write.
func TestEpollRunOneWakeupPerBurst(t *testing.T) {
	t.Parallel()
	const goroutines, perG = 16, 200
	s := startServer(t, Config{Backend: BackendEpoll, Loops: 1}, &funcs{})
	l := s.Loops()[0]
	e := epollOf(t, l)
	release := make(chan struct{})
	busy := make(chan struct{})
	if err := l.Run(func() { close(busy); <-release }); err != nil {
		t.Fatal(err)
	}
	<-busy
	before := e.signals.Load()
	last := make([]int, goroutines) // loop goroutine only
	var disorder atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perG {
				if err := l.Run(func() {
					if last[g] != i {
						disorder.Add(1)
					}
					last[g] = i + 1
				}); err != nil {
					t.Errorf("Run: %v", err)
				}
			}
		})
	}
	wg.Wait()
	if got := e.signals.Load() - before; got != 1 {
		t.Errorf("%d eventfd writes for a burst of %d posts, want 1", got, goroutines*perG)
	}
	close(release)
	onLoop(t, l, func() {
		for g, n := range last {
			if n != perG {
				t.Errorf("goroutine %d: %d funcs ran, want %d", g, n, perG)
			}
		}
	})
	if n := disorder.Load(); n != 0 {
		t.Errorf("%d funcs ran out of order", n)
	}
}

// TestBackends runs an echo on every backend this OS offers, selected by
// Config.Backend, and refuses an unknown one.
func TestBackends(t *testing.T) {
	t.Parallel()
	for _, name := range []string{BackendEpoll, BackendGnet} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, Config{Backend: name, Loops: 2}, &funcs{data: lineEcho})
			nc := dial(t, s)
			msg := fmt.Sprintf("hello %s\n", name)
			if _, err := nc.Write([]byte(msg)); err != nil {
				t.Fatal(err)
			}
			if got := readN(t, nc, len(msg)); string(got) != msg {
				t.Errorf("echo = %q", got)
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		t.Parallel()
		if err := NewServer(Config{Backend: "select"}, &funcs{}).Serve("127.0.0.1:0"); err == nil {
			t.Error("Serve with an unknown backend succeeded")
		}
		if _, err := NewClient(Config{Backend: "select"}, &funcs{}); err == nil {
			t.Error("NewClient with an unknown backend succeeded")
		}
	})
}

// TestEpollEchoAllocs checks that the epoll loop's steady-state path (a
// read, OnData, a queued write and its flush) allocates nothing. Not
// parallel: AllocsPerRun counts the whole process's allocations.
func TestEpollEchoAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts are checked in full runs")
	}
	s := startServer(t, Config{Backend: BackendEpoll, Loops: 1, TCPNoDelay: true}, &funcs{data: func(c *Conn, in []byte) int {
		c.Write(in)
		c.SetTimer(time.Minute)
		return len(in)
	}})
	nc := dial(t, s)
	msg, buf := make([]byte, 64), make([]byte, 64)
	roundTrip := func() {
		if _, err := nc.Write(msg); err != nil {
			t.Fatal(err)
		}
		if _, err := readFull(nc, buf); err != nil {
			t.Fatal(err)
		}
	}
	roundTrip() // warm up: the loop's tables and the wheel grow once
	if got := testing.AllocsPerRun(200, roundTrip); got != 0 {
		t.Errorf("%v allocs per round trip, want 0", got)
	}
}

// TestHoldWait runs a loop that holds its P while it waits for events
// (Config.HoldWait): lines still echo in order across pauses that end
// holds in blocking waits, collections (which must stop the holding loop
// through the runtime's preemption) complete between them, and a timer
// fires on a loop otherwise idle.
func TestHoldWait(t *testing.T) {
	t.Parallel()
	fired := make(chan struct{}, 1)
	s := startServer(t, Config{Backend: BackendEpoll, Loops: 1, HoldWait: DefaultHoldWait}, &funcs{
		open: func(c *Conn) { c.SetTimer(time.Millisecond) },
		data: lineEcho,
		timer: func(c *Conn) {
			select {
			case fired <- struct{}{}:
			default:
			}
		},
	})
	if got := epollOf(t, s.Loops()[0]).l.k.cfg.HoldWait; got != DefaultHoldWait {
		t.Fatalf("loop's HoldWait = %v, want %v", got, DefaultHoldWait)
	}
	nc := dial(t, s)
	select {
	case <-fired:
	case <-time.After(testTimeout):
		t.Fatal("the timer of a connection on a holding loop never fired")
	}
	for i := range 40 {
		line := fmt.Sprintf("line %d\n", i)
		if _, err := nc.Write([]byte(line)); err != nil {
			t.Fatalf("write: %v", err)
		}
		if got := string(readN(t, nc, len(line))); got != line {
			t.Fatalf("echo %d = %q, want %q", i, got, line)
		}
		if i%8 == 0 {
			runtime.GC()
		}
		if i%10 == 0 {
			time.Sleep(3 * DefaultHoldWait) // past the hold: the loop sleeps in a blocking wait
		}
	}
}

// TestDeferAccept checks Config.DeferAccept: the listener asks the kernel
// to hold connections until their first bytes (TCP_DEFER_ACCEPT), and the
// loop reads those bytes as it opens the connection, in the same wakeup,
// not at the next one.
func TestDeferAccept(t *testing.T) {
	t.Parallel()
	var openedAt, readAt atomic.Uint64
	// A long deferral: the kernel gives up waiting for data only after
	// it, and the test's write must come first however busy the machine.
	s := startServer(t, Config{Backend: BackendEpoll, Loops: 1, DeferAccept: 30 * time.Second}, &funcs{
		open: func(c *Conn) { openedAt.Store(epollOf(t, c.Loop()).iter) },
		data: func(c *Conn, in []byte) int {
			readAt.CompareAndSwap(0, epollOf(t, c.Loop()).iter)
			return lineEcho(c, in)
		},
	})
	e := epollOf(t, s.Loops()[0])
	secs, err := unix.GetsockoptInt(e.lns[0], unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT)
	if err != nil || secs < 1 {
		t.Fatalf("listener's TCP_DEFER_ACCEPT = %d (%v), want at least 1", secs, err)
	}
	nc := dial(t, s)
	if _, err := nc.Write([]byte("first\n")); err != nil {
		t.Fatalf("write: %v", err)
	}
	if got := string(readN(t, nc, len("first\n"))); got != "first\n" {
		t.Fatalf("echo = %q", got)
	}
	if o, r := openedAt.Load(), readAt.Load(); o == 0 || r != o {
		t.Errorf("first bytes read in loop iteration %d, connection opened in %d: want the same", r, o)
	}
}

// TestEpollLoopNow: a handler's Loop.Now is the time the loop woke for
// the event: read after the event happened, and no later than the
// handler runs.
func TestEpollLoopNow(t *testing.T) {
	t.Parallel()
	type reading struct{ now, handled time.Time }
	readings := make(chan reading, 16)
	s := startServer(t, Config{Backend: BackendEpoll, Loops: 1}, &funcs{
		data: func(c *Conn, in []byte) int {
			readings <- reading{now: c.Loop().Now(), handled: time.Now()}
			return len(in)
		},
	})
	nc := dial(t, s)
	for range 3 {
		sent := time.Now()
		if _, err := nc.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		r := <-readings
		if r.now.Before(sent) || r.now.After(r.handled) {
			t.Fatalf("Loop.Now %v: want between the write at %v and the handler at %v", r.now, sent, r.handled)
		}
	}
}

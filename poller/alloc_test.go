package poller

import (
	"fmt"
	"net"
	"testing"
	"time"
)

// TestZeroAllocs checks the per-message paths of a loop: queueing writes
// and flushing them, re-arming a timer, and a tick with nothing due.
func TestZeroAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts are checked in full runs")
	}
	l, _ := newTestLoop(time.Millisecond)
	conns := make([]*Conn, 64)
	for i := range conns {
		conns[i] = newTestConn(l)
	}
	frame := []byte("a frame encoded once")
	cases := []struct {
		name string
		fn   func()
	}{
		{name: "write-and-flush", fn: func() {
			l.enter()
			for _, c := range conns {
				c.Write(frame)
				c.Write(frame)
				_ = c.Buffered()
			}
			l.leave()
		}},
		{name: "rearm-timer", fn: func() {
			l.enter()
			for _, c := range conns {
				c.SetTimer(time.Second)
			}
			l.leave()
		}},
		{name: "tick", fn: func() { step(l) }},
	}
	for _, tc := range cases {
		tc.fn() // warm up: grow the tables once
		if got := testing.AllocsPerRun(100, tc.fn); got != 0 {
			t.Errorf("%s: %v allocs per run, want 0", tc.name, got)
		}
	}
}

func BenchmarkWriteFlush(b *testing.B) {
	for _, writes := range []int{1, 4} {
		b.Run(fmt.Sprintf("writes=%d", writes), func(b *testing.B) {
			l, _ := newTestLoop(time.Millisecond)
			conns := make([]*Conn, 1000)
			for i := range conns {
				conns[i] = newTestConn(l)
			}
			frame := make([]byte, 25)
			round := func() {
				l.enter()
				for _, c := range conns {
					for range writes {
						c.Write(frame)
					}
				}
				l.leave()
			}
			round() // grow the loop's tables once, as a running loop has
			b.ReportAllocs()
			for b.Loop() {
				round()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(conns)), "ns/conn")
		})
	}
}

func BenchmarkSetTimer(b *testing.B) {
	l, _ := newTestLoop(time.Millisecond)
	c := newTestConn(l)
	c.SetTimer(30 * time.Second) // allocate the wheel once
	b.ReportAllocs()
	for b.Loop() {
		c.SetTimer(30 * time.Second)
	}
}

// BenchmarkEcho measures a round trip through a server loop over loopback
// TCP, on each backend: 64 bytes out, the same back.
func BenchmarkEcho(b *testing.B) {
	for _, backend := range []string{BackendEpoll, BackendGnet} {
		b.Run(backend, func(b *testing.B) { benchEcho(b, backend) })
	}
}

func benchEcho(b *testing.B, backend string) {
	s := NewServer(Config{Backend: backend, Loops: 1, TCPNoDelay: true}, &funcs{data: func(c *Conn, in []byte) int {
		c.Write(in) // valid until the flush: no copy needed
		return len(in)
	}})
	errc := make(chan error, 1)
	go func() { errc <- s.Serve("127.0.0.1:0") }()
	<-s.Ready()
	if s.Addr() == nil {
		b.Skipf("serve: %v", <-errc)
	}
	defer func() {
		ctx, cancel := contextWithTimeout()
		defer cancel()
		_ = s.Stop(ctx)
	}()
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	msg := make([]byte, 64)
	buf := make([]byte, 64)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := nc.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := readFull(nc, buf); err != nil {
			b.Fatal(err)
		}
	}
}

func readFull(nc net.Conn, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := nc.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// BenchmarkRun measures handing a func to a loop and waiting for it.
func BenchmarkRun(b *testing.B) {
	opened := make(chan *Conn, 1)
	s := NewServer(Config{Loops: 1}, &funcs{open: func(c *Conn) { opened <- c }})
	go func() { _ = s.Serve("127.0.0.1:0") }()
	<-s.Ready()
	defer func() {
		ctx, cancel := contextWithTimeout()
		defer cancel()
		_ = s.Stop(ctx)
	}()
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	l := (<-opened).Loop()
	done := make(chan struct{})
	fn := func() { done <- struct{}{} }
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Run(fn); err != nil {
			b.Fatal(err)
		}
		<-done
	}
}

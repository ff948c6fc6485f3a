package poller

import (
	"net"
	"net/netip"
	"testing"
	"time"
)

// stubDriver stands in for a backend where a test needs live Conns without
// sockets: writes are counted and taken whole, Run funcs run at once.
type stubDriver struct {
	l      *Loop
	writes int
}

func (s *stubDriver) write(c *Conn, bufs [][]byte)          { s.writes++ }
func (s *stubDriver) outbound(c *Conn) int                  { return 0 }
func (s *stubDriver) shut(c *Conn)                          { s.l.remove(c) }
func (s *stubDriver) finish(c *Conn)                        { s.l.remove(c) }
func (s *stubDriver) addr(c *Conn, remote bool) net.Addr    { return nil }
func (s *stubDriver) addrPort(*Conn) (netip.AddrPort, bool) { return netip.AddrPort{}, false }
func (s *stubDriver) post(fn func()) error                  { s.l.runTask(fn); return nil }

// timerLog records the wheel tick at which each connection's timer fired.
type timerLog struct {
	funcs
	w     *wheel
	fired map[*Conn][]uint32
}

func newTestLoop(interval time.Duration) (*Loop, *timerLog) {
	tl := &timerLog{fired: map[*Conn][]uint32{}}
	tl.timer = func(c *Conn) { tl.fired[c] = append(tl.fired[c], tl.w.now) }
	k := newCore(Config{Loops: 1, TickInterval: interval}, tl)
	l := newLoop(k, 0)
	l.drv = &stubDriver{l: l}
	tl.w = &l.wheel
	return l, tl
}

func newTestConn(l *Loop) *Conn {
	c := &Conn{loop: l}
	l.add(c)
	return c
}

// step processes the wheel's next tick.
func step(l *Loop) {
	l.enter()
	l.wheel.now++
	l.wheel.expire(l, l.wheel.now)
	l.leave()
}

func TestWheel(t *testing.T) {
	t.Parallel()
	const tick = 10 * time.Millisecond
	type op struct {
		at   uint32        // tick at which to act (before that tick's step)
		set  time.Duration // SetTimer(set) if > 0
		stop bool          // StopTimer
		shut bool          // close the connection
	}
	cases := []struct {
		name  string
		start uint32 // initial wheel.now, to test wrapping
		ops   []op
		until uint32
		want  []uint32 // ticks at which OnTimer ran
	}{
		{name: "fires-after-d", ops: []op{{at: 0, set: 50 * time.Millisecond}}, until: 20, want: []uint32{6}},
		{name: "zero-d-fires-next-tick", ops: []op{{at: 0, set: 0}}, until: 5, want: []uint32{1}},
		{name: "rounds-up", ops: []op{{at: 0, set: 41 * time.Millisecond}}, until: 20, want: []uint32{6}},
		{name: "later-rearm-moves-it", ops: []op{{at: 0, set: 50 * time.Millisecond}, {at: 3, set: 100 * time.Millisecond}}, until: 30, want: []uint32{14}},
		{name: "earlier-rearm-fires-once", ops: []op{{at: 0, set: time.Second}, {at: 2, set: 20 * time.Millisecond}}, until: 200, want: []uint32{5}},
		{name: "stop", ops: []op{{at: 0, set: 50 * time.Millisecond}, {at: 2, stop: true}}, until: 30},
		{name: "stop-then-set", ops: []op{{at: 0, set: 50 * time.Millisecond}, {at: 2, stop: true}, {at: 3, set: 30 * time.Millisecond}}, until: 30, want: []uint32{7}},
		{name: "closed", ops: []op{{at: 0, set: 50 * time.Millisecond}, {at: 2, shut: true}}, until: 30},
		{name: "beyond-one-turn", ops: []op{{at: 0, set: (wheelSlots + 100) * tick}}, until: 2*wheelSlots + 10, want: []uint32{wheelSlots + 101}},
		{name: "wraps", start: 1<<32 - 3, ops: []op{{at: 0, set: 50 * time.Millisecond}}, until: 20, want: []uint32{6}},
		{name: "deadline-at-zero", start: 1<<32 - 3, ops: []op{{at: 0, set: 20 * time.Millisecond}}, until: 20, want: []uint32{4}},
		{name: "wraps-far", start: 1<<32 - 300, ops: []op{{at: 0, set: 4 * time.Second}}, until: 1000, want: []uint32{401}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l, tl := newTestLoop(tick)
			l.wheel.now = tc.start
			c := newTestConn(l)
			var got []uint32
			for i := uint32(0); i <= tc.until; i++ {
				for _, o := range tc.ops {
					if o.at != i {
						continue
					}
					switch {
					case o.stop:
						c.StopTimer()
					case o.shut:
						l.remove(c)
					default:
						c.SetTimer(o.set)
					}
				}
				step(l)
			}
			for _, at := range tl.fired[c] {
				got = append(got, at-tc.start)
			}
			if !equalTicks(got, tc.want) {
				t.Errorf("fired at ticks %v, want %v", got, tc.want)
			}
		})
	}
}

func equalTicks(a, b []uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestWheelManyConns(t *testing.T) {
	t.Parallel()
	l, tl := newTestLoop(time.Millisecond)
	conns := make([]*Conn, 2000)
	for i := range conns {
		conns[i] = newTestConn(l)
		conns[i].SetTimer(time.Duration(i%700) * time.Millisecond)
	}
	for range 800 {
		step(l)
	}
	for i, c := range conns {
		want := uint32(i%700) + 1
		if f := tl.fired[c]; len(f) != 1 || f[0] != want {
			t.Fatalf("conn %d fired at %v, want [%d]", i, f, want)
		}
	}
	for i, b := range l.wheel.buckets {
		if len(b) != 0 {
			t.Fatalf("bucket %d holds %d entries after every timer fired", i, len(b))
		}
	}
}

func TestWheelAdvanceCatchesUp(t *testing.T) {
	t.Parallel()
	l, tl := newTestLoop(10 * time.Millisecond)
	c := newTestConn(l)
	c.SetTimer(30 * time.Millisecond) // due at tick 4
	l.enter()
	l.wheel.advance(l, l.wheel.epoch.Add(95*time.Millisecond))
	l.leave()
	if got := tl.fired[c]; len(got) != 1 || got[0] != 4 {
		t.Errorf("fired at %v, want [4]", got)
	}
	if l.wheel.now != 9 {
		t.Errorf("now = %d after 95ms of 10ms ticks, want 9", l.wheel.now)
	}
}

// TestTimersOnServer checks the timers end to end: a deadline that closes a
// silent connection (like a handshake timeout), and a heartbeat re-armed by
// traffic.
func TestTimersOnServer(t *testing.T) {
	t.Parallel()
	const tick = 5 * time.Millisecond
	cases := []struct {
		name      string
		deadline  time.Duration
		keepAlive bool          // the client writes every deadline/20
		wantOpen  time.Duration // at least this long
	}{
		{name: "silent-client-closed", deadline: 60 * time.Millisecond, wantOpen: 60 * time.Millisecond},
		// Generous: the keep-alive goroutine writes every deadline/20, so
		// only a stall of the whole machine longer than the deadline could
		// let the timer fire early.
		{name: "traffic-rearms", deadline: 500 * time.Millisecond, keepAlive: true, wantOpen: 1500 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, Config{Loops: 1, TickInterval: tick}, &funcs{
				open:  func(c *Conn) { c.SetTimer(tc.deadline) },
				data:  func(c *Conn, in []byte) int { c.SetTimer(tc.deadline); return len(in) },
				timer: func(c *Conn) { c.Write([]byte("timeout")); c.Close() },
			})
			start := time.Now()
			nc := dial(t, s)
			if tc.keepAlive {
				go func() {
					for time.Since(start) < tc.wantOpen {
						if _, err := nc.Write([]byte("k")); err != nil {
							return
						}
						time.Sleep(tc.deadline / 20)
					}
				}()
			}
			got := expectEOF(t, nc)
			open := time.Since(start)
			if string(got) != "timeout" {
				t.Errorf("peer got %q, want %q", got, "timeout")
			}
			if open < tc.wantOpen {
				t.Errorf("closed after %v, want >= %v", open, tc.wantOpen)
			}
		})
	}
}

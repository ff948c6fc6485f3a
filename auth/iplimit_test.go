package auth

import (
	"net/netip"
	"sync"
	"testing"
)

// ipStep is one Acquire (want: its result) or Release of a table test.
type ipStep struct {
	acquire bool // false: release
	ip      string
	want    bool
}

func TestIPLimiter(t *testing.T) {
	t.Parallel()
	a := netip.MustParseAddr
	tests := []struct {
		name    string
		limit   int
		steps   []ipStep
		wantLen int
	}{
		{
			name: "limit per IPv4", limit: 2, wantLen: 2,
			steps: []ipStep{
				{true, "10.0.0.1", true}, {true, "10.0.0.1", true}, {true, "10.0.0.1", false},
				{true, "10.0.0.2", true},
				{false, "10.0.0.1", false}, {true, "10.0.0.1", true}, {true, "10.0.0.1", false},
			},
		},
		{
			name: "IPv4-mapped counts as IPv4", limit: 1, wantLen: 1,
			steps: []ipStep{
				{true, "192.0.2.1", true}, {true, "::ffff:192.0.2.1", false},
			},
		},
		{
			name: "IPv6 grouped by /64", limit: 2, wantLen: 3,
			steps: []ipStep{
				{true, "2001:db8:1:2::1", true}, {true, "2001:db8:1:2:ffff::9", true},
				{true, "2001:db8:1:2:aaaa:bbbb:cccc:dddd", false},
				{true, "fe80::1%eth0", true}, // zone ignored, own /64
				{true, "2001:db8:1:3::1", true},
			},
		},
		{
			name: "release without acquire ignored", limit: 1, wantLen: 1,
			steps: []ipStep{
				{false, "10.0.0.9", false}, {true, "10.0.0.9", true}, {true, "10.0.0.9", false},
			},
		},
		{
			name: "unlimited tracks nothing", limit: 0, wantLen: 0,
			steps: []ipStep{
				{true, "10.0.0.1", true}, {true, "10.0.0.1", true}, {true, "10.0.0.1", true},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := NewIPLimiter(tc.limit)
			for i, s := range tc.steps {
				if !s.acquire {
					l.Release(a(s.ip))
					continue
				}
				if got := l.Acquire(a(s.ip)); got != s.want {
					t.Fatalf("step %d: Acquire(%s) = %v, want %v", i, s.ip, got, s.want)
				}
			}
			if got := l.Len(); got != tc.wantLen {
				t.Fatalf("Len = %d, want %d", got, tc.wantLen)
			}
		})
	}
}

func TestIPLimiterNil(t *testing.T) {
	t.Parallel()
	var l *IPLimiter
	ip := netip.MustParseAddr("10.0.0.1")
	if !l.Acquire(ip) || l.Count(ip) != 0 || l.Len() != 0 || l.Limit() != 0 {
		t.Fatal("nil limiter is not unlimited")
	}
	l.Release(ip)
}

// TestIPLimiterConcurrent hammers a limiter from several goroutines (run it
// with -race): the cap must hold at every moment, and releasing everything
// must leave no entry and no map behind.
func TestIPLimiterConcurrent(t *testing.T) {
	t.Parallel()
	const (
		limit      = 3
		goroutines = 8
		ips        = 200
		rounds     = 20
	)
	l := NewIPLimiter(limit)
	addr := func(i int) netip.Addr {
		if i%2 == 0 {
			return netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)})
		}
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 6: byte(i >> 8), 7: byte(i), 15: byte(i)})
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		held     = map[int]int{}
		overflow bool
	)
	for g := range goroutines {
		wg.Go(func() {
			var mine []int
			for r := range rounds {
				for i := range ips {
					if (i+g+r)%3 != 0 {
						continue
					}
					if l.Acquire(addr(i)) {
						mine = append(mine, i)
						mu.Lock()
						held[i]++
						overflow = overflow || held[i] > limit
						mu.Unlock()
					}
				}
				// Release half of what is held, keep the rest for the next round.
				for len(mine) > 0 && len(mine)%2 == 0 {
					i := mine[len(mine)-1]
					mine = mine[:len(mine)-1]
					mu.Lock()
					held[i]--
					mu.Unlock()
					l.Release(addr(i))
				}
			}
			for _, i := range mine {
				mu.Lock()
				held[i]--
				mu.Unlock()
				l.Release(addr(i))
			}
		})
	}
	wg.Wait()
	if overflow {
		t.Fatal("more than the limit were held at once")
	}
	if n := l.Len(); n != 0 {
		t.Fatalf("Len after releasing everything = %d, want 0", n)
	}
	for i := range l.shards {
		if s := &l.shards[i]; s.m != nil && s.peak > keepSmall {
			t.Fatalf("shard %d still holds a map for %d entries after releasing everything", i, s.peak)
		}
	}
}

// TestIPLimiterShrinks checks that a shard's map is rebuilt once it has
// emptied to a quarter, since Go maps keep their buckets after deletes.
func TestIPLimiterShrinks(t *testing.T) {
	t.Parallel()
	l := NewIPLimiter(1)
	var addrs []netip.Addr
	for i := range 64 * shrinkAt * 2 {
		ip := netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)})
		if !l.Acquire(ip) {
			t.Fatalf("Acquire(%s) refused", ip)
		}
		addrs = append(addrs, ip)
	}
	for _, ip := range addrs[:len(addrs)*7/8] {
		l.Release(ip)
	}
	rebuilt := 0
	for i := range l.shards {
		s := &l.shards[i]
		if s.m != nil && s.peak < shrinkAt {
			rebuilt++
		}
	}
	if rebuilt == 0 {
		t.Fatal("no shard rebuilt its map after emptying to an eighth")
	}
	if got, want := l.Len(), len(addrs)-len(addrs)*7/8; got != want {
		t.Fatalf("Len = %d, want %d", got, want)
	}
	for _, ip := range addrs[len(addrs)*7/8:] {
		l.Release(ip)
	}
	for i := range l.shards {
		if s := &l.shards[i]; s.m != nil {
			t.Fatalf("shard %d keeps a map (peak %d) after releasing everything", i, s.peak)
		}
	}
}

func BenchmarkIPLimiter(b *testing.B) {
	l := NewIPLimiter(100)
	ip := netip.MustParseAddr("2001:db8::1")
	b.ReportAllocs()
	for b.Loop() {
		l.Acquire(ip)
		l.Release(ip)
	}
}

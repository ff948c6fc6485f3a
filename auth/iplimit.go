package auth

import (
	"encoding/binary"
	"net/netip"
	"sync"
)

// ipShards is the number of independently locked parts of an IPLimiter, so
// that event loops accepting at once rarely wait for each other.
const ipShards = 64

// shrinkAt is the map size from which a shard rebuilds its map once it has
// emptied to a quarter, since Go maps never give back their buckets.
const shrinkAt = 64

// keepSmall is the largest peak size of a map a shard keeps when it empties:
// such a map is one small table (a few hundred bytes), and keeping it spares
// an allocation per connection when one address connects and leaves over and
// over; larger maps are dropped.
const keepSmall = 8

// IPLimiter caps the connections open at once per client address. It is
// safe for concurrent use by every event loop; Acquire and Release are O(1)
// and take one of 64 shard locks. It keeps memory only for addresses with
// connections open: an address's entry goes when its count returns to zero,
// a shard's map is rebuilt smaller when it has emptied to a quarter, and
// dropped when it empties (a shard that never held more than keepSmall
// addresses keeps its one small table).
//
// IPv4 addresses (and IPv4-mapped IPv6) count one by one. IPv6 addresses
// count by their /64 prefix, since one host or subscriber usually owns a
// whole /64 and could otherwise open unlimited connections by cycling
// addresses. Zones are ignored.
//
// A nil *IPLimiter, or one with limit 0, allows everything and tracks nothing.
type IPLimiter struct {
	limit  int32
	shards [ipShards]ipShard
}

// ipShard is one locked part of the table.
type ipShard struct {
	mu   sync.Mutex
	m    map[netip.Addr]int32 // Lock should be held; nil until first used
	peak int                  // Lock should be held; most entries m has held
	_    [40]byte             // keep shards on separate cache lines
}

// NewIPLimiter returns a limiter allowing limit connections per address
// (or per IPv6 /64); limit <= 0 means unlimited.
func NewIPLimiter(limit int) *IPLimiter {
	if limit < 0 {
		limit = 0
	}
	if limit > 1<<30 {
		limit = 1 << 30
	}
	return &IPLimiter{limit: int32(limit)}
}

// Limit returns the per-address cap, 0 for unlimited.
func (l *IPLimiter) Limit() int {
	if l == nil {
		return 0
	}
	return int(l.limit)
}

// Acquire counts one more connection from ip and reports true, or reports
// false, counting nothing, when ip already holds the limit (the server then
// answers 429). Every true must be matched by exactly one Release.
func (l *IPLimiter) Acquire(ip netip.Addr) bool {
	if l == nil || l.limit == 0 {
		return true
	}
	key, s := l.shard(ip)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.m[key]
	if n >= l.limit {
		return false
	}
	if s.m == nil {
		s.m = make(map[netip.Addr]int32)
	}
	s.m[key] = n + 1
	if len(s.m) > s.peak {
		s.peak = len(s.m)
	}
	return true
}

// Release gives back a connection counted by a successful Acquire of the
// same address. A Release without an Acquire is ignored.
func (l *IPLimiter) Release(ip netip.Addr) {
	if l == nil || l.limit == 0 {
		return
	}
	key, s := l.shard(ip)
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.m[key]
	switch {
	case !ok:
		return
	case n > 1:
		s.m[key] = n - 1
		return
	}
	delete(s.m, key)
	switch {
	case len(s.m) == 0 && s.peak > keepSmall:
		s.m, s.peak = nil, 0
	case s.peak >= shrinkAt && len(s.m) <= s.peak/4:
		m := make(map[netip.Addr]int32, len(s.m))
		for k, v := range s.m {
			m[k] = v
		}
		s.m, s.peak = m, len(m)
	}
}

// Count returns the connections counted for ip's group now.
func (l *IPLimiter) Count(ip netip.Addr) int {
	if l == nil || l.limit == 0 {
		return 0
	}
	key, s := l.shard(ip)
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.m[key])
}

// Len returns the number of addresses (IPv6: /64 prefixes) with open
// connections, for metrics.
func (l *IPLimiter) Len() int {
	if l == nil {
		return 0
	}
	total := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		total += len(s.m)
		s.mu.Unlock()
	}
	return total
}

// shard returns ip's grouping key and its shard.
func (l *IPLimiter) shard(ip netip.Addr) (netip.Addr, *ipShard) {
	key := groupKey(ip)
	var h uint64
	if key.Is4() {
		b := key.As4()
		h = uint64(binary.BigEndian.Uint32(b[:]))
	} else {
		b := key.As16()
		h = binary.BigEndian.Uint64(b[:8])
	}
	h *= 0x9e3779b97f4a7c15 // Fibonacci hashing: spread, then take the top bits
	return key, &l.shards[h>>(64-6)]
}

// groupKey returns the address ip is counted under.
func groupKey(ip netip.Addr) netip.Addr {
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

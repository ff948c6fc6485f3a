package auth

import (
	"hash/maphash"
	"math/bits"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/sys/cpu"
)

// DefaultTokenCache is the number of verified tokens a [Verifier]
// remembers when [Config.TokenCache] is zero. At most about 17 MiB (see
// [Config.TokenCache]), some 4 MiB for everyday tokens of a few hundred
// bytes: little beside what the connections themselves hold. It covers
// about half a second of distinct tokens at a node's full handshake rate
// (6,000 to 11,000 a second, bench/HANDSHAKE.md) and minutes of ordinary
// churn, the windows in which a client's reload, its other tabs or its
// retries after a blip present the same token again; the LRU keeps those.
const DefaultTokenCache = 4096

// maxCachedToken bounds the length of the tokens the cache keeps, in
// bytes: everyday tokens are a few hundred bytes, and one entry holds a
// copy of its token.
const maxCachedToken = 1 << 10

// maxCachedClaims bounds the estimated memory (see claimsFootprint) of
// the claims the cache keeps, in bytes. A token under maxCachedToken can
// still compile into some 20 KiB of patterns ({sub} repeated with a long
// subject, or "*.*.*…" into one element per byte); such claims are
// verified each time instead of being kept.
const maxCachedClaims = 3 << 10

// entryOverhead estimates what the LRU spends per entry besides the key's
// bytes and the claims: its list entry and its map slot.
const entryOverhead = 176

// tokenCache remembers the Claims of tokens verified before, so that a
// token presented again costs a hash and a map lookup instead of a
// signature check, a parse and the claims' allocations.
//
// It keeps a token only the second time the token passes the full check
// (an admission filter, as in TinyLFU): the first time, it notes the
// token's hash in the shard's seen table and keeps nothing. In a storm of
// new users, where most tokens are presented once, the cache then neither
// copies each token nor evicts, for it, a token that would have been
// presented again; a token that comes back (a reconnect, another tab, a
// reload) is kept from its second check on. The seen table is a
// fixed-size array of hashes, direct-mapped and pointer-free: a newer
// hash overwrites an older one in its slot, and two tokens sharing a slot
// and a hash only get one of them kept a check early.
//
// It is sharded so that
// the event loops and the HTTP API, verifying at once, rarely meet on
// one lock: a token's shard is picked by maphash of the token, with a
// seed of the cache's own, and each shard is a simplelru.LRU (which is
// not safe for concurrent use) under its own mutex.
//
// Keys are whole tokens, header, payload and signature: a token with any
// byte changed is another key, so it misses and gets the full check.
// Lookups compare tokens with ordinary string equality, not in constant
// time; it reaches a comparison only on a hash match under the secret
// seed, compares many bytes at a time, and a difference it could show is
// far below what a network carries.
type tokenCache struct {
	size   int // tokens at most, over all shards
	seed   maphash.Seed
	mask   uint64 // len(shards) - 1, a power of two minus one
	shards []cacheShard
}

// cacheShard is one lock, its LRU and its seen table, padded to its own
// cache line. A token the shard does not hold costs it no lock while it
// holds none (n), nor on its first check (seen): in a storm of new users
// on a node that has kept no token yet, the loops then write nothing of
// the shard's but a slot of its seen table.
type cacheShard struct {
	mu   sync.Mutex
	lru  *simplelru.LRU[string, cachedToken] // guarded by mu
	n    atomic.Int32                        // lru.Len(), written under mu
	hits uint64                              // lookups the LRU answered; guarded by mu
	// seen holds the hashes (|1, so 0 is empty) of tokens checked once,
	// read and written without the lock: a slot is a word, and a race on
	// one only costs a token one more check before it is kept.
	seen []atomic.Uint64
	_    cpu.CacheLinePad
}

// seenPerToken is the size of a shard's seen table over its capacity: a
// table twice the LRU's size remembers a token checked once for about as
// long as the LRU remembers a token kept.
const seenPerToken = 2

// CacheStats is a snapshot of a Verifier's cache of verified tokens
// (Config.TokenCache); all zero without one.
type CacheStats struct {
	// Tokens is how many tokens it holds now.
	Tokens int `json:"tokens"`
	// Hits and Misses count the lookups of tokens it takes (up to
	// maxCachedToken long): a hit skips the signature check (cumulative).
	Hits   uint64 `json:"hits"`
	Misses uint64 `json:"misses"`
}

// minShards is the fewest shards of a cache large enough to fill them.
const minShards = 16

// newTokenCache returns a cache of at most size tokens (size > 0) in a
// power of two of shards, at least minShards and GOMAXPROCS, and at most
// size.
func newTokenCache(size int) *tokenCache {
	n := max(minShards, runtime.GOMAXPROCS(0))
	n = 1 << bits.Len(uint(n-1)) // the power of two >= n
	for n > size {
		n >>= 1
	}
	c := &tokenCache{size: size, seed: maphash.MakeSeed(), mask: uint64(n - 1), shards: make([]cacheShard, n)}
	for i := range c.shards {
		per := size / n
		if i < size%n {
			per++
		}
		// NewLRU fails only on a size < 1, and per >= 1 since n <= size.
		c.shards[i].lru, _ = simplelru.NewLRU[string, cachedToken](per, nil)
		c.shards[i].seen = make([]atomic.Uint64, 1<<bits.Len(uint(seenPerToken*per-1)))
	}
	return c
}

// hash returns token's hash, which picks its shard (the low bits) and its
// slot in the shard's seen table (the high bits).
func (c *tokenCache) hash(token string) uint64 {
	return maphash.String(c.seed, token)
}

// shard returns the shard of the token whose hash is h.
func (c *tokenCache) shard(h uint64) *cacheShard {
	return &c.shards[h&c.mask]
}

// cachedToken is what the cache keeps for a token: its own copy of the
// token (the LRU's key, which get hands to a LoopCache) and its claims.
type cachedToken struct {
	token  string
	claims *Claims
}

// get returns the claims cached for token, whose hash is h, and the
// cache's copy of token, or nil and "": a miss, which the caller counts
// (on a line of its own: verifyHashed). It does not allocate.
func (c *tokenCache) get(token string, h uint64) (*Claims, string) {
	s := c.shard(h)
	if s.n.Load() == 0 {
		return nil, ""
	}
	s.mu.Lock()
	e, ok := s.lru.Get(token)
	if ok {
		s.hits++
	}
	s.mu.Unlock()
	return e.claims, e.token
}

// stats sums the shards' figures.
func (c *tokenCache) stats() CacheStats {
	var st CacheStats
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		st.Tokens += s.lru.Len()
		st.Hits += s.hits
		s.mu.Unlock()
	}
	return st
}

// add offers claims, just verified, for token, whose hash is h and which
// is at most maxCachedToken long (Verify does not look up longer ones):
// the cache keeps them if they are small enough and the token passed the
// check before (its hash is in the seen table; otherwise it goes there).
// It returns the claims to hand out: those of a goroutine that cached the
// same token first, so that callers share one Claims; and the cache's
// copy of token when it keeps it, or "". The key is a copy of token,
// which may be a view of a buffer the caller reuses.
func (c *tokenCache) add(token string, h uint64, claims *Claims) (*Claims, string) {
	s := c.shard(h)
	slot := &s.seen[(h>>32)&uint64(len(s.seen)-1)]
	if slot.Load() != h|1 {
		// First check: remembered, not kept. A token another goroutine
		// has just kept may pass here too; its claims are then not shared.
		slot.Store(h | 1)
		return claims, ""
	}
	// Measured only for a token to keep, not on every new token's check.
	if claimsFootprint(claims) > maxCachedClaims {
		return claims, ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.lru.Peek(token); ok {
		return old.claims, old.token
	}
	slot.Store(0)
	kept := strings.Clone(token)
	s.lru.Add(kept, cachedToken{token: kept, claims: claims})
	s.n.Store(int32(s.lru.Len()))
	return claims, kept
}

// remove forgets token, whose hash is h.
func (c *tokenCache) remove(token string, h uint64) {
	s := c.shard(h)
	s.mu.Lock()
	s.lru.Remove(token)
	s.n.Store(int32(s.lru.Len()))
	s.mu.Unlock()
}

// claimsFootprint estimates the bytes claims hold: the struct, its
// strings and slices, and its compiled patterns.
func claimsFootprint(c *Claims) int {
	const (
		strHdr  = int(unsafe.Sizeof(""))
		patSize = int(unsafe.Sizeof(pattern{}))
		elemSz  = int(unsafe.Sizeof(elem{}))
		roundUp = 8 // a small allocation's rounding, roughly
	)
	n := int(unsafe.Sizeof(*c)) + len(c.Subject) + len(c.personal) + 2*roundUp
	if c.rights == nil {
		return n
	}
	n += int(unsafe.Sizeof(rights{})) + roundUp
	for _, list := range [...][]string{c.rights.subscribe, c.rights.publish} {
		n += cap(list) * strHdr
		for _, s := range list {
			n += len(s) + roundUp
		}
	}
	for _, list := range [...][]pattern{c.rights.sub, c.rights.pub} {
		n += cap(list) * patSize
		for i := range list {
			p := &list[i]
			n += len(p.lit) + roundUp + cap(p.elems)*elemSz
			for j := range p.elems {
				n += len(p.elems[j].lit) + roundUp
			}
		}
	}
	return n
}

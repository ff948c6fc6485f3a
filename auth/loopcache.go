package auth

import (
	"sync/atomic"
	"time"

	"golang.org/x/sys/cpu"
)

// loopCacheSlots is the size of a LoopCache: the tokens one event loop
// keeps at hand, direct-mapped by hash. A slot holds a pointer to a token
// and to its claims, both the shared cache's, so a full LoopCache keeps
// at most this many of the shared cache's entries alive after it dropped
// them.
const loopCacheSlots = 256

// LoopCache is a small cache of verified tokens in front of a Verifier's
// cache, for one goroutine: an event loop, which verifies the tokens of
// its connections' upgrades. A hit takes no lock and writes nothing
// another goroutine reads (but its own counters, on a cache line of their
// own), so the loops of a reconnect storm presenting the same tokens
// do not pass the shared cache's lines between their CPUs, as a hit there
// does (its shard's lock, its LRU's order, its counters).
//
// It holds only tokens the shared cache keeps, as the shared cache gives
// them (its copy of the token, the claims it hands out), so the shared
// cache's admission holds for both: a loop takes a token on its first
// check there once the shared cache keeps it, that is from the token's
// second acceptance by the node on. A hit repeats what a hit in the
// shared cache checks, the expiry. A LoopCache is for its goroutine
// only; its figures are the Verifier's (CacheStats).
type LoopCache struct {
	v     *Verifier
	slots [loopCacheSlots]loopSlot
	_     cpu.CacheLinePad
	// hits counts lc's own hits, misses the shared cache's misses of lc's
	// look-ups there; written by lc's goroutine only.
	hits, misses atomic.Uint64
	_            cpu.CacheLinePad
}

// loopSlot is one token of a LoopCache: the shared cache's copy of it,
// and its claims.
type loopSlot struct {
	token  string
	claims *Claims
}

// NewLoopCache returns a LoopCache in front of v's cache of verified
// tokens; without one (Config.TokenCache negative), its Verify is v's.
func (v *Verifier) NewLoopCache() *LoopCache {
	lc := &LoopCache{v: v}
	if v.cache != nil {
		v.loops.mu.Lock()
		v.loops.list = append(v.loops.list, lc)
		v.loops.mu.Unlock()
	}
	return lc
}

// Verify is the Verifier's Verify, answered from lc when lc holds token,
// whose expiry it then checks against now: the caller's reading of the
// clock, such as its loop's for the events it is handling
// (poller.Loop.Now). It must be called on lc's goroutine only; a hit does
// not allocate.
func (lc *LoopCache) Verify(token string, now time.Time) (*Claims, error) {
	v := lc.v
	if v.cache == nil || token == "" || len(token) > maxCachedToken {
		return v.Verify(token)
	}
	h := v.cache.hash(token)
	slot := &lc.slots[(h>>8)%loopCacheSlots]
	if slot.token == token && !expiredAt(slot.claims.ExpiresAt, v.leeway, now) {
		lc.hits.Add(1)
		return slot.claims, nil
	}
	c, kept, err := v.verifyHashed(token, h, now, &lc.misses)
	if err != nil {
		if slot.token == token {
			*slot = loopSlot{} // expired
		}
		return nil, err
	}
	if kept != "" {
		*slot = loopSlot{token: kept, claims: c}
	}
	return c, nil
}

package auth

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLoopCacheTakesWhatTheCacheKeeps: a LoopCache holds a token only
// once the shared cache keeps it (its second check), answers it from then
// on without the shared cache (whose figures stop moving, while its hits
// count in CacheStats), hands out the shared cache's claims, and never
// holds a token the shared cache refused to keep.
func TestLoopCacheTakesWhatTheCacheKeeps(t *testing.T) {
	t.Parallel()
	v := newTestVerifier(t, Config{HMACSecret: secret})
	lc := v.NewLoopCache()
	tok := mustSign(t, secret, TokenSpec{Subject: "alice", Subscribe: []string{"news"}, ExpiresAt: testNow.Add(time.Hour)})
	first, err := lc.Verify(tok, v.now())
	if err != nil {
		t.Fatalf("first Verify: %v", err)
	}
	if n := lc.held(); n != 0 {
		t.Fatalf("after a first check the LoopCache holds %d tokens, want 0", n)
	}
	kept, err := lc.Verify(tok, v.now())
	if err != nil || kept == first || lc.held() != 1 {
		t.Fatalf("second Verify = %p (first %p), %v; LoopCache holds %d: want the newly kept claims, held", kept, first, err, lc.held())
	}
	before := v.cache.stats()
	for range 3 {
		if c, err := lc.Verify(tok, v.now()); err != nil || c != kept {
			t.Fatalf("Verify from the LoopCache = %p, %v; want the shared cache's %p", c, err, kept)
		}
	}
	if after := v.cache.stats(); after != before {
		t.Fatalf("the shared cache moved on LoopCache hits: %+v, then %+v", before, after)
	}
	if got, want := v.CacheStats(), (CacheStats{Tokens: 1, Hits: 3, Misses: 2}); got != want {
		t.Fatalf("CacheStats = %+v, want %+v", got, want)
	}
	// Another loop's LoopCache takes the token from the shared cache on
	// its first check there.
	other := v.NewLoopCache()
	if c, err := other.Verify(tok, v.now()); err != nil || c != kept || other.held() != 1 {
		t.Fatalf("another LoopCache's Verify = %p, %v, holding %d; want the shared cache's %p, held", c, err, other.held(), kept)
	}
	// A token too long for the shared cache is never held.
	long := mustSign(t, secret, TokenSpec{Subject: strings.Repeat("a", maxCachedToken), ExpiresAt: testNow.Add(time.Hour)})
	for range 3 {
		if _, err := lc.Verify(long, v.now()); err != nil {
			t.Fatalf("Verify of a long token: %v", err)
		}
	}
	if n := lc.held(); n != 1 {
		t.Fatalf("the LoopCache holds %d tokens, want 1 (a long token is not held)", n)
	}
}

// held is how many tokens lc holds.
func (lc *LoopCache) held() int {
	n := 0
	for _, s := range lc.slots {
		if s.token != "" {
			n++
		}
	}
	return n
}

// TestLoopCacheExpiry: a token held past its expiry (and the leeway) is
// refused as the full path refuses it, and let go.
func TestLoopCacheExpiry(t *testing.T) {
	t.Parallel()
	v, now := clockVerifier(t, Config{HMACSecret: secret})
	lc := v.NewLoopCache()
	exp := testNow.Add(time.Minute)
	tok := mustSign(t, secret, TokenSpec{Subject: "alice", ExpiresAt: exp})
	for range 2 {
		if _, err := lc.Verify(tok, v.now()); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	}
	now.Store(exp.Add(DefaultLeeway - time.Second).UnixNano())
	if _, err := lc.Verify(tok, v.now()); err != nil || lc.held() != 1 {
		t.Fatalf("Verify within the leeway: %v, holding %d", err, lc.held())
	}
	now.Store(exp.Add(DefaultLeeway).UnixNano())
	_, err := lc.Verify(tok, v.now())
	wantReason(t, err, ErrExpired)
	if n := lc.held(); n != 0 {
		t.Fatalf("the LoopCache holds %d tokens after the expiry, want 0", n)
	}
	_, err = lc.Verify(tok, v.now())
	wantReason(t, err, ErrExpired)
}

// TestLoopCacheOff: without the shared cache a LoopCache is the
// Verifier's Verify, holding nothing; refusals are the Verifier's.
func TestLoopCacheOff(t *testing.T) {
	t.Parallel()
	v := newTestVerifier(t, Config{HMACSecret: secret, TokenCache: -1})
	lc := v.NewLoopCache()
	tok := mustSign(t, secret, TokenSpec{Subject: "alice", ExpiresAt: testNow.Add(time.Hour)})
	for range 3 {
		if c, err := lc.Verify(tok, v.now()); err != nil || c.Subject != "alice" {
			t.Fatalf("Verify = %+v, %v", c, err)
		}
	}
	if lc.held() != 0 || v.CacheStats() != (CacheStats{}) {
		t.Fatalf("without a cache: holding %d, CacheStats %+v", lc.held(), v.CacheStats())
	}
	_, err := lc.Verify("", v.now())
	wantReason(t, err, ErrMissing)
	_, err = lc.Verify(mustSign(t, otherSecret, TokenSpec{Subject: "alice"}), v.now())
	wantReason(t, err, ErrBadSignature)
}

// TestLoopCacheHitAllocs: a hit allocates nothing.
func TestLoopCacheHitAllocs(t *testing.T) {
	v := newTestVerifier(t, Config{HMACSecret: secret})
	lc := v.NewLoopCache()
	tok := mustSign(t, secret, TokenSpec{Subject: "alice", Subscribe: []string{"news", "chat:*"}, ExpiresAt: testNow.Add(time.Hour)})
	for range 2 {
		if _, err := lc.Verify(tok, v.now()); err != nil {
			t.Fatal(err)
		}
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := lc.Verify(tok, v.now()); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("a LoopCache hit allocates %v times, want 0", allocs)
	}
}

// TestLoopCacheConcurrent: one LoopCache per goroutine on one Verifier,
// tokens colliding in the shared cache and expiring midway, under the
// race detector: each gets its own token's claims or ErrExpired, and
// CacheStats, read meanwhile, adds up.
func TestLoopCacheConcurrent(t *testing.T) {
	t.Parallel()
	v, now := clockVerifier(t, Config{HMACSecret: secret, TokenCache: 8})
	toks := expiringTokens(t)
	ntok := len(toks)
	const goroutines, rounds = 4, 400
	var wg sync.WaitGroup
	errs := make(chan error, goroutines+1)
	done := make(chan struct{})
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
				st := v.CacheStats()
				if st.Tokens > 8 {
					errs <- fmt.Errorf("CacheStats %+v: more than 8 tokens", st)
					return
				}
			}
		}
	})
	var loops sync.WaitGroup
	for g := range goroutines {
		lc := v.NewLoopCache()
		loops.Go(func() {
			for r := range rounds {
				if g == 0 && r == rounds/2 {
					now.Store(testNow.Add(time.Hour - time.Second).UnixNano())
				}
				i := (g*5 + r/3) % ntok
				if c, err := lc.Verify(toks[i], v.now()); expiringVerdict(i, c, err) != nil {
					errs <- expiringVerdict(i, c, err)
					return
				}
			}
		})
	}
	loops.Wait()
	close(done)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := v.CacheStats()
	if st.Hits+st.Misses > goroutines*rounds || st.Hits == 0 {
		t.Fatalf("CacheStats %+v after %d lookups", st, goroutines*rounds)
	}
}

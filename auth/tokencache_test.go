package auth

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"
)

// clockVerifier builds a verifier whose clock the test moves.
func clockVerifier(t testing.TB, cfg Config) (*Verifier, *atomic.Int64) {
	t.Helper()
	v := newTestVerifier(t, cfg)
	var now atomic.Int64
	now.Store(testNow.UnixNano())
	v.now = func() time.Time { return time.Unix(0, now.Load()) }
	return v, &now
}

// wantReason fails unless err wraps reason.
func wantReason(t *testing.T, err error, reason *Error) {
	t.Helper()
	var got *Error
	if !errors.As(err, &got) || got != reason {
		t.Fatalf("Verify error = %v, want reason %q", err, reason.Code)
	}
}

// cacheLen is how many tokens v's cache holds.
func cacheLen(v *Verifier) int { return v.CacheStats().Tokens }

// keyCase is a key family Verify checks: the Config that trusts it and the
// key that signs its tokens.
type keyCase struct {
	name string
	cfg  Config
	key  any
}

// keyCases are HS256, RS256 and ES256 with ks's keys.
func keyCases(ks keySet) []keyCase {
	return []keyCase{
		{"HS256", Config{HMACSecret: secret}, secret},
		{"RS256", Config{RSAPublicKeys: []*rsa.PublicKey{&ks.rsa.PublicKey}}, ks.rsa},
		{"ES256", Config{ECDSAPublicKeys: []*ecdsa.PublicKey{&ks.p256.PublicKey}}, ks.p256},
	}
}

// verifyTwice verifies tok twice with v and returns both claims.
func verifyTwice(t *testing.T, v *Verifier, tok string) (first, second *Claims) {
	t.Helper()
	first, err := v.Verify(tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	second, err = v.Verify(tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return first, second
}

// admit verifies tok twice with v, so that the cache keeps it (from its
// second check on), and returns the claims the cache now holds.
func admit(t *testing.T, v *Verifier, tok string) *Claims {
	t.Helper()
	_, c := verifyTwice(t, v, tok)
	return c
}

// TestTokenCacheAdmitsOnSecondCheck checks the admission filter: a token
// is kept from its second check on, and a storm of tokens presented once
// keeps none of them and evicts nothing.
func TestTokenCacheAdmitsOnSecondCheck(t *testing.T) {
	t.Parallel()
	const size = 64
	v := newTestVerifier(t, Config{HMACSecret: secret, TokenCache: size})
	spec := func(sub string) TokenSpec { return TokenSpec{Subject: sub, ExpiresAt: testNow.Add(time.Hour)} }
	kept := mustSign(t, secret, spec("kept"))
	first, err := v.Verify(kept)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if n := cacheLen(v); n != 0 {
		t.Fatalf("cache holds %d tokens after a first check, want 0", n)
	}
	second, err := v.Verify(kept)
	if err != nil {
		t.Fatalf("second Verify: %v", err)
	}
	if second == first || cacheLen(v) != 1 {
		t.Fatalf("second check: same claims %v, cache holds %d; want new claims, kept", second == first, cacheLen(v))
	}
	// A storm of new users, ten times the cache's size, each presenting
	// its token once: none is kept, and the token kept before stays.
	for i := range 10 * size {
		c, err := v.Verify(mustSign(t, secret, spec(fmt.Sprintf("new%d", i))))
		if err != nil || c.Subject != fmt.Sprintf("new%d", i) {
			t.Fatalf("Verify of new user %d = %+v, %v", i, c, err)
		}
	}
	if n := cacheLen(v); n != 1 {
		t.Fatalf("cache holds %d tokens after the storm, want the one kept before", n)
	}
	if third, err := v.Verify(kept); err != nil || third != second {
		t.Fatalf("Verify after the storm = %p, %v; want the cached %p", third, err, second)
	}
}

// TestTokenCacheFirstCheckTakesNoLock: while a shard keeps no token, a
// look-up there, and the first check of a token, take no lock of the
// shard's (the loops of a storm of new users on a fresh node then share
// nothing of it but seen slots); the second check keeps the token, under
// the lock, and the next look-up finds it.
func TestTokenCacheFirstCheckTakesNoLock(t *testing.T) {
	t.Parallel()
	v := newTestVerifier(t, Config{HMACSecret: secret, TokenCache: 64})
	tok := mustSign(t, secret, TokenSpec{Subject: "alice", ExpiresAt: testNow.Add(time.Hour)})
	claims, err := v.verify(tok, testNow)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	c, h := v.cache, v.cache.hash(tok)
	s := c.shard(h)
	s.mu.Lock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if got, _ := c.get(tok, h); got != nil {
			t.Error("an empty shard answered a look-up")
		}
		if got, kept := c.add(tok, h, claims); got != claims || kept != "" {
			t.Errorf("first check: add = %p, %q; want the claims back, not kept", got, kept)
		}
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("a look-up or a first check of an empty shard waits for its lock")
	}
	s.mu.Unlock()
	if got, kept := c.add(tok, h, claims); got != claims || kept != tok {
		t.Fatalf("second check: add = %p, %q; want the claims, kept", got, kept)
	}
	if got, kept := c.get(tok, h); got != claims || kept != tok {
		t.Fatalf("get after the second check = %p, %q; want the kept claims", got, kept)
	}
	if st := v.CacheStats(); st.Tokens != 1 || st.Hits != 1 {
		t.Fatalf("stats %+v, want 1 token, 1 hit", st)
	}
}

func TestTokenCacheHitSharesClaims(t *testing.T) {
	t.Parallel()
	ks := testKeys()
	spec := TokenSpec{Subject: "alice", Subscribe: []string{"news", "chat:*"}, ExpiresAt: testNow.Add(time.Hour)}
	cases := append(keyCases(ks), keyCase{"HS384", Config{HMACSecret: secret}, nil}) // HS384: the library path
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := newTestVerifier(t, tc.cfg)
			var tok string
			if tc.key == nil {
				tok = hs384Token(t, spec)
			} else {
				tok = mustSign(t, tc.key, spec)
			}
			first := admit(t, v, tok)
			// A copy of the token in another buffer: the cache compares
			// bytes, not pointers.
			second, err := v.Verify(string([]byte(tok)))
			if err != nil {
				t.Fatalf("second Verify: %v", err)
			}
			if first != second {
				t.Fatalf("second Verify returned other claims (%p, %p), want the cached ones", first, second)
			}
			if second.Subject != "alice" || !second.CanSubscribe("chat:x") || second.CanSubscribe("other") {
				t.Fatalf("cached claims = %+v", second)
			}
			if n := cacheLen(v); n != 1 {
				t.Fatalf("cache holds %d tokens, want 1", n)
			}
		})
	}
}

// hs384Token signs spec's subject, patterns and expiry with HS384, which
// Verify checks on the library's path rather than the HS256 fast path.
func hs384Token(t *testing.T, spec TokenSpec) string {
	t.Helper()
	return rawToken(t, jwt.SigningMethodHS384, wireClaims{
		RegisteredClaims: jwt.RegisteredClaims{Subject: spec.Subject, ExpiresAt: jwt.NewNumericDate(spec.ExpiresAt)},
		Channels:         spec.Subscribe,
		Pub:              spec.Publish,
	}, secret)
}

// unsafeString is b's bytes as a string without a copy, as the server
// hands Verify a view of its read buffer.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func TestTokenCacheKeyIsACopy(t *testing.T) {
	t.Parallel()
	v := newTestVerifier(t, Config{HMACSecret: secret})
	tok := mustSign(t, secret, TokenSpec{Subject: "alice", ExpiresAt: testNow.Add(time.Hour)})
	buf := []byte(tok)
	view := unsafeString(buf)
	c := admit(t, v, view)
	// The network buffer is reused for another request.
	for i := range buf {
		buf[i] = 'x'
	}
	again, err := v.Verify(tok)
	if err != nil || again != c {
		t.Fatalf("Verify after the buffer was reused = %p, %v; want the cached %p", again, err, c)
	}
}

func TestTokenCacheExpiry(t *testing.T) {
	t.Parallel()
	v, now := clockVerifier(t, Config{HMACSecret: secret})
	exp := testNow.Add(time.Minute)
	tok := mustSign(t, secret, TokenSpec{Subject: "alice", ExpiresAt: exp})
	c := admit(t, v, tok)
	// Within the leeway past exp: still the cached claims.
	now.Store(exp.Add(DefaultLeeway - time.Second).UnixNano())
	if again, err := v.Verify(tok); err != nil || again != c {
		t.Fatalf("Verify within the leeway = %p, %v; want the cached %p", again, err, c)
	}
	// exp + leeway reached: refused, as the full path refuses it.
	now.Store(exp.Add(DefaultLeeway).UnixNano())
	_, err := v.Verify(tok)
	wantReason(t, err, ErrExpired)
	if n := cacheLen(v); n != 0 {
		t.Fatalf("cache holds %d tokens after the expiry, want 0", n)
	}
	_, err = v.Verify(tok)
	wantReason(t, err, ErrExpired)
}

func TestTokenCacheNoExpiry(t *testing.T) {
	t.Parallel()
	v, now := clockVerifier(t, Config{HMACSecret: secret})
	tok := mustSign(t, secret, TokenSpec{Subject: "alice"})
	c := admit(t, v, tok)
	now.Store(testNow.Add(100 * 365 * 24 * time.Hour).UnixNano())
	if again, err := v.Verify(tok); err != nil || again != c {
		t.Fatalf("Verify of a token without exp = %p, %v; want the cached %p", again, err, c)
	}
}

func TestTokenCacheModifiedToken(t *testing.T) {
	t.Parallel()
	v := newTestVerifier(t, Config{HMACSecret: secret})
	tok := mustSign(t, secret, TokenSpec{Subject: "alice", Subscribe: []string{"news"}, ExpiresAt: testNow.Add(time.Hour)})
	admit(t, v, tok)
	head, rest, _ := strings.Cut(tok, ".")
	payload, sig, _ := strings.Cut(rest, ".")
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	cases := []struct {
		name  string
		token string
		want  *Error
	}{
		{"payload byte", head + "." + flip(payload, len(payload)/2) + "." + sig, nil},
		{"first signature byte", head + "." + payload + "." + flip(sig, 0), ErrBadSignature},
		{"last signature byte", head + "." + payload + "." + flip(sig, len(sig)-2), ErrBadSignature},
		{"signature under another payload", head + "." + flip(payload, 1) + "." + sig, nil},
		{"longer", tok + "A", nil},
		{"shorter", tok[:len(tok)-1], nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := v.Verify(tc.token)
			if err == nil {
				t.Fatalf("Verify of a modified token = %+v, want an error", c)
			}
			if tc.want != nil {
				wantReason(t, err, tc.want)
			}
		})
	}
	if n := cacheLen(v); n != 1 {
		t.Fatalf("cache holds %d tokens, want the original only", n)
	}
}

func TestTokenCacheErrorsNotCached(t *testing.T) {
	t.Parallel()
	v, now := clockVerifier(t, Config{HMACSecret: secret, Leeway: -1})
	nbf := testNow.Add(time.Minute)
	tok := mustSign(t, secret, TokenSpec{Subject: "alice", NotBefore: nbf, ExpiresAt: testNow.Add(time.Hour)})
	_, err := v.Verify(tok)
	wantReason(t, err, ErrNotYetValid)
	if n := cacheLen(v); n != 0 {
		t.Fatalf("cache holds %d tokens after a refusal, want 0", n)
	}
	now.Store(nbf.UnixNano())
	c := admit(t, v, tok)
	if again, err := v.Verify(tok); err != nil || again != c {
		t.Fatalf("second Verify = %p, %v; want the cached %p", again, err, c)
	}
}

func TestTokenCacheEviction(t *testing.T) {
	t.Parallel()
	const size = 40
	v := newTestVerifier(t, Config{HMACSecret: secret, TokenCache: size})
	var toks []string
	for i := range 3 * size {
		tok := mustSign(t, secret, TokenSpec{Subject: fmt.Sprintf("user%d", i), ExpiresAt: testNow.Add(time.Hour)})
		toks = append(toks, tok)
		admit(t, v, tok)
		if n := cacheLen(v); n > size {
			t.Fatalf("cache holds %d tokens after %d, want at most %d", n, i+1, size)
		}
	}
	if n := cacheLen(v); n < size/2 {
		t.Fatalf("cache holds %d tokens, want about %d", n, size)
	}
	// The latest token is kept: its shard evicted older ones.
	last := toks[len(toks)-1]
	a, _ := v.Verify(last)
	b, _ := v.Verify(last)
	if a == nil || a != b {
		t.Fatalf("the latest token is not cached")
	}
}

func TestTokenCacheShards(t *testing.T) {
	t.Parallel()
	for _, size := range []int{1, 2, 3, 15, 16, 17, 100, DefaultTokenCache} {
		c := newTokenCache(size)
		n := len(c.shards)
		if n&(n-1) != 0 || n > size || int(c.mask) != n-1 {
			t.Errorf("size %d: %d shards, mask %d", size, n, c.mask)
		}
		if size >= minShards && n < minShards {
			t.Errorf("size %d: %d shards, want at least %d", size, n, minShards)
		}
		// Fill every shard past its capacity: together they hold size.
		total := 0
		for i := range c.shards {
			s := &c.shards[i]
			for k := range size + 1 {
				s.lru.Add(fmt.Sprint(k), cachedToken{})
			}
			if s.lru.Len() < 1 {
				t.Errorf("size %d: shard %d holds nothing", size, i)
			}
			total += s.lru.Len()
		}
		if total != size {
			t.Errorf("size %d: the shards hold %d", size, total)
		}
	}
}

func TestTokenCacheBounds(t *testing.T) {
	t.Parallel()
	v := newTestVerifier(t, Config{HMACSecret: secret})
	long := mustSign(t, secret, TokenSpec{Subject: strings.Repeat("a", maxCachedToken), ExpiresAt: testNow.Add(time.Hour)})
	many := make([]string, 40)
	for i := range many {
		many[i] = "{sub}"
	}
	wide := mustSign(t, secret, TokenSpec{Subject: strings.Repeat("b", 200), Subscribe: many, ExpiresAt: testNow.Add(time.Hour)})
	if len(wide) > maxCachedToken {
		t.Fatalf("test token is %d bytes, want it under %d", len(wide), maxCachedToken)
	}
	for _, tok := range []string{long, wide} {
		if a, b := verifyTwice(t, v, tok); a == b {
			t.Errorf("a token of %d bytes with claims of about %d was cached", len(tok), claimsFootprint(a))
		}
	}
	if n := cacheLen(v); n != 0 {
		t.Fatalf("cache holds %d tokens, want 0", n)
	}
	// The bound Config.TokenCache documents: 4.2 KiB an entry, 17 MiB at
	// the default.
	if per := maxCachedToken + maxCachedClaims + entryOverhead; per > 4300 || DefaultTokenCache*per > 17<<20 {
		t.Fatalf("an entry may take %d bytes, the default cache %d", per, DefaultTokenCache*per)
	}
	// Everyday claims fit with room to spare.
	c, err := v.Verify(mustSign(t, secret, TokenSpec{Subject: "alice", Subscribe: []string{"news", "chat:*", "private:{sub}"}, Publish: []string{"chat:*"}, ExpiresAt: testNow.Add(time.Hour)}))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if f := claimsFootprint(c); f > maxCachedClaims/2 {
		t.Fatalf("everyday claims estimated at %d bytes", f)
	}
}

func TestTokenCacheOff(t *testing.T) {
	t.Parallel()
	v := newTestVerifier(t, Config{HMACSecret: secret, TokenCache: -1})
	if v.cache != nil {
		t.Fatalf("TokenCache -1 made a cache")
	}
	tok := mustSign(t, secret, TokenSpec{Subject: "alice", ExpiresAt: testNow.Add(time.Hour)})
	if a, b := verifyTwice(t, v, tok); a == b {
		t.Fatalf("TokenCache -1: Verify returned the same claims twice")
	}
	if d := newTestVerifier(t, Config{HMACSecret: secret}); d.cache == nil || d.cache.size != DefaultTokenCache {
		t.Fatalf("TokenCache 0: want a cache of %d", DefaultTokenCache)
	}
}

func TestTokenCacheHitAllocs(t *testing.T) {
	v := newTestVerifier(t, Config{HMACSecret: secret})
	tok := mustSign(t, secret, TokenSpec{Subject: "alice", Subscribe: []string{"news", "chat:*"}, ExpiresAt: testNow.Add(time.Hour)})
	admit(t, v, tok)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := v.Verify(tok); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("a cache hit allocates %v times, want 0", allocs)
	}
}

// expiringTokens are 24 tokens of users user0, user1, ...: every third
// (i%3 == 0) expires a second after testNow, the others an hour after.
func expiringTokens(t *testing.T) []string {
	toks := make([]string, 24)
	for i := range toks {
		exp := testNow.Add(time.Hour)
		if i%3 == 0 {
			exp = testNow.Add(time.Second)
		}
		toks[i] = mustSign(t, secret, TokenSpec{Subject: fmt.Sprintf("user%d", i), ExpiresAt: exp})
	}
	return toks
}

// expiringVerdict is why c, err is a wrong answer for token i of
// expiringTokens, or nil: the claims of user<i>, or ErrExpired for one
// that expires.
func expiringVerdict(i int, c *Claims, err error) error {
	switch {
	case err == nil && c.Subject != fmt.Sprintf("user%d", i):
		return fmt.Errorf("token %d gave the claims of %q", i, c.Subject)
	case err != nil && (i%3 != 0 || !errors.Is(err, ErrExpired)):
		return fmt.Errorf("token %d: %w", i, err)
	}
	return nil
}

// TestTokenCacheConcurrent: goroutines verifying tokens that collide in
// a small cache, a third of them expiring halfway through, each get their
// own token's claims or ErrExpired, and the cache keeps its bound.
func TestTokenCacheConcurrent(t *testing.T) {
	t.Parallel()
	v, now := clockVerifier(t, Config{HMACSecret: secret, TokenCache: 8})
	toks := expiringTokens(t)
	ntok := len(toks)
	const goroutines, rounds = 8, 200
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for r := range rounds {
				if g == 0 && r == rounds/2 {
					now.Store(testNow.Add(time.Hour - time.Second).UnixNano())
				}
				i := (g*7 + r) % ntok
				if c, err := v.Verify(toks[i]); expiringVerdict(i, c, err) != nil {
					errs <- expiringVerdict(i, c, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := cacheLen(v); n > 8 {
		t.Fatalf("cache holds %d tokens, want at most 8", n)
	}
}

// TestTokenCacheStats checks CacheStats: the first two Verify calls are
// misses (the second keeps the token), a third a hit, a token too long
// for the cache is neither, and a Verifier without a cache reports zeros.
func TestTokenCacheStats(t *testing.T) {
	t.Parallel()
	v := newTestVerifier(t, Config{HMACSecret: secret})
	tok := mustSign(t, secret, TokenSpec{Subject: "alice", ExpiresAt: testNow.Add(time.Hour)})
	admit(t, v, tok)
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	long := mustSign(t, secret, TokenSpec{Subject: strings.Repeat("a", maxCachedToken), ExpiresAt: testNow.Add(time.Hour)})
	verifyTwice(t, v, long)
	if got, want := v.CacheStats(), (CacheStats{Tokens: 1, Hits: 1, Misses: 2}); got != want {
		t.Errorf("CacheStats = %+v, want %+v", got, want)
	}
	off := newTestVerifier(t, Config{HMACSecret: secret, TokenCache: -1})
	verifyTwice(t, off, tok)
	if got := off.CacheStats(); got != (CacheStats{}) {
		t.Errorf("CacheStats without a cache = %+v, want zeros", got)
	}
}

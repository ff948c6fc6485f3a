package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MaxTokenLen bounds the token length Verify accepts, in bytes; the
// handshake's header cap bounds it anyway, this keeps Verify safe on its own.
const MaxTokenLen = 8 << 10

// Verifier checks connection tokens. Its keys and checks are fixed by
// [NewVerifier] and never change; it is safe for concurrent use by every
// event loop and the HTTP API. The only state it keeps is its cache of
// tokens verified before (see [Config.TokenCache]).
type Verifier struct {
	parser           *jwt.Parser
	hmac             []byte
	rsa              jwt.VerificationKeySet            // empty without RSA keys
	ec               map[string]jwt.VerificationKeySet // by "ES256"/"ES384"/"ES512"
	anon             *Claims                           // nil unless AllowAnonymous
	leeway           time.Duration
	issuer, audience string           // checked when not empty
	now              func() time.Time // the clock; tests replace it
	// fast checks HS256 tokens without the library's parse (nil
	// without an HMAC secret).
	fast *hs256
	// cache holds the claims of tokens verified before (nil when
	// Config.TokenCache is negative).
	cache *tokenCache
	// loops are the LoopCaches in front of cache, whose hits and misses
	// CacheStats counts.
	loops *loopCaches
	// lists are the channel lists the claims of its tokens share.
	lists *sharedLists
}

// loopCaches is a Verifier's list of LoopCaches, and the count of the
// cache misses of the look-ups made without one (Verify).
type loopCaches struct {
	mu     sync.Mutex
	list   []*LoopCache
	misses atomic.Uint64
}

// wireClaims is the JSON shape of a herald token; see the package doc.
type wireClaims struct {
	jwt.RegisteredClaims
	Channels jwt.ClaimStrings `json:"channels,omitempty"`
	Pub      jwt.ClaimStrings `json:"pub,omitempty"`
}

// NewVerifier checks cfg and returns a Verifier. It fails when cfg has no
// key and does not allow anonymous clients, when a key is too weak (see
// MinHMACSecret, MinRSABits) or on an unsupported curve, and when the
// anonymous patterns do not compile.
func NewVerifier(cfg Config) (*Verifier, error) {
	v := &Verifier{leeway: cfg.leeway(), now: time.Now, ec: map[string]jwt.VerificationKeySet{}, loops: &loopCaches{}, lists: &sharedLists{}}
	if len(cfg.HMACSecret) > 0 {
		if len(cfg.HMACSecret) < MinHMACSecret {
			return nil, fmt.Errorf("auth: HMAC secret is %d bytes, want at least %d", len(cfg.HMACSecret), MinHMACSecret)
		}
		v.hmac = append([]byte(nil), cfg.HMACSecret...)
	}
	for i, k := range cfg.RSAPublicKeys {
		if k == nil || k.N == nil {
			return nil, fmt.Errorf("auth: RSA public key %d is nil", i)
		}
		if k.N.BitLen() < MinRSABits {
			return nil, fmt.Errorf("auth: RSA public key %d has %d bits, want at least %d", i, k.N.BitLen(), MinRSABits)
		}
		v.rsa.Keys = append(v.rsa.Keys, k)
	}
	for i, k := range cfg.ECDSAPublicKeys {
		if k == nil {
			return nil, fmt.Errorf("auth: ECDSA public key %d is nil", i)
		}
		alg, err := ecdsaAlg(k)
		if err != nil {
			return nil, fmt.Errorf("auth: ECDSA public key %d: %w", i, err)
		}
		set := v.ec[alg]
		set.Keys = append(set.Keys, k)
		v.ec[alg] = set
	}
	if v.hmac == nil && len(v.rsa.Keys) == 0 && len(v.ec) == 0 && !cfg.AllowAnonymous {
		return nil, errors.New("auth: no token key configured and anonymous clients not allowed")
	}
	if cfg.AllowAnonymous {
		v.anon = &Claims{Anonymous: true}
		if err := v.anon.compile(slices.Clone(cfg.AnonymousSubscribe), slices.Clone(cfg.AnonymousPublish)); err != nil {
			return nil, fmt.Errorf("auth: anonymous: %w", err)
		}
	}
	v.issuer, v.audience = cfg.Issuer, cfg.Audience
	// iss and aud are checked by Verify itself: the library reports a
	// missing claim with the same error whichever claim it is.
	opts := []jwt.ParserOption{
		jwt.WithLeeway(v.leeway),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(func() time.Time { return v.now() }),
	}
	v.parser = jwt.NewParser(opts...)
	if v.hmac != nil {
		v.fast = newHS256(v.hmac)
	}
	if size := cfg.tokenCache(); size > 0 {
		v.cache = newTokenCache(size)
	}
	return v, nil
}

// ecdsaAlg returns the JWS algorithm for k's curve.
func ecdsaAlg(k *ecdsa.PublicKey) (string, error) {
	switch k.Curve {
	case elliptic.P256():
		return "ES256", nil
	case elliptic.P384():
		return "ES384", nil
	case elliptic.P521():
		return "ES512", nil
	}
	return "", errors.New("unsupported curve (want P-256, P-384 or P-521)")
}

// Verify parses token, checks its signature with the key configured for its
// algorithm, then exp, nbf and iat (with the leeway) and iss and aud (when
// configured), and returns its claims with their patterns compiled.
//
// The algorithm picks the key family and never the other way round: an
// HS* token is checked only against HMACSecret, RS*/PS* only against the
// RSA keys and ES* only against ECDSA keys of the matching curve, so an
// HS256 token "signed" with an RSA public key is refused, and so is "none".
// Every error wraps one of the Err* reasons (see [Error]); an empty token
// gives ErrMissing (call [Verifier.Anonymous] instead when appropriate).
//
// A token Verify accepted twice before and still remembers (see
// [Config.TokenCache]) gets the very same immutable Claims again, without
// a signature check, a parse or an allocation, as long as it has not
// expired; an expired one is forgotten and refused with ErrExpired.
// Verify does not keep token: it may be a view of a buffer the caller
// reuses.
func (v *Verifier) Verify(token string) (*Claims, error) {
	if token == "" {
		return nil, ErrMissing
	}
	if len(token) > MaxTokenLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, MaxTokenLen)
	}
	now := v.now()
	if v.cache == nil || len(token) > maxCachedToken {
		return v.verify(token, now)
	}
	c, _, err := v.verifyHashed(token, v.cache.hash(token), now, &v.loops.misses)
	return c, err
}

// verifyHashed is Verify with the cache at now, for a token of at most
// maxCachedToken bytes whose hash is h, counting a miss of the cache in
// misses (the caller's: a LoopCache's, on its loop's line); kept is the
// cache's copy of the token when the cache keeps it (a LoopCache may hold
// on to it), or "".
func (v *Verifier) verifyHashed(token string, h uint64, now time.Time, misses *atomic.Uint64) (c *Claims, kept string, err error) {
	if c, kept := v.cache.get(token, h); c != nil {
		if !expiredAt(c.ExpiresAt, v.leeway, now) {
			return c, kept, nil
		}
		// The full path below gives the error.
		v.cache.remove(token, h)
	} else {
		misses.Add(1)
	}
	if c, err = v.verify(token, now); err != nil {
		// Never cached: the same token may be valid later (nbf), and a
		// refusal must not cost memory.
		return nil, "", err
	}
	c, kept = v.cache.add(token, h, c)
	return c, kept, nil
}

// verify is Verify without the cache, at now: the HS256 fast path judges
// the token's times against it (the library path, which gives the
// refusals, reads v.now itself).
func (v *Verifier) verify(token string, now time.Time) (*Claims, error) {
	if v.fast != nil {
		// On the stack, as are raw and the views of buf it makes.
		var buf [768]byte
		var raw rawClaims
		if b, wc, ok := v.fast.verify(token, buf[:], &raw, now, v.leeway); ok {
			if wc != nil {
				return v.claimsOf(wc)
			}
			return v.claimsOfRaw(b, &raw)
		}
	}
	lib := new(wireClaims)
	if _, err := v.parser.ParseWithClaims(token, lib, v.key); err != nil {
		return nil, classify(err)
	}
	return v.claimsOf(lib)
}

// claimsOf is the Claims of a verified token's wc, once the issuer and
// the audience are checked.
func (v *Verifier) claimsOf(wc *wireClaims) (*Claims, error) {
	if v.issuer != "" && wc.Issuer != v.issuer {
		return nil, ErrWrongIssuer
	}
	if v.audience != "" && !slices.Contains(wc.Audience, v.audience) {
		return nil, ErrWrongAudience
	}
	c := &Claims{Subject: wc.Subject, leeway: v.leeway}
	if wc.ExpiresAt != nil {
		c.ExpiresAt = wc.ExpiresAt.Time
	}
	if err := c.compileToken(wc.Channels, wc.Pub); err != nil {
		return nil, err
	}
	return c, nil
}

// claimsOfRaw is claimsOf for the claims decodeClaims found in b, with
// the same result as claimsOf of encoding/json's reading of them
// (TestHS256FastPath). Channel lists the Verifier has seen before, with
// their compiled rights, are shared (sharedLists); the strings the Claims
// keep of their own (the personal channel, whose tail is the subject, and
// lists not shared) are copied into one allocation they all view, and
// their slices into one more, since a new user's handshake pays for each
// allocation twice, in the allocator and in the collector.
func (v *Verifier) claimsOfRaw(b []byte, raw *rawClaims) (*Claims, error) {
	if v.issuer != "" && raw.iss.in(b) != v.issuer {
		return nil, ErrWrongIssuer
	}
	if v.audience != "" && !slices.ContainsFunc(raw.aud.list(), func(s span) bool { return s.in(b) == v.audience }) {
		return nil, ErrWrongAudience
	}
	c := &Claims{leeway: v.leeway}
	if raw.exp.set {
		c.ExpiresAt = raw.exp.t
	}
	lists := [2][]span{raw.channels.list(), raw.pub.list()} // Subscribe, Publish
	var keyBuf [maxListKey]byte
	key, shareable := listsKey(keyBuf[:0], b, lists[0], lists[1])
	shared := false
	if shareable {
		c.rights, shared = v.lists.lookup(key)
	}
	sub := raw.sub.in(b)
	size, own := 0, 0
	if sub != "" {
		size = len(userPrefix) + len(sub)
	}
	if !shared {
		for _, list := range lists {
			own += len(list)
			for _, s := range list {
				size += len(s.in(b))
			}
		}
	}
	var text strings.Builder
	text.Grow(size)
	if sub != "" {
		text.WriteString(userPrefix)
		text.WriteString(sub)
	}
	if !shared {
		for _, list := range lists {
			for _, s := range list {
				text.WriteString(s.in(b))
			}
		}
	}
	all := text.String()
	if sub != "" {
		c.personal = all[:len(userPrefix)+len(sub)]
		c.Subject = c.personal[len(userPrefix):]
	}
	var texts [2][]string // the lists as strings, views of all, when not shared
	if own > 0 {
		strs := make([]string, 0, own)
		at := len(c.personal)
		for i, list := range lists {
			if len(list) == 0 {
				continue
			}
			start := len(strs)
			for _, s := range list {
				strs = append(strs, all[at:at+len(s.in(b))])
				at += len(s.in(b))
			}
			texts[i] = strs[start:len(strs):len(strs)]
		}
	}
	if err := c.compileToken(texts[0], texts[1]); err != nil { // the lists not shared
		return nil, err
	}
	if shareable && !shared {
		v.lists.add(key, c.rights)
	}
	return c, nil
}

// CacheStats returns the figures of the cache of verified tokens (zero
// without one). Safe from any goroutine.
func (v *Verifier) CacheStats() CacheStats {
	if v.cache == nil {
		return CacheStats{}
	}
	st := v.cache.stats()
	st.Misses = v.loops.misses.Load()
	v.loops.mu.Lock()
	for _, lc := range v.loops.list {
		st.Hits += lc.hits.Load()
		st.Misses += lc.misses.Load()
	}
	v.loops.mu.Unlock()
	return st
}

// Anonymous returns the claims of a client that presented no token: the
// same immutable Claims every time. It returns ErrMissing unless the
// Config allowed anonymous clients.
func (v *Verifier) Anonymous() (*Claims, error) {
	if v.anon == nil {
		return nil, ErrMissing
	}
	return v.anon, nil
}

// key is the jwt.Keyfunc: it chooses the keys from the token's algorithm
// family, which is what defeats algorithm confusion.
func (v *Verifier) key(t *jwt.Token) (any, error) {
	switch t.Method.(type) {
	case *jwt.SigningMethodHMAC:
		if v.hmac != nil {
			return v.hmac, nil
		}
	case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS:
		if len(v.rsa.Keys) > 0 {
			return v.rsa, nil
		}
	case *jwt.SigningMethodECDSA:
		if set, ok := v.ec[t.Method.Alg()]; ok {
			return set, nil
		}
	}
	return nil, algError(t.Method.Alg())
}

// algError is the key function's refusal: no key for this algorithm. It
// stays unexported; classify turns it into ErrWrongAlgorithm.
type algError string

func (e algError) Error() string { return "no key for algorithm " + strconv.Quote(string(e)) }

// classify maps a jwt error onto one of the package's reasons, keeping the
// library's detail (which never holds key material) after it.
func classify(err error) error {
	var (
		reason *Error
		alg    algError
	)
	switch {
	case errors.As(err, &alg):
		// The jwt library's wrapping adds nothing to the key function's word.
		return fmt.Errorf("%w: %w", ErrWrongAlgorithm, alg)
	case errors.Is(err, jwt.ErrTokenMalformed):
		reason = ErrMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		reason = ErrBadSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		reason = ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		reason = ErrNotYetValid
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		// An unknown or missing "alg" header.
		reason = ErrWrongAlgorithm
	default:
		reason = ErrInvalidClaims
	}
	return fmt.Errorf("%w: %w", reason, err)
}

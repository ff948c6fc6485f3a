package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"hash"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// hs256 is Verify's fast path for HS256 tokens, the common case on a
// connection's upgrade. jwt/v5 decodes a token's header into a map and its
// claims before it checks the signature, and builds an HMAC for each
// token; here the signature is checked first, with a pooled HMAC, against
// the token's own bytes, the header is recognised from a small cache of
// the header segments seen (one per issuer in practice), and only then are
// the claims decoded, into the same wireClaims as the library path, and
// their times checked as the library's Validator checks them with the
// same options (validTimes), without its allocations. Any
// token this path does not accept (another algorithm, a bad signature,
// expired claims, anything malformed) goes through the library path,
// which gives the error; so this path can only accept what the library
// would, and a token it refuses costs the library path's price.
type hs256 struct {
	macs sync.Pool // of *mac: HMAC-SHA256 with the secret
	// headers maps a header segment, as sent, to whether it says HS256
	// (its "alg", read as the library reads it); at most maxHeaders.
	headers  sync.Map
	nheaders atomic.Int32
}

// maxHeaders bounds the header cache: tokens are signed by a handful of
// issuers, each with one header; a client cannot grow it past this.
const maxHeaders = 32

// sigLen is the length of an HS256 signature.
const sigLen = sha256.Size

func newHS256(secret []byte) *hs256 {
	key := append([]byte(nil), secret...)
	h := &hs256{}
	h.macs.New = func() any { return &mac{h: hmac.New(sha256.New, key)} }
	return h
}

// mac is a pooled HMAC with room for its sum: a sum buffer on the
// caller's stack would move to the heap, passed through hash.Hash.
type mac struct {
	h   hash.Hash
	sum [sigLen]byte
}

// verify checks token as an HS256 token at now, with leeway. When its
// signature and times are good it reports true with the claims: found by
// decodeClaims in b (a view of buf when they fit in it, which lets the
// caller keep buf on its stack) and noted in raw, or, beyond
// decodeClaims' shape, decoded by encoding/json into wc. Otherwise it
// reports false, and the library path decides.
func (h *hs256) verify(token string, buf []byte, raw *rawClaims, now time.Time, leeway time.Duration) (b []byte, wc *wireClaims, ok bool) {
	head, rest, ok := strings.Cut(token, ".")
	if !ok {
		return nil, nil, false
	}
	payload, sig, ok := strings.Cut(rest, ".")
	if !ok || strings.IndexByte(sig, '.') >= 0 || !h.isHS256(head) {
		return nil, nil, false
	}
	if base64.RawURLEncoding.DecodedLen(len(sig)) != sigLen {
		return nil, nil, false
	}
	var got [sigLen]byte
	if n, err := base64.RawURLEncoding.Decode(got[:], bytesOf(sig)); err != nil || n != sigLen {
		return nil, nil, false
	}
	m := h.macs.Get().(*mac)
	m.h.Reset()
	m.h.Write(bytesOf(token[:len(head)+1+len(payload)]))
	good := hmac.Equal(got[:], m.h.Sum(m.sum[:0]))
	h.macs.Put(m)
	if !good {
		return nil, nil, false
	}
	b = buf[:0]
	if n := base64.RawURLEncoding.DecodedLen(len(payload)); n > len(buf) {
		b = make([]byte, 0, n)
	}
	n, err := base64.RawURLEncoding.Decode(b[:cap(b)], bytesOf(payload))
	if err != nil {
		return nil, nil, false
	}
	if b = b[:n]; decodeClaims(b, raw) {
		return b, nil, validTimes(raw.claimTimes, now, leeway)
	}
	// Beyond the common shape: encoding/json decides (on a copy, so
	// that buf stays on the stack).
	wc = new(wireClaims)
	if json.Unmarshal(bytes.Clone(b), wc) != nil {
		return nil, nil, false
	}
	return nil, wc, validTimes(wc.times(), now, leeway)
}

// validTimes reports whether a token's times allow it at now, judged
// exactly as jwt/v5's Validator judges them with the leeway and
// WithIssuedAt, the options the library path runs with (its
// verifyExpiresAt, verifyNotBefore and verifyIssuedAt; iss and aud are
// Verify's own checks, and none is required). It is not the library's
// Validator, which allocates its error list and takes the claims as an
// interface, so that they escape: a token that fails here goes the
// library's way, which refuses it with its reason. TestHS256FastPath and
// FuzzHS256FastPath hold the two to the same verdicts.
func validTimes(t claimTimes, now time.Time, leeway time.Duration) bool {
	if t.exp.set && !now.Before(t.exp.t.Add(leeway)) { // a zero exp too, as the library
		return false
	}
	if t.nbf.set && now.Before(t.nbf.t.Add(-leeway)) {
		return false
	}
	if t.iat.set && now.Before(t.iat.t.Add(-leeway)) {
		return false
	}
	return true
}

// isHS256 reports whether a header segment says "alg":"HS256", decoding
// it as jwt/v5 does (base64url without padding, JSON into a map, the
// exact key "alg") the first time it is seen.
func (h *hs256) isHS256(head string) bool {
	if v, ok := h.headers.Load(head); ok {
		return v.(bool)
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return false
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return false
	}
	alg, _ := m["alg"].(string)
	is := alg == "HS256"
	if h.nheaders.Add(1) <= maxHeaders {
		// A copy: the segment points into the caller's buffer.
		h.headers.Store(strings.Clone(head), is)
	}
	return is
}

// bytesOf is s's bytes, read-only, without a copy.
func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

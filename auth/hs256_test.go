package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// hsToken signs header and payload, raw JSON, with key as HS256 does.
func hsToken(key []byte, header, payload string) string {
	enc := base64.RawURLEncoding
	s := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload))
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return s + "." + enc.EncodeToString(m.Sum(nil))
}

// hsCases are tokens the fast path must judge exactly as jwt/v5 does.
func hsCases(t testing.TB) []string {
	exp := testNow.Add(time.Hour).Unix()
	past := testNow.Add(-time.Hour).Unix()
	future := testNow.Add(time.Hour).Unix()
	h := `{"alg":"HS256","typ":"JWT"}`
	p := func(s string) string { return strings.ReplaceAll(s, "EXP", itoa(exp)) }
	cases := []string{
		mustSign(t, secret, TokenSpec{Subject: "alice", Subscribe: []string{"news", "chat:*"}, ExpiresAt: testNow.Add(time.Hour)}),
		mustSign(t, secret, TokenSpec{Subject: "bob", Publish: []string{"x"}, IssuedAt: testNow, NotBefore: testNow}),
		mustSign(t, secret, TokenSpec{Subject: "late", ExpiresAt: testNow.Add(-time.Hour)}),
		mustSign(t, otherSecret, TokenSpec{Subject: "forged"}),
		hsToken(secret, h, p(`{"sub":"a","exp":EXP}`)),
		hsToken(secret, h, `{"sub":"a","exp":`+itoa(past)+`}`),
		hsToken(secret, h, `{"sub":"a","nbf":`+itoa(future)+`}`),
		hsToken(secret, h, `{"sub":"a","iat":`+itoa(future)+`}`),
		hsToken(secret, h, `{"sub":"a","exp":1.5e12}`),
		hsToken(secret, h, `{"sub":"a","exp":"soon"}`),
		hsToken(secret, h, `{"sub":"a","channels":"one"}`),
		hsToken(secret, h, `{"sub":"a","channels":["a",1]}`),
		hsToken(secret, h, `{"SUB":"upper","Channels":["x"]}`),
		hsToken(secret, h, `{"sub":"a","sub":"b"}`),
		hsToken(secret, h, `{"sub":"a"} trailing`),
		hsToken(secret, h, `not json`),
		hsToken(secret, h, `{"sub":"a","aud":["x","y"],"iss":"i"}`),
		hsToken(secret, `{"ALG":"HS256"}`, `{"sub":"a"}`),
		hsToken(secret, `{"alg":"none","alg":"HS256"}`, `{"sub":"a"}`),
		hsToken(secret, `{"alg":"HS256","alg":"none"}`, `{"sub":"a"}`),
		hsToken(secret, `{"alg":"HS384"}`, `{"sub":"a"}`),
		hsToken(secret, `{"alg":"none"}`, `{"sub":"a"}`),
		hsToken(secret, `{"alg":"HS256"`, `{"sub":"a"}`),
		hsToken(secret, `{"typ":"JWT"}`, `{"sub":"a"}`),
		hsToken(secret, `{"alg":"HS256","crit":["x"]}`, `{"sub":"a"}`),
	}
	good := cases[0]
	parts := strings.Split(good, ".")
	cases = append(cases,
		good+".", good+".x", parts[0]+"."+parts[1], parts[0]+"."+parts[1]+".",
		parts[0]+"."+parts[1]+"."+parts[2][:len(parts[2])-1],
		parts[0]+"."+parts[1]+"."+parts[2]+"A",
		parts[0]+"."+parts[1]+"."+parts[2]+"==",
		parts[0]+"=."+parts[1]+"."+parts[2],
		"", ".", "..", "a.b.c",
	)
	return cases
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// libraryOnly is v without its HS256 fast path: the library's verdict.
func libraryOnly(v *Verifier) *Verifier {
	w := *v
	w.fast = nil
	return &w
}

// sameVerdict fails unless v (fast path) and the library agree on tok:
// the same claims, or errors of the same reasons.
func sameVerdict(t *testing.T, v *Verifier, tok string) {
	t.Helper()
	got, gerr := v.Verify(tok)
	want, werr := libraryOnly(v).Verify(tok)
	if (gerr == nil) != (werr == nil) {
		t.Fatalf("%q: fast path %v, %v; library %v, %v", tok, got, gerr, want, werr)
	}
	if gerr != nil {
		for _, r := range []error{ErrMalformed, ErrBadSignature, ErrExpired, ErrNotYetValid, ErrWrongAlgorithm, ErrInvalidClaims, ErrMissing, ErrWrongIssuer, ErrWrongAudience} {
			if errors.Is(gerr, r) != errors.Is(werr, r) {
				t.Fatalf("%q: fast path error %v, library %v", tok, gerr, werr)
			}
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: fast path %+v, library %+v", tok, got, want)
	}
}

// TestHS256FastPath: the fast path accepts exactly what jwt/v5 accepts,
// with the same claims, and refuses with the same reasons.
func TestHS256FastPath(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{
		{HMACSecret: secret},
		{HMACSecret: secret, Issuer: "i", Audience: "y"},
		{HMACSecret: secret, Leeway: 2 * time.Hour},
	} {
		v := newTestVerifier(t, cfg)
		for _, tok := range hsCases(t) {
			sameVerdict(t, v, tok)
			sameVerdict(t, v, tok) // the header is cached now
		}
	}
}

// TestHS256HeaderCacheBound: headers past maxHeaders are judged but not
// kept.
func TestHS256HeaderCacheBound(t *testing.T) {
	t.Parallel()
	v := newTestVerifier(t, Config{HMACSecret: secret})
	for i := range 3 * maxHeaders {
		tok := hsToken(secret, `{"alg":"HS256","kid":"`+strconv.Itoa(i)+`"}`, `{"sub":"a"}`)
		if _, err := v.Verify(tok); err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
	}
	n := 0
	v.fast.headers.Range(func(any, any) bool { n++; return true })
	if n > maxHeaders {
		t.Fatalf("%d headers cached, want at most %d", n, maxHeaders)
	}
}

// FuzzHS256FastPath: for any claims and header, signed or not, the fast
// path and the library agree.
func FuzzHS256FastPath(f *testing.F) {
	f.Add(`{"alg":"HS256","typ":"JWT"}`, `{"sub":"a","channels":["x"]}`, true)
	f.Add(`{"alg":"HS256"}`, `{"exp":1}`, true)
	f.Add(`{"alg":"HS256"}`, `{"sub":"a"}`, false)
	f.Add(`{"Alg":"HS256"}`, `{"Sub":1}`, true)
	f.Fuzz(func(t *testing.T, header, payload string, signed bool) {
		v := newTestVerifier(t, Config{HMACSecret: secret})
		key := secret
		if !signed {
			key = otherSecret
		}
		sameVerdict(t, v, hsToken(key, header, payload))
	})
}

// TestHS256TimeBoundaries holds the fast path's time checks to the
// library's at their edges: exp, nbf and iat exactly at, just inside and
// just outside the leeway, with the leeway on and off.
func TestHS256TimeBoundaries(t *testing.T) {
	h := `{"alg":"HS256","typ":"JWT"}`
	for _, leeway := range []time.Duration{-1, 30 * time.Second} {
		v := newTestVerifier(t, Config{HMACSecret: secret, Leeway: leeway, TokenCache: -1})
		l := v.leeway
		for _, d := range []time.Duration{-l - time.Second, -l, -l + time.Second, -time.Second, 0, time.Second, l - time.Second, l, l + time.Second} {
			at := itoa(testNow.Add(d).Unix())
			for _, claim := range []string{"exp", "nbf", "iat"} {
				sameVerdict(t, v, hsToken(secret, h, `{"sub":"a","`+claim+`":`+at+`}`))
			}
		}
	}
}

// TestHS256ZeroExpiry: a token whose exp is the zero time (-62135596800,
// 0001-01-01) is refused as expired by the fast path as by the library;
// the zero time is not "no expiry" there.
func TestHS256ZeroExpiry(t *testing.T) {
	t.Parallel()
	v := newTestVerifier(t, Config{HMACSecret: secret, TokenCache: -1})
	tok := hsToken(secret, `{"alg":"HS256","typ":"JWT"}`, `{"sub":"a","exp":-62135596800}`)
	sameVerdict(t, v, tok)
	_, err := v.Verify(tok)
	wantReason(t, err, ErrExpired)
}

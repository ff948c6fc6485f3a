package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// rawToken signs arbitrary claims with an arbitrary method, for tokens
// Sign refuses to make.
func rawToken(t *testing.T, m jwt.SigningMethod, claims jwt.Claims, key any) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatalf("sign raw token: %v", err)
	}
	return s
}

// forgeHeader returns a token with the given header JSON and claims JSON,
// and signature sig.
func forgeHeader(header, claims, sig string) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims)) + "." + sig
}

func TestVerify(t *testing.T) {
	t.Parallel()
	ks := testKeys()
	hmacCfg := Config{HMACSecret: secret}
	rsaCfg := Config{RSAPublicKeys: []*rsa.PublicKey{&ks.rsa.PublicKey}}
	ecCfg := Config{ECDSAPublicKeys: []*ecdsa.PublicKey{&ks.p256.PublicKey, &ks.p384.PublicKey}}
	allCfg := Config{
		HMACSecret:      secret,
		RSAPublicKeys:   []*rsa.PublicKey{&ks.rsa2.PublicKey, &ks.rsa.PublicKey},
		ECDSAPublicKeys: []*ecdsa.PublicKey{&ks.p256.PublicKey},
	}
	issCfg := Config{HMACSecret: secret, Issuer: "https://issuer.example", Audience: "herald"}
	hour := testNow.Add(time.Hour)
	base := TokenSpec{Subject: "alice", Subscribe: []string{"news", "chat:*"}, Publish: []string{"chat:*"}, ExpiresAt: hour}
	with := func(f func(*TokenSpec)) TokenSpec { s := base; f(&s); return s }
	rsaPEM := pemPublic(t, &ks.rsa.PublicKey)
	regs := func(exp time.Time) jwt.RegisteredClaims {
		return jwt.RegisteredClaims{Subject: "alice", ExpiresAt: jwt.NewNumericDate(exp)}
	}

	tests := []struct {
		name    string
		cfg     Config
		token   func(t *testing.T) string
		wantErr *Error
		wantSub string
	}{
		{name: "HS256 ok", cfg: hmacCfg, token: func(t *testing.T) string { return mustSign(t, secret, base) }, wantSub: "alice"},
		{name: "RS256 ok", cfg: rsaCfg, token: func(t *testing.T) string { return mustSign(t, ks.rsa, base) }, wantSub: "alice"},
		{name: "RS256 ok with second of two keys", cfg: allCfg, token: func(t *testing.T) string { return mustSign(t, ks.rsa, base) }, wantSub: "alice"},
		{name: "PS256 ok", cfg: rsaCfg, token: func(t *testing.T) string {
			return rawToken(t, jwt.SigningMethodPS256, wireClaims{RegisteredClaims: regs(hour)}, ks.rsa)
		}, wantSub: "alice"},
		{name: "ES256 ok", cfg: ecCfg, token: func(t *testing.T) string { return mustSign(t, ks.p256, base) }, wantSub: "alice"},
		{name: "ES384 ok", cfg: ecCfg, token: func(t *testing.T) string { return mustSign(t, ks.p384, base) }, wantSub: "alice"},
		{name: "HS384 ok", cfg: hmacCfg, token: func(t *testing.T) string {
			return rawToken(t, jwt.SigningMethodHS384, wireClaims{RegisteredClaims: regs(hour)}, secret)
		}, wantSub: "alice"},
		{name: "no exp ok", cfg: hmacCfg, token: func(t *testing.T) string {
			return mustSign(t, secret, with(func(s *TokenSpec) { s.ExpiresAt = time.Time{} }))
		}, wantSub: "alice"},

		{name: "expired beyond leeway", cfg: hmacCfg, wantErr: ErrExpired, token: func(t *testing.T) string {
			return mustSign(t, secret, with(func(s *TokenSpec) { s.ExpiresAt = testNow.Add(-31 * time.Second) }))
		}},
		{name: "expired exactly at leeway", cfg: hmacCfg, wantErr: ErrExpired, token: func(t *testing.T) string {
			return mustSign(t, secret, with(func(s *TokenSpec) { s.ExpiresAt = testNow.Add(-30 * time.Second) }))
		}},
		{name: "expired within leeway ok", cfg: hmacCfg, wantSub: "alice", token: func(t *testing.T) string {
			return mustSign(t, secret, with(func(s *TokenSpec) { s.ExpiresAt = testNow.Add(-29 * time.Second) }))
		}},
		{name: "expired with no leeway", cfg: Config{HMACSecret: secret, Leeway: -1}, wantErr: ErrExpired, token: func(t *testing.T) string {
			return mustSign(t, secret, with(func(s *TokenSpec) { s.ExpiresAt = testNow.Add(-time.Second) }))
		}},
		{name: "nbf in the future", cfg: hmacCfg, wantErr: ErrNotYetValid, token: func(t *testing.T) string {
			return mustSign(t, secret, with(func(s *TokenSpec) { s.NotBefore = testNow.Add(time.Minute) }))
		}},
		{name: "nbf within leeway ok", cfg: hmacCfg, wantSub: "alice", token: func(t *testing.T) string {
			return mustSign(t, secret, with(func(s *TokenSpec) { s.NotBefore = testNow.Add(20 * time.Second) }))
		}},
		{name: "iat in the future", cfg: hmacCfg, wantErr: ErrNotYetValid, token: func(t *testing.T) string {
			return mustSign(t, secret, with(func(s *TokenSpec) { s.IssuedAt = testNow.Add(time.Hour) }))
		}},

		{name: "HS256 wrong secret", cfg: hmacCfg, wantErr: ErrBadSignature, token: func(t *testing.T) string { return mustSign(t, otherSecret, base) }},
		{name: "RS256 wrong key", cfg: rsaCfg, wantErr: ErrBadSignature, token: func(t *testing.T) string { return mustSign(t, ks.rsa2, base) }},
		{name: "ES256 wrong key", cfg: ecCfg, wantErr: ErrBadSignature, token: func(t *testing.T) string { return mustSign(t, ks.p256b, base) }},
		{name: "tampered claims", cfg: hmacCfg, wantErr: ErrBadSignature, token: func(t *testing.T) string {
			parts := strings.Split(mustSign(t, secret, base), ".")
			other := strings.Split(mustSign(t, secret, with(func(s *TokenSpec) { s.Subscribe = []string{"*"} })), ".")
			return parts[0] + "." + other[1] + "." + parts[2]
		}},

		{name: "HS256 when only RSA", cfg: rsaCfg, wantErr: ErrWrongAlgorithm, token: func(t *testing.T) string { return mustSign(t, secret, base) }},
		{name: "RS256 when only HMAC", cfg: hmacCfg, wantErr: ErrWrongAlgorithm, token: func(t *testing.T) string { return mustSign(t, ks.rsa, base) }},
		{name: "ES256 when only HMAC", cfg: hmacCfg, wantErr: ErrWrongAlgorithm, token: func(t *testing.T) string { return mustSign(t, ks.p256, base) }},
		{name: "ES384 when only P-256 keys", cfg: allCfg, wantErr: ErrWrongAlgorithm, token: func(t *testing.T) string { return mustSign(t, ks.p384, base) }},
		{name: "confusion: HS256 keyed with RSA public PEM, RSA only", cfg: rsaCfg, wantErr: ErrWrongAlgorithm, token: func(t *testing.T) string {
			return rawToken(t, jwt.SigningMethodHS256, wireClaims{RegisteredClaims: regs(hour)}, rsaPEM)
		}},
		{name: "confusion: HS256 keyed with RSA public PEM, RSA and HMAC", cfg: allCfg, wantErr: ErrBadSignature, token: func(t *testing.T) string {
			return rawToken(t, jwt.SigningMethodHS256, wireClaims{RegisteredClaims: regs(hour)}, rsaPEM)
		}},
		{name: "alg none", cfg: allCfg, wantErr: ErrWrongAlgorithm, token: func(t *testing.T) string {
			return rawToken(t, jwt.SigningMethodNone, wireClaims{RegisteredClaims: regs(hour)}, jwt.UnsafeAllowNoneSignatureType)
		}},
		{name: "alg NONE forged", cfg: allCfg, wantErr: ErrWrongAlgorithm, token: func(t *testing.T) string {
			return forgeHeader(`{"alg":"NONE","typ":"JWT"}`, `{"sub":"alice"}`, "")
		}},
		{name: "alg unknown", cfg: allCfg, wantErr: ErrWrongAlgorithm, token: func(t *testing.T) string {
			return forgeHeader(`{"alg":"XS999"}`, `{"sub":"alice"}`, "c2ln")
		}},
		{name: "alg missing", cfg: allCfg, wantErr: ErrWrongAlgorithm, token: func(t *testing.T) string {
			return forgeHeader(`{"typ":"JWT"}`, `{"sub":"alice"}`, "c2ln")
		}},

		{name: "empty", cfg: hmacCfg, wantErr: ErrMissing, token: func(*testing.T) string { return "" }},
		{name: "one segment", cfg: hmacCfg, wantErr: ErrMalformed, token: func(*testing.T) string { return "abc" }},
		{name: "four segments", cfg: hmacCfg, wantErr: ErrMalformed, token: func(*testing.T) string { return "a.b.c.d" }},
		{name: "bad base64", cfg: hmacCfg, wantErr: ErrMalformed, token: func(*testing.T) string { return "!!.??.**" }},
		{name: "header not JSON", cfg: hmacCfg, wantErr: ErrMalformed, token: func(*testing.T) string {
			return forgeHeader(`nope`, `{}`, "c2ln")
		}},
		{name: "channels of the wrong type", cfg: hmacCfg, wantErr: ErrMalformed, token: func(*testing.T) string {
			return forgeHeader(`{"alg":"HS256"}`, `{"channels":42}`, "c2ln")
		}},
		{name: "too long", cfg: hmacCfg, wantErr: ErrMalformed, token: func(*testing.T) string { return strings.Repeat("a", MaxTokenLen+1) }},

		{name: "issuer and audience ok", cfg: issCfg, wantSub: "alice", token: func(t *testing.T) string {
			return mustSign(t, secret, with(func(s *TokenSpec) { s.Issuer, s.Audience = "https://issuer.example", []string{"other", "herald"} }))
		}},
		{name: "issuer mismatch", cfg: issCfg, wantErr: ErrWrongIssuer, token: func(t *testing.T) string {
			return mustSign(t, secret, with(func(s *TokenSpec) { s.Issuer, s.Audience = "https://evil.example", []string{"herald"} }))
		}},
		{name: "issuer missing", cfg: issCfg, wantErr: ErrWrongIssuer, token: func(t *testing.T) string {
			return mustSign(t, secret, with(func(s *TokenSpec) { s.Audience = []string{"herald"} }))
		}},
		{name: "audience mismatch", cfg: issCfg, wantErr: ErrWrongAudience, token: func(t *testing.T) string {
			return mustSign(t, secret, with(func(s *TokenSpec) { s.Issuer, s.Audience = "https://issuer.example", []string{"other"} }))
		}},
		{name: "bad channel pattern", cfg: hmacCfg, wantErr: ErrInvalidClaims, token: func(t *testing.T) string {
			return mustSign(t, secret, with(func(s *TokenSpec) { s.Subscribe = []string{"a*b.c"} }))
		}},
		{name: "too many patterns", cfg: hmacCfg, wantErr: ErrInvalidClaims, token: func(t *testing.T) string {
			return mustSign(t, secret, with(func(s *TokenSpec) { s.Publish = make([]string, maxPatterns+1) }))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := newTestVerifier(t, tc.cfg)
			c, err := v.Verify(tc.token(t))
			if tc.wantErr != nil {
				var got *Error
				if !errors.As(err, &got) || got != tc.wantErr {
					t.Fatalf("Verify error = %v, want reason %q", err, tc.wantErr.Code)
				}
				if strings.Contains(err.Error(), string(secret)) || strings.Contains(err.Error(), "BEGIN") {
					t.Fatalf("error message leaks key material: %v", err)
				}
				if c != nil {
					t.Fatalf("Verify returned claims with an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.Subject != tc.wantSub || c.Anonymous {
				t.Fatalf("claims = %+v, want subject %q", c, tc.wantSub)
			}
		})
	}
}

func TestVerifyClaims(t *testing.T) {
	t.Parallel()
	v := newTestVerifier(t, Config{HMACSecret: secret})
	exp := testNow.Add(time.Hour)
	c, err := v.Verify(mustSign(t, secret, TokenSpec{
		Subject:   "alice",
		Subscribe: []string{"news", "private:{sub}"},
		Publish:   []string{"chat:*"},
		ExpiresAt: exp,
	}))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	checks := []struct {
		name string
		got  bool
		want bool
	}{
		{"subscribe news", c.CanSubscribe("news"), true},
		{"subscribe own private", c.CanSubscribe("private:alice"), true},
		{"subscribe other private", c.CanSubscribe("private:bob"), false},
		{"subscribe own user channel", c.CanSubscribe("user:alice"), true},
		{"subscribe other user channel", c.CanSubscribe("user:bob"), false},
		{"subscribe chat", c.CanSubscribe("chat:x"), false},
		{"publish chat", c.CanPublish("chat:x"), true},
		{"publish news", c.CanPublish("news"), false},
		{"publish own user channel", c.CanPublish("user:alice"), false},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
	if !c.ExpiresAt.Equal(exp) {
		t.Errorf("ExpiresAt = %v, want %v", c.ExpiresAt, exp)
	}
	if ttl, ok := c.TTL(testNow); !ok || ttl != time.Hour+DefaultLeeway {
		t.Errorf("TTL = %v, %v; want %v, true", ttl, ok, time.Hour+DefaultLeeway)
	}
	if c.PersonalChannel() != "user:alice" {
		t.Errorf("PersonalChannel = %q", c.PersonalChannel())
	}
}

func TestTTL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		claims  *Claims
		wantTTL time.Duration
		wantOK  bool
	}{
		{name: "nil", claims: nil},
		{name: "no expiry", claims: &Claims{}},
		{name: "future", claims: &Claims{ExpiresAt: testNow.Add(time.Minute)}, wantTTL: time.Minute, wantOK: true},
		{name: "past", claims: &Claims{ExpiresAt: testNow.Add(-time.Minute)}, wantTTL: -time.Minute, wantOK: true},
		{name: "leeway", claims: &Claims{ExpiresAt: testNow, leeway: 5 * time.Second}, wantTTL: 5 * time.Second, wantOK: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ttl, ok := tc.claims.TTL(testNow)
			if ttl != tc.wantTTL || ok != tc.wantOK {
				t.Fatalf("TTL = %v, %v; want %v, %v", ttl, ok, tc.wantTTL, tc.wantOK)
			}
		})
	}
}

func TestNewVerifierErrors(t *testing.T) {
	t.Parallel()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "nothing", cfg: Config{}, want: "no token key"},
		{name: "short secret", cfg: Config{HMACSecret: []byte("secret")}, want: "at least 32"},
		{name: "small RSA key", cfg: Config{RSAPublicKeys: []*rsa.PublicKey{&small.PublicKey}}, want: "at least 2048"},
		{name: "nil RSA key", cfg: Config{RSAPublicKeys: []*rsa.PublicKey{nil}}, want: "nil"},
		{name: "P-224 key", cfg: Config{ECDSAPublicKeys: []*ecdsa.PublicKey{&p224.PublicKey}}, want: "unsupported curve"},
		{name: "bad anonymous pattern", cfg: Config{AllowAnonymous: true, AnonymousPublish: []string{"x*y.z"}}, want: "whole segment"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewVerifier(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewVerifier error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestAnonymous(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     Config
		wantErr error
		sub     map[string]bool
		pub     map[string]bool
	}{
		{name: "not allowed", cfg: Config{HMACSecret: secret}, wantErr: ErrMissing},
		{
			name: "defaults grant nothing", cfg: Config{AllowAnonymous: true},
			sub: map[string]bool{"demo": false, "news.eu": false, "user:bob": false, "": false},
			pub: map[string]bool{"demo": false, "user:bob": false},
		},
		{
			name: "empty lists grant nothing", cfg: Config{AllowAnonymous: true, AnonymousSubscribe: []string{}, AnonymousPublish: []string{}},
			sub: map[string]bool{"demo": false, "x": false},
			pub: map[string]bool{"demo": false, "x": false},
		},
		{
			name: "star", cfg: Config{AllowAnonymous: true, AnonymousSubscribe: []string{"*"}, AnonymousPublish: []string{"demo:*"}},
			sub: map[string]bool{"demo": true, "news.eu": true, "user:bob": false, "": false},
			pub: map[string]bool{"demo:chat": true, "demo": false, "user:bob": false},
		},
		{
			name: "narrowed", cfg: Config{AllowAnonymous: true, AnonymousSubscribe: []string{"demo", "public.*"}, AnonymousPublish: []string{}},
			sub: map[string]bool{"demo": true, "public.x": true, "news": false},
			pub: map[string]bool{"demo": false},
		},
		{
			name: "{sub} grants nothing", cfg: Config{AllowAnonymous: true, AnonymousSubscribe: []string{"private:{sub}"}},
			sub: map[string]bool{"private:": false, "private:x": false},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := newTestVerifier(t, tc.cfg)
			c, err := v.Anonymous()
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Anonymous error = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if !c.Anonymous || c.Subject != "" || c.PersonalChannel() != "" {
				t.Fatalf("claims = %+v, want anonymous without subject", c)
			}
			if _, ok := c.TTL(testNow); ok {
				t.Fatalf("anonymous claims expire")
			}
			for ch, want := range tc.sub {
				if got := c.CanSubscribe(ch); got != want {
					t.Errorf("CanSubscribe(%q) = %v, want %v", ch, got, want)
				}
			}
			for ch, want := range tc.pub {
				if got := c.CanPublish(ch); got != want {
					t.Errorf("CanPublish(%q) = %v, want %v", ch, got, want)
				}
			}
		})
	}
}

// TestVerifyTokenWithOnlyAnonymous checks that a verifier without keys
// refuses a presented token instead of treating it as anonymous.
func TestVerifyTokenWithOnlyAnonymous(t *testing.T) {
	t.Parallel()
	v := newTestVerifier(t, Config{AllowAnonymous: true})
	_, err := v.Verify(mustSign(t, secret, TokenSpec{Subject: "alice"}))
	if !errors.Is(err, ErrWrongAlgorithm) {
		t.Fatalf("Verify error = %v, want ErrWrongAlgorithm", err)
	}
}

// BenchmarkVerify measures Verify per key type: "off" without the token
// cache (TokenCache -1), "new" with a cache that never has the token and
// never keeps it (a cache of one, 1024 tokens in turn, each presented
// again only long after its hash left the seen table: every Verify is a
// first check, as in a storm of new users), "hit" on a token cached
// before.
func BenchmarkVerify(b *testing.B) {
	ks := testKeys()
	spec := TokenSpec{Subject: "alice", Subscribe: []string{"news", "chat:*"}, ExpiresAt: testNow.Add(time.Hour)}
	for _, bc := range keyCases(ks) {
		toks := make([]string, 1024)
		for i := range toks {
			other := spec
			other.Subject = fmt.Sprintf("user%d", i)
			toks[i] = mustSign(b, bc.key, other)
		}
		for _, mode := range []struct {
			name  string
			cache int
			turn  int // 1: a new token each time
		}{{"off", -1, 0}, {"new", 1, 1}, {"hit", 0, 0}} {
			b.Run(bc.name+"/"+mode.name, func(b *testing.B) {
				cfg := bc.cfg
				cfg.TokenCache = mode.cache
				v := newTestVerifier(b, cfg)
				i := 0
				b.ReportAllocs()
				for b.Loop() {
					if _, err := v.Verify(toks[i]); err != nil {
						b.Fatal(err)
					}
					i = (i + mode.turn) % len(toks)
				}
			})
		}
	}
}

// BenchmarkVerifyParallel measures hits from every core at once, on 64
// cached tokens spread over the shards.
func BenchmarkVerifyParallel(b *testing.B) {
	v := newTestVerifier(b, Config{HMACSecret: secret})
	toks := make([]string, 64)
	for i := range toks {
		toks[i] = mustSign(b, secret, TokenSpec{Subject: fmt.Sprintf("user%d", i), Subscribe: []string{"news"}, ExpiresAt: testNow.Add(time.Hour)})
		for range 2 { // the second check keeps it
			if _, err := v.Verify(toks[i]); err != nil {
				b.Fatal(err)
			}
		}
	}
	var next atomic.Int32
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7))
		for pb.Next() {
			if _, err := v.Verify(toks[i%len(toks)]); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
}

package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSignErrors(t *testing.T) {
	t.Parallel()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  any
		want string
	}{
		{name: "nil", key: nil, want: "no key"},
		{name: "short secret", key: []byte("short"), want: "at least 32"},
		{name: "small RSA key", key: small, want: "at least 2048"},
		{name: "P-224", key: p224, want: "unsupported curve"},
		{name: "Ed25519", key: edPriv, want: "unsupported key type"},
		{name: "string secret", key: string(secret), want: "unsupported key type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Sign(tc.key, TokenSpec{Subject: "a"})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Sign error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestVerifyConcurrent runs one Verifier from several goroutines, as the
// event loops do; run with -race.
func TestVerifyConcurrent(t *testing.T) {
	t.Parallel()
	ks := testKeys()
	v := newTestVerifier(t, Config{
		HMACSecret:      secret,
		RSAPublicKeys:   []*rsa.PublicKey{&ks.rsa.PublicKey},
		ECDSAPublicKeys: []*ecdsa.PublicKey{&ks.p256.PublicKey},
		AllowAnonymous:  true,
	})
	spec := TokenSpec{Subject: "alice", Subscribe: []string{"news"}, ExpiresAt: testNow.Add(time.Minute)}
	tokens := []string{mustSign(t, secret, spec), mustSign(t, ks.rsa, spec), mustSign(t, ks.p256, spec)}
	var wg sync.WaitGroup
	errs := make(chan error, 4*len(tokens))
	for range 4 {
		for _, tok := range tokens {
			wg.Go(func() {
				for range 10 {
					c, err := v.Verify(tok)
					if err != nil {
						errs <- err
						return
					}
					if !c.CanSubscribe("news") {
						errs <- ErrInvalidClaims
						return
					}
					if _, err := v.Anonymous(); err != nil {
						errs <- err
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

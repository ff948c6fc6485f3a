package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"sync"
	"testing"
	"time"
)

// testNow is the fixed clock of the verifier tests.
var testNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// secret and otherSecret are HMAC secrets of the minimum length.
var (
	secret      = []byte("0123456789abcdef0123456789abcdef")
	otherSecret = []byte("fedcba9876543210fedcba9876543210")
)

// keySet holds the asymmetric keys the tests sign with; generating RSA keys
// is slow, so they are made once per test binary.
type keySet struct {
	rsa, rsa2   *rsa.PrivateKey
	p256, p256b *ecdsa.PrivateKey
	p384        *ecdsa.PrivateKey
}

var testKeys = sync.OnceValue(func() keySet {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	var ks keySet
	var err error
	ks.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	ks.rsa2, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	ks.p256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	ks.p256b, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	ks.p384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	must(err)
	return ks
})

// pemPublic returns the PKIX PEM encoding of pub.
func pemPublic(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatalf("marshal public key: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// newTestVerifier builds a verifier on the fixed clock.
func newTestVerifier(t testing.TB, cfg Config) *Verifier {
	t.Helper()
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	v.now = func() time.Time { return testNow }
	return v
}

// mustSign signs spec with key or fails the test.
func mustSign(t testing.TB, key any, spec TokenSpec) string {
	t.Helper()
	tok, err := Sign(key, spec)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return tok
}

package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestAddPublicKeyPEM(t *testing.T) {
	t.Parallel()
	ks := testKeys()
	certDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "herald test"},
		NotBefore:    time.Unix(0, 0),
		NotAfter:     time.Unix(1<<31, 0),
	}, &x509.Certificate{SerialNumber: big.NewInt(1)}, &ks.p256b.PublicKey, ks.p256b)
	if err != nil {
		t.Fatalf("create certificate: %v", err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaPKCS8, err := x509.MarshalPKCS8PrivateKey(ks.rsa)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		data         []byte
		wantRSA      int
		wantEC       int
		wantErr      string
		verifyWithEC *ecdsa.PrivateKey // when set, a token signed with it must verify
	}{
		{name: "PKIX RSA", data: pemPublic(t, &ks.rsa.PublicKey), wantRSA: 1},
		{name: "PKCS1 RSA", data: pemBlock("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&ks.rsa.PublicKey)), wantRSA: 1},
		{name: "PKIX EC", data: pemPublic(t, &ks.p256.PublicKey), wantEC: 1, verifyWithEC: ks.p256},
		{name: "certificate", data: pemBlock("CERTIFICATE", certDER), wantEC: 1, verifyWithEC: ks.p256b},
		{
			name:    "several blocks and text",
			data:    append(append([]byte("a comment\n"), pemPublic(t, &ks.rsa.PublicKey)...), pemPublic(t, &ks.p384.PublicKey)...),
			wantRSA: 1, wantEC: 1,
		},
		{name: "private key refused", data: pemBlock("PRIVATE KEY", rsaPKCS8), wantErr: "private key"},
		{name: "Ed25519 refused", data: pemPublic(t, edPub), wantErr: "unsupported key type"},
		{name: "garbage", data: []byte("not PEM"), wantErr: "no public key"},
		{name: "broken DER", data: pemBlock("PUBLIC KEY", []byte{1, 2, 3}), wantErr: "parse PEM block"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var cfg Config
			err := cfg.AddPublicKeyPEM(tc.data)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("AddPublicKeyPEM error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("AddPublicKeyPEM: %v", err)
			}
			if len(cfg.RSAPublicKeys) != tc.wantRSA || len(cfg.ECDSAPublicKeys) != tc.wantEC {
				t.Fatalf("got %d RSA and %d ECDSA keys, want %d and %d",
					len(cfg.RSAPublicKeys), len(cfg.ECDSAPublicKeys), tc.wantRSA, tc.wantEC)
			}
			if tc.verifyWithEC != nil {
				v := newTestVerifier(t, cfg)
				if _, err := v.Verify(mustSign(t, tc.verifyWithEC, TokenSpec{Subject: "a"})); err != nil {
					t.Fatalf("Verify with the loaded key: %v", err)
				}
			}
		})
	}
}

func TestAddPublicKeyFile(t *testing.T) {
	t.Parallel()
	ks := testKeys()
	dir := t.TempDir()
	path := filepath.Join(dir, "rsa.pem")
	if err := os.WriteFile(path, pemPublic(t, &ks.rsa.PublicKey), 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg Config
	if err := cfg.AddPublicKeyFile(path); err != nil {
		t.Fatalf("AddPublicKeyFile: %v", err)
	}
	v := newTestVerifier(t, cfg)
	if _, err := v.Verify(mustSign(t, ks.rsa, TokenSpec{Subject: "a"})); err != nil {
		t.Fatalf("Verify with the loaded key: %v", err)
	}
	if err := cfg.AddPublicKeyFile(filepath.Join(dir, "missing.pem")); err == nil {
		t.Fatal("AddPublicKeyFile of a missing file succeeded")
	}
}

func TestParsePrivateKeyPEM(t *testing.T) {
	t.Parallel()
	ks := testKeys()
	must := func(der []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	_, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecParams := pemBlock("EC PARAMETERS", []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07})
	tests := []struct {
		name    string
		data    []byte
		cfg     Config // verifies the signed token when no error is wanted
		wantErr string
	}{
		{name: "PKCS1 RSA", data: pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(ks.rsa)), cfg: Config{RSAPublicKeys: []*rsa.PublicKey{&ks.rsa.PublicKey}}},
		{name: "PKCS8 RSA", data: pemBlock("PRIVATE KEY", must(x509.MarshalPKCS8PrivateKey(ks.rsa))), cfg: Config{RSAPublicKeys: []*rsa.PublicKey{&ks.rsa.PublicKey}}},
		{
			name: "SEC1 EC after EC PARAMETERS",
			data: append(ecParams, pemBlock("EC PRIVATE KEY", must(x509.MarshalECPrivateKey(ks.p256)))...),
			cfg:  Config{ECDSAPublicKeys: []*ecdsa.PublicKey{&ks.p256.PublicKey}},
		},
		{name: "PKCS8 P-521", data: pemBlock("PRIVATE KEY", must(x509.MarshalPKCS8PrivateKey(p521))), cfg: Config{ECDSAPublicKeys: []*ecdsa.PublicKey{&p521.PublicKey}}},
		{name: "Ed25519 refused", data: pemBlock("PRIVATE KEY", must(x509.MarshalPKCS8PrivateKey(edPriv))), wantErr: "Ed25519"},
		{name: "public key only", data: pemPublic(t, &ks.rsa.PublicKey), wantErr: "no private key"},
		{name: "broken DER", data: pemBlock("EC PRIVATE KEY", []byte{1}), wantErr: "parse PEM block"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			key, err := ParsePrivateKeyPEM(tc.data)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParsePrivateKeyPEM error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePrivateKeyPEM: %v", err)
			}
			v := newTestVerifier(t, tc.cfg)
			if _, err := v.Verify(mustSign(t, key, TokenSpec{Subject: "a"})); err != nil {
				t.Fatalf("Verify a token signed with the parsed key: %v", err)
			}
		})
	}
}

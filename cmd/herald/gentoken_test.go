package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-push/herald/auth"
)

// runGentoken runs `herald gentoken args...` and returns what it printed.
func runGentoken(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newGentokenCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return strings.TrimSpace(out.String()), err
}

// writePEM writes one PEM block to a file in dir and returns its path.
func writePEM(t *testing.T, dir, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestGentoken(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	dir := t.TempDir()
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaDER, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	ecPath := writePEM(t, dir, "ec.pem", "EC PRIVATE KEY", ecDER)
	rsaPath := writePEM(t, dir, "rsa.pem", "PRIVATE KEY", rsaDER)

	tests := []struct {
		name    string
		env     string // HERALD_JWT_SECRET
		args    []string
		cfg     auth.Config
		wantErr string
		check   func(t *testing.T, c *auth.Claims)
	}{
		{
			name: "secret flag",
			args: []string{"--secret", secret, "--sub", "alice", "--channel", "news.*", "--channel", "private:{sub}", "--publish", "chat:*"},
			cfg:  auth.Config{HMACSecret: []byte(secret)},
			check: func(t *testing.T, c *auth.Claims) {
				if c.Subject != "alice" || !c.CanSubscribe("news.eu") || !c.CanSubscribe("private:alice") ||
					c.CanSubscribe("private:bob") || !c.CanPublish("chat:x") || c.CanPublish("news.eu") {
					t.Errorf("claims grant the wrong channels: %+v", c)
				}
				if ttl, ok := c.TTL(time.Now()); !ok || ttl < 59*time.Minute || ttl > 61*time.Minute+auth.DefaultLeeway {
					t.Errorf("TTL = %v, %v; want about an hour", ttl, ok)
				}
			},
		},
		{
			name: "secret from environment, no expiry",
			env:  secret,
			args: []string{"--sub", "bob", "--ttl", "0"},
			cfg:  auth.Config{HMACSecret: []byte(secret)},
			check: func(t *testing.T, c *auth.Claims) {
				if _, ok := c.TTL(time.Now()); ok || c.Subject != "bob" {
					t.Errorf("claims = %+v, want subject bob without expiry", c)
				}
			},
		},
		{
			name: "ECDSA key",
			args: []string{"--key", ecPath, "--sub", "carol", "--issuer", "iss", "--audience", "herald"},
			cfg:  auth.Config{ECDSAPublicKeys: []*ecdsa.PublicKey{&ecKey.PublicKey}, Issuer: "iss", Audience: "herald"},
			check: func(t *testing.T, c *auth.Claims) {
				if c.Subject != "carol" {
					t.Errorf("subject = %q", c.Subject)
				}
			},
		},
		{
			name: "RSA key",
			args: []string{"--key", rsaPath, "--sub", "dave", "--ttl", "5m"},
			cfg:  auth.Config{RSAPublicKeys: []*rsa.PublicKey{&rsaKey.PublicKey}},
			check: func(t *testing.T, c *auth.Claims) {
				if ttl, ok := c.TTL(time.Now()); !ok || ttl > 5*time.Minute+auth.DefaultLeeway {
					t.Errorf("TTL = %v, %v; want at most 5m plus leeway", ttl, ok)
				}
			},
		},
		{name: "no key", args: []string{"--sub", "x"}, wantErr: "no key"},
		{name: "both", args: []string{"--secret", secret, "--key", ecPath}, wantErr: "not both"},
		{name: "short secret", args: []string{"--secret", "short"}, wantErr: "at least 32"},
		{name: "missing key file", args: []string{"--key", filepath.Join(dir, "nope.pem")}, wantErr: "read key"},
		{name: "bad pattern", args: []string{"--secret", secret, "--channel", "a*b.c"}, wantErr: "whole segment"},
		{name: "negative ttl", args: []string{"--secret", secret, "--ttl", "-1m"}, wantErr: "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(secretEnv, tc.env) // not parallel: the environment is shared
			out, err := runGentoken(t, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("gentoken error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("gentoken: %v", err)
			}
			v, err := auth.NewVerifier(tc.cfg)
			if err != nil {
				t.Fatalf("NewVerifier: %v", err)
			}
			c, err := v.Verify(out)
			if err != nil {
				t.Fatalf("Verify(%q): %v", out, err)
			}
			tc.check(t, c)
		})
	}
}

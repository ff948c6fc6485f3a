package main

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestGencert(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	o := gencertOptions{
		hosts:    []string{"localhost", "127.0.0.1"},
		certPath: filepath.Join(dir, "cert.pem"),
		keyPath:  filepath.Join(dir, "key.pem"),
		validFor: time.Hour,
	}
	now := time.Now()
	if err := writeDevCert(o, now); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(o.certPath, o.keyPath)
	if err != nil {
		t.Fatalf("the pair does not load: %v", err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	tests := []struct {
		name string
		host string
		at   time.Time
		ok   bool
	}{
		{"dns name", "localhost", now, true},
		{"ip address", "127.0.0.1", now, true},
		{"other name", "example.com", now, false},
		{"expired", "localhost", now.Add(2 * time.Hour), false},
	}
	for _, tc := range tests {
		_, err := cert.Verify(x509.VerifyOptions{DNSName: tc.host, Roots: pool, CurrentTime: tc.at})
		if (err == nil) != tc.ok {
			t.Errorf("%s: verify err = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	if st, _ := os.Stat(o.keyPath); st.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v, want 0600", st.Mode().Perm())
	}
	if err := writeDevCert(o, now); err == nil {
		t.Error("overwrote existing files without --force")
	}
	o.force = true
	if err := writeDevCert(o, now); err != nil {
		t.Errorf("with --force: %v", err)
	}
}

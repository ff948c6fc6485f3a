package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/herald-push/herald/internal/wstest"
)

// writeTestCert writes a self-signed certificate for 127.0.0.1 and its key
// as PEM files and returns their paths and a pool trusting it.
func writeTestCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	return writeTestCertSerial(t, 1)
}

// writeTestCertSerial is writeTestCert with the given serial number.
func writeTestCertSerial(t *testing.T, serial int64) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}

// TestTLSHandshakeCapsAtAccept: idle sockets on the TLS listener count
// against the per-address handshake cap from their accept, so one address
// cannot hold every TLS handshake slot; the slots come back when the
// sockets go, and a real wss client then gets through.
func TestTLSHandshakeCapsAtAccept(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.TLSListen = "127.0.0.1:0"
	certFile, keyFile, pool := writeTestCert(t)
	cfg.TLSCert, cfg.TLSKey = certFile, keyFile
	cfg.MaxHandshakesPerIP = 2
	s := startServer(t, cfg, newRecorder())
	addr := s.TLSAddr().String()
	var idle []net.Conn
	for range 2 {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = nc.Close() })
		idle = append(idle, nc)
	}
	waitCounter(t, "handshakes in progress", 2, func() int64 { return s.Stats().HandshakesInProgress })
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	_ = extra.SetReadDeadline(time.Now().Add(testTimeout))
	if n, err := extra.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("read %d, %v: want the third socket closed at accept", n, err)
	}
	if n := s.Stats().RefusedHandshakesPerIP; n != 1 {
		t.Errorf("RefusedHandshakesPerIP = %d, want 1", n)
	}
	for _, nc := range idle {
		_ = nc.Close()
	}
	waitCounter(t, "handshakes in progress", 0, func() int64 { return s.Stats().HandshakesInProgress })
	wc := wstest.Dial(t, addr, wstest.Options{TLS: &tls.Config{RootCAs: pool}})
	wc.Send(wstest.Frame{Fin: true, Op: wstest.OpText, Payload: []byte("hi")})
	if f := readFrame(t, wc); string(f.Payload) != "hi" {
		t.Fatalf("echo over TLS: %q", f.Payload)
	}
	waitCounter(t, "handshakes in progress after the upgrade", 0, func() int64 { return s.Stats().HandshakesInProgress })
}

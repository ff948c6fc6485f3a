package server

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"

	"github.com/herald-push/herald/internal/wstest"
)

// serialOf handshakes with addr and returns the serial number of the
// certificate the server showed.
func serialOf(t *testing.T, addr string, roots *x509.CertPool) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots})
	if err != nil {
		t.Fatalf("tls dial: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
}

// TestTLSReload: ReloadTLS gives new handshakes the pair now in the files
// (cert B, serial 2) while a connection opened under cert A keeps
// echoing; a bad pair (a key that is not the certificate's) is refused,
// counted, and B is kept.
func TestTLSReload(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.TLSListen = "127.0.0.1:0"
	certA, keyA, poolA := writeTestCertSerial(t, 1)
	cfg.TLSCert, cfg.TLSKey = certA, keyA
	s := startServer(t, cfg, newRecorder())
	addr := s.TLSAddr().String()

	old := wstest.Dial(t, addr, wstest.Options{TLS: &tls.Config{RootCAs: poolA}})
	if got := serialOf(t, addr, poolA); got != "1" {
		t.Fatalf("serial before the reload: %s", got)
	}
	certB, keyB, poolB := writeTestCertSerial(t, 2)
	copyFile(t, certB, certA)
	copyFile(t, keyB, keyA)
	if err := s.ReloadTLS(); err != nil {
		t.Fatalf("ReloadTLS: %v", err)
	}
	if got := serialOf(t, addr, poolB); got != "2" {
		t.Fatalf("serial after the reload: %s, want 2", got)
	}
	old.Send(wstest.Frame{Fin: true, Op: wstest.OpText, Payload: []byte("still here")})
	if f := readFrame(t, old); string(f.Payload) != "still here" {
		t.Fatalf("echo on the connection opened before the reload: %q", f.Payload)
	}

	// A bad pair: B's certificate with another key.
	_, keyC, _ := writeTestCertSerial(t, 3)
	copyFile(t, keyC, keyA)
	if err := s.ReloadTLS(); err == nil {
		t.Fatal("ReloadTLS accepted a key that is not the certificate's")
	}
	if got := serialOf(t, addr, poolB); got != "2" {
		t.Fatalf("serial after a refused reload: %s, want 2 kept", got)
	}
	st := s.tlsStats()
	if st.CertReloads != 1 || st.CertReloadErrors != 1 {
		t.Fatalf("reloads %d, errors %d; want 1 and 1", st.CertReloads, st.CertReloadErrors)
	}
	old.Send(wstest.Frame{Fin: true, Op: wstest.OpText, Payload: []byte("and now")})
	if f := readFrame(t, old); string(f.Payload) != "and now" {
		t.Fatalf("echo after the refused reload: %q", f.Payload)
	}
}

// TestReloadTLSWithoutListener: a server without TLS says so.
func TestReloadTLSWithoutListener(t *testing.T) {
	t.Parallel()
	s := startServer(t, testConfig(), newRecorder())
	if err := s.ReloadTLS(); err != ErrNoTLS {
		t.Fatalf("ReloadTLS = %v, want ErrNoTLS", err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	// Write and rename, the way a certificate manager replaces a file.
	if err := os.WriteFile(to+".new", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(to+".new", to); err != nil {
		t.Fatal(err)
	}
}

package tls

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-push/herald/internal/testutil"
)

// gencert writes a development certificate and key into dir with `herald
// gencert` and returns their paths and the certificate.
func gencert(t *testing.T, bin, dir string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if out, err := exec.Command(bin, "gencert", "--host", "127.0.0.1,localhost", "--cert", certFile, "--key", keyFile).CombinedOutput(); err != nil {
		t.Fatalf("herald gencert: %v\n%s", err, out)
	}
	b, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("generated certificate is not PEM")
	}
	if cert, err = x509.ParseCertificate(blk.Bytes); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}

// replace puts the contents of from at to by a rename, the way a
// certificate manager does.
func replace(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to+".new", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(to+".new", to); err != nil {
		t.Fatal(err)
	}
}

// waitMetric polls /metrics until name reads want.
func waitMetric(t *testing.T, api, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := metric(t, api, name)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", name, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCertRotationOnSIGHUP: herald serves cert A; after the files are
// replaced by cert B and a SIGHUP, a new client sees B's serial number,
// while a wss connection opened under A keeps echoing. A bad pair (B's
// certificate with another key) on the next SIGHUP is refused and counted,
// and B is still served.
func TestCertRotationOnSIGHUP(t *testing.T) {
	bin := testutil.Binary(t, "herald")
	certFile, keyFile, certA := gencert(t, bin, t.TempDir())
	certBFile, keyBFile, certB := gencert(t, bin, t.TempDir())
	p := testutil.Start(t, bin, "serve", "--listen", "127.0.0.1:{port}", "--tls-listen", "127.0.0.1:{port:tls}",
		"--tls-cert", certFile, "--tls-key", keyFile, "--log-level=info", "--echo", "--api-listen", "127.0.0.1:{port:api}")
	addr, api := p.Extra["tls"], p.Extra["api"]
	roots := x509.NewCertPool()
	roots.AddCert(certA)
	roots.AddCert(certB)
	cfg := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
	serial := func() string {
		t.Helper()
		c, err := tls.Dial("tcp", addr, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	echo := func(c *websocket.Conn, m string) {
		t.Helper()
		if err := c.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, got, err := c.ReadMessage(); err != nil || string(got) != m {
			t.Fatalf("echo: %q, %v", got, err)
		}
	}

	d := websocket.Dialer{TLSClientConfig: cfg, HandshakeTimeout: 5 * time.Second}
	old, _, err := d.Dial("wss://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	echo(old, "before")
	if got := serial(); got != certA.SerialNumber.String() {
		t.Fatalf("serial %s before the rotation, want A's %s", got, certA.SerialNumber)
	}

	replace(t, certBFile, certFile)
	replace(t, keyBFile, keyFile)
	if err := p.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, api, `herald_tls_cert_reloads_total{outcome="ok"}`, 1)
	if got := serial(); got != certB.SerialNumber.String() {
		t.Fatalf("serial %s after the rotation, want B's %s", got, certB.SerialNumber)
	}
	echo(old, "after the rotation")
	// The old connection stays on its loop; the probes' closes may still
	// be on their way to theirs.
	waitMetric(t, api, "herald_tls_loop_connections", 1)

	// A bad pair: the key of yet another certificate.
	_, keyCFile, _ := gencert(t, bin, t.TempDir())
	replace(t, keyCFile, keyFile)
	if err := p.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, api, `herald_tls_cert_reloads_total{outcome="error"}`, 1)
	if got := serial(); got != certB.SerialNumber.String() {
		t.Fatalf("serial %s after a refused reload, want B's %s kept", got, certB.SerialNumber)
	}
	echo(old, "after the refused reload")
	if !strings.Contains(p.Log.String(), "tls certificate reload refused") {
		t.Fatalf("no log line for the refused reload:\n%s", p.Log.String())
	}
}

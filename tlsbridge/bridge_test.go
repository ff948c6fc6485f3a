package tlsbridge

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// testCert returns a self-signed certificate for 127.0.0.1 and a pool
// trusting it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool
}

// startEcho runs a Bridge whose enroll echoes the plaintext back.
func startEcho(t *testing.T, cfg Config) (*Bridge, string, *x509.CertPool) {
	t.Helper()
	cert, pool := testCert(t)
	cfg.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	b, err := New(cfg, func(plain net.Conn, _ Peer) error {
		go func() {
			defer plain.Close()
			io.Copy(plain, plain)
		}()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go b.Serve(ln)
	t.Cleanup(func() { b.Close() })
	return b, ln.Addr().String(), pool
}

func TestBridgeEcho(t *testing.T) {
	t.Parallel()
	_, addr, pool := startEcho(t, Config{})
	tests := []struct {
		name    string
		version uint16
		size    int
	}{
		{"tls1.2 small", tls.VersionTLS12, 10},
		{"tls1.3 small", tls.VersionTLS13, 10},
		{"tls1.3 several records", tls.VersionTLS13, 200_000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, MinVersion: tc.version, MaxVersion: tc.version})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			msg := []byte(strings.Repeat("x", tc.size))
			// Written right behind the handshake, as TLS 1.3 clients do.
			go c.Write(msg)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(c, got); err != nil {
				t.Fatalf("echo: %v", err)
			}
		})
	}
}

func TestBridgeBadClients(t *testing.T) {
	t.Parallel()
	b, addr, _ := startEcho(t, Config{HandshakeTimeout: 300 * time.Millisecond})
	plainHTTP, _ := net.Dial("tcp", addr)
	defer plainHTTP.Close()
	plainHTTP.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	plainHTTP.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(plainHTTP), nil)
	if err != nil || resp.StatusCode != 400 {
		t.Fatalf("plain HTTP: %v %v, want 400", resp, err)
	}
	silent, _ := net.Dial("tcp", addr)
	defer silent.Close()
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err == nil {
		t.Fatal("silent client got data")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("silent client not closed by the handshake deadline")
	}
	deadline := time.Now().Add(2 * time.Second)
	for b.Stats().HandshakeTimeouts.Load() < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	// The plain HTTP request is an error, the silent client a timeout:
	// each failed handshake counts once.
	if st := b.Stats(); st.HandshakeTimeouts.Load() != 1 || st.HandshakeErrors.Load() != 1 {
		t.Fatalf("timeouts %d errors %d, want 1 and 1", st.HandshakeTimeouts.Load(), st.HandshakeErrors.Load())
	}
}

func TestBridgeCloseEndsConnections(t *testing.T) {
	t.Parallel()
	b, addr, pool := startEcho(t, Config{})
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("hi"))
	io.ReadFull(c, make([]byte, 2))
	b.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open after Close")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("connection not closed by Close")
	}
	if n := b.Stats().Active.Load(); n != 0 {
		t.Fatalf("%d active after Close", n)
	}
}

func TestNewNeedsCertificate(t *testing.T) {
	t.Parallel()
	if _, err := New(Config{TLS: &tls.Config{}}, func(net.Conn, Peer) error { return nil }); err == nil {
		t.Fatal("New accepted a config without certificate")
	}
}

// TestBridgeLastWordsReachAWritingClient: when the loop's side writes its
// last bytes and closes while the client is still sending (an oversized
// frame answered with a close frame, say), the client reads those bytes
// and a close_notify, not a reset.
func TestBridgeLastWordsReachAWritingClient(t *testing.T) {
	t.Parallel()
	cert, pool := testCert(t)
	b, err := New(Config{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}}, func(plain net.Conn, _ Peer) error {
		go func() {
			var one [1]byte
			if _, err := io.ReadFull(plain, one[:]); err != nil {
				plain.Close()
				return
			}
			plain.Write([]byte("bye"))
			plain.Close() // with the client's bytes unread
		}()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go b.Serve(ln)
	t.Cleanup(func() { b.Close() })

	for round := 0; round < 10; round++ {
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool})
		if err != nil {
			t.Fatal(err)
		}
		wrote := make(chan struct{})
		go func() {
			defer close(wrote)
			chunk := make([]byte, 64<<10)
			for i := 0; i < 64; i++ { // 4 MiB, more than the socket buffers hold
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		}()
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		got, err := io.ReadAll(c)
		if string(got) != "bye" || err != nil {
			t.Fatalf("round %d: read %q, %v; want \"bye\" and close_notify", round, got, err)
		}
		c.Close()
		<-wrote
	}
}

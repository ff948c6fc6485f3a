package server

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/herald-push/herald/internal/wstest"
)

// upgradeRequest is a valid upgrade request for path on addr.
func paceUpgradeRequest(addr, path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
}

// tryUpgrade opens a plain connection to addr, sends an upgrade request
// and returns the response's status and Retry-After, leaving the socket
// open (closed when the test ends) when it was upgraded.
func tryUpgrade(t *testing.T, addr string) (int, string) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(testTimeout))
	if _, err := nc.Write([]byte(paceUpgradeRequest(addr, "/"))); err != nil {
		t.Fatalf("write the request: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatalf("read the response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		_ = nc.Close()
	}
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// tlsUpgrade dials addr over TLS and asks for an upgrade; nil when it
// was answered 101.
func tlsUpgrade(addr string, pool *x509.CertPool) error {
	d := &net.Dialer{Timeout: testTimeout}
	nc, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: pool})
	if err != nil {
		return err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(testTimeout))
	if _, err := nc.Write([]byte(paceUpgradeRequest(addr, "/"))); err != nil {
		return err
	}
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// checkPaced checks a paced refusal: 503 with a Retry-After of 1 to 3 s.
func checkPaced(status int, retry string) error {
	if status != http.StatusServiceUnavailable {
		return fmt.Errorf("status %d, want 503", status)
	}
	if n, err := strconv.Atoi(retry); err != nil || n < paceRetryMin || n > paceRetryMax {
		return fmt.Errorf("Retry-After %q, want %d to %d", retry, paceRetryMin, paceRetryMax)
	}
	return nil
}

// TestAcceptPace: past the burst, new connections are answered 503 with a
// jittered Retry-After and closed, counted, while the connections already
// upgraded carry on; once the bucket refills a new one is upgraded.
func TestAcceptPace(t *testing.T) {
	t.Parallel()
	const burst = 3
	cfg := testConfig()
	// One token a second: the test's dials come much faster, so the
	// bucket is empty right after the burst, yet it refills within the
	// test's time.
	cfg.AcceptRate, cfg.AcceptBurst = 1, burst
	s := startServer(t, cfg, newRecorder())
	addr := s.Addr().String()
	var open []*wstest.Conn
	for range burst {
		open = append(open, wstest.Dial(t, addr, wstest.Options{}))
	}
	// The bucket is empty now, unless the machine stalled for a second:
	// then a later dial takes the new token and the next is refused.
	refused := 0
	for range burst + 50 {
		status, retry := tryUpgrade(t, addr)
		if status == http.StatusSwitchingProtocols {
			continue
		}
		if err := checkPaced(status, retry); err != nil {
			t.Fatal(err)
		}
		refused++
		break
	}
	if refused == 0 {
		t.Fatal("no connection refused past the burst")
	}
	st := s.Stats()
	if st.RefusedAcceptRate < 1 || st.HandshakesFailed < st.RefusedAcceptRate {
		t.Fatalf("RefusedAcceptRate %d, HandshakesFailed %d: want the refusal counted in both", st.RefusedAcceptRate, st.HandshakesFailed)
	}
	// The connections already upgraded are untouched.
	for _, wc := range open {
		wc.Send(wstest.Frame{Fin: true, Op: wstest.OpText, Payload: []byte("still here")})
		if f := readFrame(t, wc); string(f.Payload) != "still here" {
			t.Fatalf("echo: %q", f.Payload)
		}
	}
	// The bucket refills: a later connection gets through. Each try is a
	// refusal read in full; the deadline only bounds the loop.
	deadline := time.Now().Add(testTimeout)
	for {
		status, retry := tryUpgrade(t, addr)
		if status == http.StatusSwitchingProtocols {
			break
		}
		if err := checkPaced(status, retry); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("no connection upgraded after the bucket had time to refill")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAcceptPaceTLS: the TLS listener takes from the same bucket, and a
// TLS connection past the pace is closed before its TLS handshake; once
// the bucket refills a wss client gets through.
func TestAcceptPaceTLS(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.TLSListen = "127.0.0.1:0"
	certFile, keyFile, pool := writeTestCert(t)
	cfg.TLSCert, cfg.TLSKey = certFile, keyFile
	cfg.AcceptRate, cfg.AcceptBurst = 1, 1
	// The sockets below say nothing: with a deferred accept the kernel
	// would hold them past the second that refills the bucket.
	cfg.DeferAccept = -1
	s := startServer(t, cfg, newRecorder())
	wstest.Dial(t, s.Addr().String(), wstest.Options{}) // the plain port takes the one token
	tlsAddr := s.TLSAddr().String()
	closed := false
	for range 50 {
		nc, err := net.DialTimeout("tcp", tlsAddr, testTimeout)
		if err != nil {
			t.Fatal(err)
		}
		_ = nc.SetReadDeadline(time.Now().Add(testTimeout))
		// Say nothing: a socket that was admitted waits for its
		// ClientHello (up to the first-byte timeout, longer than the
		// test waits here for the refused one's close); one past the
		// pace is closed at once.
		n, err := nc.Read(make([]byte, 1))
		_ = nc.Close()
		if n == 0 && err != nil && s.Stats().RefusedAcceptRate > 0 {
			closed = true
			break
		}
	}
	if !closed {
		t.Fatalf("no TLS connection closed at accept (RefusedAcceptRate %d)", s.Stats().RefusedAcceptRate)
	}
	deadline := time.Now().Add(testTimeout)
	for {
		err := tlsUpgrade(tlsAddr, pool)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no wss connection after the bucket had time to refill: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAcceptPaceConfig: no bucket without a rate, a second's worth of
// burst by default, negative settings refused.
func TestAcceptPaceConfig(t *testing.T) {
	t.Parallel()
	if newPace(Config{}) != nil {
		t.Error("a bucket without AcceptRate")
	}
	if l := newPace(Config{AcceptRate: 250}); l == nil || l.Burst() != 250 {
		t.Errorf("default burst: %v, want 250", l)
	}
	if l := newPace(Config{AcceptRate: 0.5}); l == nil || l.Burst() != 1 {
		t.Errorf("burst of a slow pace: %v, want 1", l)
	}
	if l := newPace(Config{AcceptRate: 10, AcceptBurst: 3}); l == nil || l.Burst() != 3 {
		t.Errorf("burst: %v, want 3", l)
	}
	for _, c := range []Config{{Listen: ":0", AcceptRate: -1}, {Listen: ":0", AcceptBurst: -1}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

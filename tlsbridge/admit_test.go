package tlsbridge

import (
	"crypto/tls"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// waitStat waits until f reports want.
func waitStat(t *testing.T, what string, want uint64, f func() uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for f() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %d, want %d", what, f(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestHelloTimeout: a socket that never sends its ClientHello is closed
// after HelloTimeout, although HandshakeTimeout is far longer; a real
// handshake is not hurt by the short deadline.
func TestHelloTimeout(t *testing.T) {
	t.Parallel()
	b, addr, pool := startEcho(t, Config{HelloTimeout: 20 * time.Millisecond, HandshakeTimeout: time.Minute})
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	_ = idle.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := idle.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("read %d, %v: want the idle socket closed", n, err)
	}
	waitStat(t, "HelloTimeouts", 1, b.Stats().HelloTimeouts.Load)
	// A timeout, not also an error.
	if st := b.Stats(); st.HandshakeTimeouts.Load() != 1 || st.HandshakeErrors.Load() != 0 {
		t.Fatalf("timeouts %d errors %d, want 1 and 0", st.HandshakeTimeouts.Load(), st.HandshakeErrors.Load())
	}
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatalf("a real handshake: %v", err)
	}
	_ = c.Close()
}

// TestAdmit: Admit refuses at accept, before any TLS; a failed handshake
// gives its ticket back with Leave, a completed one hands it to Enroll.
func TestAdmit(t *testing.T) {
	t.Parallel()
	var admitted, left atomic.Int32
	var enrolled atomic.Value
	refuse := atomic.Bool{}
	cert, pool := testCert(t)
	b, err := New(Config{
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}},
		Admit: func(net.Addr) (any, bool) {
			if refuse.Load() {
				return nil, false
			}
			return admitted.Add(1), true
		},
		Leave: func(any) { left.Add(1) },
	}, func(plain net.Conn, p Peer) error {
		enrolled.Store(p.Ticket)
		return plain.Close()
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
	addr := ln.Addr().String()

	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	waitStat(t, "handshakes", 1, b.Stats().Handshakes.Load)
	deadline := time.Now().Add(10 * time.Second)
	for enrolled.Load() == nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := enrolled.Load(); got != int32(1) {
		t.Errorf("Enroll got ticket %v, want 1", got)
	}

	bad, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = bad.Write([]byte("not a TLS record at all\r\n\r\n"))
	_ = bad.Close()
	waitStat(t, "tickets left", 1, func() uint64 { return uint64(left.Load()) })

	refuse.Store(true)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := nc.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("read %d, %v: want a refused connection closed", n, err)
	}
	waitStat(t, "refused", 1, b.Stats().Refused.Load)
	if n := left.Load(); n != 1 {
		t.Errorf("Leave ran %d times, want 1 (a refused connection holds nothing)", n)
	}
}

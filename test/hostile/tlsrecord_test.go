package hostile

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Hostile TLS 1.3 records after a completed handshake, against the loop
// engine (the default). The client is crypto/tls with a KeyLogWriter: the
// handshake is crypto/tls's own, then the test knows the client's
// application traffic secret and writes its own records on the TCP socket
// (recordWriter), while the server's records, the alert among them, are
// still read through the tls.Conn, whose read state is untouched.

// recordWriter seals TLS 1.3 records as the client (RFC 8446 5.2, 7.3).
type recordWriter struct {
	h      func() hash.Hash
	keyLen int
	secret []byte
	aead   cipher.AEAD
	iv     []byte
	seq    uint64
}

func expandLabel(h func() hash.Hash, secret []byte, label string, n int) []byte {
	info := binary.BigEndian.AppendUint16(nil, uint16(n))
	info = append(info, byte(6+len(label)))
	info = append(info, "tls13 "+label...)
	info = append(info, 0)
	out, err := hkdf.Expand(h, secret, string(info), n)
	if err != nil {
		panic(err)
	}
	return out
}

func newRecordWriter(t *testing.T, suite uint16, secret []byte) *recordWriter {
	w := &recordWriter{secret: secret}
	switch suite {
	case tls.TLS_AES_128_GCM_SHA256:
		w.h, w.keyLen = sha256.New, 16
	case tls.TLS_AES_256_GCM_SHA384:
		w.h, w.keyLen = sha512.New384, 32
	default:
		t.Skipf("cipher suite %s: this test seals AES-GCM records only", tls.CipherSuiteName(suite))
	}
	w.set()
	return w
}

func (w *recordWriter) set() {
	b, err := aes.NewCipher(expandLabel(w.h, w.secret, "key", w.keyLen))
	if err != nil {
		panic(err)
	}
	w.aead, _ = cipher.NewGCM(b)
	w.iv = expandLabel(w.h, w.secret, "iv", 12)
	w.seq = 0
}

// update moves to the next write secret, after sending a KeyUpdate.
func (w *recordWriter) update() {
	w.secret = expandLabel(w.h, w.secret, "traffic upd", w.h().Size())
	w.set()
}

// record seals pt with inner content type inner.
func (w *recordWriter) record(inner byte, pt []byte) []byte {
	nonce := append([]byte(nil), w.iv...)
	for i := range 8 {
		nonce[4+i] ^= byte(w.seq >> (56 - 8*i))
	}
	w.seq++
	hdr := []byte{23, 3, 3, 0, 0}
	binary.BigEndian.PutUint16(hdr[3:], uint16(len(pt)+1+16))
	return w.aead.Seal(hdr, nonce, append(append([]byte(nil), pt...), inner), hdr)
}

// keyLog keeps the secrets crypto/tls logs.
type keyLog struct {
	mu    sync.Mutex
	lines map[string][]byte
}

func (k *keyLog) Write(p []byte) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	f := strings.Fields(string(p))
	if len(f) == 3 {
		b, err := hex.DecodeString(f[2])
		if err != nil {
			return 0, err
		}
		k.lines[f[0]] = b
	}
	return len(p), nil
}

// rawTLS is a wss connection, upgraded, whose records the test writes.
type rawTLS struct {
	tcp net.Conn
	tc  *tls.Conn
	w   *recordWriter
}

// dialRawTLS handshakes with crypto/tls (TLS 1.3), upgrades to WebSocket
// with a record of its own and returns the connection.
func dialRawTLS(t *testing.T, n *node) *rawTLS {
	t.Helper()
	tcp, err := net.Dial("tcp", n.TLS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tcp.Close() })
	kl := &keyLog{lines: map[string][]byte{}}
	cfg := n.tlsConfig()
	cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS13, tls.VersionTLS13
	cfg.NextProtos = []string{"http/1.1"}
	cfg.KeyLogWriter = kl
	tc := tls.Client(tcp, cfg)
	_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("tls handshake: %v", err)
	}
	secret := kl.lines["CLIENT_TRAFFIC_SECRET_0"]
	if secret == nil {
		t.Fatal("no CLIENT_TRAFFIC_SECRET_0 in the key log")
	}
	r := &rawTLS{tcp: tcp, tc: tc, w: newRecordWriter(t, tc.ConnectionState().CipherSuite, secret)}
	req := "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	r.write(t, r.w.record(23, []byte(req)))
	resp, err := http.ReadResponse(bufio.NewReader(tc), nil)
	if err != nil {
		t.Fatalf("upgrade over the test's own records: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: HTTP %d", resp.StatusCode)
	}
	return r
}

func (r *rawTLS) write(t *testing.T, b []byte) {
	t.Helper()
	if _, err := r.tcp.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// closedWith reads what the server sends until the connection ends and
// returns the error that ended it: "remote error: tls: <alert>" when the
// server sent an alert.
func (r *rawTLS) closedWith(t *testing.T, within time.Duration) error {
	t.Helper()
	_ = r.tc.SetReadDeadline(time.Now().Add(within))
	_, err := io.Copy(io.Discard, r.tc)
	if err == nil {
		err = io.EOF
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v", within)
	}
	return err
}

// keyUpdate is a KeyUpdate handshake message, update_not_requested.
var keyUpdate = []byte{24, 0, 0, 1, 0}

// TestTLSHostileRecords: on the loop engine, after a completed handshake,
// each kind of bad record closes that connection only, with the alert RFC
// 8446 names, and is counted in herald_tls_record_errors_total; a
// well-behaved wss client keeps getting answers all along; the server's
// memory stays bounded over many rounds.
func TestTLSHostileRecords(t *testing.T) {
	t.Parallel()
	n := startTLS(t, "--allow-anonymous")
	good, _, err := dialWS(t, &websocket.Dialer{TLSClientConfig: n.tlsConfig(), HandshakeTimeout: 10 * time.Second}, "wss", n.TLS, "")
	if err != nil {
		t.Fatal(err)
	}
	ping := func(when string) {
		t.Helper()
		good.send(map[string]any{"op": "ping"})
		if m, err := good.next(10 * time.Second); err != nil || m.Op != "pong" {
			t.Fatalf("good wss client %s: %+v, %v", when, m, err)
		}
	}
	ping("at start")
	if v := n.metric("herald_tls_loop_connections"); v != 1 {
		t.Fatalf("herald_tls_loop_connections = %v, want the good client on the loops", v)
	}

	cases := []struct {
		name  string
		alert string // in crypto/tls's words
		send  func(r *rawTLS) []byte
	}{
		{"garbage", "unexpected message", func(*rawTLS) []byte {
			return []byte("\x47\x45\x54 not a record at all \x00\x01\x02\xff\xfe")
		}},
		{"garbage-ciphertext", "bad record MAC", func(*rawTLS) []byte {
			b := []byte{23, 3, 3, 0, 64}
			return append(b, bytes.Repeat([]byte{0xa5}, 64)...)
		}},
		{"oversized", "record overflow", func(*rawTLS) []byte {
			const n = 1<<14 + 256 + 1
			b := []byte{23, 3, 3, n >> 8, n & 0xff}
			return append(b, make([]byte, 1024)...)
		}},
		{"bad-tag", "bad record MAC", func(r *rawTLS) []byte {
			b := r.w.record(23, []byte{0x89, 0x80, 1, 2, 3, 4}) // a masked ping
			b[len(b)-1] ^= 1
			return b
		}},
		{"renegotiation", "unexpected message", func(r *rawTLS) []byte {
			// A ClientHello (handshake type 1), with a plausible body.
			hello := append([]byte{1, 0, 0, 38, 3, 3}, make([]byte, 32)...)
			hello = append(hello, 0, 0, 0)
			hello = hello[:4+38]
			return r.w.record(22, hello)
		}},
		{"keyupdate-flood", "unexpected message", func(r *rawTLS) []byte {
			var b []byte
			for range 64 {
				b = append(b, r.w.record(22, keyUpdate)...)
				r.w.update()
			}
			return b
		}},
	}
	errors0 := n.metric("herald_tls_record_errors_total")
	var rss0 int64
	const rounds = 20
	for round := range rounds {
		for _, c := range cases {
			r := dialRawTLS(t, n)
			r.write(t, c.send(r))
			err := r.closedWith(t, 10*time.Second)
			if round == 0 && !strings.Contains(err.Error(), "remote error: tls: "+c.alert) {
				t.Errorf("%s: connection ended with %v, want alert %q", c.name, err, c.alert)
			}
		}
		ping(fmt.Sprintf("after round %d", round))
		if round == 0 {
			rss0 = n.rss()
		}
	}
	want := errors0 + float64(rounds*len(cases))
	if v := n.waitMetric("herald_tls_record_errors_total", want); v != want {
		t.Errorf("herald_tls_record_errors_total = %v, want %v", v, want)
	}
	if grown := n.rss() - rss0; grown > 16<<20 {
		t.Errorf("RSS grew by %d bytes over %d rounds of hostile records", grown, rounds-1)
	}
	ping("at the end")

	// A run of KeyUpdates under the cap, then data: still served.
	r := dialRawTLS(t, n)
	var b []byte
	for range 16 {
		b = append(b, r.w.record(22, keyUpdate)...)
		r.w.update()
	}
	r.write(t, append(b, r.w.record(23, []byte{0x89, 0x80, 1, 2, 3, 4})...))
	_ = r.tc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var pong [2]byte
	if _, err := io.ReadFull(r.tc, pong[:]); err != nil || pong[0] != 0x8a {
		t.Fatalf("after 16 KeyUpdates, a ping: % x, %v; want a pong", pong, err)
	}
}

// TestTLSTruncatedRecord: a record cut short, then silence, holds only that
// connection, and the liveness check (ping, then no pong) closes it; a
// well-behaved wss client on the node keeps echoing meanwhile.
func TestTLSTruncatedRecord(t *testing.T) {
	t.Parallel()
	n := startTLS(t, "--allow-anonymous", "--ping-interval=1s", "--pong-timeout=2s")
	good, _, err := dialWS(t, &websocket.Dialer{TLSClientConfig: n.tlsConfig(), HandshakeTimeout: 10 * time.Second}, "wss", n.TLS, "")
	if err != nil {
		t.Fatal(err)
	}
	// The good client reads all along, so that it answers the pings.
	pongs := make(chan msg, 16)
	go func() {
		for {
			m, err := good.next(time.Minute)
			if err != nil {
				close(pongs)
				return
			}
			if m.Op == "pong" {
				pongs <- m
			}
		}
	}()
	r := dialRawTLS(t, n)
	full := r.w.record(23, []byte{0x89, 0x80, 1, 2, 3, 4})
	r.write(t, full[:len(full)-7])
	done := make(chan error, 1)
	go func() { done <- r.closedWith(t, 30*time.Second) }()
	for i := 0; ; i++ {
		good.send(map[string]any{"op": "ping"})
		select {
		case _, ok := <-pongs:
			if !ok {
				t.Fatal("the good client's connection ended")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the good client got no pong")
		}
		select {
		case err := <-done:
			t.Logf("truncated record: connection ended with %v", err)
			good.send(map[string]any{"op": "ping"})
			if _, ok := <-pongs; !ok {
				t.Fatal("the good client's connection ended with the truncated one")
			}
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

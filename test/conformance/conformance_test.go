// Package conformance is herald's RFC 6455 conformance suite, modeled on the
// Autobahn TestSuite's categories (framing, ping/pong, reserved bits,
// opcodes, fragmentation, UTF-8, close handling, limits, opening
// handshake). It runs against the real herald binary in echo mode on
// loopback, with a client that shares no code with herald's codec.
package conformance

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-push/herald/internal/testutil"
	"github.com/herald-push/herald/internal/wstest"
)

func startEcho(t *testing.T, extra ...string) *testutil.Proc {
	t.Helper()
	bin := testutil.Binary(t, "herald")
	args := append([]string{"serve", "--echo", "--listen", "127.0.0.1:{port}", "--api-listen", "127.0.0.1:{port:api}",
		fmt.Sprint("--max-frame-size=", maxFrame), fmt.Sprint("--max-message-size=", maxMessage),
		"--handshake-timeout=1s", "--log-level=warn"}, extra...)
	return testutil.Start(t, bin, args...)
}

// TestConformance runs every frame-level case against one echo server.
func TestConformance(t *testing.T) {
	srv := startEcho(t)
	runCases(t, func(t testing.TB) *client { return dial(t, srv.Addr) })
}

// TestConformanceOverWSS runs the same cases over wss://, on the TLS
// listener: the record layer on the event loops must carry every frame
// case as the plain listener does.
func TestConformanceOverWSS(t *testing.T) {
	bin := testutil.Binary(t, "herald")
	dir := t.TempDir()
	certFile, keyFile, roots := testutil.DevCert(t, bin, dir)
	srv := startEcho(t, "--tls-listen", "127.0.0.1:{port:tls}", "--tls-cert", certFile, "--tls-key", keyFile)
	conf := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}
	addr := srv.Extra["tls"]
	runCases(t, func(t testing.TB) *client {
		return &client{t: t, Conn: wstest.Dial(t, addr, wstest.Options{Path: "/conformance", TLS: conf})}
	})
}

// runCases runs every frame-level case, each on a connection from dial,
// and checks the server is still healthy afterwards.
func runCases(t *testing.T, dial func(testing.TB) *client) {
	var passed, failed atomic.Int64
	byCat := map[string][2]int{}
	for _, tc := range cases() {
		ok := t.Run(tc.category+"/"+tc.name, func(t *testing.T) {
			tc.run(dial(t))
		})
		n := byCat[tc.category]
		if ok {
			passed.Add(1)
			n[0]++
		} else {
			failed.Add(1)
			n[1]++
		}
		byCat[tc.category] = n
	}
	for cat, n := range byCat {
		t.Logf("conformance %-14s %4d passed, %d failed", cat, n[0], n[1])
	}
	t.Logf("conformance: %d passed, %d failed", passed.Load(), failed.Load())
	// The server must still be healthy after all of that.
	c := dial(t)
	c.send(frame{Fin: true, Op: opText, Payload: []byte("still here")})
	c.expect(opText, []byte("still here"))
	c.closeCleanly()
}

// rawHTTP sends req and returns the parsed response.
func rawHTTP(t *testing.T, addr, req string) *http.Response {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading response to %q: %v", firstLine(req), err)
	}
	resp.Body.Close()
	return resp
}

func firstLine(s string) string { return strings.SplitN(s, "\r\n", 2)[0] }

const goodKey = "dGhlIHNhbXBsZSBub25jZQ=="

func upgrade(method, version string, extra ...string) string {
	h := method + " /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + goodKey + "\r\n"
	if version != "" {
		h += "Sec-WebSocket-Version: " + version + "\r\n"
	}
	for _, e := range extra {
		h += e + "\r\n"
	}
	return h + "\r\n"
}

// TestHandshake covers the opening handshake: the 101 and each refusal.
func TestHandshake(t *testing.T) {
	srv := startEcho(t)
	tests := []struct {
		name       string
		req        string
		status     int
		wantHeader [2]string
	}{
		{"ok", upgrade("GET", "13"), 101, [2]string{"Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="}},
		{"ok-lowercase-headers", strings.ToLower(upgrade("GET", "13")[:4]) + upgrade("GET", "13")[4:], 0, [2]string{}},
		{"post", upgrade("POST", "13"), 405, [2]string{}},
		{"version-8", upgrade("GET", "8"), 426, [2]string{"Sec-WebSocket-Version", "13"}},
		{"no-version", upgrade("GET", ""), 426, [2]string{"Sec-WebSocket-Version", "13"}},
		{"no-key", "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n", 400, [2]string{}},
		{"short-key", strings.Replace(upgrade("GET", "13"), goodKey, "c2hvcnQ=", 1), 400, [2]string{}},
		{"no-upgrade", "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + goodKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n", 400, [2]string{}},
		{"no-connection", "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nSec-WebSocket-Key: " + goodKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n", 400, [2]string{}},
		{"http-1.0", strings.Replace(upgrade("GET", "13"), "HTTP/1.1", "HTTP/1.0", 1), -1, [2]string{}},
		{"no-host", strings.Replace(upgrade("GET", "13"), "Host: x\r\n", "", 1), 400, [2]string{}},
		{"oversized", upgrade("GET", "13", "X-Big: "+strings.Repeat("a", 9000)), -2, [2]string{}},
		{"garbage-request-line", "HELLO\r\n\r\n", -1, [2]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.status == 0 { // lowercased method is not GET: 405 or 400
				resp := rawHTTP(t, srv.Addr, tc.req)
				if resp.StatusCode != 405 && resp.StatusCode != 400 {
					t.Fatalf("status %d, want 405 or 400", resp.StatusCode)
				}
				return
			}
			resp := rawHTTP(t, srv.Addr, tc.req)
			switch tc.status {
			case -1:
				if resp.StatusCode != 400 && resp.StatusCode != 505 {
					t.Fatalf("status %d, want 400 or 505", resp.StatusCode)
				}
			case -2:
				if resp.StatusCode != 431 && resp.StatusCode != 400 {
					t.Fatalf("status %d, want 431 or 400", resp.StatusCode)
				}
			default:
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
				}
			}
			if tc.wantHeader[0] != "" && resp.Header.Get(tc.wantHeader[0]) != tc.wantHeader[1] {
				t.Fatalf("header %s = %q, want %q", tc.wantHeader[0], resp.Header.Get(tc.wantHeader[0]), tc.wantHeader[1])
			}
		})
	}
	t.Run("request-split-byte-by-byte", func(t *testing.T) {
		c, err := net.Dial("tcp", srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		req := upgrade("GET", "13")
		for i := 0; i < len(req); i++ {
			c.Write([]byte{req[i]})
			time.Sleep(200 * time.Microsecond)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 101 {
			t.Fatalf("resp %v err %v", resp, err)
		}
	})
	t.Run("handshake-deadline", func(t *testing.T) {
		c, err := net.Dial("tcp", srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n"))
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 512)
		for {
			_, err := c.Read(buf)
			if err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatal("server kept an unfinished handshake open past its deadline (1s)")
				}
				break
			}
		}
		t.Logf("unfinished handshake closed after %v", time.Since(start).Round(time.Millisecond))
	})
}

package tls

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-push/herald/internal/testutil"
)

// metric reads one sample of herald's /metrics.
func metric(t testing.TB, api, name string) float64 { return testutil.Metric(t, api, name) }

// frame is a masked client text frame.
func frame(s string) []byte {
	m := []byte{1, 2, 3, 4}
	out := []byte{0x81, 0x80 | byte(len(s)), 1, 2, 3, 4}
	for i := range len(s) {
		out = append(out, s[i]^m[i%4])
	}
	return out
}

// TestOpenSSLEachSuite echoes over wss with openssl s_client on TLS 1.3
// with each cipher suite, the client sending a KeyUpdate (asking for one
// back) mid-stream, and on TLS 1.2, which the loop engine bridges and
// counts.
func TestOpenSSLEachSuite(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl")
	}
	srv := start(t, "--echo", "--api-listen", "127.0.0.1:{port:api}")
	cases := []struct{ name, flag, arg string }{
		{"TLS_AES_128_GCM_SHA256", "-ciphersuites", "TLS_AES_128_GCM_SHA256"},
		{"TLS_AES_256_GCM_SHA384", "-ciphersuites", "TLS_AES_256_GCM_SHA384"},
		{"TLS_CHACHA20_POLY1305_SHA256", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"},
		{"tls1.2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			version := "-tls1_3"
			if tc.name == "tls1.2" {
				version = "-tls1_2"
			}
			cmd := exec.CommandContext(ctx, "openssl", "s_client", "-connect", srv.tlsAddr, version, tc.flag, tc.arg,
				"-servername", "127.0.0.1", "-alpn", "http/1.1")
			in, _ := cmd.StdinPipe()
			outPipe, _ := cmd.StdoutPipe()
			errPipe, _ := cmd.StderrPipe()
			var stderr strings.Builder
			keyUpdates := make(chan struct{}, 8)
			go func() {
				sc := bufio.NewScanner(errPipe)
				for sc.Scan() {
					if sc.Text() == "KEYUPDATE" {
						keyUpdates <- struct{}{}
					}
				}
			}()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = in.Close(); _ = cmd.Wait() }()
			out := bufio.NewReader(outPipe)
			io.WriteString(in, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
			// s_client prints the session first; the response follows.
			for {
				line, err := out.ReadString('\n')
				if err != nil {
					t.Fatalf("no 101: %v\n%s", err, stderr.String())
				}
				if strings.HasPrefix(line, "ALPN protocol:") && !strings.Contains(line, "http/1.1") {
					t.Fatalf("ALPN: %s", line)
				}
				if strings.HasPrefix(line, "HTTP/1.1 101") {
					break
				}
			}
			for {
				line, err := out.ReadString('\n')
				if err != nil {
					t.Fatal(err)
				}
				if line == "\r\n" {
					break
				}
			}
			echo := func(msg string) {
				t.Helper()
				in.Write(frame(msg))
				got := make([]byte, 2+len(msg))
				if _, err := io.ReadFull(out, got); err != nil || string(got[2:]) != msg {
					t.Fatalf("echo %q: got %q, %v\n%s", msg, got, err, stderr.String())
				}
			}
			echo("before")
			if version == "-tls1_3" {
				for i := range 3 {
					// "K": a KeyUpdate asking for one back; s_client
					// handles the command before reading more input.
					io.WriteString(in, "K\n")
					select {
					case <-keyUpdates: // sent; the next input is data
					case <-ctx.Done():
						t.Fatal("s_client sent no KeyUpdate")
					}
					echo(strings.Repeat("after key update ", i+1))
				}
			}
		})
	}
	api := srv.Extra["api"]
	if f, e := metric(t, api, "herald_tls_fallback_total"), metric(t, api, "herald_tls_record_errors_total"); f != 1 || e != 0 {
		t.Fatalf("fallback %v, record errors %v", f, e)
	}
}

// TestGoClientOnLoop: a crypto/tls 1.3 client (gorilla over wss) lands on
// the loops, and the bridge engine still serves when asked for.
func TestGoClientOnLoop(t *testing.T) {
	for _, engine := range []string{"loop", "bridge"} {
		t.Run(engine, func(t *testing.T) {
			srv := start(t, "--echo", "--api-listen", "127.0.0.1:{port:api}", "--tls-engine", engine)
			d := websocket.Dialer{TLSClientConfig: srv.tlsConfig(tls.VersionTLS13), HandshakeTimeout: 5 * time.Second}
			c, _, err := d.Dial("wss://"+srv.tlsAddr+"/", nil)
			if err != nil {
				t.Fatal(err)
			}
			big := strings.Repeat("y", 100_000) // several records each way
			for _, m := range []string{"a", big, "b"} {
				if err := c.WriteMessage(websocket.TextMessage, []byte(m)); err != nil {
					t.Fatal(err)
				}
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, got, err := c.ReadMessage(); err != nil || string(got) != m {
					t.Fatalf("echo of %d bytes: %d, %v", len(m), len(got), err)
				}
			}
			if n := metric(t, srv.Extra["api"], "herald_tls_loop_connections"); (engine == "loop") != (n == 1) {
				t.Fatalf("%v connections on the loops with the %s engine", n, engine)
			}
			c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, _, err := c.ReadMessage(); !websocket.IsCloseError(err, 1000) {
				t.Fatalf("close: %v", err)
			}
			c.Close()
		})
	}
}

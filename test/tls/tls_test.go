// Package tls tests herald's wss:// listener end to end against the
// binary: Go clients (gorilla/websocket, coder/websocket) over TLS 1.2 and
// 1.3 with compression, Chromium trusting a test certificate, and bad TLS
// input (plain HTTP, garbage, silent and slow handshakes) that must not
// hurt other connections.
package tls

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	coder "github.com/coder/websocket"
	"github.com/gorilla/websocket"

	"github.com/herald-push/herald/internal/testutil"
	"github.com/herald-push/herald/test/internal/chromium"
)

// server is a herald process with a TLS listener.
type server struct {
	*testutil.Proc
	tlsAddr  string
	roots    *x509.CertPool
	certFile string // the PEM certificate, its own CA
}

// start makes a development certificate with `herald gencert` and runs
// `herald serve` with it on a TLS listener.
func start(t *testing.T, args ...string) *server {
	t.Helper()
	bin := testutil.Binary(t, "herald")
	dir := t.TempDir()
	cert, key, roots := testutil.DevCert(t, bin, dir)
	all := append([]string{"serve", "--listen", "127.0.0.1:{port}", "--tls-listen", "127.0.0.1:{port:tls}",
		"--tls-cert", cert, "--tls-key", key, "--log-level=warn"}, args...)
	p := testutil.Start(t, bin, all...)
	return &server{Proc: p, tlsAddr: p.Extra["tls"], roots: roots, certFile: cert}
}

func (s *server) tlsConfig(version uint16) *tls.Config {
	return &tls.Config{RootCAs: s.roots, ServerName: "127.0.0.1", MinVersion: version, MaxVersion: version}
}

// TestGoClients echoes over wss:// with gorilla and coder, on TLS 1.2 and
// 1.3, with and without compression.
func TestGoClients(t *testing.T) {
	srv := start(t, "--echo", "--api-listen", "")
	msg := strings.Repeat("wss echo with compression ", 400)
	for _, v := range []struct {
		name    string
		version uint16
	}{{"tls1.2", tls.VersionTLS12}, {"tls1.3", tls.VersionTLS13}} {
		for _, compress := range []bool{false, true} {
			name := fmt.Sprintf("%s/compress=%v", v.name, compress)
			t.Run("gorilla/"+name, func(t *testing.T) {
				d := websocket.Dialer{TLSClientConfig: srv.tlsConfig(v.version), EnableCompression: compress, HandshakeTimeout: 5 * time.Second}
				c, resp, err := d.Dial("wss://"+srv.tlsAddr+"/", nil)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				ext := resp.Header.Get("Sec-WebSocket-Extensions")
				if got := strings.HasPrefix(ext, "permessage-deflate"); got != compress {
					t.Fatalf("extensions %q with compression %v", ext, compress)
				}
				for i := range 5 {
					if err := c.WriteMessage(websocket.TextMessage, []byte(msg[i:])); err != nil {
						t.Fatal(err)
					}
					c.SetReadDeadline(time.Now().Add(5 * time.Second))
					_, got, err := c.ReadMessage()
					if err != nil || string(got) != msg[i:] {
						t.Fatalf("echo %d: %d bytes, %v", i, len(got), err)
					}
				}
			})
			t.Run("coder/"+name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				mode := coder.CompressionDisabled
				if compress {
					mode = coder.CompressionNoContextTakeover
				}
				hc := &http.Client{Transport: &http.Transport{TLSClientConfig: srv.tlsConfig(v.version)}}
				c, resp, err := coder.Dial(ctx, "wss://"+srv.tlsAddr+"/", &coder.DialOptions{HTTPClient: hc, CompressionMode: mode})
				if err != nil {
					t.Fatal(err)
				}
				defer c.CloseNow()
				if got := strings.HasPrefix(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate"); got != compress {
					t.Fatalf("extensions %q with compression %v", resp.Header.Get("Sec-WebSocket-Extensions"), compress)
				}
				c.SetReadLimit(1 << 20)
				for i := range 5 {
					if err := c.Write(ctx, coder.MessageBinary, []byte(msg[i:])); err != nil {
						t.Fatal(err)
					}
					_, got, err := c.Read(ctx)
					if err != nil || string(got) != msg[i:] {
						t.Fatalf("echo %d: %d bytes, %v", i, len(got), err)
					}
				}
				c.Close(coder.StatusNormalClosure, "")
			})
		}
	}
}

// TestOldTLSRefused checks that TLS 1.1 is refused.
func TestOldTLSRefused(t *testing.T) {
	srv := start(t, "--echo", "--api-listen", "")
	conf := srv.tlsConfig(tls.VersionTLS11)
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", srv.tlsAddr, conf)
	if err == nil {
		c.Close()
		t.Fatal("TLS 1.1 handshake succeeded")
	}
}

// TestBadHandshakesDoNotHurtOthers opens plain-HTTP, garbage, silent and
// trickling connections to the TLS port while a good client keeps
// echoing; the good client must stay fast and the bad ones be closed by
// the handshake deadline.
func TestBadHandshakesDoNotHurtOthers(t *testing.T) {
	// The bad connections come from the good client's address too: room
	// for all of them under the per-address handshake cap (tested in
	// test/hostile), so this test is about the deadlines alone.
	srv := start(t, "--echo", "--api-listen", "", "--handshake-timeout=1s", "--max-handshakes-per-ip=256")
	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", srv.tlsAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// Plain HTTP on the TLS port gets an HTTP 400 from crypto/tls, and the
	// connection ends.
	httpConn := dial()
	fmt.Fprintf(httpConn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	httpConn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if resp, err := http.ReadResponse(bufio.NewReader(httpConn), nil); err != nil || resp.StatusCode != 400 {
		t.Fatalf("plain HTTP on the TLS port: %v, %v; want a 400", resp, err)
	}
	garbage := dial()
	garbage.Write([]byte("\x16\x03\x01\xff\xff this is not a client hello at all"))
	var silent, trickle []net.Conn
	for range 100 {
		silent = append(silent, dial())
	}
	for range 20 {
		c := dial()
		trickle = append(trickle, c)
		c.Write([]byte{0x16, 0x03}) // the start of a record, then nothing
	}
	d := websocket.Dialer{TLSClientConfig: srv.tlsConfig(0), HandshakeTimeout: 5 * time.Second}
	good, _, err := d.Dial("wss://"+srv.tlsAddr+"/", nil)
	if err != nil {
		t.Fatalf("good client: %v", err)
	}
	defer good.Close()
	for i := range 20 {
		start := time.Now()
		good.WriteMessage(websocket.TextMessage, []byte(fmt.Sprint("ping ", i)))
		good.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, _, err := good.ReadMessage(); err != nil {
			t.Fatalf("good client echo %d: %v", i, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("echo %d took %v", i, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// By now (> 1 s) the handshake deadline has closed every bad one.
	for _, c := range append(append(silent, trickle...), garbage) {
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 512)
		for {
			if _, err := c.Read(buf); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatalf("a bad handshake was not closed by the deadline")
				}
				break
			}
		}
	}
}

// TestChromiumWSSCompressedBroadcast opens a page whose WebSocket goes to
// wss:// (Chromium trusts the test certificate through
// --ignore-certificate-errors), checks that it negotiated
// permessage-deflate, publishes over the API and checks that the browser
// received the broadcast and that the server compressed it.
func TestChromiumWSSCompressedBroadcast(t *testing.T) {
	srv := start(t, "--api-listen", "127.0.0.1:{port:api}", "--allow-anonymous")
	api := srv.Extra["api"]
	page := `<!doctype html><pre id="out">running</pre><script>
const out = document.getElementById('out');
const ws = new WebSocket('wss://` + srv.tlsAddr + `/ws?channel=news');
ws.onmessage = (ev) => {
  const m = JSON.parse(ev.data);
  if (m.op === 'subscribed') { out.textContent = 'subscribed ' + ws.extensions; return; }
  if (m.channel === 'news') out.textContent = 'got ' + m.data.headline.length + ' ' + ws.extensions;
};
ws.onerror = () => { out.textContent = 'error'; };
</script>`
	pageSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(page))
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go pageSrv.Serve(ln)
	t.Cleanup(func() { pageSrv.Close() })
	ctx := chromium.Start(t, 60*time.Second, srv.tlsAddr, ln.Addr().String())
	if err := chromedpNavigate(ctx, "http://"+ln.Addr().String()+"/"); err != nil {
		t.Fatal(err)
	}
	if err := pollText(ctx, "subscribed"); err != nil {
		t.Fatalf("subscribing: %v", err)
	}
	headline := strings.Repeat("compressed over wss ", 50)
	body := `{"headline":"` + headline + `"}`
	resp, err := http.Post("http://"+api+"/api/publish?channel=news", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := pollText(ctx, "got"); err != nil {
		t.Fatalf("waiting for the broadcast: %v", err)
	}
	got, _ := textOf(ctx)
	want := fmt.Sprintf("got %d permessage-deflate", len(headline))
	if !strings.HasPrefix(got, want) {
		t.Fatalf("page says %q, want %q...", got, want)
	}
	var node struct {
		Server struct {
			Deflate struct{ Negotiated, Compressed uint64 }       `json:"compression"`
			TLS     struct{ Handshakes, Direct, Fallback uint64 } `json:"tls"`
		} `json:"server"`
	}
	r, err := http.Get("http://" + api + "/api/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	json.NewDecoder(r.Body).Decode(&node)
	stats := node.Server
	if stats.Deflate.Negotiated < 1 || stats.Deflate.Compressed < 1 || stats.TLS.Handshakes < 1 {
		t.Fatalf("stats %+v: want a TLS handshake, a negotiation and a compressed broadcast", stats)
	}
	// Chromium speaks TLS 1.3: the loop engine carried it, nothing bridged.
	if stats.TLS.Direct < 1 || stats.TLS.Fallback != 0 {
		t.Fatalf("stats %+v: want Chromium's connections on the loops (direct), none bridged", stats)
	}
	t.Logf("chromium over wss: %q, stats %+v", got, stats)
}

// TestChromiumHeraldJSOverWSS loads herald.js from the API listener into
// a page, connects it over wss:// (TLS 1.3 on the loops), and receives a
// broadcast, with permessage-deflate on and off.
func TestChromiumHeraldJSOverWSS(t *testing.T) {
	for _, tc := range []struct {
		name, compression, extensions string
	}{{"deflate", "true", "permessage-deflate"}, {"plain", "false", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := start(t, "--api-listen", "127.0.0.1:{port:api}", "--allow-anonymous", "--compression="+tc.compression)
			api := srv.Extra["api"]
			page := `<!doctype html><pre id="out">running</pre><script src="http://` + api + `/herald.js"></script><script>
const out = document.getElementById('out');
const h = new Herald('wss://` + srv.tlsAddr + `/ws');
h.on('subscribed', (ev) => { if (ev.channel === 'news') out.textContent = 'subscribed'; });
h.subscribe('news', (data, meta) => { out.textContent = 'got ' + meta.offset + ' ' + data.headline; });
</script>`
			pageSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.Write([]byte(page))
			})}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go pageSrv.Serve(ln)
			t.Cleanup(func() { pageSrv.Close() })
			ctx := chromium.Start(t, 60*time.Second, srv.tlsAddr, ln.Addr().String(), api)
			if err := chromedpNavigate(ctx, "http://"+ln.Addr().String()+"/"); err != nil {
				t.Fatal(err)
			}
			if err := pollText(ctx, "subscribed"); err != nil {
				got, _ := textOf(ctx)
				t.Fatalf("subscribing: %v (page says %q)", err, got)
			}
			resp, err := http.Post("http://"+api+"/api/publish?channel=news", "application/json", strings.NewReader(`{"headline":"over wss"}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if err := pollText(ctx, "got"); err != nil {
				t.Fatalf("waiting for the broadcast: %v", err)
			}
			if got, _ := textOf(ctx); got != "got 1 over wss" {
				t.Fatalf("page says %q, want %q", got, "got 1 over wss")
			}
			var node struct {
				Server struct {
					Deflate *struct{ Negotiated uint64 }      `json:"compression"`
					TLS     struct{ Direct, Fallback uint64 } `json:"tls"`
				} `json:"server"`
			}
			r, err := http.Get("http://" + api + "/api/stats")
			if err != nil {
				t.Fatal(err)
			}
			defer r.Body.Close()
			json.NewDecoder(r.Body).Decode(&node)
			if node.Server.TLS.Direct < 1 || node.Server.TLS.Fallback != 0 {
				t.Fatalf("tls stats %+v: want herald.js carried on the loops", node.Server.TLS)
			}
			negotiated := node.Server.Deflate != nil && node.Server.Deflate.Negotiated > 0
			if negotiated != (tc.extensions != "") {
				t.Fatalf("deflate negotiated %v, want %v", negotiated, tc.extensions != "")
			}
		})
	}
}

// TestIdleWSSHoldsNoGoroutine: once their handshakes are done, idle wss
// connections on the loop engine cost the server no goroutine (the
// bridge engine kept two each): the server's go_goroutines gauge barely
// moves with 200 of them open.
func TestIdleWSSHoldsNoGoroutine(t *testing.T) {
	srv := start(t, "--api-listen", "127.0.0.1:{port:api}", "--allow-anonymous", "--ping-interval=0")
	api := srv.Extra["api"]
	goroutines := func() float64 {
		resp, err := http.Get("http://" + api + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
				var f float64
				fmt.Sscan(v, &f)
				return f
			}
		}
		t.Fatal("no go_goroutines in /metrics")
		return 0
	}
	before := goroutines()
	const n = 200
	d := websocket.Dialer{TLSClientConfig: srv.tlsConfig(tls.VersionTLS13), HandshakeTimeout: 10 * time.Second}
	for i := range n {
		c, _, err := d.Dial("wss://"+srv.tlsAddr+"/ws?channel=idle", nil)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		t.Cleanup(func() { c.Close() })
		// Wait for the subscription: the handshake goroutine has handed
		// the socket to a loop by the time the loop answers.
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, _, err := c.ReadMessage(); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	after := goroutines()
	t.Logf("server goroutines: %v before, %v with %d idle wss connections", before, after, n)
	if after-before > n/20 {
		t.Fatalf("%v more goroutines with %d idle wss connections, want about none", after-before, n)
	}
}

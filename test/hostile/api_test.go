package hostile

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/herald-push/herald/auth"
	"github.com/herald-push/herald/internal/testutil"
)

// unroutable is a non-loopback address this host does not hold
// (TEST-NET-1): a node that wrongly starts on it fails to bind rather
// than listening beyond loopback.
const unroutable = "192.0.2.1"

// TestPprofSecrets: /debug/pprof was on by default, unauthenticated, and
// /debug/pprof/cmdline printed --api-key and --jwt-secret. pprof is off by
// default; when on it needs the API key, cmdline is never served, and it is
// refused on a non-loopback API without a key.
func TestPprofSecrets(t *testing.T) {
	t.Parallel()
	const key = "hostile-api-key-0123456789"
	t.Run("off-by-default", func(t *testing.T) {
		n := start(t, "--api-key", key)
		for _, p := range []string{"/debug/pprof/", "/debug/pprof/cmdline"} {
			st, _, body := n.call("GET", p, "", map[string]string{"X-API-Key": key})
			if st == 200 {
				t.Errorf("GET %s: 200 without --pprof", p)
			}
			if strings.Contains(body, key) || strings.Contains(body, secret) {
				t.Errorf("GET %s shows a secret", p)
			}
		}
	})
	t.Run("behind-the-key", func(t *testing.T) {
		n := start(t, "--api-key", key, "--pprof")
		if st, _, _ := n.call("GET", "/debug/pprof/", "", nil); st != 401 {
			t.Errorf("GET /debug/pprof/ without the key: %d, want 401", st)
		}
		if st, _, _ := n.call("GET", "/debug/pprof/", "", map[string]string{"X-API-Key": key}); st != 200 {
			t.Errorf("GET /debug/pprof/ with the key: %d, want 200", st)
		}
		for _, hdr := range []map[string]string{nil, {"X-API-Key": key}} {
			st, _, body := n.call("GET", "/debug/pprof/cmdline", "", hdr)
			if st == 200 || strings.Contains(body, key) || strings.Contains(body, secret) {
				t.Errorf("GET /debug/pprof/cmdline (key %v): %d, shows a secret: %v", hdr != nil, st,
					strings.Contains(body, key) || strings.Contains(body, secret))
			}
		}
		// cmdline is absent (404) with or without the key: only the index
		// request without the key counts as refused.
		n.expectMetric(`herald_api_refused_total{reason="unauthorized"}`, 1)
	})
	t.Run("refused-on-public-api-without-key", func(t *testing.T) {
		out := mustExit(t, nil, "serve", "--listen", "127.0.0.1:0", "--api-listen", unroutable+":18081",
			"--api-insecure", "--pprof", "--jwt-secret", secret, "--log-level=warn")
		if !strings.Contains(strings.ToLower(out), "pprof") {
			t.Fatalf("refusal does not name pprof:\n%s", out)
		}
	})
}

// TestAPIOpenByDefault: the publish API listened on every interface with
// no key and no cross-site protection; a web page's text/plain POST
// published or disconnected users, and GET /api/channels listed every
// user:<sub>.
func TestAPIOpenByDefault(t *testing.T) {
	t.Parallel()
	t.Run("loopback-by-default", func(t *testing.T) {
		bin := testutil.Binary(t, "herald")
		out, err := execOutput(bin, "serve", "--print-config")
		if err != nil {
			t.Fatalf("--print-config: %v\n%s", err, out)
		}
		var cfg struct {
			APIListen string `json:"api_listen"`
		}
		if err := json.Unmarshal([]byte(out), &cfg); err != nil {
			t.Fatalf("--print-config: %v\n%s", err, out)
		}
		host, _, err := net.SplitHostPort(cfg.APIListen)
		if err != nil {
			t.Fatalf("api_listen %q: %v", cfg.APIListen, err)
		}
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			t.Fatalf("default api_listen is %q, want a loopback address", cfg.APIListen)
		}
	})
	t.Run("public-without-key-refused", func(t *testing.T) {
		out := mustExit(t, nil, "serve", "--listen", "127.0.0.1:0", "--api-listen", unroutable+":18081",
			"--jwt-secret", secret, "--log-level=warn")
		low := strings.ToLower(out)
		if strings.Contains(low, "assign requested address") || !strings.Contains(low, "key") {
			t.Fatalf("herald did not refuse a non-loopback API without a key (it tried to listen):\n%s", out)
		}
	})
	t.Run("dns-rebinding", func(t *testing.T) {
		// A page whose own name now points at 127.0.0.1 sends same-origin
		// requests: only Host gives it away. Without a key, the loopback
		// API answers loopback names only.
		n := start(t, "--allow-anonymous", "--anonymous-subscribe", "*")
		rebound := map[string]string{"Host": "evil.example:8081", "Origin": "http://evil.example:8081", "Sec-Fetch-Site": "same-origin", "Content-Type": "text/plain"}
		for _, c := range []struct{ method, path, body string }{
			{"POST", "/api/publish?channel=news", "rebound"},
			{"POST", "/api/disconnect", `{"user":"alice"}`},
			{"GET", "/api/channels?users=1", ""},
		} {
			if st, _, b := n.call(c.method, c.path, c.body, rebound); st != 403 || !strings.Contains(b, "host_not_allowed") {
				t.Errorf("%s %s with Host evil.example: %d %s, want 403 host_not_allowed", c.method, c.path, st, b)
			}
		}
		n.expectMetric(`herald_api_refused_total{reason="foreign_host"}`, 3)
		if o := n.offset("news"); o != 0 {
			t.Errorf("news at offset %d after rebound publishes, want 0", o)
		}
		n.mustPublish("news", "from the backend") // Host 127.0.0.1 still works
	})
	t.Run("cross-site-post", func(t *testing.T) {
		n := start(t, "--allow-anonymous", "--anonymous-subscribe", "*")
		w := n.watch("news", "")
		cross := map[string]string{"Content-Type": "text/plain", "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
		for _, c := range []struct{ path, body string }{
			{"/api/publish?channel=news", "forged"},
			{"/api/publish", `{"channel":"news","data":"forged"}`},
			{"/api/broadcast", `{"channels":["news"],"data":"forged"}`},
			{"/api/disconnect", `{"user":"alice"}`},
		} {
			if st, _, b := n.call("POST", c.path, c.body, cross); st != 403 {
				t.Errorf("cross-site POST %s: %d %s, want 403", c.path, st, b)
			}
		}
		n.expectMetric(`herald_api_refused_total{reason="cross_site"}`, 4)
		// A backend (no Origin, no Sec-Fetch-Site) still publishes, and
		// the subscriber sees only that message.
		n.mustPublish("news", "from the backend")
		w.expect(t, 1)
		if o := n.offset("news"); o != 1 {
			t.Fatalf("news offset %d after one legitimate publish: a forged one got through", o)
		}
	})
	t.Run("channels-hide-users", func(t *testing.T) {
		n := start(t)
		tok := token(t, auth.TokenSpec{Subject: "alice", ExpiresAt: time.Now().Add(time.Hour), Subscribe: []string{"news"}})
		c := n.mustDial("channel=news&token=" + tok)
		c.expectOp("subscribed")
		for _, ch := range n.channels("") {
			if strings.HasPrefix(ch.Name, "user:") {
				t.Fatalf("GET /api/channels lists %s", ch.Name)
			}
		}
		found := false
		for _, ch := range n.channels("?users=1") {
			found = found || ch.Name == "user:alice"
		}
		if !found {
			t.Fatal("GET /api/channels?users=1 does not list user:alice")
		}
	})
}

// TestAPIStalledConnections: the API server had no header or body timeout
// and no connection cap (1000 stalled bodies held forever). Headers that
// never finish are closed by ReadHeaderTimeout (5 s); the listener holds
// at most api_max_conns (1024) connections.
func TestAPIStalledConnections(t *testing.T) {
	t.Parallel()
	const stalled = 1100
	needFiles(t, stalled+50)
	n := start(t)
	base := n.openFiles()
	host := strings.TrimPrefix(n.API, "http://")
	// Slowloris on the API: a request line and half a header, never more.
	slow, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "POST /api/publish?channel=x HTTP/1.1\r\nHost: %s\r\nX-Stall: ", host)
	// Stalled bodies: complete headers announcing 1 MB, 10 bytes sent.
	conns := make([]net.Conn, 0, stalled)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range stalled {
		c, err := net.DialTimeout("tcp", host, 5*time.Second)
		if err != nil {
			t.Fatalf("dial API after %d: %v", len(conns), err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "POST /api/publish?channel=stall HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\nContent-Length: 1000000\r\n\r\n0123456789", host)
	}
	// Let the server take what it will: wait until its descriptor count
	// stops growing (or reaches everything we opened).
	prev, same := -1, 0
	for same < 10 {
		cur := n.openFiles()
		if cur == prev {
			same++
		} else {
			same, prev = 0, cur
		}
		if cur-base >= stalled+1 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if held := prev - base; held > 1024+8 {
		t.Errorf("the API holds %d stalled connections, want at most api_max_conns (1024)", held)
	}
	// The slowloris connection is closed by the header timeout.
	slow.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, err = io.Copy(io.Discard, slow)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Errorf("unfinished API headers still open after 15 s (want ReadHeaderTimeout 5s)")
	}
}

// TestDemoOffByDefault: the demo handler ran on every `herald serve`, so
// any authenticated client could publish to demo:counter whatever its
// claims said. It runs only with --demo.
func TestDemoOffByDefault(t *testing.T) {
	t.Parallel()
	incr := map[string]any{"op": "msg", "data": map[string]string{"action": "incr"}}
	args := []string{"--listen", "127.0.0.1:{port}", "--api-listen", "127.0.0.1:{port:api}", "--log-level=warn", "--jwt-secret", secret}
	t.Run("default", func(t *testing.T) {
		n := startRaw(t, args...)
		if st, _, _ := n.call("GET", "/", "", nil); st == 200 {
			t.Errorf("GET / serves the demo page without --demo")
		}
		tok := token(t, auth.TokenSpec{Subject: "mallory", ExpiresAt: time.Now().Add(time.Hour), Subscribe: []string{"news"}})
		c := n.mustDial("token=" + tok)
		c.send(incr)
		if m, err := c.next(5 * time.Second); err != nil || m.Op != "error" || m.Code != "not_supported" {
			t.Errorf("msg without --demo: got %+v (%v), want an error not_supported", m, err)
		}
		if o := n.offset("demo:counter"); o != 0 {
			t.Fatalf("a client whose token allows no publish made demo:counter reach offset %d", o)
		}
	})
	t.Run("with-demo", func(t *testing.T) {
		n := startRaw(t, append(args, "--demo")...)
		if st, _, _ := n.call("GET", "/", "", nil); st != 200 {
			t.Fatalf("GET / with --demo: %d", st)
		}
		tok := token(t, auth.TokenSpec{Subject: "bob", ExpiresAt: time.Now().Add(time.Hour), Subscribe: []string{"demo:*"}})
		c := n.mustDial("channel=demo:counter&token=" + tok)
		c.expectOp("subscribed")
		c.send(incr)
		if m, err := c.next(10 * time.Second); err != nil || m.Channel != "demo:counter" {
			t.Fatalf("demo counter after incr: %+v, %v", m, err)
		}
	})
}

// execOutput runs bin with args and returns its standard output.
func execOutput(bin string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	var out strings.Builder
	cmd.Stdout = &out
	err := cmd.Run()
	return out.String(), err
}

// readStatus reads an HTTP response from nc within d.
func readStatus(nc net.Conn, d time.Duration) (*http.Response, error) {
	nc.SetReadDeadline(time.Now().Add(d))
	defer nc.SetReadDeadline(time.Time{})
	return http.ReadResponse(bufio.NewReader(nc), nil)
}

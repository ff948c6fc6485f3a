package herald

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-push/herald/push"
	"github.com/herald-push/herald/server"
)

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"127.0.0.1:8081": true, "127.0.0.2:1": true, "[::1]:8081": true, "localhost:8081": true, "LOCALHOST:1": true,
		":8081": false, "0.0.0.0:8081": false, "[::]:8081": false, "10.0.0.1:8081": false,
		"api.example.com:8081": false, "127.0.0.1": false, "": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestCheckAPI(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"default", DefaultConfig(), ""},
		{"no API", Config{APIListen: ""}, ""},
		{"open without key", Config{APIListen: ":8081"}, "api_key"},
		{"insecure", Config{APIListen: ":8081", APIInsecure: true}, ""},
		{"insecure pprof", Config{APIListen: ":8081", APIInsecure: true, Pprof: true}, "pprof"},
		{"key", Config{APIListen: ":8081", APIKey: "k", Pprof: true}, ""},
		{"loopback pprof", Config{APIListen: "127.0.0.1:8081", Pprof: true}, ""},
	}
	for _, tc := range cases {
		err := checkAPI(tc.cfg)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(strings.ToLower(err.Error()), strings.ReplaceAll(tc.wantErr, "_", " "))):
			t.Errorf("%s: error %v, want one about %s", tc.name, err, tc.wantErr)
		}
	}
}

func TestSecureDefaults(t *testing.T) {
	t.Parallel()
	c := DefaultConfig()
	if c.APIListen != "127.0.0.1:8081" || c.Pprof || c.Demo || c.APIInsecure || c.AnonymousPublish != nil {
		t.Fatalf("defaults: api_listen %q pprof %v demo %v api_insecure %v anonymous_publish %v",
			c.APIListen, c.Pprof, c.Demo, c.APIInsecure, c.AnonymousPublish)
	}
	c.AllowAnonymous = true
	v, err := newVerifier(c)
	if err != nil {
		t.Fatal(err)
	}
	anon, _ := v.Anonymous()
	if anon.CanPublish("demo:chat") || !anon.CanSubscribe("news") {
		t.Fatalf("anonymous without the demo: publish demo:chat %v, subscribe news %v", anon.CanPublish("demo:chat"), anon.CanSubscribe("news"))
	}
	c.Demo = true
	v, _ = newVerifier(c)
	if anon, _ := v.Anonymous(); !anon.CanPublish("demo:chat") || anon.CanPublish("news") {
		t.Fatal("the demo lets anonymous clients publish to demo:* and nothing else")
	}
	c.AnonymousPublish = []string{}
	v, _ = newVerifier(c)
	if anon, _ := v.Anonymous(); anon.CanPublish("demo:chat") {
		t.Fatal("an empty anonymous_publish must mean none, even with the demo")
	}
}

// startNode runs a node on loopback ports until the test ends.
func startNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case <-n.Ready():
	case err := <-done:
		t.Fatalf("node stopped: %v", err)
	}
	return n
}

// TestAPIConnectionCap: with api_max_conns connections held by clients
// that never finish their request, the next client is not served until
// one of them goes away; then it is.
func TestAPIConnectionCap(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.Listen, cfg.APIListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.AllowAnonymous, cfg.Loops, cfg.DrainTimeout = true, 1, 0
	cfg.APIMaxConns = 2
	n := startNode(t, cfg)
	addr := n.APIAddr().String()
	var stalled []net.Conn
	for range cfg.APIMaxConns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "POST /api/publish?channel=x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		stalled = append(stalled, c)
	}
	next, err := net.Dial("tcp", addr) // the kernel accepts it; herald does not yet
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	if _, err := io.WriteString(next, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	answered := make(chan error, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(next), nil)
		if err == nil {
			resp.Body.Close()
		}
		answered <- err
	}()
	select {
	case err := <-answered:
		t.Fatalf("served past the connection cap (err %v)", err)
	case <-time.After(200 * time.Millisecond):
	}
	stalled[0].Close()
	if err := <-answered; err != nil {
		t.Fatalf("after a slot freed: %v", err)
	}
}

// TestZeroConfig: a Config with only its listener and a way to
// authenticate set is valid; each zero field takes its package's default.
func TestZeroConfig(t *testing.T) {
	t.Parallel()
	n := startNode(t, Config{Config: server.Config{Listen: "127.0.0.1:0", Loops: 1}, AllowAnonymous: true})
	if n.APIAddr() != nil {
		t.Fatalf("API listener %v without APIListen", n.APIAddr())
	}
	if _, err := n.Publish("news", []byte(`"hi"`)); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

// TestHooksNotInJSON: the hooks stay out of the JSON config file.
func TestHooksNotInJSON(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()
	cfg.Handler = func(*push.Session, []byte) {}
	cfg.Logger = slog.Default()
	cfg.DemoPage = http.NotFoundHandler()
	cfg.ClientScript = http.NotFoundHandler()
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, hook := range []string{"Handler", "Logger", "DemoPage", "ClientScript", "handler", "logger"} {
		if strings.Contains(string(b), `"`+hook+`"`) {
			t.Errorf("the JSON config holds %s: %s", hook, b)
		}
	}
}

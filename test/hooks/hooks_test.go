// Package hooks tests herald's backend hooks end to end: the real binary
// on loopback authorizing its clients through a local backend that knows
// them by a session cookie, with no JWT anywhere (docs/hooks.md).
package hooks

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-push/herald/internal/testutil"
)

// wait bounds every wait of the suite.
const wait = 20 * time.Second

// request is what herald POSTs to a hook (the fields the tests read).
type request struct {
	Event   string            `json:"event"`
	User    string            `json:"user"`
	Channel string            `json:"channel"`
	Data    json.RawMessage   `json:"data"`
	Cookies map[string]string `json:"cookies"`
	Headers map[string]string `json:"headers"`
}

// backend is the application: its sessions are cookies, "sid=<user>";
// "stale" is a session it refuses, "slow" one it never answers in time.
type backend struct {
	*httptest.Server
	mu        sync.Mutex
	refreshes map[string]int
	seen      []request
}

func newBackend(t *testing.T) *backend {
	b := &backend{refreshes: map[string]int{}}
	b.Server = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) serve(w http.ResponseWriter, r *http.Request) {
	var req request
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	b.mu.Lock()
	b.seen = append(b.seen, req)
	b.mu.Unlock()
	answer := map[string]any{}
	switch req.Event {
	case "connect":
		sid := req.Cookies["sid"]
		switch sid {
		case "", "stale":
			answer["error"] = map[string]any{"code": 403, "message": "no valid session"}
		case "slow":
			<-r.Context().Done() // herald gives up first
			return
		default:
			res := map[string]any{"user": sid, "channels": []string{"room:*"}}
			if sid == "brief" { // a session that needs refreshing
				res["expire_at"] = time.Now().Add(5 * time.Second).Unix()
			}
			answer["result"] = res
		}
	case "subscribe":
		if strings.HasPrefix(req.Channel, "vip:") && req.User == "vip" {
			answer["result"] = map[string]any{}
		} else {
			answer["error"] = map[string]any{"code": 403, "message": "members only"}
		}
	case "publish":
		// Stamp the author on what is published.
		answer["result"] = map[string]any{"data": map[string]any{"by": req.User, "text": req.Data}}
	case "refresh":
		b.mu.Lock()
		b.refreshes[req.User]++
		n := b.refreshes[req.User]
		b.mu.Unlock()
		if n == 1 {
			answer["result"] = map[string]any{"expire_at": time.Now().Add(5 * time.Second).Unix()}
		} else {
			answer["error"] = map[string]any{"code": 0, "message": "signed out"}
		}
	}
	_ = json.NewEncoder(w).Encode(answer)
}

// node is a running herald.
type node struct {
	*testutil.Proc
	API, WS string
}

// start runs herald with every hook pointing at base (the backend, or an
// address nobody answers) and no JWT key.
func start(t *testing.T, base string, extra ...string) *node {
	t.Helper()
	bin := testutil.Binary(t, "herald")
	args := append([]string{"serve", "--listen", "127.0.0.1:{port}", "--api-listen", "127.0.0.1:{port:api}",
		"--log-level=warn", "--demo=false",
		"--hook-connect-url", base + "/connect", "--hook-subscribe-url", base + "/subscribe",
		"--hook-publish-url", base + "/publish", "--hook-refresh-url", base + "/refresh",
		"--hook-cookie", "sid", "--hook-header", "X-Tenant", "--hook-timeout", "2s"}, extra...)
	p := testutil.Start(t, bin, args...)
	n := &node{Proc: p, API: "http://" + p.Extra["api"], WS: "ws://" + p.Addr}
	deadline := time.Now().Add(wait)
	for {
		resp, err := http.Get(n.API + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("herald never answered: %s", p.Log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return n
}

// dial connects with the session cookie sid ("" for none).
func (n *node) dial(t *testing.T, query, sid string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	h := http.Header{"X-Tenant": {"acme"}}
	if sid != "" {
		h.Set("Cookie", "theme=dark; sid="+sid)
	}
	c, resp, err := websocket.DefaultDialer.Dial(n.WS+"/ws?"+query, h)
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, resp, err
}

func (n *node) mustDial(t *testing.T, query, sid string) *websocket.Conn {
	t.Helper()
	c, resp, err := n.dial(t, query, sid)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial: %v (HTTP %d)", err, status)
	}
	return c
}

// msg is a server → client message.
type msg = testutil.Msg

func next(t *testing.T, c *websocket.Conn) msg {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(wait))
	var m msg
	if err := c.ReadJSON(&m); err != nil {
		t.Fatalf("read: %v", err)
	}
	return m
}

func publish(t *testing.T, n *node, channel, body string) {
	t.Helper()
	resp, err := http.Post(n.API+"/api/publish?channel="+url.QueryEscape(channel), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("publish: %d %s", resp.StatusCode, b)
	}
}

// TestCookieSessions is the feature's purpose: an app with cookie
// sessions authorizes its clients through the connect hook, no JWT:
// the user comes from the cookie, the personal channel works, the
// subscribe and publish hooks decide the rest.
func TestCookieSessions(t *testing.T) {
	b := newBackend(t)
	n := start(t, b.URL)
	ann := n.mustDial(t, "channel=room:1", "ann")
	if m := next(t, ann); m.Op != "subscribed" || m.Channel != "room:1" {
		t.Fatalf("got %+v, want subscribed room:1", m)
	}
	publish(t, n, "user:ann", `{"hello":"ann"}`)
	if m := next(t, ann); m.Channel != "user:ann" || string(m.Data) != `{"hello":"ann"}` {
		t.Fatalf("personal channel: %+v", m)
	}
	b.mu.Lock()
	first := b.seen[0]
	b.mu.Unlock()
	if first.Event != "connect" || len(first.Cookies) != 1 || first.Cookies["sid"] != "ann" || first.Headers["X-Tenant"] != "acme" {
		t.Fatalf("the backend saw %+v: want only the allowed cookie and header", first)
	}

	// Subscribe: room:* is granted by the connect answer, vip: asks the
	// hook, which refuses ann.
	if err := ann.WriteJSON(map[string]any{"op": "sub", "channel": "vip:lounge"}); err != nil {
		t.Fatal(err)
	}
	if m := next(t, ann); m.Op != "error" || m.Code != "forbidden" || m.Message != "members only" {
		t.Fatalf("subscribe rejected: got %+v", m)
	}
	vip := n.mustDial(t, "", "vip")
	if err := vip.WriteJSON(map[string]any{"op": "sub", "channel": "vip:lounge"}); err != nil {
		t.Fatal(err)
	}
	if m := next(t, vip); m.Op != "subscribed" {
		t.Fatalf("vip: got %+v", m)
	}

	// Publish: the hook rewrites the data, subscribers get its version.
	if err := vip.WriteJSON(map[string]any{"op": "pub", "channel": "room:1", "data": "hi all"}); err != nil {
		t.Fatal(err)
	}
	m := next(t, ann)
	var got struct{ By, Text string }
	if err := json.Unmarshal(m.Data, &got); err != nil || m.Channel != "room:1" || got.By != "vip" || got.Text != "hi all" {
		t.Fatalf("delivered %+v (%v), want the hook's rewrite", m, err)
	}

	metrics := scrape(t, n)
	for _, want := range []string{
		`herald_hook_connect_total{outcome="accepted"} 2`,
		`herald_hook_subscribe_total{outcome="rejected"} 1`,
		`herald_hook_breaker_state{event="connect"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func scrape(t *testing.T, n *node) string {
	t.Helper()
	resp, err := http.Get(n.API + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestConnectRefused: the backend's rejection is a 403 with its message;
// a backend that does not answer in time is a 503 with Retry-After.
func TestConnectRefused(t *testing.T) {
	b := newBackend(t)
	n := start(t, b.URL)
	for _, sid := range []string{"stale", ""} {
		_, resp, err := n.dial(t, "", sid)
		if err == nil || resp == nil || resp.StatusCode != 403 {
			t.Fatalf("sid %q: want 403, got %v %v", sid, resp, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(body), "no valid session") {
			t.Errorf("refusal body %q", body)
		}
	}
	_, resp, err := n.dial(t, "", "slow")
	if err == nil || resp == nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("slow backend: want 503 with Retry-After, got %v %v", resp, err)
	}
}

// TestBackendDown: with nobody at the hook's address, clients are told
// to retry (503, Retry-After), and the breaker opens.
func TestBackendDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	n := start(t, down, "--hook-breaker-failures", "2", "--hook-breaker-open", "1m")
	for range 3 {
		_, resp, err := n.dial(t, "", "ann")
		if err == nil || resp == nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("want 503 with Retry-After, got %v %v", resp, err)
		}
	}
	if m := scrape(t, n); !strings.Contains(m, `herald_hook_breaker_state{event="connect"} 2`) {
		t.Errorf("breaker not open after 3 failures:\n%s", grep(m, "hook_"))
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestRefresh: a session with an expiry is refreshed before it; the
// first refresh extends it, the second is refused and closes the
// connection with 4001.
func TestRefresh(t *testing.T) {
	b := newBackend(t)
	n := start(t, b.URL)
	c := n.mustDial(t, "", "brief")
	_ = c.SetReadDeadline(time.Now().Add(wait))
	_, _, err := c.ReadMessage()
	ce, ok := err.(*websocket.CloseError)
	if !ok || ce.Code != 4001 || ce.Text != "signed out" {
		t.Fatalf("want close 4001 signed out, got %v", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.refreshes["brief"] != 2 {
		t.Fatalf("%d refreshes, want 2 (one extending, one refusing)", b.refreshes["brief"])
	}
}

// TestEventStream: an EventSource's request carries the session cookie
// too; the connect hook authorizes the stream as it does a WebSocket.
func TestEventStream(t *testing.T) {
	b := newBackend(t)
	n := start(t, b.URL)
	req, err := http.NewRequest(http.MethodGet, "http://"+n.Addr+"/sse?channel=room:news", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Cookie", "sid=ann")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	br := bufio.NewReader(resp.Body)
	// The stream's prelude (its retry advice) is written with the
	// subscriptions of the URL made; then a publish arrives as an event.
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			lines <- l
		}
	}()
	publishUntil(t, n, "room:news", `{"n":1}`, lines, `data: {"channel":"room:news"`)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seen[0].Event != "connect" || b.seen[0].Cookies["sid"] != "ann" {
		t.Fatalf("connect request %+v", b.seen[0])
	}
}

// publishUntil publishes body to channel once the stream's prelude has
// come (the URL's subscriptions are made then), then reads lines until
// one starts with want.
func publishUntil(t *testing.T, n *node, channel, body string, lines <-chan string, want string) {
	t.Helper()
	timeout := time.After(wait)
	published := false
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("stream ended")
			}
			if strings.HasPrefix(l, want) {
				return
			}
			if !published && strings.HasPrefix(l, "retry:") {
				publish(t, n, channel, body)
				published = true
			}
		case <-timeout:
			t.Fatalf("no %q line", want)
		}
	}
}

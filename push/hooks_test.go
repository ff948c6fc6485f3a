package push

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-push/herald/hook"
	"github.com/herald-push/herald/hub"
	"github.com/herald-push/herald/internal/wstest"
	"github.com/herald-push/herald/server"
)

// hookBackend is an application backend for the hooks: it authorizes by
// the "sid" cookie and answers each event as the test configures.
type hookBackend struct {
	mu       sync.Mutex
	seen     []hook.Request
	release  chan struct{} // closes to let "slow:" subscriptions answer
	refresh  func(n int) any
	refreshN int
}

func (b *hookBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req hook.Request
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	b.mu.Lock()
	b.seen = append(b.seen, req)
	b.mu.Unlock()
	var answer any
	switch req.Event {
	case hook.EventConnect:
		switch req.Cookies["sid"] {
		case "ann-session":
			answer = map[string]any{"result": map[string]any{"user": "ann", "channels": []string{"room:*"}, "expire_at": b.expireAt()}}
		case "stale":
			answer = map[string]any{"error": map[string]any{"code": 401, "message": "session expired"}}
		default:
			http.Error(w, "backend broken", http.StatusInternalServerError)
			return
		}
	case hook.EventSubscribe:
		switch {
		case strings.HasPrefix(req.Channel, "vip:"):
			answer = map[string]any{"result": map[string]any{}}
		case strings.HasPrefix(req.Channel, "slow:"):
			<-b.release
			answer = map[string]any{"result": map[string]any{}}
		case strings.HasPrefix(req.Channel, "down:"):
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		default:
			answer = map[string]any{"error": map[string]any{"code": 4403, "message": "not a member of " + req.Channel}}
		}
	case hook.EventPublish:
		if strings.HasPrefix(req.Channel, "ro:") {
			answer = map[string]any{"error": map[string]any{"code": 403, "message": "read-only"}}
			break
		}
		answer = map[string]any{"result": map[string]any{"data": json.RawMessage(strings.ToUpper(string(req.Data)))}}
	case hook.EventRefresh:
		b.mu.Lock()
		b.refreshN++
		n := b.refreshN
		b.mu.Unlock()
		if answer = b.refresh(n); answer == nil {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
	}
	_ = json.NewEncoder(w).Encode(answer)
}

// expireAt is the connect answer's expiry: only with a refresh test.
func (b *hookBackend) expireAt() int64 {
	if b.refresh == nil {
		return 0
	}
	return time.Now().Add(5 * time.Second).Unix()
}

// startHooked starts a push node whose hooks all point at b.
func startHooked(t *testing.T, b *hookBackend, edit func(*Options)) *pushNode {
	t.Helper()
	if b.release == nil {
		b.release = make(chan struct{})
	}
	backend := httptest.NewServer(b)
	t.Cleanup(func() {
		select {
		case <-b.release:
		default:
			close(b.release)
		}
		backend.Close()
	})
	hc := hook.Config{ConnectURL: backend.URL, SubscribeURL: backend.URL, PublishURL: backend.URL, Cookies: []string{"sid"}, BreakerFailures: 1000}
	if b.refresh != nil {
		hc.RefreshURL = backend.URL
	}
	hk, err := hook.New(hc)
	if err != nil {
		t.Fatal(err)
	}
	return startPush(t, hub.Config{}, func(o *Options, _ *server.Config) {
		o.Hooks, o.Workers = hk, goSubmitter{}
		if edit != nil {
			edit(o)
		}
	})
}

// rawUpgrade sends an upgrade request with extra header lines and
// returns the response.
func rawUpgrade(t *testing.T, n *pushNode, path, header string) *http.Response {
	t.Helper()
	nc, err := net.Dial("tcp", n.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(testTimeout))
	_, _ = io.WriteString(nc, "GET "+path+" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"+header+"\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

const annCookie = "Cookie: theme=dark; sid=ann-session\r\n"

func TestHookConnect(t *testing.T) {
	b := &hookBackend{}
	n := startHooked(t, b, nil)
	c := wstest.Dial(t, n.addr, wstest.Options{Path: "/ws?channel=room:1", Header: annCookie})
	expect(t, c, `{"op":"subscribed","channel":"room:1"}`)
	// The personal channel is the hook's user's.
	if _, err := n.hub.Publish("user:ann", []byte(`"hi ann"`)); err != nil {
		t.Fatal(err)
	}
	expect(t, c, `{"channel":"user:ann","data":"hi ann"}`)
	b.mu.Lock()
	got := b.seen[0]
	b.mu.Unlock()
	if got.Event != hook.EventConnect || got.Transport != "websocket" || got.Cookies["sid"] != "ann-session" || len(got.Cookies) != 1 || got.RemoteAddr == "" {
		t.Fatalf("connect request %+v", got)
	}
	if st := n.srv.Stats(); st.HandshakesDeferred != 1 {
		t.Fatalf("deferred %d", st.HandshakesDeferred)
	}
}

func TestHookConnectRefused(t *testing.T) {
	n := startHooked(t, &hookBackend{}, nil)
	if resp := rawUpgrade(t, n, "/ws", "Cookie: sid=stale\r\n"); resp.StatusCode != 401 {
		t.Fatalf("rejected: status %d", resp.StatusCode)
	}
	resp := rawUpgrade(t, n, "/ws", "")
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("backend failing: status %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// A token still works without the hook.
	wstest.Dial(t, n.addr, wstest.Options{Path: "/ws?token=" + token(t, "bob", []string{"*"}, nil)})
}

func TestHookSubscribe(t *testing.T) {
	n := startHooked(t, &hookBackend{}, nil)
	c := wstest.Dial(t, n.addr, wstest.Options{Path: "/ws", Header: annCookie})
	send(c, `{"op":"sub","channel":"room:2","id":1}`) // granted by the connect answer
	expect(t, c, `{"op":"subscribed","channel":"room:2","id":1}`)
	send(c, `{"op":"sub","channel":"vip:1","id":2}`)
	expect(t, c, `{"op":"subscribed","channel":"vip:1","id":2}`)
	send(c, `{"op":"sub","channel":"secret:1","id":3}`)
	expect(t, c, `{"op":"error","code":"forbidden","hook_code":4403,"message":"not a member of secret:1","id":3}`)
	send(c, `{"op":"sub","channel":"down:1","id":4}`)
	expect(t, c, `{"op":"error","code":"unavailable","channel":"down:1","id":4}`)
}

// TestHookSubscribeCancelled: a subscription the client gives up while
// the hook thinks is not made when the answer comes.
func TestHookSubscribeCancelled(t *testing.T) {
	b := &hookBackend{}
	n := startHooked(t, b, nil)
	c := wstest.Dial(t, n.addr, wstest.Options{Path: "/ws", Header: annCookie})
	send(c, `{"op":"sub","channel":"slow:1","id":1}`)
	send(c, `{"op":"unsub","channel":"slow:1","id":2}`)
	expect(t, c, `{"op":"unsubscribed","channel":"slow:1","id":2}`)
	close(b.release)
	// The answer arrives on the loop before a later command's reply
	// (one worker task per connection, in order, then one loop).
	send(c, `{"op":"sub","channel":"vip:2","id":3}`)
	expect(t, c, `{"op":"subscribed","channel":"vip:2","id":3}`)
	n.onLoop(t, func() {
		if n.hub.Stats().Subscriptions != 2 { // user:ann and vip:2
			t.Errorf("subscriptions %d, want 2", n.hub.Stats().Subscriptions)
		}
	})
}

// TestHookSubscribeCap: subscriptions waiting for the hook count against
// MaxSubscriptions.
func TestHookSubscribeCap(t *testing.T) {
	b := &hookBackend{}
	n := startHooked(t, b, func(o *Options) { o.MaxSubscriptions = 1 })
	c := wstest.Dial(t, n.addr, wstest.Options{Path: "/ws", Header: annCookie})
	send(c, `{"op":"sub","channel":"slow:1","id":1}`)
	send(c, `{"op":"sub","channel":"slow:2","id":2}`)
	expect(t, c, `{"op":"error","code":"limit","id":2}`)
	// Asking again for the same channel is not one more: the last ask
	// decides.
	send(c, `{"op":"sub","channel":"slow:1","id":3}`)
	close(b.release)
	expect(t, c, `{"op":"subscribed","channel":"slow:1","id":3}`)
	send(c, `{"op":"ping","id":4}`)
	expect(t, c, `{"op":"pong","id":4}`)
}

func TestHookPublish(t *testing.T) {
	n := startHooked(t, &hookBackend{}, nil)
	c := wstest.Dial(t, n.addr, wstest.Options{Path: "/ws?channel=room:1", Header: annCookie})
	expect(t, c, `{"op":"subscribed","channel":"room:1"}`)
	// ann's connect answer grants no publishing: the hook decides.
	send(c, `{"op":"pub","channel":"room:1","data":"hello","id":1}`)
	for range 2 { // the reply and the message, in either order
		m := next(t, c)
		if m["op"] == "published" {
			continue
		}
		if m["data"] != "HELLO" {
			t.Fatalf("delivered %v, want the rewritten data", m)
		}
	}
	send(c, `{"op":"pub","channel":"ro:1","data":1,"id":2}`)
	expect(t, c, `{"op":"error","code":"forbidden","message":"read-only","id":2}`)
}

// TestHookRefresh: a connection whose connect answer expires is
// refreshed before then; the first refresh extends it, the second is
// rejected and closes it with 4001.
func TestHookRefresh(t *testing.T) {
	b := &hookBackend{refresh: func(n int) any {
		if n == 1 {
			return map[string]any{"result": map[string]any{"expire_at": time.Now().Add(5 * time.Second).Unix()}}
		}
		return map[string]any{"error": map[string]any{"code": 0, "message": "logged out"}}
	}}
	n := startHooked(t, b, nil)
	c := wstest.Dial(t, n.addr, wstest.Options{Path: "/ws", Header: annCookie})
	code, reason, _ := readClose(t, c)
	if code != server.CloseTokenExpired || reason != "logged out" {
		t.Fatalf("close %d %q", code, reason)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.refreshN != 2 {
		t.Fatalf("%d refreshes, want 2", b.refreshN)
	}
	for _, r := range b.seen {
		if r.Event == hook.EventRefresh && (r.User != "ann" || r.Cookies["sid"] != "ann-session") {
			t.Fatalf("refresh request %+v", r)
		}
	}
}

func TestHookStream(t *testing.T) {
	n := startHooked(t, &hookBackend{}, nil)
	nc, err := net.Dial("tcp", n.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(testTimeout))
	_, _ = io.WriteString(nc, "GET /sse?channel=room:1 HTTP/1.1\r\nHost: x\r\n"+annCookie+"\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// TestHookRefreshUnavailable: refreshes the backend does not answer are
// retried, and the connection closes with 4001 at its expiry, not before
// and not never.
func TestHookRefreshUnavailable(t *testing.T) {
	b := &hookBackend{refresh: func(int) any { return nil }}
	n := startHooked(t, b, nil)
	c := wstest.Dial(t, n.addr, wstest.Options{Path: "/ws", Header: annCookie})
	code, reason, _ := readClose(t, c)
	if code != server.CloseTokenExpired || reason != "token expired" {
		t.Fatalf("close %d %q", code, reason)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.refreshN < 1 {
		t.Fatalf("%d refreshes asked before the expiry", b.refreshN)
	}
}

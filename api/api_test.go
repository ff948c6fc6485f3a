package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeBackend records publishes and answers with canned errors.
type fakeBackend struct {
	mu        sync.Mutex
	published []string
	err       error // returned by Publish when set
	ready     bool
}

func (b *fakeBackend) Ready() (bool, string) { return b.ready, "draining" }

func (b *fakeBackend) Publish(channel string, data []byte) (Published, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return Published{}, b.err
	}
	b.published = append(b.published, channel+"="+string(data))
	return Published{Channel: channel, Offset: uint64(len(b.published)), Epoch: "e"}, nil
}

func (b *fakeBackend) DisconnectUser(string, string) (int, error) { return 1, nil }

// Channels pages over a fixed list the way the node does: sorted, after
// the cursor, with the prefix, user: channels only when asked.
func (b *fakeBackend) Channels(q ChannelQuery) (any, string) {
	var page []string
	for _, name := range []string{"news", "news:eu", "news:us", "user:alice"} {
		if (!q.Users && strings.HasPrefix(name, "user:")) || !strings.HasPrefix(name, q.Prefix) || name <= q.After {
			continue
		}
		if len(page) == q.Limit {
			return page, page[len(page)-1]
		}
		page = append(page, name)
	}
	return page, ""
}

func (b *fakeBackend) Stats() any { return map[string]int{"connections": 0} }

// count returns how many publishes reached the backend.
func (b *fakeBackend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.published)
}

// call sends one request through h and returns the recorded answer.
func call(h http.Handler, method, target, body string, header map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// errorCode reads the code of an {"error":{...}} answer.
func errorCode(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("answer is not JSON: %v: %s", err, w.Body)
	}
	return e.Error.Code
}

func TestAPIKey(t *testing.T) {
	t.Parallel()
	b := &fakeBackend{ready: true}
	st := new(Stats)
	h := NewHandler(b, Options{APIKey: "k3y", Stats: st})
	cases := []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"none", nil, http.StatusUnauthorized},
		{"wrong", map[string]string{"X-API-Key": "nope"}, http.StatusUnauthorized},
		{"x-api-key", map[string]string{"X-API-Key": "k3y"}, http.StatusOK},
		{"bearer", map[string]string{"Authorization": "Bearer k3y"}, http.StatusOK},
	}
	for _, tc := range cases {
		w := call(h, "POST", "/api/publish?channel=news", "hi", tc.header)
		if w.Code != tc.want {
			t.Errorf("%s: status %d, want %d: %s", tc.name, w.Code, tc.want, w.Body)
		}
	}
	if got := st.Unauthorized.Load(); got != 2 {
		t.Errorf("unauthorized counter %d, want 2", got)
	}
	if b.count() != 2 {
		t.Errorf("%d publishes reached the backend, want 2", b.count())
	}
	if w := call(h, "GET", "/healthz", "", nil); w.Code != http.StatusOK {
		t.Errorf("/healthz needs no key: %d", w.Code)
	}
	open := NewHandler(b, Options{})
	if w := call(open, "POST", "/api/publish?channel=news", "hi", nil); w.Code != http.StatusOK {
		t.Errorf("without a configured key: status %d: %s", w.Code, w.Body)
	}
}

func TestCrossSiteRefused(t *testing.T) {
	t.Parallel()
	b := &fakeBackend{ready: true}
	st := new(Stats)
	h := NewHandler(b, Options{Stats: st})
	cases := []struct {
		name   string
		method string
		header map[string]string
		want   int
	}{
		{"backend, no browser headers", "POST", nil, http.StatusOK},
		{"same origin fetch", "POST", map[string]string{"Sec-Fetch-Site": "same-origin"}, http.StatusOK},
		{"typed by the user", "POST", map[string]string{"Sec-Fetch-Site": "none"}, http.StatusOK},
		{"cross-site fetch", "POST", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"same-site other origin", "POST", map[string]string{"Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"old browser, foreign Origin", "POST", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"old browser, own Origin", "POST", map[string]string{"Origin": "http://example.com"}, http.StatusOK},
		{"cross-site GET is safe", "GET", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusOK},
	}
	for _, tc := range cases {
		target := "/api/publish?channel=news"
		if tc.method == "GET" {
			target = "/api/channels"
		}
		w := call(h, tc.method, target, "hi", tc.header)
		if w.Code != tc.want {
			t.Errorf("%s: status %d, want %d: %s", tc.name, w.Code, tc.want, w.Body)
		}
		if w.Code == http.StatusForbidden && errorCode(t, w) != "cross_site" {
			t.Errorf("%s: code %q, want cross_site", tc.name, errorCode(t, w))
		}
	}
	if got := st.CrossSite.Load(); got != 3 {
		t.Errorf("cross_site counter %d, want 3", got)
	}
	if b.count() != 4 {
		t.Errorf("%d publishes reached the backend, want 4", b.count())
	}
	// A cross-site request is refused before the key is even looked at.
	keyed := NewHandler(b, Options{APIKey: "k3y"})
	w := call(keyed, "POST", "/api/disconnect", `{"user":"alice"}`, map[string]string{"Sec-Fetch-Site": "cross-site", "X-API-Key": "k3y"})
	if w.Code != http.StatusForbidden {
		t.Errorf("cross-site with the key: status %d, want 403", w.Code)
	}
}

func TestTooLarge(t *testing.T) {
	t.Parallel()
	b := &fakeBackend{ready: true}
	h := NewHandler(b, Options{MaxBodyBytes: 8})
	w := call(h, "POST", "/api/publish?channel=news", "123456789", nil)
	if w.Code != http.StatusRequestEntityTooLarge || errorCode(t, w) != "too_large" {
		t.Fatalf("body over the limit: %d %s", w.Code, w.Body)
	}
	b.err = fmt.Errorf("publish 9 bytes: %w", ErrTooLarge)
	w = call(h, "POST", "/api/publish?channel=news", "1234", nil)
	if w.Code != http.StatusRequestEntityTooLarge || errorCode(t, w) != "too_large" {
		t.Fatalf("backend ErrTooLarge: %d %s", w.Code, w.Body)
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	b := &fakeBackend{err: fmt.Errorf("broker down: %w", ErrUnavailable)}
	h := NewHandler(b, Options{})
	for _, tc := range []struct{ method, target, body string }{
		{"POST", "/api/publish?channel=news", "hi"},
		{"POST", "/api/broadcast", `{"channels":["a","b"],"data":1}`},
		{"GET", "/readyz", ""},
	} {
		w := call(h, tc.method, tc.target, tc.body, nil)
		if w.Code != http.StatusServiceUnavailable {
			t.Errorf("%s %s: status %d, want 503", tc.method, tc.target, w.Code)
		}
		if w.Header().Get("Retry-After") != RetryAfter {
			t.Errorf("%s %s: Retry-After %q", tc.method, tc.target, w.Header().Get("Retry-After"))
		}
	}
	w := httptest.NewRecorder()
	writeError(w, http.StatusTooManyRequests, "rate_limited", "slow down")
	if w.Header().Get("Retry-After") != RetryAfter {
		t.Errorf("429 without Retry-After")
	}
}

func TestPprof(t *testing.T) {
	t.Parallel()
	b := &fakeBackend{ready: true}
	keyed := NewHandler(b, Options{APIKey: "k3y", EnablePprof: true})
	key := map[string]string{"X-API-Key": "k3y"}
	if w := call(keyed, "GET", "/debug/pprof/", "", nil); w.Code != http.StatusUnauthorized {
		t.Errorf("pprof index without the key: %d", w.Code)
	}
	if w := call(keyed, "GET", "/debug/pprof/heap?debug=1", "", nil); w.Code != http.StatusUnauthorized {
		t.Errorf("heap profile without the key: %d", w.Code)
	}
	if w := call(keyed, "GET", "/debug/pprof/", "", key); w.Code != http.StatusOK {
		t.Errorf("pprof index with the key: %d", w.Code)
	}
	for _, path := range []string{"/debug/pprof/cmdline", "/debug/pprof/cmdline?x=1"} {
		w := call(keyed, "GET", path, "", key)
		if w.Code != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", path, w.Code)
		}
		if strings.Contains(w.Body.String(), "api.test") || strings.Contains(w.Body.String(), "-test.") {
			t.Errorf("%s shows the command line: %s", path, w.Body)
		}
	}
	off := NewHandler(b, Options{})
	if w := call(off, "GET", "/debug/pprof/", "", nil); w.Code != http.StatusNotFound {
		t.Errorf("pprof off: %d", w.Code)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	t.Parallel()
	h := NewHandler(&fakeBackend{ready: true}, Options{})
	w := call(h, "GET", "/api/publish", "", nil)
	if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "POST" {
		t.Fatalf("GET /api/publish: %d Allow=%q", w.Code, w.Header().Get("Allow"))
	}
	if w := call(h, "POST", "/api/nothing", "", nil); w.Code != http.StatusNotFound {
		t.Fatalf("unknown endpoint: %d", w.Code)
	}
}

func TestChannelsHideUsers(t *testing.T) {
	t.Parallel()
	h := NewHandler(&fakeBackend{ready: true}, Options{})
	for target, want := range map[string]string{
		"/api/channels":         `{"channels":["news","news:eu","news:us"]}`,
		"/api/channels?users=0": `{"channels":["news","news:eu","news:us"]}`,
		"/api/channels?users=1": `{"channels":["news","news:eu","news:us","user:alice"]}`,
	} {
		w := call(h, "GET", target, "", nil)
		if got := strings.TrimSpace(w.Body.String()); w.Code != http.StatusOK || got != want {
			t.Errorf("%s: %d %s, want %s", target, w.Code, got, want)
		}
	}
}

// TestChannelsPaged: ?limit= pages the listing, "next" is the cursor for
// ?after=, ?prefix= filters, and a limit out of range is a 400.
func TestChannelsPaged(t *testing.T) {
	t.Parallel()
	h := NewHandler(&fakeBackend{ready: true}, Options{})
	for target, want := range map[string]string{
		"/api/channels?limit=2":                   `{"channels":["news","news:eu"],"next":"news:eu"}`,
		"/api/channels?limit=2&after=news:eu":     `{"channels":["news:us"]}`,
		"/api/channels?prefix=news:&limit=1":      `{"channels":["news:eu"],"next":"news:eu"}`,
		"/api/channels?prefix=user:&users=1":      `{"channels":["user:alice"]}`,
		"/api/channels?limit=10000&prefix=nobody": `{"channels":null}`,
	} {
		w := call(h, "GET", target, "", nil)
		if got := strings.TrimSpace(w.Body.String()); w.Code != http.StatusOK || got != want {
			t.Errorf("%s: %d %s, want %s", target, w.Code, got, want)
		}
	}
	for _, bad := range []string{"0", "-1", "10001", "many"} {
		if w := call(h, "GET", "/api/channels?limit="+bad, "", nil); w.Code != http.StatusBadRequest {
			t.Errorf("limit=%s: %d, want 400", bad, w.Code)
		}
	}
}

// TestLoopbackHostsOnly: an API on loopback without a key answers only
// requests whose Host names this machine, so a page that points its own
// name at 127.0.0.1 (DNS rebinding) is refused and counted.
func TestLoopbackHostsOnly(t *testing.T) {
	t.Parallel()
	var st Stats
	b := &fakeBackend{ready: true}
	h := NewHandler(b, Options{LoopbackHostsOnly: true, Stats: &st})
	for host, want := range map[string]int{
		"localhost:8081": 200, "127.0.0.1:8081": 200, "127.1.2.3": 200, "[::1]:8081": 200, "app.localhost:8081": 200,
		"evil.example:8081": 403, "evil.example": 403, "192.0.2.1:8081": 403, "127.0.0.1.evil.example": 403,
	} {
		r := httptest.NewRequest("POST", "/api/publish?channel=news", strings.NewReader("x"))
		r.Host = host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("Host %s: %d %s, want %d", host, w.Code, w.Body, want)
		}
	}
	if n := st.ForeignHost.Load(); n != 4 {
		t.Errorf("foreign hosts counted: %d, want 4", n)
	}
	if len(b.published) != 5 {
		t.Errorf("published %v, want the 5 loopback requests only", b.published)
	}
}

func TestNewServerBounds(t *testing.T) {
	t.Parallel()
	s := NewServer(http.NotFoundHandler())
	if s.ReadHeaderTimeout != ReadHeaderTimeout || s.ReadTimeout != ReadTimeout || s.WriteTimeout != WriteTimeout ||
		s.IdleTimeout != IdleTimeout || s.MaxHeaderBytes != MaxHeaderBytes {
		t.Fatalf("server bounds not set: %+v", s)
	}
}

// TestProfilePastWriteTimeout: a CPU profile may last longer than the
// server's WriteTimeout (pprof alone answers 400 then).
func TestProfilePastWriteTimeout(t *testing.T) {
	t.Parallel()
	h := NewHandler(&fakeBackend{ready: true}, Options{EnablePprof: true})
	r := httptest.NewRequest("GET", "/debug/pprof/profile?seconds=1", nil)
	r = r.WithContext(context.WithValue(r.Context(), http.ServerContextKey, &http.Server{WriteTimeout: time.Second}))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK || w.Body.Len() == 0 {
		t.Fatalf("profile: %d %s", w.Code, w.Body)
	}
}

// TestPusherMount: Options.Pusher serves /apps/ outside the API key (its
// requests carry their own signature), behind the cross-site and
// loopback-Host checks like everything else.
func TestPusherMount(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var reached []string
	pusherAPI := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		reached = append(reached, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	})
	b := &fakeBackend{ready: true}
	h := NewHandler(b, Options{APIKey: "k3y", Pusher: pusherAPI})
	cases := []struct {
		name, method, target string
		header               map[string]string
		want                 int
	}{
		{"trigger without herald's key", "POST", "/apps/1/events?auth_key=k", nil, http.StatusOK},
		{"query without herald's key", "GET", "/apps/1/channels/presence-a/users", nil, http.StatusOK},
		{"herald's API still needs the key", "POST", "/api/publish?channel=news", nil, http.StatusUnauthorized},
		{"cross-site trigger", "POST", "/apps/1/events", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
	}
	for _, tc := range cases {
		if w := call(h, tc.method, tc.target, "{}", tc.header); w.Code != tc.want {
			t.Errorf("%s: status %d, want %d: %s", tc.name, w.Code, tc.want, w.Body)
		}
	}
	mu.Lock()
	got := append([]string(nil), reached...)
	mu.Unlock()
	if want := []string{"POST /apps/1/events", "GET /apps/1/channels/presence-a/users"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("the Pusher handler saw %v, want %v", got, want)
	}

	loop := NewHandler(b, Options{LoopbackHostsOnly: true, Pusher: pusherAPI})
	r := httptest.NewRequest("POST", "/apps/1/events", strings.NewReader("{}"))
	r.Host = "evil.example:8081"
	w := httptest.NewRecorder()
	loop.ServeHTTP(w, r)
	if w.Code != http.StatusForbidden || errorCode(t, w) != "host_not_allowed" {
		t.Errorf("foreign Host on a loopback API: %d %s, want 403 host_not_allowed", w.Code, w.Body)
	}

	if w := call(NewHandler(b, Options{}), "POST", "/apps/1/events", "{}", nil); w.Code != http.StatusNotFound {
		t.Errorf("without Options.Pusher: /apps/ answered %d, want 404", w.Code)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reached) != 2 {
		t.Errorf("refused requests reached the Pusher handler: %v", reached)
	}
}

func TestUnknownNamespace(t *testing.T) {
	t.Parallel()
	refusal := errors.New(`unknown namespace "nope" (channel "nope:a")`)
	b := &fakeBackend{ready: true, err: Refused(ErrUnknownNamespace, refusal)}
	h := NewHandler(b, Options{})
	for _, tc := range []struct{ method, target, body, message string }{
		{"POST", "/api/publish?channel=nope:a", "hi", refusal.Error()},
		// The refusal names the channel: the broadcast adds only where
		// it stopped.
		{"POST", "/api/broadcast", `{"channels":["nope:a"],"data":1}`, refusal.Error() + ` (after 0 published)`},
	} {
		w := call(h, tc.method, tc.target, tc.body, nil)
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || w.Code != http.StatusBadRequest || e.Error.Code != "unknown_namespace" || e.Error.Message != tc.message {
			t.Errorf("%s %s: %d %s, want 400 unknown_namespace %q", tc.method, tc.target, w.Code, w.Body, tc.message)
		}
	}
	if err := Refused(ErrUnknownNamespace, refusal); !errors.Is(err, ErrUnknownNamespace) || !errors.Is(err, refusal) {
		t.Errorf("Refused(ErrUnknownNamespace, refusal) = %v, matches neither", err)
	}
}

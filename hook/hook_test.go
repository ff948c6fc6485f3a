package hook

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/herald-push/herald/codec"
	"github.com/herald-push/herald/server"
)

// backend serves a hook's answers through answer.
func backend(t *testing.T, answer http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(answer)
	t.Cleanup(srv.Close)
	return srv.URL
}

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func TestCallAccepts(t *testing.T) {
	t.Parallel()
	var got Request
	u := backend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "want a JSON POST", http.StatusBadRequest)
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		reply(w, map[string]any{"result": map[string]any{"user": "ann", "expire_at": 1e10, "channels": []string{"room:*"}, "data": map[string]int{"n": 2}}})
	})
	c := newClient(t, Config{ConnectURL: u, PublishURL: u})
	res, err := c.Call(context.Background(), &Request{Event: EventConnect, Client: "7", Cookies: map[string]string{"sid": "s1"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.User != "ann" || res.ExpireAt != 1e10 || len(res.Channels) != 1 || string(res.Data) != `{"n":2}` {
		t.Fatalf("result %+v", res)
	}
	if got.Event != EventConnect || got.Client != "7" || got.Cookies["sid"] != "s1" {
		t.Fatalf("backend got %+v", got)
	}
	if st := c.Stats()[EventConnect]; st.Accepted != 1 || st.Breaker != "closed" {
		t.Fatalf("stats %+v", st)
	}
	if _, err := c.Call(context.Background(), &Request{Event: EventRefresh}); !errors.Is(err, ErrDisabled) {
		t.Fatalf("refresh without a URL: %v", err)
	}
}

func TestCallRejects(t *testing.T) {
	t.Parallel()
	u := backend(t, func(w http.ResponseWriter, _ *http.Request) {
		reply(w, map[string]any{"error": map[string]any{"code": 401, "message": "no session"}})
	})
	c := newClient(t, Config{ConnectURL: u, BreakerFailures: 1})
	for range 3 { // a rejection is an answer: the breaker stays closed
		_, err := c.Call(context.Background(), &Request{Event: EventConnect})
		var rej *Rejection
		if !errors.As(err, &rej) || rej.Code != 401 || rej.Message != "no session" {
			t.Fatalf("want the rejection, got %v", err)
		}
	}
	if st := c.Stats()[EventConnect]; st.Rejected != 3 || st.Breaker != "closed" {
		t.Fatalf("stats %+v", st)
	}
}

func TestCallUnavailable(t *testing.T) {
	t.Parallel()
	// A port nobody listens on: bind, note it, close.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String() + "/hook"
	ln.Close()
	cases := []struct {
		name string
		url  string
	}{
		{"down", down},
		{"status 500", backend(t, func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) })},
		{"not JSON", backend(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("<html>")) })},
		{"empty answer", backend(t, func(w http.ResponseWriter, _ *http.Request) { reply(w, map[string]any{}) })},
		{"too large", backend(t, func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write(make([]byte, MaxAnswerBytes+10))
		})},
		{"redirect", backend(t, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/elsewhere", http.StatusFound) })},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, Config{SubscribeURL: tc.url})
			_, err := c.Call(context.Background(), &Request{Event: EventSubscribe})
			if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrTimeout) {
				t.Fatalf("want unavailable, got %v", err)
			}
			if st := c.Stats()[EventSubscribe]; st.Unavailable != 1 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestCallTimesOut(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	u := backend(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) })
	c := newClient(t, Config{ConnectURL: u, Timeout: server.Duration(50 * time.Millisecond)})
	_, err := c.Call(context.Background(), &Request{Event: EventConnect})
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("want a timeout, got %v", err)
	}
	if st := c.Stats()[EventConnect]; st.Timeout != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestBreakerOpens: after BreakerFailures failures in a row the breaker
// refuses without calling the backend, and lets a probe through once
// BreakerOpen has passed; a good answer closes it.
func TestBreakerOpens(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	calls, healthy := 0, false
	u := backend(t, func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if !healthy {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		reply(w, map[string]any{"result": map[string]any{}})
	})
	c := newClient(t, Config{PublishURL: u, BreakerFailures: 3, BreakerOpen: server.Duration(2 * time.Second)})
	for range 3 {
		if _, err := c.Call(context.Background(), &Request{Event: EventPublish}); !errors.Is(err, ErrUnavailable) {
			t.Fatal(err)
		}
	}
	if st := c.Stats()[EventPublish]; st.Breaker != "open" {
		t.Fatalf("breaker %s after 3 failures", st.Breaker)
	}
	_, err := c.Call(context.Background(), &Request{Event: EventPublish})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatal(err)
	}
	mu.Lock()
	if calls != 3 {
		t.Fatalf("the open breaker let a call through: %d calls", calls)
	}
	healthy = true
	mu.Unlock()
	// Wait for the half-open probe (the open period is a timer, not a
	// sleep of ours: poll the state).
	deadline := time.Now().Add(10 * time.Second)
	for c.Stats()[EventPublish].Breaker == "open" {
		if time.Now().After(deadline) {
			t.Fatal("breaker never half-opened")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := c.Call(context.Background(), &Request{Event: EventPublish}); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if st := c.Stats()[EventPublish]; st.Breaker != "closed" {
		t.Fatalf("breaker %s after a good probe", st.Breaker)
	}
}

// TestConcurrencyBound: a call past MaxConcurrent is refused at once,
// not queued.
func TestConcurrencyBound(t *testing.T) {
	t.Parallel()
	arrived, release := make(chan struct{}, 2), make(chan struct{})
	u := backend(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		reply(w, map[string]any{"result": map[string]any{}})
	})
	c := newClient(t, Config{ConnectURL: u, MaxConcurrent: 2})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if _, err := c.Call(context.Background(), &Request{Event: EventConnect}); err != nil {
				t.Error(err)
			}
		})
	}
	<-arrived
	<-arrived
	_, err := c.Call(context.Background(), &Request{Event: EventConnect})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("third call: %v", err)
	}
	close(release)
	wg.Wait()
	if st := c.Stats()[EventConnect]; st.Accepted != 2 || st.Unavailable != 1 || st.Breaker != "closed" {
		t.Fatalf("stats %+v", st)
	}
}

func TestForwarded(t *testing.T) {
	t.Parallel()
	raw := "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"X-Tenant: acme\r\nX-Secret: no\r\nCookie: theme=dark; sid=abc123; bad\"=x\r\n\r\n"
	req, _, err := codec.ParseRequest([]byte(raw), codec.HandshakeLimits{})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, Config{ConnectURL: "http://127.0.0.1:1/", Headers: []string{"x-tenant", "X-Absent"}, Cookies: []string{"sid", "gone"}})
	h, ck := c.Forwarded(req)
	if len(h) != 1 || h["X-Tenant"] != "acme" {
		t.Fatalf("headers %v", h)
	}
	if len(ck) != 1 || ck["sid"] != "abc123" {
		t.Fatalf("cookies %v", ck)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{
		{ConnectURL: "ftp://x/"},
		{SubscribeURL: "/relative"},
		{ConnectURL: "http://x/", Timeout: -1},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	if (&Config{}).Enabled() {
		t.Error("zero config enabled")
	}
}

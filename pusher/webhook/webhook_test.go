package webhook

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

const (
	key     = "k"
	secret  = "s3cret"
	timeout = 10 * time.Second
)

// post is one request the receiver got, its signature checked.
type post struct {
	Payload
	status int
}

// receiver answers each POST with answer(n) (n counts from 1) and reports
// it on the returned channel, after checking its headers and signature
// (the HMAC computed here, not with Sign).
func receiver(t *testing.T, answer func(n int, r *http.Request) int) (string, <-chan post) {
	t.Helper()
	posts := make(chan post, 100)
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := int(n.Add(1))
		body, _ := io.ReadAll(r.Body)
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		want := hex.EncodeToString(m.Sum(nil))
		if r.Method != http.MethodPost || r.Header.Get("X-Pusher-Key") != key || r.Header.Get("Content-Type") != "application/json" ||
			r.Header.Get("X-Pusher-Signature") != want {
			t.Errorf("request %s key %q type %q signature %q, want %q", r.Method, r.Header.Get("X-Pusher-Key"), r.Header.Get("Content-Type"), r.Header.Get("X-Pusher-Signature"), want)
		}
		var p post
		if err := json.Unmarshal(body, &p.Payload); err != nil || p.TimeMS == 0 {
			t.Errorf("body %q: %v", body, err)
		}
		p.status = answer(k, r)
		w.WriteHeader(p.status)
		posts <- p
	}))
	t.Cleanup(srv.Close)
	return srv.URL, posts
}

func ok(int, *http.Request) int { return 200 }

func dispatcher(t *testing.T, url string, edit func(*Config)) *Dispatcher {
	t.Helper()
	cfg := Config{Key: key, Secret: secret, URLs: []string{url}, Backoff: time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if edit != nil {
		edit(&cfg)
	}
	d, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close(context.Background()) })
	return d
}

func next(t *testing.T, posts <-chan post) post {
	t.Helper()
	select {
	case p := <-posts:
		return p
	case <-time.After(timeout):
		t.Fatal("no webhook POST")
		return post{}
	}
}

func closeNow(t *testing.T, d *Dispatcher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestSignedBatch(t *testing.T) {
	url, posts := receiver(t, ok)
	// A window far longer than the test: the batch leaves when full.
	d := dispatcher(t, url, func(c *Config) { c.Window, c.MaxBatch = time.Hour, 3 })
	evs := []Event{
		{Name: ChannelOccupied, Channel: "a"},
		{Name: MemberAdded, Channel: "presence-a", UserID: "7"},
		{Name: ClientEvent, Channel: "private-a", Event: "client-x", Data: `{"n":1}`, SocketID: "1.2"},
		{Name: ChannelVacated, Channel: "a"},
	}
	for _, ev := range evs {
		d.Send(ev)
	}
	p := next(t, posts)
	if len(p.Events) != 3 || p.Events[0] != evs[0] || p.Events[1] != evs[1] || p.Events[2] != evs[2] {
		t.Fatalf("first batch %+v, want the first 3 of %+v", p.Events, evs)
	}
	// Close posts the rest without waiting out the window.
	closeNow(t, d)
	if p := next(t, posts); len(p.Events) != 1 || p.Events[0] != evs[3] {
		t.Fatalf("second batch %+v", p.Events)
	}
	if s := d.c.Stats(); s.Sent != 4 || s.Posts != 2 || s.Failed != 0 || s.Dropped != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestWindowGathers(t *testing.T) {
	url, posts := receiver(t, ok)
	d := dispatcher(t, url, func(c *Config) { c.Window = 200 * time.Millisecond })
	d.Send(Event{Name: ChannelOccupied, Channel: "a"})
	d.Send(Event{Name: ChannelOccupied, Channel: "b"})
	if p := next(t, posts); len(p.Events) != 2 {
		t.Fatalf("batch %+v, want both events", p.Events)
	}
}

func TestRetryOn500ThenSuccess(t *testing.T) {
	url, posts := receiver(t, func(n int, _ *http.Request) int {
		if n == 1 {
			return 500
		}
		return 204
	})
	d := dispatcher(t, url, func(c *Config) { c.Window = time.Millisecond })
	d.Send(Event{Name: ChannelOccupied, Channel: "a"})
	first, second := next(t, posts), next(t, posts)
	if first.status != 500 || second.status != 204 || len(second.Events) != 1 || second.TimeMS != first.TimeMS {
		t.Fatalf("posts %+v then %+v: want the same batch again", first, second)
	}
	closeNow(t, d)
	if s := d.c.Stats(); s.Sent != 1 || s.Retries != 1 || s.Failed != 0 || s.Posts != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestRetryOnTimeout(t *testing.T) {
	url, posts := receiver(t, func(n int, r *http.Request) int {
		if n == 1 {
			<-r.Context().Done() // the client gives up
		}
		return 200
	})
	d := dispatcher(t, url, func(c *Config) {
		c.Window, c.Client = time.Millisecond, &http.Client{Timeout: 100 * time.Millisecond}
	})
	d.Send(Event{Name: ChannelOccupied, Channel: "a"})
	next(t, posts)
	if p := next(t, posts); p.status != 200 {
		t.Fatalf("retry %+v", p)
	}
	closeNow(t, d)
	if s := d.c.Stats(); s.Sent != 1 || s.Retries != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestDroppedAfterAttempts(t *testing.T) {
	url, posts := receiver(t, func(int, *http.Request) int { return 503 })
	d := dispatcher(t, url, func(c *Config) { c.Window, c.MaxAttempts = time.Millisecond, 3 })
	d.Send(Event{Name: ChannelOccupied, Channel: "a"})
	d.Send(Event{Name: ChannelOccupied, Channel: "b"})
	for range 3 {
		next(t, posts)
	}
	closeNow(t, d) // waits for the last attempt's outcome
	if s := d.c.Stats(); s.Failed != 2 || s.Sent != 0 || s.Retries != 2 {
		t.Fatalf("stats %+v", s)
	}
	select {
	case p := <-posts:
		t.Fatalf("a fourth attempt: %+v", p)
	default:
	}
}

func TestClientErrorNotRetried(t *testing.T) {
	url, posts := receiver(t, func(int, *http.Request) int { return 400 })
	d := dispatcher(t, url, func(c *Config) { c.Window = time.Millisecond })
	d.Send(Event{Name: ChannelOccupied, Channel: "a"})
	next(t, posts)
	closeNow(t, d)
	if s := d.c.Stats(); s.Failed != 1 || s.Retries != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestQueueFullDrops(t *testing.T) {
	release := make(chan struct{})
	url, posts := receiver(t, func(int, *http.Request) int { <-release; return 200 })
	d := dispatcher(t, url, func(c *Config) { c.Window, c.MaxBatch, c.QueueSize, c.Concurrency = time.Millisecond, 1, 2, 1 })
	d.Send(Event{Name: ChannelOccupied, Channel: "first"})
	// The receiver holds the first POST: the one allowed in flight. Of the
	// next 10 events, the batcher holds at most one and the queue two; Send
	// returns at once for every one, and drops the rest.
	started := time.Now()
	for range 10 {
		d.Send(Event{Name: ChannelOccupied, Channel: "more"})
	}
	if el := time.Since(started); el > time.Second {
		t.Fatalf("Send blocked for %v", el)
	}
	if s := d.c.Stats(); s.Dropped < 7 {
		t.Fatalf("dropped %d of 10, want at least 7 (stats %+v)", s.Dropped, s)
	}
	close(release)
	closeNow(t, d)
	s := d.c.Stats()
	if s.Sent+s.Dropped != 11 {
		t.Fatalf("stats %+v: sent and dropped should make 11", s)
	}
	for range s.Posts {
		next(t, posts)
	}
}

func TestCheckURL(t *testing.T) {
	for u, good := range map[string]bool{
		"http://127.0.0.1:9/hook": true, "https://example.com/h?x=1": true,
		"ftp://example.com/": false, "example.com/hook": false, "http://": false, "file:///etc/passwd": false, "": false,
	} {
		if err := CheckURL(u); (err == nil) != good {
			t.Errorf("CheckURL(%q) = %v", u, err)
		}
	}
	if _, err := New(Config{Key: key, Secret: secret, URLs: []string{"ws://x"}}, nil); err == nil {
		t.Fatal("New took a ws:// URL")
	}
}

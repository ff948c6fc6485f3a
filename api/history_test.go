package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// historyBackend is a fakeBackend with the history API: a list of
// messages of channel "news" in epoch "e", and idempotent publishes that
// remember their keys.
type historyBackend struct {
	fakeBackend
	hmu     sync.Mutex
	queries []HistoryQuery
	page    HistoryPage
	removed []string
	keys    map[string]Published
}

func (b *historyBackend) History(q HistoryQuery) (HistoryPage, error) {
	b.hmu.Lock()
	defer b.hmu.Unlock()
	if q.Channel == "bad name" {
		return HistoryPage{}, fmt.Errorf("%w: invalid channel", ErrBadRequest)
	}
	b.queries = append(b.queries, q)
	return b.page, nil
}

func (b *historyBackend) RemoveHistory(channel string) (RemovedHistory, error) {
	b.hmu.Lock()
	defer b.hmu.Unlock()
	if channel == "down" {
		return RemovedHistory{}, fmt.Errorf("%w: NATS away", ErrUnavailable)
	}
	b.removed = append(b.removed, channel)
	return RemovedHistory{Removed: 7, Epoch: "new"}, nil
}

func (b *historyBackend) PublishOnce(channel string, data []byte, key string) (Published, error) {
	b.hmu.Lock()
	if p, ok := b.keys[channel+"\x00"+key]; ok {
		b.hmu.Unlock()
		p.Duplicate = true
		return p, nil
	}
	b.hmu.Unlock()
	p, err := b.Publish(channel, data)
	if err != nil {
		return p, err
	}
	b.hmu.Lock()
	if b.keys == nil {
		b.keys = map[string]Published{}
	}
	b.keys[channel+"\x00"+key] = p
	b.hmu.Unlock()
	return p, nil
}

func TestHistoryRead(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
	b := &historyBackend{page: HistoryPage{
		Epoch: "e",
		Messages: []HistoryMessage{
			{Offset: 4, Data: []byte(`{"a":1}`), Time: at},
			{Offset: 5, Data: []byte("plain \"text\""), Time: at.Add(time.Millisecond)},
		},
		More: true, Recovered: true,
	}}
	h := NewHandler(b, Options{APIKey: "k"})
	auth := map[string]string{"X-API-Key": "k"}

	w := call(h, "GET", "/api/history?channel=news&since=3&epoch=e&limit=2", "", auth)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var got struct {
		Channel  string `json:"channel"`
		Epoch    string `json:"epoch"`
		Messages []struct {
			Offset uint64          `json:"offset"`
			Data   json.RawMessage `json:"data"`
			Time   string          `json:"time"`
		} `json:"messages"`
		Next      *uint64 `json:"next"`
		Recovered bool    `json:"recovered"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Channel != "news" || got.Epoch != "e" || !got.Recovered || got.Next == nil || *got.Next != 5 || len(got.Messages) != 2 {
		t.Fatalf("answer %s", w.Body)
	}
	if string(got.Messages[0].Data) != `{"a":1}` || string(got.Messages[1].Data) != `"plain \"text\""` {
		t.Fatalf("data %s and %s: want JSON inlined, text as a string", got.Messages[0].Data, got.Messages[1].Data)
	}
	if got.Messages[0].Time != "2025-03-01T12:00:00.123456789Z" {
		t.Fatalf("time %q, want RFC 3339 with nanoseconds", got.Messages[0].Time)
	}
	q := b.queries[0]
	if q.Channel != "news" || q.Since == nil || *q.Since != 3 || q.Epoch != "e" || q.Limit != 2 {
		t.Fatalf("query %+v", q)
	}

	// The last page has no "next"; defaults: no since, limit 100.
	b.page.More = false
	w = call(h, "GET", "/api/history?channel=news", "", auth)
	if w.Code != http.StatusOK || strings.Contains(w.Body.String(), `"next"`) {
		t.Fatalf("last page: %d %s", w.Code, w.Body)
	}
	if q := b.queries[1]; q.Since != nil || q.Limit != DefaultHistoryPage || q.Epoch != "" {
		t.Fatalf("default query %+v", q)
	}
	w = call(h, "GET", "/api/history?channel=news&limit=1000", "", auth)
	if w.Code != http.StatusOK {
		t.Fatalf("limit 1000: %d", w.Code)
	}

	for _, target := range []string{
		"/api/history", "/api/history?channel=", "/api/history?channel=news&limit=1001",
		"/api/history?channel=news&limit=0", "/api/history?channel=news&limit=x",
		"/api/history?channel=news&since=-1", "/api/history?channel=news&since=x",
		"/api/history?channel=bad+name",
	} {
		if w := call(h, "GET", target, "", auth); w.Code != http.StatusBadRequest || errorCode(t, w) != "bad_request" {
			t.Errorf("%s: %d %s, want 400 bad_request", target, w.Code, w.Body)
		}
	}
	if w := call(h, "GET", "/api/history?channel=news", "", nil); w.Code != http.StatusUnauthorized {
		t.Fatalf("without the key: %d", w.Code)
	}
	if w := call(h, "PUT", "/api/history?channel=news", "", auth); w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, DELETE" {
		t.Fatalf("PUT: %d Allow %q", w.Code, w.Header().Get("Allow"))
	}
}

func TestHistoryRemove(t *testing.T) {
	t.Parallel()
	b := &historyBackend{}
	h := NewHandler(b, Options{APIKey: "k"})
	auth := map[string]string{"X-API-Key": "k"}
	w := call(h, "DELETE", "/api/history?channel=news", "", auth)
	if w.Code != http.StatusOK || strings.TrimSpace(w.Body.String()) != `{"channel":"news","removed":7,"epoch":"new"}` {
		t.Fatalf("delete: %d %s", w.Code, w.Body)
	}
	if w := call(h, "DELETE", "/api/history", "", auth); w.Code != http.StatusBadRequest {
		t.Fatalf("no channel: %d", w.Code)
	}
	if w := call(h, "DELETE", "/api/history?channel=down", "", auth); w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Fatalf("broker away: %d", w.Code)
	}
	if w := call(h, "DELETE", "/api/history?channel=news", "", nil); w.Code != http.StatusUnauthorized {
		t.Fatalf("without the key: %d", w.Code)
	}
	// A page of another site may not delete.
	if w := call(h, "DELETE", "/api/history?channel=news", "", map[string]string{"X-API-Key": "k", "Sec-Fetch-Site": "cross-site"}); w.Code != http.StatusForbidden {
		t.Fatalf("cross-site delete: %d", w.Code)
	}
	if len(b.removed) != 1 {
		t.Fatalf("removed %v, want one", b.removed)
	}
}

// A backend without the history API answers 501.
func TestHistoryNotImplemented(t *testing.T) {
	t.Parallel()
	h := NewHandler(&fakeBackend{}, Options{})
	for _, c := range []struct{ method, target, body string }{
		{"GET", "/api/history?channel=news", ""},
		{"DELETE", "/api/history?channel=news", ""},
		{"POST", "/api/publish?channel=news&idempotency_key=k", "x"},
	} {
		if w := call(h, c.method, c.target, c.body, nil); w.Code != http.StatusNotImplemented || errorCode(t, w) != "not_implemented" {
			t.Errorf("%s %s: %d %s", c.method, c.target, w.Code, w.Body)
		}
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	b := &historyBackend{}
	h := NewHandler(b, Options{})
	type answer struct {
		Offset    uint64 `json:"offset"`
		Duplicate bool   `json:"duplicate"`
	}
	for i, c := range []struct{ target, body string }{
		{"/api/publish?channel=news&idempotency_key=k1", "x"},
		{"/api/publish?channel=news&idempotency_key=k1", "x"},
		{"/api/publish", `{"channel":"news","data":1,"idempotency_key":"k1"}`},
		{"/api/publish?idempotency_key=k1", `{"channel":"news","data":1}`},
	} {
		w := call(h, "POST", c.target, c.body, nil)
		var a answer
		if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil || w.Code != http.StatusOK {
			t.Fatalf("%d: %d %s", i, w.Code, w.Body)
		}
		if a.Offset != 1 || a.Duplicate != (i > 0) {
			t.Fatalf("publish %d: %s, want offset 1, duplicate from the second", i, w.Body)
		}
		if i == 0 && strings.Contains(w.Body.String(), "duplicate") {
			t.Fatalf("first publish says duplicate: %s", w.Body)
		}
	}
	if n := b.count(); n != 1 {
		t.Fatalf("%d publishes reached the backend, want 1", n)
	}
	// Broadcast: the key applies per channel.
	w := call(h, "POST", "/api/broadcast", `{"channels":["news","sport"],"data":1,"idempotency_key":"k1"}`, nil)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `{"channel":"sport","offset":2,"epoch":"e"}`) ||
		!strings.Contains(w.Body.String(), `"duplicate":true`) {
		t.Fatalf("broadcast: %d %s", w.Code, w.Body)
	}
	long := strings.Repeat("k", MaxIdempotencyKey+1)
	for _, c := range []struct{ target, body string }{
		{"/api/publish?channel=news&idempotency_key=" + long, "x"},
		{"/api/publish", `{"channel":"news","data":1,"idempotency_key":"` + long + `"}`},
		{"/api/broadcast", `{"channels":["news"],"data":1,"idempotency_key":"` + long + `"}`},
	} {
		if w := call(h, "POST", c.target, c.body, nil); w.Code != http.StatusBadRequest {
			t.Errorf("key of %d bytes: %d", len(long), w.Code)
		}
	}
	if w := call(h, "POST", "/api/publish?channel=news&idempotency_key="+long[:MaxIdempotencyKey], "x", nil); w.Code != http.StatusOK {
		t.Fatalf("key of %d bytes: %d", MaxIdempotencyKey, w.Code)
	}
}

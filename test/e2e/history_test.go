package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

// historyPage is an answer of GET /api/history.
type historyPage struct {
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

const historyKey = "history-e2e-key"

var keyHeader = map[string]string{"Authorization": "Bearer " + historyKey}

func readHistory(t *testing.T, n *node, query string) historyPage {
	t.Helper()
	code, body := apiCall(t, "GET", n.API+"/api/history?"+query, "", keyHeader)
	if code != 200 {
		t.Fatalf("GET /api/history?%s: %d %s", query, code, body)
	}
	var p historyPage
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatalf("history answer %s: %v", body, err)
	}
	return p
}

// TestHistoryAPI: a backend pages through a channel's history, learns
// when it cannot continue, and removes it.
func TestHistoryAPI(t *testing.T) {
	n := start(t, "--allow-anonymous", "--history-size=300", "--api-key", historyKey)
	began := time.Now().Add(-time.Second)
	for i := 1; i <= 250; i++ {
		body := fmt.Sprintf(`{"n":%d}`, i)
		if i%2 == 0 {
			body = fmt.Sprintf("text %d", i)
		}
		code, out := apiCall(t, "POST", n.API+"/api/publish?channel=hist", body, keyHeader)
		if code != 200 {
			t.Fatalf("publish %d: %d %s", i, code, out)
		}
	}
	if code, _ := apiCall(t, "GET", n.API+"/api/history?channel=hist", "", nil); code != 401 {
		t.Fatalf("history without the key: %d, want 401", code)
	}

	// Page through by 100: every offset once, in order, with its data.
	seen := 0
	var epoch string
	query := "channel=hist&limit=100"
	for pages := 1; ; pages++ {
		p := readHistory(t, n, query)
		if !p.Recovered || p.Channel != "hist" || p.Epoch == "" {
			t.Fatalf("page %d: %+v", pages, p)
		}
		epoch = p.Epoch
		for _, m := range p.Messages {
			seen++
			if m.Offset != uint64(seen) {
				t.Fatalf("page %d: offset %d, want %d", pages, m.Offset, seen)
			}
			want := fmt.Sprintf(`{"n":%d}`, seen)
			if seen%2 == 0 {
				want = fmt.Sprintf(`"text %d"`, seen)
			}
			if string(m.Data) != want {
				t.Fatalf("offset %d: data %s, want %s", seen, m.Data, want)
			}
			at, err := time.Parse(time.RFC3339Nano, m.Time)
			if err != nil || at.Before(began) || at.After(time.Now().Add(time.Second)) {
				t.Fatalf("offset %d: time %q (%v)", seen, m.Time, err)
			}
		}
		if p.Next == nil {
			if pages != 3 {
				t.Fatalf("%d pages, want 3", pages)
			}
			break
		}
		if len(p.Messages) != 100 || *p.Next != uint64(seen) {
			t.Fatalf("page %d: %d messages, next %d", pages, len(p.Messages), *p.Next)
		}
		query = fmt.Sprintf("channel=hist&limit=100&since=%d&epoch=%s", *p.Next, epoch)
	}
	if seen != 250 {
		t.Fatalf("paged %d messages, want 250", seen)
	}

	// Another epoch: not recovered, the page starts at the oldest kept.
	if p := readHistory(t, n, "channel=hist&since=200&epoch=stale&limit=1"); p.Recovered || len(p.Messages) != 1 || p.Messages[0].Offset != 1 {
		t.Fatalf("wrong epoch: %+v", p)
	}
	if code, _ := apiCall(t, "GET", n.API+"/api/history?channel=hist&limit=1001", "", keyHeader); code != 400 {
		t.Fatalf("limit 1001: %d, want 400", code)
	}

	// DELETE: the channel's history goes, a client with since learns
	// recovered:false, a subscriber stays and gets the next message.
	live := n.mustDial(t, "channel=hist")
	live.expectOp("subscribed")
	code, body := apiCall(t, "DELETE", n.API+"/api/history?channel=hist", "", keyHeader)
	var rm struct {
		Channel string `json:"channel"`
		Removed int    `json:"removed"`
		Epoch   string `json:"epoch"`
	}
	if code != 200 || json.Unmarshal([]byte(body), &rm) != nil || rm.Removed != 250 || rm.Epoch == "" || rm.Epoch == epoch || rm.Channel != "hist" {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	if p := readHistory(t, n, "channel=hist"); len(p.Messages) != 0 || p.Epoch != rm.Epoch {
		t.Fatalf("after DELETE: %+v", p)
	}
	c := n.mustDial(t, fmt.Sprintf("channel=hist&since=hist:%d:%s", 240, epoch))
	if m := c.expectOp("subscribed"); m.Recovered == nil || *m.Recovered {
		t.Fatalf("since after DELETE: %+v, want recovered:false", m)
	}
	apiCall(t, "POST", n.API+"/api/publish?channel=hist", "after", keyHeader)
	if m := live.mustNext(); m.Offset != 1 || string(m.Data) != `"after"` {
		t.Fatalf("subscriber after DELETE got %+v, want offset 1 of the new epoch", m)
	}
}

// TestIdempotentPublish: a publish retried with its idempotency_key is
// stored and delivered once; every retry answers with the same offset and
// duplicate:true.
func TestIdempotentPublish(t *testing.T) {
	n := start(t, "--allow-anonymous")
	c := n.mustDial(t, "channel=orders")
	c.expectOp("subscribed")
	publish(t, n, "orders", "before")
	var first map[string]any
	for try := 0; try < 5; try++ {
		var code int
		var body string
		if try%2 == 0 {
			code, body = apiCall(t, "POST", n.API+"/api/publish?channel=orders&idempotency_key="+url.QueryEscape("order 42"), `{"id":42}`, nil)
		} else {
			code, body = apiCall(t, "POST", n.API+"/api/publish", `{"channel":"orders","data":{"id":42},"idempotency_key":"order 42"}`, map[string]string{"Content-Type": "application/json"})
		}
		var out map[string]any
		if code != 200 || json.Unmarshal([]byte(body), &out) != nil {
			t.Fatalf("try %d: %d %s", try, code, body)
		}
		if try == 0 {
			first = out
			if out["duplicate"] != nil || out["offset"] != float64(2) {
				t.Fatalf("first publish: %s", body)
			}
			continue
		}
		if out["duplicate"] != true || out["offset"] != first["offset"] || out["epoch"] != first["epoch"] {
			t.Fatalf("retry %d: %s, want the first's offset and epoch with duplicate:true", try, body)
		}
	}
	publish(t, n, "orders", "after")
	for _, want := range []string{`"before"`, `{"id":42}`, `"after"`} {
		if m := c.mustNext(); string(m.Data) != want {
			t.Fatalf("subscriber got %s, want %s (the idempotent publish once)", m.Data, want)
		}
	}
	if v := metric(t, n, "herald_idempotent_duplicates_total"); v != 4 {
		t.Fatalf("herald_idempotent_duplicates_total %v, want 4", v)
	}
	long := strings.Repeat("k", 129)
	if code, _ := apiCall(t, "POST", n.API+"/api/publish?channel=orders&idempotency_key="+long, "x", nil); code != 400 {
		t.Fatalf("129-byte key: %d, want 400", code)
	}
}

package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// apiDo sends one API request to n and returns the status and body.
func apiDo(t *testing.T, n *node, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, n.API+path, strings.NewReader(body))
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, path, n.name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestIdempotentAcrossNodes: a publish retried with one idempotency_key
// through two nodes is stored once (JetStream's Nats-Msg-Id
// de-duplication), answered with one offset, and delivered once.
func TestIdempotentAcrossNodes(t *testing.T) {
	s := startNATS(t, 0, t.TempDir())
	nodes := startCluster(t, s.ClientURL(), "a", "b")
	a, b := nodes[0], nodes[1]
	cb, _, err := subscribe(t, b, "pay", published{})
	if err != nil {
		t.Fatal(err)
	}
	mustPublish(t, a, "pay", `"before"`)
	type answer struct {
		Offset    uint64 `json:"offset"`
		Epoch     string `json:"epoch"`
		Duplicate bool   `json:"duplicate"`
	}
	var first answer
	for try := 0; try < 6; try++ {
		n := []*node{a, b}[try%2]
		st, body := apiDo(t, n, "POST", "/api/publish?channel=pay&idempotency_key=charge-7", `{"amount":7}`)
		var got answer
		if st != http.StatusOK || json.Unmarshal([]byte(body), &got) != nil {
			t.Fatalf("try %d on %s: %d %s", try, n.name, st, body)
		}
		if try == 0 {
			if got.Duplicate || got.Offset != 2 {
				t.Fatalf("first publish: %s", body)
			}
			first = got
			continue
		}
		if !got.Duplicate || got.Offset != first.Offset || got.Epoch != first.Epoch {
			t.Fatalf("retry %d on %s: %s, want offset %d epoch %s with duplicate:true", try, n.name, body, first.Offset, first.Epoch)
		}
	}
	mustPublish(t, b, "pay", `"after"`)
	for _, want := range []string{`"before"`, `{"amount":7}`, `"after"`} {
		e, err := cb.next(5 * time.Second)
		if err != nil || string(e.Data) != want {
			t.Fatalf("subscriber on b got %s (%v), want %s", e.Data, err, want)
		}
	}
}

// TestHistoryAcrossNodes: a node that does not watch a channel reads its
// history from JetStream; DELETE on one node purges it for every node.
func TestHistoryAcrossNodes(t *testing.T) {
	s := startNATS(t, 0, t.TempDir())
	nodes := startCluster(t, s.ClientURL(), "a", "b")
	a, b := nodes[0], nodes[1]
	cb, sub, err := subscribe(t, b, "log", published{})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 30; i++ {
		mustPublish(t, b, "log", fmt.Sprintf(`{"n":%d}`, i))
	}
	for i := 1; i <= 30; i++ {
		if _, err := cb.next(5 * time.Second); err != nil {
			t.Fatal(err)
		}
	}
	type page struct {
		Epoch    string `json:"epoch"`
		Messages []struct {
			Offset uint64 `json:"offset"`
			Time   string `json:"time"`
		} `json:"messages"`
		Next      *uint64 `json:"next"`
		Recovered bool    `json:"recovered"`
	}
	read := func(n *node, q string) page {
		t.Helper()
		st, body := apiDo(t, n, "GET", "/api/history?"+q, "")
		var p page
		if st != http.StatusOK || json.Unmarshal([]byte(body), &p) != nil {
			t.Fatalf("history on %s: %d %s", n.name, st, body)
		}
		return p
	}
	// a never watched "log": it replays it from JetStream.
	p := read(a, "channel=log&since=10&epoch="+sub.Epoch+"&limit=15")
	if !p.Recovered || p.Epoch != sub.Epoch || len(p.Messages) != 15 || p.Messages[0].Offset != 11 || p.Next == nil || *p.Next != 25 {
		t.Fatalf("history on a: %+v", p)
	}

	st, body := apiDo(t, a, "DELETE", "/api/history?channel=log", "")
	var rm struct {
		Removed int    `json:"removed"`
		Epoch   string `json:"epoch"`
	}
	if st != http.StatusOK || json.Unmarshal([]byte(body), &rm) != nil || rm.Removed != 30 || rm.Epoch == "" || rm.Epoch == sub.Epoch {
		t.Fatalf("DELETE on a: %d %s", st, body)
	}
	// b, which watches the channel, learns the new epoch from the stream.
	waitFor(t, 5*time.Second, "b's copy in the new epoch", func() bool {
		p := read(b, "channel=log")
		return p.Epoch == rm.Epoch && len(p.Messages) == 0
	})
	_, e, err := subscribe(t, b, "log", published{Offset: 30, Epoch: sub.Epoch})
	if err != nil || e.Recovered == nil || *e.Recovered {
		t.Fatalf("since after DELETE: %+v %v, want recovered:false", e, err)
	}
	// The subscriber stays and gets offset 1 of the new epoch.
	if p := mustPublish(t, a, "log", `"again"`); p.Offset != 1 || p.Epoch != rm.Epoch {
		t.Fatalf("publish after DELETE at %+v, want 1 in %s", p, rm.Epoch)
	}
	if e, err := cb.next(5 * time.Second); err != nil || e.Offset != 1 || string(e.Data) != `"again"` {
		t.Fatalf("subscriber on b after DELETE: %+v %v", e, err)
	}
}

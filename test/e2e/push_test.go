package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPublishReachesEverySubscriber: one API publish, every subscriber of
// the channel gets it exactly once, and nobody else does.
func TestPublishReachesEverySubscriber(t *testing.T) {
	n := start(t, "--allow-anonymous")
	const subs = 50
	var cs []*client
	for i := 0; i < subs; i++ {
		c := n.mustDial(t, "channel=news")
		if m := c.expectOp("subscribed"); m.Channel != "news" {
			t.Fatalf("subscribed to %q", m.Channel)
		}
		cs = append(cs, c)
	}
	other := n.mustDial(t, "channel=sport")
	other.expectOp("subscribed")
	for i := 1; i <= 3; i++ {
		out := publish(t, n, "news", fmt.Sprintf(`{"n":%d}`, i))
		if out["offset"].(float64) != float64(i) {
			t.Fatalf("publish %d got offset %v", i, out["offset"])
		}
	}
	publish(t, n, "news", "plain text")
	for i, c := range cs {
		for k := 1; k <= 3; k++ {
			m := c.mustNext()
			if m.Channel != "news" || m.Offset != uint64(k) || string(m.Data) != fmt.Sprintf(`{"n":%d}`, k) {
				t.Fatalf("subscriber %d message %d: %+v data=%s", i, k, m, m.Data)
			}
		}
		if m := c.mustNext(); string(m.Data) != `"plain text"` {
			t.Fatalf("non-JSON payload arrives as a JSON string, got %s", m.Data)
		}
	}
	if m, err := other.next(300 * time.Millisecond); err == nil {
		t.Fatalf("subscriber of another channel got %+v", m)
	}
	// format=raw gets bare payloads.
	raw := n.mustDial(t, "channel=news&format=raw")
	time.Sleep(50 * time.Millisecond)
	publish(t, n, "news", "bare")
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, b, err := raw.ReadMessage(); err != nil || string(b) != "bare" {
		t.Fatalf("raw format got %q %v", b, err)
	}
	if got := metric(t, n, "herald_published_total"); got != 5 {
		t.Fatalf("herald_published_total = %v, want 5", got)
	}
	if got := metric(t, n, "herald_deliveries_total"); got < subs*4+1 {
		t.Fatalf("herald_deliveries_total = %v, want >= %d", got, subs*4+1)
	}
}

// TestUserChannel: a publish to user:<sub> reaches every connection of that
// user and nobody else; /api/disconnect closes them all with 4003.
func TestUserChannel(t *testing.T) {
	n := start(t)
	alice := token(t, "alice", time.Hour, []string{"news"}, nil)
	bob := token(t, "bob", time.Hour, []string{"*"}, nil)
	var devices []*client
	for i := 0; i < 3; i++ {
		devices = append(devices, n.mustDial(t, "token="+alice))
	}
	b := n.mustDial(t, "token="+bob)
	// Bob's "*" does not reach into other users' personal channels.
	b.send(map[string]any{"op": "sub", "channel": "user:alice"})
	if m := b.expectOp("error"); m.Code != "forbidden" {
		t.Fatalf("bob subscribing to user:alice: %+v", m)
	}
	time.Sleep(50 * time.Millisecond)
	publish(t, n, "user:alice", `{"hello":"alice"}`)
	for i, d := range devices {
		if m := d.mustNext(); m.Channel != "user:alice" || string(m.Data) != `{"hello":"alice"}` {
			t.Fatalf("device %d: %+v", i, m)
		}
	}
	if m, err := b.next(300 * time.Millisecond); err == nil {
		t.Fatalf("bob got alice's message: %+v", m)
	}
	code, body := apiCall(t, "POST", n.API+"/api/disconnect", `{"user":"alice"}`, nil)
	if code != 200 || !strings.Contains(body, `"disconnected":3`) {
		t.Fatalf("disconnect: %d %s", code, body)
	}
	for i, d := range devices {
		if c := d.closeCode(5 * time.Second); c != 4003 {
			t.Fatalf("device %d closed with %d, want 4003", i, c)
		}
	}
}

// TestTokens: accepted and refused tokens at the upgrade, and channel
// permissions after it.
func TestTokens(t *testing.T) {
	n := start(t)
	good := token(t, "carol", time.Hour, []string{"news", "chat.*"}, []string{"chat.*"})
	cases := []struct {
		name   string
		query  string
		header http.Header
		status int
	}{
		{"valid-query", "token=" + good, nil, 101},
		{"valid-bearer", "", http.Header{"Authorization": {"Bearer " + good}}, 101},
		{"missing", "", nil, 401},
		{"expired", "token=" + token(t, "carol", -time.Hour, nil, nil), nil, 401},
		{"garbage", "token=abc.def.ghi", nil, 401},
		{"wrong-key", "token=" + signWith(t, []byte("another-secret-that-is-also-long-enough!!"), "carol"), nil, 401},
		{"alg-none", "token=" + noneToken("carol"), nil, 401},
		{"bad-origin", "token=" + good, http.Header{"Origin": {"https://evil.example"}}, 403},
		{"wrong-path", "", nil, 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c *client
			var resp *http.Response
			var err error
			if tc.name == "wrong-path" {
				_, resp, err = dialPath(n, "/nope?token="+good)
			} else {
				c, resp, err = n.dial(t, tc.query, tc.header)
			}
			if tc.status == 101 {
				if err != nil {
					t.Fatalf("dial: %v", err)
				}
				c.Close()
				return
			}
			if err == nil || resp == nil || resp.StatusCode != tc.status {
				got := 0
				if resp != nil {
					got = resp.StatusCode
				}
				t.Fatalf("status %d (err %v), want %d", got, err, tc.status)
			}
		})
	}
	c := n.mustDial(t, "token="+good)
	c.send(map[string]any{"op": "sub", "channel": "secret", "id": 1})
	if m := c.expectOp("error"); m.Code != "forbidden" || string(m.ID) != "1" {
		t.Fatalf("forbidden channel: %+v", m)
	}
	c.send(map[string]any{"op": "sub", "channel": "chat.room1"})
	c.expectOp("subscribed")
	c.send(map[string]any{"op": "pub", "channel": "news", "data": 1})
	if m := c.expectOp("error"); m.Code != "forbidden" {
		t.Fatalf("publishing without the grant: %+v", m)
	}
	c.send(map[string]any{"op": "pub", "channel": "chat.room1", "data": map[string]string{"text": "hi"}})
	c.expectOp("published")
	if m := c.mustNext(); m.Channel != "chat.room1" || string(m.Data) != `{"text":"hi"}` {
		t.Fatalf("own publish not delivered: %+v", m)
	}
	c.send(map[string]any{"op": "bogus"})
	if m := c.expectOp("error"); m.Code != "bad_request" {
		t.Fatalf("unknown op: %+v", m)
	}
}

// TestTokenExpiryDisconnects: a connection whose token expires is closed
// with 4001 so the client fetches a fresh token.
func TestTokenExpiryDisconnects(t *testing.T) {
	n := start(t, "--jwt-leeway=0", "--ping-interval=0")
	c := n.mustDial(t, "token="+token(t, "dave", 1500*time.Millisecond, nil, nil))
	if code := c.closeCode(10 * time.Second); code != 4001 {
		t.Fatalf("closed with %d, want 4001", code)
	}
}

// TestRecovery: a client that reconnects with since gets exactly what it
// missed, then live messages; a gap older than history gets
// recovered:false.
func TestRecovery(t *testing.T) {
	n := start(t, "--allow-anonymous", "--history-size=20")
	c := n.mustDial(t, "channel=feed")
	sub := c.expectOp("subscribed")
	for i := 1; i <= 5; i++ {
		publish(t, n, "feed", fmt.Sprint(i))
	}
	var last msg
	for i := 1; i <= 5; i++ {
		last = c.mustNext()
	}
	if last.Offset != 5 {
		t.Fatalf("last offset %d", last.Offset)
	}
	c.Close() // forced disconnect: the client vanishes
	for i := 6; i <= 10; i++ {
		publish(t, n, "feed", fmt.Sprint(i))
	}
	c2 := n.mustDial(t, "")
	c2.send(map[string]any{"op": "sub", "channel": "feed", "since": map[string]any{"offset": last.Offset, "epoch": sub.Epoch}})
	m := c2.expectOp("subscribed")
	if m.Recovered == nil || !*m.Recovered || m.Offset != 10 {
		t.Fatalf("subscribed reply %+v", m)
	}
	for i := 6; i <= 10; i++ {
		got := c2.mustNext()
		if got.Offset != uint64(i) || string(got.Data) != fmt.Sprint(i) {
			t.Fatalf("recovered message %d: %+v", i, got)
		}
	}
	publish(t, n, "feed", "11")
	if got := c2.mustNext(); got.Offset != 11 {
		t.Fatalf("live after recovery: %+v", got)
	}
	if extra, err := c2.next(200 * time.Millisecond); err == nil {
		t.Fatalf("duplicate or extra message: %+v", extra)
	}
	// Reconnecting through the URL works too.
	c3 := n.mustDial(t, fmt.Sprintf("channel=feed&since=feed:%d:%s", 9, sub.Epoch))
	if m := c3.expectOp("subscribed"); m.Recovered == nil || !*m.Recovered {
		t.Fatalf("url since: %+v", m)
	}
	for _, want := range []uint64{10, 11} {
		if got := c3.mustNext(); got.Offset != want {
			t.Fatalf("url since: got offset %d want %d", got.Offset, want)
		}
	}
	// History overflow: 30 more messages, history keeps 20.
	for i := 12; i <= 41; i++ {
		publish(t, n, "feed", fmt.Sprint(i))
	}
	c4 := n.mustDial(t, "")
	c4.send(map[string]any{"op": "sub", "channel": "feed", "since": map[string]any{"offset": 11, "epoch": sub.Epoch}})
	if m := c4.expectOp("subscribed"); m.Recovered == nil || *m.Recovered {
		t.Fatalf("overflowed history must say recovered:false, got %+v", m)
	}
	// A wrong epoch (history lost) also says false.
	c4.send(map[string]any{"op": "sub", "channel": "feed", "since": map[string]any{"offset": 40, "epoch": "stale"}})
	if m := c4.expectOp("subscribed"); m.Recovered == nil || *m.Recovered {
		t.Fatalf("wrong epoch must say recovered:false, got %+v", m)
	}
}

// TestConcurrentPublishNoLossNoDup: many publishers, many subscribers:
// every subscriber sees every offset once, in order.
func TestConcurrentPublishNoLossNoDup(t *testing.T) {
	n := start(t, "--allow-anonymous")
	const subs, pubs, each = 20, 4, 50
	var cs []*client
	for i := 0; i < subs; i++ {
		c := n.mustDial(t, "channel=storm")
		c.expectOp("subscribed")
		cs = append(cs, c)
	}
	var wg sync.WaitGroup
	for p := 0; p < pubs; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				resp, err := http.Post(n.API+"/api/publish?channel=storm", "text/plain", strings.NewReader(fmt.Sprintf(`{"p":%d,"i":%d}`, p, i)))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	for i, c := range cs {
		for want := uint64(1); want <= pubs*each; want++ {
			m := c.mustNext()
			if m.Offset != want {
				t.Fatalf("subscriber %d: offset %d, want %d", i, m.Offset, want)
			}
		}
	}
}

func dialPath(n *node, path string) (*client, *http.Response, error) {
	c, resp, err := websocketDial(n.WS + path)
	if err != nil {
		return nil, resp, err
	}
	return &client{Conn: c}, resp, nil
}

func noneToken(sub string) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return b64url(b)
	}
	return enc(map[string]string{"alg": "none", "typ": "JWT"}) + "." + enc(map[string]any{"sub": sub, "exp": time.Now().Add(time.Hour).Unix()}) + "."
}

package hostile

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-push/herald/auth"
	"github.com/herald-push/herald/internal/wstest"
)

// TestEmptyPatternMeansNone: --anonymous-publish= (or
// HERALD_ANONYMOUS_PUBLISH="") let anonymous clients publish to every
// channel; the same for subscribe. An empty list means none, in flags,
// environment, JSON config and token claims alike. Not parallel: it sets
// environment variables for the binary.
func TestEmptyPatternMeansNone(t *testing.T) {
	// pubRefused checks that a connection's pub to news is refused and
	// published nothing.
	pubRefused := func(t *testing.T, n *node, c *client) {
		t.Helper()
		c.send(map[string]any{"op": "pub", "channel": "news", "data": "forged"})
		m := c.expectOp("error")
		if m.Code != "forbidden" {
			t.Errorf("pub with an empty publish list: error %q, want forbidden", m.Code)
		}
		if o := n.offset("news"); o != 0 {
			t.Fatalf("pub with an empty publish list reached news (offset %d)", o)
		}
	}
	subRefused := func(t *testing.T, c *client) {
		t.Helper()
		c.send(map[string]any{"op": "sub", "channel": "news"})
		if m := c.expectOp("error"); m.Code != "forbidden" {
			t.Errorf("sub with an empty subscribe list: error %q, want forbidden", m.Code)
		}
	}
	t.Run("flag", func(t *testing.T) {
		n := start(t, "--allow-anonymous", "--anonymous-publish=", "--anonymous-subscribe=")
		c := n.mustDial("")
		pubRefused(t, n, c)
		subRefused(t, c)
	})
	t.Run("env", func(t *testing.T) {
		t.Setenv("HERALD_ANONYMOUS_PUBLISH", "")
		t.Setenv("HERALD_ANONYMOUS_SUBSCRIBE", "")
		n := start(t, "--allow-anonymous")
		c := n.mustDial("")
		pubRefused(t, n, c)
		subRefused(t, c)
	})
	t.Run("json", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "herald.json")
		os.WriteFile(path, []byte(`{"allow_anonymous":true,"anonymous_publish":[],"anonymous_subscribe":[]}`), 0o600)
		n := start(t, "--config", path)
		c := n.mustDial("")
		pubRefused(t, n, c)
		subRefused(t, c)
	})
	t.Run("token-claims", func(t *testing.T) {
		n := start(t)
		for _, list := range [][]string{{}, {""}} {
			tok := token(t, auth.TokenSpec{Subject: "eve", ExpiresAt: time.Now().Add(time.Hour), Publish: list, Subscribe: list})
			c, resp, err := dialWS(t, nil, "ws", n.WS, "token="+tok)
			if err != nil {
				if resp == nil || (resp.StatusCode != 401 && resp.StatusCode != 403) {
					t.Fatalf("token with patterns %q: %v", list, err)
				}
				continue // refusing such a token is fine too
			}
			pubRefused(t, n, c)
			subRefused(t, c)
		}
	})
}

// TestTokenExpiryAfter2106: connection expiry was kept in 32 bits, so a
// token with exp after 2106 was expired at once (4001). It is accepted
// and the connection lives on: it answers several server pings and is not
// closed.
func TestTokenExpiryAfter2106(t *testing.T) {
	t.Parallel()
	n := start(t, "--ping-interval=1s", "--pong-timeout=5s")
	exp := time.Date(2107, 1, 1, 0, 0, 0, 0, time.UTC)
	if exp.Unix() <= 1<<32 {
		t.Fatal("2107 fits in 32 bits?")
	}
	tok := token(t, auth.TokenSpec{Subject: "future", ExpiresAt: exp})
	c := rawDial(t, n.WS, "/ws?token="+tok, dialOpts{}, "")
	pings := 0
	for pings < 3 {
		f, err := c.Read(15 * time.Second)
		if err != nil {
			t.Fatalf("after %d pings: %v", pings, err)
		}
		switch f.Op {
		case wstest.OpPing:
			pings++
			c.Send(wstest.Frame{Fin: true, Op: wstest.OpPong, Payload: f.Payload})
		case wstest.OpClose:
			code := 0
			if len(f.Payload) >= 2 {
				code = int(f.Payload[0])<<8 | int(f.Payload[1])
			}
			t.Fatalf("a token expiring in 2107 was closed %d %q after %d pings", code, f.Payload[min(2, len(f.Payload)):], pings)
		}
	}
	if v := n.metric(disconnects("token_expired")); v != 0 {
		t.Fatalf("token_expired = %v", v)
	}
}

// TestHistoryWipe: one global history budget, oldest first, let one
// publisher (an anonymous client allowed demo:*) wipe every channel's
// recovery history. A channel's history is capped on its own
// (history_channel_bytes, 4 MiB) and the node cap evicts fairly: another
// channel's subscriber still recovers.
func TestHistoryWipe(t *testing.T) {
	t.Parallel()
	n := start(t, "--allow-anonymous", "--anonymous-publish=demo:*")
	victim := n.mustDial("channel=orders")
	sub := victim.expectOp("subscribed")
	n.mustPublish("orders", "order 1")
	if m, err := victim.next(10 * time.Second); err != nil || m.Offset != 1 {
		t.Fatalf("victim: %+v %v", m, err)
	}
	victim.Close()

	// The anonymous attacker: the largest pubs it can send (in 512 KiB
	// fragments), 280 MiB in all, until the server closes it.
	a := rawDial(t, n.WS, "/ws", dialOpts{}, "")
	replies := make(chan struct{})
	go func() {
		defer close(replies)
		for {
			f, err := a.Read(30 * time.Second)
			if err != nil || f.Op == wstest.OpClose {
				return
			}
		}
	}()
	data := strings.Repeat("w", 4<<20-100)
	for range 70 {
		cmd := fmt.Sprintf(`{"op":"pub","channel":"demo:flood","data":%q}`, data)
		a.NC.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := a.NC.Write(fragments(cmd, 512<<10)); err != nil {
			break
		}
		select {
		case <-replies:
		default:
			continue
		}
		break
	}
	a.NC.Close()
	<-replies
	// The backend publishes large messages to the attacker's channel too:
	// more than one channel's history may hold.
	for range 40 {
		n.mustPublish("demo:flood", strings.Repeat("f", 256<<10))
	}

	again := n.mustDial(fmt.Sprintf("channel=orders&since=orders:0:%s", sub.Epoch))
	m := again.expectOp("subscribed")
	if m.Recovered == nil || !*m.Recovered {
		t.Fatalf("victim came back recovered:%v after another channel's publishes: history wiped (want recovered:true)", m.Recovered != nil && *m.Recovered)
	}
	if d, err := again.next(10 * time.Second); err != nil || d.Offset != 1 {
		t.Fatalf("recovered message: %+v %v", d, err)
	}
	var hist []struct {
		Name         string `json:"name"`
		HistoryBytes int64  `json:"history_bytes"`
	}
	_, _, b := n.call("GET", "/api/channels", "", nil)
	var wrap struct {
		Channels json.RawMessage `json:"channels"`
	}
	json.Unmarshal([]byte(b), &wrap)
	json.Unmarshal(wrap.Channels, &hist)
	for _, h := range hist {
		if h.Name == "demo:flood" && h.HistoryBytes > 4<<20+64<<10 {
			t.Errorf("demo:flood holds %d bytes of history, want at most history_channel_bytes (4 MiB)", h.HistoryBytes)
		}
	}
	n.expectMetric(`herald_history_evictions_total{reason="channel_bytes"}`, 1)
}

// fragments encodes s as one text message in fragments of n bytes.
func fragments(s string, n int) []byte {
	var out []byte
	for i := 0; i < len(s); i += n {
		op := byte(wstest.OpCont)
		if i == 0 {
			op = wstest.OpText
		}
		end := min(i+n, len(s))
		out = append(out, wstest.Encode(wstest.Frame{Fin: end == len(s), Op: op, Payload: []byte(s[i:end])})...)
	}
	return out
}

// Package presence tests presence on herald's own protocol end to end:
// the real binary started with a config file (a presence namespace and
// presence_channels), gorilla/websocket clients with signed tokens, the
// HTTP API's GET /api/presence; and two nodes on an embedded NATS server
// sharing their members, one of them killed.
package presence

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-push/herald/auth"
	"github.com/herald-push/herald/internal/testutil"
	"github.com/herald-push/herald/test/internal/natstest"
)

// secret signs the tests' tokens.
const secret = "presence-suite-secret-0123456789abcdef"

// wait bounds every wait of the suite.
const wait = 20 * time.Second

// node is a running herald.
type node struct {
	*testutil.Proc
	API, WS string
}

// start runs herald with the config file conf and extra flags.
func start(t *testing.T, conf string, extra ...string) *node {
	t.Helper()
	dir := t.TempDir()
	file, secretFile := filepath.Join(dir, "herald.json"), filepath.Join(dir, "jwt.secret")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"serve", "--config", file, "--jwt-secret-file", secretFile,
		"--listen", "127.0.0.1:{port}", "--api-listen", "127.0.0.1:{port:api}", "--loops=2"}, extra...)
	p := testutil.Start(t, testutil.Binary(t, "herald"), args...)
	n := &node{Proc: p, API: "http://" + p.Extra["api"], WS: "ws://" + p.Addr}
	waitFor(t, "/readyz", func() bool { st, _ := testutil.Get(n.API + "/readyz"); return st == http.StatusOK })
	return n
}

// presence is GET /api/presence's answer.
type presence struct {
	Channel string   `json:"channel"`
	Count   int      `json:"count"`
	Users   []string `json:"users"`
}

// presenceOf asks n's API for ch's members.
func (n *node) presenceOf(t *testing.T, ch string) presence {
	t.Helper()
	st, b := testutil.Get(n.API + "/api/presence?channel=" + url.QueryEscape(ch))
	if st != http.StatusOK {
		t.Fatalf("GET /api/presence?channel=%s: %d %s", ch, st, b)
	}
	var p presence
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("GET /api/presence: %q: %v", b, err)
	}
	return p
}

// msg is a server → client message.
type msg = testutil.Msg

type client struct {
	t *testing.T
	*websocket.Conn
}

// dial connects as user (a token with the subject user and every
// channel) to n.
func (n *node) dial(t *testing.T, user string) *client {
	t.Helper()
	tok, err := auth.Sign([]byte(secret), auth.TokenSpec{Subject: user, Subscribe: []string{"*"}, ExpiresAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := websocket.DefaultDialer.Dial(n.WS+"/ws?token="+url.QueryEscape(tok), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, Conn: c}
}

// join dials as user and subscribes to ch; it returns the client and its
// subscribed reply.
func (n *node) join(t *testing.T, user, ch string) (*client, msg) {
	t.Helper()
	c := n.dial(t, user)
	c.send(`{"op":"sub","channel":"` + ch + `"}`)
	m := c.next()
	if m.Op != "subscribed" || m.Presence == nil {
		t.Fatalf("%s: %+v, want subscribed with presence", user, m)
	}
	return c, m
}

func (c *client) send(v string) {
	c.t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(v)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) next() msg {
	c.t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(wait))
	_, b, err := c.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	var m msg
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("not JSON: %q", b)
	}
	return m
}

// event reads the next message and checks it is op (join or leave) of
// user in ch.
func (c *client) event(op, ch, user string) {
	c.t.Helper()
	if m := c.next(); m.Op != op || m.Channel != ch || m.User != user {
		c.t.Fatalf("got %+v, want %s of %s in %s", m, op, user, ch)
	}
}

// waitFor polls cond until it holds or wait passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// subscribers is the node's subscriber count of ch (GET /api/channels).
func (n *node) subscribers(t *testing.T, ch string) int {
	t.Helper()
	st, b := testutil.Get(n.API + "/api/channels?prefix=" + url.QueryEscape(ch))
	if st != http.StatusOK {
		t.Fatalf("GET /api/channels: %d %s", st, b)
	}
	var page struct {
		Channels []struct {
			Name        string `json:"name"`
			Subscribers int    `json:"subscribers"`
		} `json:"channels"`
	}
	if err := json.Unmarshal(b, &page); err != nil {
		t.Fatal(err)
	}
	for _, c := range page.Channels {
		if c.Name == ch {
			return c.Subscribers
		}
	}
	return 0
}

const config = `{
	"log_level": "warn",
	"demo": false,
	"presence_channels": ["lobby"],
	"presence_leave_delay": "-1s",
	"namespaces": [
		{"name": "room", "presence": true},
		{"name": "news"}
	]
}`

// TestPresence: two users, one with two tabs, on one node: one join per
// user, no leave for the second tab's close, one for the last; the API
// lists the members; channels without presence answer 400. (No leave
// delay: a wrong leave would come at once.)
func TestPresence(t *testing.T) {
	t.Parallel()
	n := start(t, config)
	for _, ch := range []string{"room:1", "lobby"} {
		t.Run(ch, func(t *testing.T) {
			bob, r := n.join(t, "bob", ch)
			if r.Presence.Count != 1 || !slices.Equal(r.Presence.Users, []string{"bob"}) {
				t.Fatalf("bob's subscribed: %+v", r.Presence)
			}
			tab1, r := n.join(t, "alice", ch)
			if r.Presence.Count != 2 {
				t.Fatalf("alice's subscribed: %+v", r.Presence)
			}
			bob.event("join", ch, "alice")
			tab2, r := n.join(t, "alice", ch)
			if r.Presence.Count != 2 || !slices.Equal(r.Presence.Users, []string{"bob", "alice"}) {
				t.Fatalf("alice's second tab: %+v", r.Presence)
			}
			if p := n.presenceOf(t, ch); p.Count != 2 || !slices.Equal(p.Users, []string{"bob", "alice"}) || p.Channel != ch {
				t.Fatalf("GET /api/presence: %+v", p)
			}

			tab2.Close()
			waitFor(t, "tab2's close", func() bool { return n.subscribers(t, ch) == 2 })
			carol, _ := n.join(t, "carol", ch)
			bob.event("join", ch, "carol") // nothing of alice came before it
			tab1.event("join", ch, "carol")
			carol.send(`{"op":"presence","channel":"` + ch + `"}`)
			if m := carol.next(); m.Op != "presence" || m.Count != 3 {
				t.Fatalf("carol's presence: %+v", m)
			}

			tab1.Close()
			bob.event("leave", ch, "alice")
			if p := n.presenceOf(t, ch); p.Count != 2 || !slices.Equal(p.Users, []string{"bob", "carol"}) {
				t.Fatalf("GET /api/presence after alice left: %+v", p)
			}
		})
	}
	t.Run("no presence", func(t *testing.T) {
		for _, ch := range []string{"news:1", "plain"} {
			if st, b := testutil.Get(n.API + "/api/presence?channel=" + ch); st != http.StatusBadRequest {
				t.Errorf("GET /api/presence?channel=%s: %d %s, want 400", ch, st, b)
			}
		}
		c := n.dial(t, "dave")
		c.send(`{"op":"sub","channel":"news:1"}`)
		if m := c.next(); m.Op != "subscribed" || m.Presence != nil {
			t.Fatalf("news:1: %+v, want subscribed without presence", m)
		}
	})
}

// TestPresenceCluster: two nodes on NATS share their members: joins
// cross nodes, a user with tabs on both is one member, and the members
// of a node killed with SIGKILL leave (its user with a tab elsewhere
// stays).
func TestPresenceCluster(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t, 0, t.TempDir())
	natsURL := fmt.Sprintf("nats://127.0.0.1:%d", natstest.Port(ns))
	conf := `{"log_level": "warn", "demo": false, "presence_leave_delay": "-1s"}`
	flags := []string{"--broker", natsURL, "--presence-channel", "lobby", "--pusher-node-timeout", "2s"}
	a, b := start(t, conf, flags...), start(t, conf, flags...)
	const ch = "lobby"

	bob, _ := a.join(t, "bob", ch)
	b.join(t, "alice", ch)
	bob.event("join", ch, "alice")
	b.join(t, "carol", ch)
	bob.event("join", ch, "carol")
	_, r := a.join(t, "alice", ch) // alice's second tab, on the other node
	if r.Presence.Count != 3 {
		t.Fatalf("alice's tab on A: %+v, want bob, alice and carol", r.Presence)
	}
	waitFor(t, "B's view of bob", func() bool { return b.presenceOf(t, ch).Count == 3 })
	if p := a.presenceOf(t, ch); p.Count != 3 || !slices.Equal(p.Users, []string{"bob", "alice", "carol"}) {
		t.Fatalf("A's GET /api/presence: %+v", p)
	}

	if err := b.Cmd.Process.Kill(); err != nil { // SIGKILL, by PID
		t.Fatal(err)
	}
	bob.event("leave", ch, "carol") // within the node timeout; alice keeps her tab on A
	a.join(t, "dave", ch)
	bob.event("join", ch, "dave")
	if p := a.presenceOf(t, ch); p.Count != 3 || !slices.Equal(p.Users, []string{"bob", "alice", "dave"}) {
		t.Fatalf("A's GET /api/presence after B died: %+v", p)
	}
}

// TestPresenceReload: a user whose only tab closes and comes back within
// the leave delay never left: no leave, no second join, still listed; on
// one node and moving from one node to another on NATS. (The delay is
// longer than the test, so a wrong leave could only come at once.)
func TestPresenceReload(t *testing.T) {
	t.Parallel()
	conf := `{"log_level": "warn", "demo": false, "presence_channels": ["lobby"], "presence_leave_delay": "1m"}`
	const ch = "lobby"
	t.Run("one node", func(t *testing.T) {
		t.Parallel()
		n := start(t, conf)
		bob, _ := n.join(t, "bob", ch)
		alice, _ := n.join(t, "alice", ch)
		bob.event("join", ch, "alice")
		alice.Close()
		waitFor(t, "alice's close", func() bool { return n.subscribers(t, ch) == 1 })
		if p := n.presenceOf(t, ch); p.Count != 2 {
			t.Fatalf("alice gone for the delay: %+v, want her still listed", p)
		}
		if _, r := n.join(t, "alice", ch); r.Presence.Count != 2 {
			t.Fatalf("alice back: %+v", r.Presence)
		}
		n.join(t, "carol", ch)
		bob.event("join", ch, "carol") // nothing of alice came before it
	})
	t.Run("to another node", func(t *testing.T) {
		t.Parallel()
		ns := natstest.Start(t, 0, t.TempDir())
		flags := []string{"--broker", fmt.Sprintf("nats://127.0.0.1:%d", natstest.Port(ns))}
		a, b := start(t, conf, flags...), start(t, conf, flags...)
		bob, _ := a.join(t, "bob", ch)
		alice, _ := b.join(t, "alice", ch)
		bob.event("join", ch, "alice")
		alice.Close()
		waitFor(t, "alice's close on B", func() bool { return b.subscribers(t, ch) == 0 })
		if _, r := a.join(t, "alice", ch); r.Presence.Count != 2 {
			t.Fatalf("alice on A: %+v", r.Presence)
		}
		b.join(t, "carol", ch)
		bob.event("join", ch, "carol") // no leave of alice before it
		waitFor(t, "B's view", func() bool { return b.presenceOf(t, ch).Count == 3 })
	})
}

// TestPresenceMemberCapFlag: --presence-max-members caps a channel's
// members on the binary: a new member past it is answered error limit,
// counted in herald_limit_refusals_total{limit="presence_members"}, and
// the connection stays; a member's second tab is taken.
func TestPresenceMemberCapFlag(t *testing.T) {
	t.Parallel()
	n := start(t, `{"log_level": "warn", "demo": false, "presence_channels": ["lobby"], "presence_leave_delay": "-1s"}`, "--presence-max-members", "1")
	const ch = "lobby"
	alice, _ := n.join(t, "alice", ch)
	if _, r := n.join(t, "alice", ch); r.Presence.Count != 1 {
		t.Fatalf("alice's second tab: %+v", r.Presence)
	}
	bob := n.dial(t, "bob")
	bob.send(`{"op":"sub","channel":"` + ch + `"}`)
	if m := bob.next(); m.Op != "error" || m.Code != "limit" || m.Channel != ch {
		t.Fatalf("bob past the cap: %+v, want error limit", m)
	}
	bob.send(`{"op":"ping"}`)
	if m := bob.next(); m.Op != "pong" {
		t.Fatalf("after the refusal: %+v, want pong", m)
	}
	if got := testutil.Metric(t, n.API, `herald_limit_refusals_total{limit="presence_members"}`); got != 1 {
		t.Fatalf("herald_limit_refusals_total{limit=\"presence_members\"} = %v, want 1", got)
	}
	if p := n.presenceOf(t, ch); p.Count != 1 || !slices.Equal(p.Users, []string{"alice"}) {
		t.Fatalf("GET /api/presence: %+v", p)
	}
	alice.send(`{"op":"ping"}`)
	if m := alice.next(); m.Op != "pong" { // no join of bob came first
		t.Fatalf("alice: %+v, want pong", m)
	}
}

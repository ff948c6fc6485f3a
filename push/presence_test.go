package push

import (
	"strings"
	"testing"
	"time"

	"github.com/herald-push/herald/hub"
	"github.com/herald-push/herald/internal/wstest"
	"github.com/herald-push/herald/server"
)

// startPresence starts a node whose channels "room:*" have presence,
// with the given leave delay.
func startPresence(t *testing.T, delay time.Duration) *pushNode {
	t.Helper()
	return startPresenceWith(t, delay, nil)
}

// startPresenceWith is startPresence with edit applied to the Options.
func startPresenceWith(t *testing.T, delay time.Duration, edit func(*Options)) *pushNode {
	t.Helper()
	return startPush(t, hub.Config{}, func(o *Options, _ *server.Config) {
		o.Presence = func(ch string) bool { return strings.HasPrefix(ch, "room:") }
		o.PresenceLeaveDelay = delay
		o.CommandRate = -1
		if edit != nil {
			edit(o)
		}
	})
}

// joinAs connects user (anonymous when "") and subscribes to ch,
// returning the connection and its subscribed reply.
func (n *pushNode) joinAs(t *testing.T, user, ch string) (*wstest.Conn, map[string]any) {
	t.Helper()
	path := "/ws"
	if user != "" {
		path += "?token=" + token(t, user, []string{"room:*", "plain"}, nil)
	}
	c := n.dial(t, path)
	send(c, `{"op":"sub","channel":"`+ch+`"}`)
	return c, expect(t, c, `{"op":"subscribed","channel":"`+ch+`"}`)
}

// conns is the node's connection count of user in ch (-1: no member).
func (n *pushNode) conns(ch, user string) (conns int, away bool) {
	conns = -1
	n.app.pres.set.View(ch, func(c *presenceChannel) {
		if m := c.Member(user); m != nil {
			conns, away = m.Conns(), m.Away()
		}
	})
	return conns, away
}

// users is a presence list as the JSON decoder gives it.
func users(names ...string) []any {
	out := make([]any, len(names))
	for i, s := range names {
		out[i] = s
	}
	return out
}

func checkPresence(t *testing.T, got map[string]any, count int, names ...string) {
	t.Helper()
	p, ok := got["presence"].(map[string]any)
	if !ok {
		t.Fatalf("no presence in %v", got)
	}
	if p["count"] != float64(count) {
		t.Fatalf("presence count %v, want %d (%v)", p["count"], count, got)
	}
	list, _ := p["users"].([]any)
	if len(list) != len(names) {
		t.Fatalf("presence users %v, want %v", list, names)
	}
	for i, u := range users(names...) {
		if list[i] != u {
			t.Fatalf("presence users %v, want %v", list, names)
		}
	}
}

// TestPresenceTabs: one member per user however many tabs; its second
// tab's close is no leave, its last is one.
func TestPresenceTabs(t *testing.T) {
	t.Parallel()
	n := startPresence(t, -1) // no delay: a wrong leave would come at once
	bob, r := n.joinAs(t, "bob", "room:1")
	checkPresence(t, r, 1, "bob")

	tab1, r := n.joinAs(t, "alice", "room:1")
	checkPresence(t, r, 2, "bob", "alice")
	expect(t, bob, `{"op":"join","channel":"room:1","user":"alice"}`)
	tab2, r := n.joinAs(t, "alice", "room:1")
	checkPresence(t, r, 2, "bob", "alice")
	// tab2 joined quietly: the next event bob gets is carol's.
	carol, _ := n.joinAs(t, "carol", "room:1")
	expect(t, bob, `{"op":"join","channel":"room:1","user":"carol"}`)
	expect(t, tab1, `{"op":"join","channel":"room:1","user":"carol"}`)

	tab2.NC.Close()
	waitFor(t, "tab2's close", func() bool { c, _ := n.conns("room:1", "alice"); return c == 1 })
	send(carol, `{"op":"unsub","channel":"room:1"}`)
	expect(t, carol, `{"op":"unsubscribed","channel":"room:1"}`)
	// The leave that comes is carol's: alice's second tab was none.
	expect(t, bob, `{"op":"leave","channel":"room:1","user":"carol"}`)
	send(bob, `{"op":"presence","channel":"room:1","id":7}`)
	expect(t, bob, `{"op":"presence","channel":"room:1","count":2,"id":7}`)

	tab1.NC.Close()
	expect(t, bob, `{"op":"leave","channel":"room:1","user":"alice"}`)
	// Joins of bob, alice and carol, leaves of carol and alice.
	if st := n.app.Stats(); st.PresenceMembers != 1 || st.PresenceEvents != 5 {
		t.Fatalf("Stats: %d members, %d events; want 1 and 5", st.PresenceMembers, st.PresenceEvents)
	}
	if p, _ := n.app.Presence("room:1", 0); p.Count != 1 || len(p.Users) != 1 || p.Users[0] != "bob" {
		t.Fatalf("Presence = %+v, want bob alone", p)
	}
}

// TestPresenceLeaveDelay: a member whose last connection left leaves once
// the delay passed, and one back within it never left.
func TestPresenceLeaveDelay(t *testing.T) {
	t.Parallel()
	t.Run("leave after the delay", func(t *testing.T) {
		t.Parallel()
		n := startPresence(t, 20*time.Millisecond)
		bob, _ := n.joinAs(t, "bob", "room:1")
		alice, _ := n.joinAs(t, "alice", "room:1")
		expect(t, bob, `{"op":"join","channel":"room:1","user":"alice"}`)
		alice.NC.Close()
		expect(t, bob, `{"op":"leave","channel":"room:1","user":"alice"}`)
	})
	t.Run("a reload is no leave", func(t *testing.T) {
		t.Parallel()
		n := startPresence(t, time.Hour) // longer than any test waits
		bob, _ := n.joinAs(t, "bob", "room:1")
		alice, _ := n.joinAs(t, "alice", "room:1")
		expect(t, bob, `{"op":"join","channel":"room:1","user":"alice"}`)
		alice.NC.Close()
		waitFor(t, "alice's close", func() bool { c, away := n.conns("room:1", "alice"); return c == 0 && away })
		send(bob, `{"op":"presence","channel":"room:1"}`)
		expect(t, bob, `{"op":"presence","channel":"room:1","count":2,"users":["bob","alice"]}`)
		_, r := n.joinAs(t, "alice", "room:1")
		checkPresence(t, r, 2, "bob", "alice")
		if c, away := n.conns("room:1", "alice"); c != 1 || away {
			t.Fatalf("alice back: %d connections, away %v", c, away)
		}
		// No join for alice's return, nor a leave: the next event is carol's.
		n.joinAs(t, "carol", "room:1")
		expect(t, bob, `{"op":"join","channel":"room:1","user":"carol"}`)
	})
}

// TestPresenceQuery: the presence command answers subscribers and those
// who may subscribe, and refuses the others and channels without
// presence.
func TestPresenceQuery(t *testing.T) {
	t.Parallel()
	n := startPresence(t, -1)
	n.joinAs(t, "alice", "room:1")
	other := n.dial(t, "/ws?token="+token(t, "dave", []string{"room:*"}, nil))
	cases := []struct {
		name, path, cmd, want string
	}{
		{name: "allowed to subscribe", cmd: `{"op":"presence","channel":"room:1","id":"q"}`,
			want: `{"op":"presence","channel":"room:1","count":1,"users":["alice"],"id":"q"}`},
		{name: "empty channel", cmd: `{"op":"presence","channel":"room:2"}`,
			want: `{"op":"presence","channel":"room:2","count":0,"users":[]}`},
		{name: "no presence", cmd: `{"op":"presence","channel":"plain"}`,
			want: `{"op":"error","code":"bad_request","channel":"plain"}`},
		{name: "invalid channel", cmd: `{"op":"presence","channel":""}`,
			want: `{"op":"error","code":"bad_request"}`},
		{name: "not allowed", path: "/ws?token=" + token(t, "eve", []string{"news"}, nil), cmd: `{"op":"presence","channel":"room:1"}`,
			want: `{"op":"error","code":"forbidden","channel":"room:1"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := other
			if tc.path != "" {
				c = n.dial(t, tc.path)
			}
			send(c, tc.cmd)
			expect(t, c, tc.want)
		})
	}
}

// TestPresenceScope: channels without presence carry no events, and
// anonymous subscribers are told of members but are none.
func TestPresenceScope(t *testing.T) {
	t.Parallel()
	n := startPresence(t, -1)
	bob, r := n.joinAs(t, "bob", "plain")
	if _, ok := r["presence"]; ok {
		t.Fatalf("presence in a plain channel's reply: %v", r)
	}
	n.joinAs(t, "alice", "plain")
	send(bob, `{"op":"sub","channel":"room:1"}`)
	checkPresence(t, expect(t, bob, `{"op":"subscribed","channel":"room:1"}`), 1, "bob")

	anon, r := n.joinAs(t, "", "room:1")
	checkPresence(t, r, 1, "bob")
	// No join for the anonymous client, none for alice's plain channel:
	// the next event bob gets is carol's, and the anonymous client
	// receives it too.
	n.joinAs(t, "carol", "room:1")
	expect(t, bob, `{"op":"join","channel":"room:1","user":"carol"}`)
	expect(t, anon, `{"op":"join","channel":"room:1","user":"carol"}`)
	anon.NC.Close()
	waitFor(t, "the anonymous close", func() bool {
		subs := 0
		n.app.pres.set.View("room:1", func(c *presenceChannel) { subs = c.NumSubscribers() })
		return subs == 2
	})
	if p, _ := n.app.Presence("room:1", 0); p.Count != 2 {
		t.Fatalf("Presence = %+v, want bob and carol", p)
	}
	if _, ok := n.app.Presence("plain", 0); ok {
		t.Fatal("Presence of a plain channel")
	}
}

// TestPresenceListCap: the list stops at MaxPresenceList, the count does
// not.
func TestPresenceListCap(t *testing.T) {
	t.Parallel()
	// No member cap: the list's cap is what is looked at.
	n := startPresenceWith(t, -1, func(o *Options) { o.PresenceMaxMembers = -1 })
	for i := range MaxPresenceList + 2 {
		n.app.RemotePresence(PresenceEntry{Node: 2, Channel: "room:1", User: "u" + strings.Repeat("x", i)})
	}
	_, r := n.joinAs(t, "bob", "room:1")
	p := r["presence"].(map[string]any)
	if p["count"] != float64(MaxPresenceList+3) || len(p["users"].([]any)) != MaxPresenceList {
		t.Fatalf("count %v, %d users listed", p["count"], len(p["users"].([]any)))
	}
	n.app.RemotePresence(PresenceEntry{Node: 2, Channel: "room:1", User: "u", Gone: true, NodeDown: true})
	expect(t, askPresence(t, n, "room:1"), `{"op":"presence","count":102}`)
}

// askPresence asks the presence of ch from a new subscriber-to-be.
func askPresence(t *testing.T, n *pushNode, ch string) *wstest.Conn {
	t.Helper()
	c := n.dial(t, "/ws?token="+token(t, "zed", []string{"room:*"}, nil))
	send(c, `{"op":"presence","channel":"`+ch+`"}`)
	return c
}

// TestPresenceMemberCap: a presence channel takes at most
// PresenceMaxMembers members; a subscribe of a new member past it is
// answered with the error code "limit" (the connection stays, nothing
// changed, nobody told), while another tab of a member, an anonymous
// subscriber (no member) and other nodes' members are not refused. Once
// a member left, the next one is taken.
func TestPresenceMemberCap(t *testing.T) {
	t.Parallel()
	n := startPresenceWith(t, -1, func(o *Options) { o.PresenceMaxMembers = 2 })
	alice, _ := n.joinAs(t, "alice", "room:1")
	bob, _ := n.joinAs(t, "bob", "room:1")
	expect(t, alice, `{"op":"join","channel":"room:1","user":"bob"}`)
	_, r := n.joinAs(t, "alice", "room:1") // a second tab
	checkPresence(t, r, 2, "alice", "bob")
	_, r = n.joinAs(t, "", "room:1")
	checkPresence(t, r, 2, "alice", "bob")

	carol := n.dial(t, "/ws?token="+token(t, "carol", []string{"room:*"}, nil))
	send(carol, `{"op":"sub","channel":"room:1","id":1}`)
	got := expect(t, carol, `{"op":"error","code":"limit","channel":"room:1","id":1}`)
	if msg, _ := got["message"].(string); !strings.Contains(msg, "presence channel") || !strings.Contains(msg, "limit 2") {
		t.Fatalf("refusal message %q", msg)
	}
	send(carol, `{"op":"ping"}`)
	expect(t, carol, `{"op":"pong"}`)
	send(carol, `{"op":"unsub","channel":"room:1"}`)
	expect(t, carol, `{"op":"error","code":"not_subscribed","channel":"room:1"}`)
	if p, _ := n.app.Presence("room:1", 0); p.Count != 2 {
		t.Fatalf("Presence = %+v, want alice and bob", p)
	}
	if st := n.app.Stats(); st.PresenceLimited != 1 || st.PresenceMembers != 2 {
		t.Fatalf("Stats: %d limited, %d members; want 1 and 2", st.PresenceLimited, st.PresenceMembers)
	}

	// Another node's member is not refused: its node admitted it.
	n.app.RemotePresence(PresenceEntry{Node: 2, Channel: "room:1", User: "remy"})
	expect(t, alice, `{"op":"join","channel":"room:1","user":"remy"}`)
	n.app.RemotePresence(PresenceEntry{Node: 2, Channel: "room:1", User: "remy", Gone: true})
	expect(t, alice, `{"op":"leave","channel":"room:1","user":"remy"}`)

	// bob leaves: carol is taken, and told to the others (the refused
	// subscribe told nothing: the next event alice sees is bob's leave).
	bob.NC.Close()
	expect(t, alice, `{"op":"leave","channel":"room:1","user":"bob"}`)
	send(carol, `{"op":"sub","channel":"room:1"}`)
	checkPresence(t, expect(t, carol, `{"op":"subscribed","channel":"room:1"}`), 2, "alice", "carol")
	expect(t, alice, `{"op":"join","channel":"room:1","user":"carol"}`)
}

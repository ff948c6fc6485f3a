package push

import (
	"fmt"
	"strings"
	"testing"

	"github.com/herald-push/herald/hub"
	"github.com/herald-push/herald/internal/wstest"
	"github.com/herald-push/herald/server"
)

// TestCommands runs every client command and its errors: each case dials
// a fresh client to path, sends cmds and expects the replies, in order (a
// JSON object each, of which the fields given must match).
func TestCommands(t *testing.T) {
	t.Parallel()
	n := startPush(t, hub.Config{}, func(o *Options, _ *server.Config) {
		o.Handlers = sendHandler{}
		o.Workers = goSubmitter{}
		o.CommandRate = -1
	})
	bare := startPush(t, hub.Config{}, nil) // no Handlers
	limited := "/ws?token=" + token(t, "alice", []string{"news"}, nil)
	cases := []struct {
		name string
		node *pushNode
		path string
		cmds []string
		want []string
	}{
		{name: "ping", cmds: []string{`{"op":"ping","id":7}`}, want: []string{`{"op":"pong","id":7}`}},
		{name: "sub", cmds: []string{`{"op":"sub","channel":"a","id":"x"}`},
			want: []string{`{"op":"subscribed","channel":"a","offset":0,"id":"x"}`}},
		{name: "sub in the URL", path: "/ws?channel=a&channel=b",
			want: []string{`{"op":"subscribed","channel":"a"}`, `{"op":"subscribed","channel":"b"}`}},
		{name: "unsub", cmds: []string{`{"op":"sub","channel":"a"}`, `{"op":"unsub","channel":"a","id":2}`},
			want: []string{`{"op":"subscribed","channel":"a"}`, `{"op":"unsubscribed","channel":"a","id":2}`}},
		{name: "unsub not subscribed", cmds: []string{`{"op":"unsub","channel":"a","id":3}`},
			want: []string{`{"op":"error","code":"not_subscribed","channel":"a","id":3}`}},
		{name: "pub and delivery", cmds: []string{`{"op":"sub","channel":"p"}`, `{"op":"pub","channel":"p","data":{"x":1},"id":1}`},
			want: []string{`{"op":"subscribed","channel":"p","offset":0}`, `{"op":"published","channel":"p","offset":1,"id":1}`,
				`{"channel":"p","offset":1,"data":{"x":1}}`}},
		{name: "pub without data", cmds: []string{`{"op":"pub","channel":"q"}`},
			want: []string{`{"op":"error","code":"bad_request","channel":"q"}`}},
		{name: "pub invalid channel", cmds: []string{`{"op":"pub","channel":"a b","data":1}`},
			want: []string{`{"op":"error","code":"bad_request","message":"invalid channel name"}`}},
		{name: "sub invalid channel", cmds: []string{`{"op":"sub","channel":""}`},
			want: []string{`{"op":"error","code":"bad_request","message":"invalid channel name"}`}},
		{name: "sub forbidden", path: limited, cmds: []string{`{"op":"sub","channel":"other","id":1}`, `{"op":"sub","channel":"news"}`},
			want: []string{`{"op":"error","code":"forbidden","channel":"other","id":1}`, `{"op":"subscribed","channel":"news"}`}},
		{name: "pub forbidden", path: limited, cmds: []string{`{"op":"pub","channel":"news","data":1}`},
			want: []string{`{"op":"error","code":"forbidden","channel":"news"}`}},
		{name: "msg", cmds: []string{`{"op":"msg","data":{"hello":1}}`}, want: []string{`{"op":"msg","data":{"hello":1}}`}},
		{name: "msg without handlers", node: bare, cmds: []string{`{"op":"msg","data":1,"id":4}`},
			want: []string{`{"op":"error","code":"not_supported","id":4}`}},
		{name: "not JSON", cmds: []string{`hello`}, want: []string{`{"op":"error","code":"bad_request"}`}},
		{name: "missing op", cmds: []string{`{"id":5}`}, want: []string{`{"op":"error","code":"bad_request","message":"missing \"op\"","id":5}`}},
		{name: "unknown op", cmds: []string{`{"op":"jump"}`}, want: []string{`{"op":"error","code":"bad_request","message":"unknown op \"jump\""}`}},
		{name: "raw format: no replies but errors", path: "/ws?format=raw&channel=r",
			cmds: []string{`{"op":"ping"}`, `{"op":"nope"}`}, want: []string{`{"op":"error","code":"bad_request"}`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			node := tc.node
			if node == nil {
				node = n
			}
			path := tc.path
			if path == "" {
				path = "/ws"
			}
			c := node.dial(t, path)
			for _, cmd := range tc.cmds {
				send(c, cmd)
			}
			for _, w := range tc.want {
				expect(t, c, w)
			}
		})
	}
}

// TestPersonalChannel: a token's subject is subscribed to its user:
// channel without a reply, and DisconnectUser closes its every connection
// with 4003.
func TestPersonalChannel(t *testing.T) {
	t.Parallel()
	n := startPush(t, hub.Config{}, nil)
	path := "/ws?token=" + token(t, "bob", nil, nil)
	c1, c2 := n.dial(t, path), n.dial(t, path)
	for _, c := range []*wstest.Conn{c1, c2} {
		send(c, `{"op":"ping"}`)
		expect(t, c, `{"op":"pong"}`) // the personal subscription sent nothing
	}
	n.publish(t, "user:bob", `{"to":"bob"}`)
	for _, c := range []*wstest.Conn{c1, c2} {
		expect(t, c, `{"channel":"user:bob","offset":1,"data":{"to":"bob"}}`)
	}
	if got := n.app.DisconnectUser("bob", "bye"); got != 2 {
		t.Fatalf("DisconnectUser: %d connections, want 2", got)
	}
	for _, c := range []*wstest.Conn{c1, c2} {
		if code, reason, _ := readClose(t, c); code != CloseKicked || reason != "bye" {
			t.Fatalf("close %d %q, want %d bye", code, reason, CloseKicked)
		}
	}
	if st := n.app.Stats(); st.Kicked != 2 {
		t.Fatalf("Kicked = %d", st.Kicked)
	}
}

// TestSlowConsumerPolicies: a burst of deliveries past the output budget,
// all in one drain of the loop (published while the loop is busy), meets
// the configured policy: the first messages fit, then the connection is
// closed (close: 1013, close-policy: 1008) or the rest are dropped and
// counted (drop: the connection stays).
func TestSlowConsumerPolicies(t *testing.T) {
	t.Parallel()
	const (
		budget = 4 << 10
		burst  = 10
	)
	payload := `"` + strings.Repeat("z", 1000) + `"`
	cases := []struct {
		policy SlowPolicy
		code   int // 0: not closed
	}{
		{SlowClose, 1013},
		{SlowClosePolicy, 1008},
		{SlowDrop, 0},
	}
	for _, tc := range cases {
		t.Run(string(tc.policy), func(t *testing.T) {
			t.Parallel()
			n := startPush(t, hub.Config{}, func(o *Options, cfg *server.Config) {
				o.Slow = tc.policy
				cfg.WriteBufferLimit = budget
			})
			c := n.dial(t, "/ws?channel=c")
			expect(t, c, `{"op":"subscribed","channel":"c"}`)
			n.onLoop(t, func() {
				for range burst {
					if _, err := n.hub.Publish("c", []byte(payload)); err != nil {
						t.Error(err)
					}
				}
			})
			st := n.app.Stats()
			if tc.code != 0 {
				code, reason, before := readClose(t, c)
				if code != tc.code || reason != "slow consumer" {
					t.Fatalf("close %d %q, want %d slow consumer", code, reason, tc.code)
				}
				if before == 0 || before >= burst {
					t.Fatalf("%d messages before the close, want those that fit the budget", before)
				}
				if st = n.app.Stats(); st.SlowClosed != 1 || st.Dropped != 0 {
					t.Fatalf("stats %+v: want one slow close", st)
				}
				return
			}
			send(c, `{"op":"ping"}`)
			got := 0
			for {
				m := next(t, c)
				if m["op"] == "pong" {
					break
				}
				got++
				if off := m["offset"].(float64); int(off) != got {
					t.Fatalf("message at offset %v, want %d (the ones that fit come first, in order)", off, got)
				}
			}
			if st = n.app.Stats(); got == 0 || got >= burst || st.Dropped != uint64(burst-got) || st.SlowClosed != 0 {
				t.Fatalf("received %d of %d, stats %+v: want the rest dropped and counted", got, burst, st)
			}
		})
	}
}

// TestRecovery subscribes with since, in the URL and by command, against
// a channel whose history holds offsets 3 to 5: what history still holds
// is sent before any live message, exactly once; what it lost, or another
// epoch, says recovered=false.
func TestRecovery(t *testing.T) {
	t.Parallel()
	n := startPush(t, hub.Config{HistorySize: 3, HistoryTTL: -1}, nil)
	var epoch string
	for i := 1; i <= 5; i++ {
		epoch = n.publish(t, "h", fmt.Sprint(i)).Epoch
	}
	cases := []struct {
		name      string
		since     hub.Position
		recovered bool
		backlog   []int
	}{
		{"missed two", hub.Position{Offset: 3, Epoch: epoch}, true, []int{4, 5}},
		{"missed all kept", hub.Position{Offset: 2, Epoch: epoch}, true, []int{3, 4, 5}},
		{"missed nothing", hub.Position{Offset: 5, Epoch: epoch}, true, nil},
		{"history lost some", hub.Position{Offset: 1, Epoch: epoch}, false, nil},
		{"another epoch", hub.Position{Offset: 3, Epoch: "old"}, false, nil},
	}
	for _, tc := range cases {
		for _, via := range []string{"url", "command"} {
			t.Run(tc.name+"/"+via, func(t *testing.T) {
				t.Parallel()
				var c *wstest.Conn
				if via == "url" {
					c = n.dial(t, "/ws?channel=h&since="+sinceParam("h", tc.since))
				} else {
					c = n.dial(t, "/ws")
					send(c, fmt.Sprintf(`{"op":"sub","channel":"h","since":{"offset":%d,"epoch":%q}}`, tc.since.Offset, tc.since.Epoch))
				}
				expect(t, c, fmt.Sprintf(`{"op":"subscribed","channel":"h","offset":5,"epoch":%q,"recovered":%v}`, epoch, tc.recovered))
				for _, off := range tc.backlog {
					expect(t, c, fmt.Sprintf(`{"channel":"h","offset":%d,"data":%d}`, off, off))
				}
				send(c, `{"op":"ping"}`)
				expect(t, c, `{"op":"pong"}`) // nothing more
			})
		}
	}
}

// TestDeferredJoin: with an Interest that answers later, a subscription
// waits (other commands go on meanwhile), joins when ready is called, with
// its since, and recovers what was published in between; every Acquire
// is released once, when the subscription ends or when the connection
// closed before ready.
func TestDeferredJoin(t *testing.T) {
	t.Parallel()
	in := newFakeInterest()
	n := startPush(t, hub.Config{}, func(o *Options, _ *server.Config) { o.Interest = in })
	first := n.publish(t, "d", `"before"`)

	c := n.dial(t, "/ws")
	send(c, fmt.Sprintf(`{"op":"sub","channel":"d","id":1,"since":{"offset":1,"epoch":%q}}`, first.Epoch))
	a := in.nextAcquire(t)
	if a.channel != "d" || a.since == nil || a.since.Offset != 1 || a.since.Epoch != first.Epoch {
		t.Fatalf("Acquire(%q, %+v), want d since 1", a.channel, a.since)
	}
	send(c, `{"op":"ping"}`)
	expect(t, c, `{"op":"pong"}`) // the connection is not blocked
	n.publish(t, "d", `"meanwhile"`)
	a.ready() // from another goroutine, as a broker does
	expect(t, c, `{"op":"subscribed","channel":"d","offset":2,"recovered":true,"id":1}`)
	expect(t, c, `{"channel":"d","offset":2,"data":"meanwhile"}`)
	n.publish(t, "d", `"live"`)
	expect(t, c, `{"channel":"d","offset":3,"data":"live"}`)
	send(c, `{"op":"unsub","channel":"d"}`)
	expect(t, c, `{"op":"unsubscribed","channel":"d"}`)
	in.nextRelease(t, "d")

	// A connection that closes before ready: ready releases.
	gone := n.dial(t, "/ws?channel=e")
	a = in.nextAcquire(t)
	_ = gone.NC.Close()
	waitFor(t, "the connection to close", func() bool { return n.srv.Conns() == 1 })
	a.ready()
	in.nextRelease(t, "e")

	// A subscription that ends with its connection releases too.
	send(c, `{"op":"sub","channel":"f"}`)
	in.nextAcquire(t).ready()
	expect(t, c, `{"op":"subscribed","channel":"f"}`)
	_ = c.NC.Close()
	in.nextRelease(t, "f")
}

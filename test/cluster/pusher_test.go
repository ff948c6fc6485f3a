package cluster

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPusherEventsAcrossNodes: a Pusher app on two nodes sharing NATS.
// Events triggered through either node's HTTP API (single and batch)
// reach the subscribers of both nodes once each and in order; a
// socket_id excludes its connection whatever node it is on; a client
// event from a client of A reaches B's client and not its sender; a cache
// channel's last event, triggered on A before anyone subscribed, is
// served to a subscriber on B.
func TestPusherEventsAcrossNodes(t *testing.T) {
	s := startNATS(t, 0, t.TempDir())
	a := startPusherNode(t, "a", s.ClientURL())
	b := startPusherNode(t, "b", s.ClientURL())

	ca, cb := pconnect(t, a, "ca"), pconnect(t, b, "cb")
	if ca.sid == cb.sid {
		t.Fatalf("two nodes gave one socket id %s", ca.sid)
	}
	const ch = "orders"
	ca.subscribed(ch, "")
	cb.subscribed(ch, "")

	// Triggered on A, then on B: both clients see both, in order, once
	// (the next event after each is the one triggered after it).
	trigger(t, a, ch, "created", "1", "")
	trigger(t, b, ch, "created", "2", "")
	for _, c := range []*pclient{ca, cb} {
		c.expectEvent(ch, "created", "1")
		c.expectEvent(ch, "created", "2")
	}

	// A batch on B keeps its order on both nodes.
	batch := []map[string]any{}
	for i := 3; i <= 6; i++ {
		batch = append(batch, map[string]any{"name": "created", "channel": ch, "data": fmt.Sprint(i)})
	}
	if st, out := papi(t, b, "POST", "/apps/"+pusherAppID+"/batch_events", nil, map[string]any{"batch": batch}); st != http.StatusOK {
		t.Fatalf("batch_events: %d %s", st, out)
	}
	for _, c := range []*pclient{ca, cb} {
		for i := 3; i <= 6; i++ {
			c.expectEvent(ch, "created", fmt.Sprint(i))
		}
	}

	// socket_id exclusion across nodes, both ways: the excluded client's
	// next event is the one triggered after.
	trigger(t, a, ch, "excluded", "b", cb.sid)
	trigger(t, b, ch, "excluded", "a", ca.sid)
	trigger(t, a, ch, "after", "x", "")
	ca.expectEvent(ch, "excluded", "b")
	ca.expectEvent(ch, "after", "x")
	cb.expectEvent(ch, "excluded", "a")
	cb.expectEvent(ch, "after", "x")

	// A client event from A's client reaches B's client once, not its
	// sender.
	const priv = "private-chat"
	ca.subscribed(priv, "")
	cb.subscribed(priv, "")
	ca.send(map[string]any{"event": "client-typing", "channel": priv, "data": map[string]any{"who": "ca"}})
	f := cb.onChannel(priv)
	if f.Event != "client-typing" || string(f.Data) != `{"who":"ca"}` {
		t.Fatalf("cb got %+v (data %s), want client-typing", f, f.Data)
	}
	trigger(t, b, priv, "after", "y", "")
	ca.expectEvent(priv, "after", "y")
	cb.expectEvent(priv, "after", "y")

	// A cache channel keeps its last event across nodes.
	const cache = "cache-price"
	trigger(t, a, cache, "price", "41", "")
	trigger(t, a, cache, "price", "42", "")
	cc := pconnect(t, b, "cc")
	cc.subscribed(cache, "")
	f = cc.next()
	if f.Event != "price" || f.text() != "42" {
		t.Fatalf("cache subscriber on b got %+v, want the last event (42)", f)
	}
}

// TestPusherPresenceAcrossNodes: presence members of two nodes are one
// set. Joiners on either node are listed to everyone in
// subscription_succeeded and told with member_added once, a second tab on
// the other node adds no member, a user leaves when its last connection
// in the cluster left (after the leave delay), the HTTP API of either
// node counts and lists the whole cluster, and the members of a node
// killed with SIGKILL leave within the node timeout.
func TestPusherPresenceAcrossNodes(t *testing.T) {
	s := startNATS(t, 0, t.TempDir())
	a := startPusherNode(t, "a", s.ClientURL())
	b := startPusherNode(t, "b", s.ClientURL())
	const ch = "presence-room"
	cd := func(uid string) string { return `{"user_id":"` + uid + `","user_info":{"name":"` + uid + `"}}` }

	oa := pconnect(t, a, "oa")
	oa.subscribed(ch, cd("oa"))
	waitUsers(t, b, ch, "oa")
	ob := pconnect(t, b, "ob")
	if ids, count := presenceList(t, ob.subscribed(ch, cd("ob"))); count != 2 || !slices.Equal(ids, []string{"oa", "ob"}) {
		t.Fatalf("ob joins on b and sees %v (%d)", ids, count)
	}
	oa.expectMember("pusher_internal:member_added", "ob")

	// alice on a, then a second tab of hers on b: one member, one
	// member_added on each node.
	alice1 := pconnect(t, a, "alice1")
	alice1.subscribed(ch, cd("alice"))
	oa.expectMember("pusher_internal:member_added", "alice")
	ob.expectMember("pusher_internal:member_added", "alice")
	alice2 := pconnect(t, b, "alice2")
	if ids, count := presenceList(t, alice2.subscribed(ch, cd("alice"))); count != 3 || !slices.Equal(ids, []string{"alice", "oa", "ob"}) {
		t.Fatalf("alice's second tab sees %v (%d)", ids, count)
	}
	carol := pconnect(t, b, "carol")
	carol.subscribed(ch, cd("carol"))
	// The next member event after alice's is carol's: the second tab
	// told nothing.
	oa.expectMember("pusher_internal:member_added", "carol")
	ob.expectMember("pusher_internal:member_added", "carol")
	for _, n := range []*node{a, b} {
		if users := channelUsers(t, n, ch); !slices.Equal(users, []string{"alice", "carol", "oa", "ob"}) {
			t.Fatalf("users on %s: %v", n.name, users)
		}
		var info struct {
			Occupied  bool `json:"occupied"`
			UserCount int  `json:"user_count"`
		}
		st, body := papi(t, n, "GET", "/apps/"+pusherAppID+"/channels/"+ch, url.Values{"info": {"user_count"}}, nil)
		if err := json.Unmarshal([]byte(body), &info); st != http.StatusOK || err != nil || !info.Occupied || info.UserCount != 4 {
			t.Fatalf("channel on %s: %d %s", n.name, st, body)
		}
	}

	// alice closes her tab on a: she is still on b. Once b has applied
	// a's removal, carol leaves: the next member event is carol's.
	applied := remoteApplied(t, b)
	alice1.conn.Close()
	waitFor(t, eventWait, "b applying a's removal of alice", func() bool { return remoteApplied(t, b) > applied })
	carol.conn.Close()
	oa.expectMember("pusher_internal:member_removed", "carol")
	ob.expectMember("pusher_internal:member_removed", "carol")
	// Her last tab closes: she leaves, after the delay, on both nodes.
	alice2.conn.Close()
	oa.expectMember("pusher_internal:member_removed", "alice")
	ob.expectMember("pusher_internal:member_removed", "alice")

	if _, m := get(a.API + "/metrics"); !strings.Contains(m, "herald_pusher_cluster_nodes 2\n") {
		t.Fatalf("a's metrics lack herald_pusher_cluster_nodes 2")
	}
	// b dies: its member ob leaves a within the node timeout.
	if err := b.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	oa.expectMember("pusher_internal:member_removed", "ob")
	if users := channelUsers(t, a, ch); !slices.Equal(users, []string{"oa"}) {
		t.Fatalf("users on a after b died: %v", users)
	}
}

// expectMember skips to c's next member event and checks it.
func (c *pclient) expectMember(event, uid string) {
	c.t.Helper()
	for {
		f := c.next()
		if f.Event != "pusher_internal:member_added" && f.Event != "pusher_internal:member_removed" {
			continue
		}
		if id := memberID(c.t, f); f.Event != event || id != uid {
			c.t.Fatalf("%s: %s %s, want %s %s", c.name, f.Event, id, event, uid)
		}
		return
	}
}

// channelUsers lists a presence channel's users through n's HTTP API,
// sorted.
func channelUsers(t *testing.T, n *node, ch string) []string {
	t.Helper()
	st, body := papi(t, n, "GET", "/apps/"+pusherAppID+"/channels/"+ch+"/users", nil, nil)
	var out struct {
		Users []struct {
			ID string `json:"id"`
		} `json:"users"`
	}
	if err := json.Unmarshal([]byte(body), &out); st != http.StatusOK || err != nil {
		t.Fatalf("users on %s: %d %s", n.name, st, body)
	}
	ids := []string{}
	for _, u := range out.Users {
		ids = append(ids, u.ID)
	}
	slices.Sort(ids)
	return ids
}

// waitUsers waits until n lists uid among ch's users.
func waitUsers(t *testing.T, n *node, ch, uid string) {
	t.Helper()
	waitFor(t, eventWait, n.name+" listing "+uid, func() bool { return slices.Contains(channelUsers(t, n, ch), uid) })
}

// remoteApplied is how many other nodes' presence changes n applied.
func remoteApplied(t *testing.T, n *node) uint64 {
	t.Helper()
	_, body := get(n.API + "/api/stats")
	var st struct {
		PusherCluster struct {
			Roster struct {
				Remote uint64 `json:"remote"`
			} `json:"roster"`
		} `json:"pusher_cluster"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("%s /api/stats: %v: %s", n.name, err, body)
	}
	return st.PusherCluster.Roster.Remote
}

// hookEvent is one webhook event.
type hookEvent struct {
	Name    string `json:"name"`
	Channel string `json:"channel"`
	Event   string `json:"event,omitempty"`
	UserID  string `json:"user_id,omitempty"`
}

// hookReceiver collects the webhook events both nodes post.
type hookReceiver struct {
	url    string
	events chan hookEvent
}

func newHookReceiver(t *testing.T) *hookReceiver {
	t.Helper()
	r := &hookReceiver{events: make(chan hookEvent, 1000)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var p struct {
			Events []hookEvent `json:"events"`
		}
		if err := json.NewDecoder(req.Body).Decode(&p); err != nil {
			t.Errorf("webhook body: %v", err)
		}
		for _, e := range p.Events {
			r.events <- e
		}
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

// until collects events until one matches stop, and returns those before
// it.
func (r *hookReceiver) until(t *testing.T, stop hookEvent) []hookEvent {
	t.Helper()
	var got []hookEvent
	for {
		select {
		case e := <-r.events:
			if e == stop {
				return got
			}
			got = append(got, e)
		case <-time.After(eventWait):
			t.Fatalf("no webhook %+v; got %+v", stop, got)
		}
	}
}

// TestPusherClusterAPIAndWebhooks: the HTTP API of either node counts the
// subscriptions of both, and the channel and member webhooks of a channel
// used on both nodes are posted once for the cluster.
func TestPusherClusterAPIAndWebhooks(t *testing.T) {
	s := startNATS(t, 0, t.TempDir())
	hooks := newHookReceiver(t)
	a := startPusherNode(t, "a", s.ClientURL(), "--pusher-webhook", hooks.url)
	b := startPusherNode(t, "b", s.ClientURL(), "--pusher-webhook", hooks.url)

	const ch, pres = "private-news", "presence-lobby"
	ca, cb := pconnect(t, a, "ca"), pconnect(t, b, "cb")
	ca.subscribed(ch, "")
	// b counts a's subscription once a's roster entry reached it.
	waitFor(t, eventWait, "b counting a's subscription", func() bool { return subscriptionCount(t, b, ch) == 1 })
	cb.subscribed(ch, "")
	for _, n := range []*node{a, b} {
		waitFor(t, eventWait, n.name+" counting 2 subscriptions", func() bool { return subscriptionCount(t, n, ch) == 2 })
		st, body := papi(t, n, "GET", "/apps/"+pusherAppID+"/channels", url.Values{"info": {"subscription_count"}, "filter_by_prefix": {"private-"}}, nil)
		var list struct {
			Channels map[string]struct {
				SubscriptionCount int `json:"subscription_count"`
			} `json:"channels"`
		}
		if err := json.Unmarshal([]byte(body), &list); st != http.StatusOK || err != nil || len(list.Channels) != 1 || list.Channels[ch].SubscriptionCount != 2 {
			t.Fatalf("channels on %s: %d %s", n.name, st, body)
		}
	}

	// Presence: alice on a and on b is one member.
	alice1, alice2 := pconnect(t, a, "alice1"), pconnect(t, b, "alice2")
	alice1.subscribed(pres, `{"user_id":"alice"}`)
	waitUsers(t, b, pres, "alice")
	alice2.subscribed(pres, `{"user_id":"alice"}`)
	waitFor(t, eventWait, "a counting both of alice's subscriptions", func() bool { return subscriptionCount(t, a, pres) == 2 })

	// Everyone leaves, a's clients first.
	ca.conn.Close()
	waitFor(t, eventWait, "b counting 1", func() bool { return subscriptionCount(t, b, ch) == 1 })
	cb.conn.Close()
	alice1.conn.Close()
	waitFor(t, eventWait, "b counting 1 of alice's", func() bool { return subscriptionCount(t, b, pres) == 1 })
	alice2.conn.Close()

	// Then a client event on each node closes the story: every webhook
	// posted before it has been seen.
	got := hooks.until(t, hookEvent{Name: "channel_vacated", Channel: pres})
	sa, sb := pconnect(t, a, "sa"), pconnect(t, b, "sb")
	sa.subscribed("private-end", "")
	sb.subscribed("private-end", "")
	sa.send(map[string]any{"event": "client-end", "channel": "private-end", "data": "a"})
	sb.send(map[string]any{"event": "client-end", "channel": "private-end", "data": "b"})
	seen := 0
	for seen < 2 {
		select {
		case e := <-hooks.events:
			if e.Name == "client_event" {
				seen++
			} else if e.Channel != "private-end" {
				got = append(got, e)
			}
		case <-time.After(eventWait):
			t.Fatalf("no client_event webhooks; got %+v", got)
		}
	}
	count := map[hookEvent]int{}
	for _, e := range got {
		count[e]++
	}
	want := map[hookEvent]int{
		{Name: "channel_occupied", Channel: ch}:                  1,
		{Name: "channel_vacated", Channel: ch}:                   1,
		{Name: "channel_occupied", Channel: pres}:                1,
		{Name: "member_added", Channel: pres, UserID: "alice"}:   1,
		{Name: "member_removed", Channel: pres, UserID: "alice"}: 1,
	}
	// The stop event itself was taken out of got.
	count[hookEvent{Name: "channel_vacated", Channel: pres}]++
	want[hookEvent{Name: "channel_vacated", Channel: pres}] = 1
	if !maps.Equal(count, want) {
		t.Fatalf("webhooks %v, want %v", count, want)
	}
}

// subscriptionCount is ch's subscription_count through n's HTTP API.
func subscriptionCount(t *testing.T, n *node, ch string) int {
	t.Helper()
	st, body := papi(t, n, "GET", "/apps/"+pusherAppID+"/channels/"+ch, url.Values{"info": {"subscription_count"}}, nil)
	var info struct {
		SubscriptionCount int `json:"subscription_count"`
	}
	if err := json.Unmarshal([]byte(body), &info); st != http.StatusOK || err != nil {
		t.Fatalf("channel on %s: %d %s", n.name, st, body)
	}
	return info.SubscriptionCount
}

// TestPusherReloadToAnotherNode: a member whose connection closes on one
// node and comes back on the other within the leave delay (a reload that
// the load balancer sends elsewhere) is no leave: the others are told
// nothing, and the next member event they see is someone else's.
func TestPusherReloadToAnotherNode(t *testing.T) {
	s := startNATS(t, 0, t.TempDir())
	a := startPusherNode(t, "a", s.ClientURL(), "--pusher-leave-delay", "1h")
	b := startPusherNode(t, "b", s.ClientURL(), "--pusher-leave-delay", "1h")
	const ch = "presence-reload"
	obs := pconnect(t, b, "obs")
	obs.subscribed(ch, `{"user_id":"obs"}`)
	alice := pconnect(t, a, "alice")
	alice.subscribed(ch, `{"user_id":"alice"}`)
	obs.expectMember("pusher_internal:member_added", "alice")
	alice.conn.Close()
	again := pconnect(t, b, "alice again")
	if ids, count := presenceList(t, again.subscribed(ch, `{"user_id":"alice"}`)); count != 2 || !slices.Equal(ids, []string{"alice", "obs"}) {
		t.Fatalf("after the reload: %v (%d)", ids, count)
	}
	bob := pconnect(t, a, "bob")
	bob.subscribed(ch, `{"user_id":"bob"}`)
	obs.expectMember("pusher_internal:member_added", "bob")
	if users := channelUsers(t, a, ch); !slices.Equal(users, []string{"alice", "bob", "obs"}) {
		t.Fatalf("users on a: %v", users)
	}
}

// TestPusherNATSRestart: NATS restarts (same port and store) under a
// Pusher app on two nodes: triggers are refused while it is away, the
// nodes' clients stay, and afterwards events cross nodes again, both
// nodes still list every member, and a new member is seen across.
func TestPusherNATSRestart(t *testing.T) {
	dir := t.TempDir()
	s := startNATS(t, 0, dir)
	port := natsPort(s)
	a := startPusherNode(t, "a", s.ClientURL())
	b := startPusherNode(t, "b", s.ClientURL())
	const ch, feed = "presence-ops", "feed"
	oa := pconnect(t, a, "oa")
	oa.subscribed(ch, `{"user_id":"oa"}`)
	oa.subscribed(feed, "")
	waitUsers(t, b, ch, "oa")
	ob := pconnect(t, b, "ob")
	ob.subscribed(ch, `{"user_id":"ob"}`)
	ob.subscribed(feed, "")
	oa.expectMember("pusher_internal:member_added", "ob")

	s.Shutdown()
	s.WaitForShutdown()
	for _, n := range []*node{a, b} {
		waitReady(t, n, false, 10*time.Second)
	}
	if st, out := papi(t, a, "POST", "/apps/"+pusherAppID+"/events", nil, map[string]any{"name": "e", "channel": feed, "data": "x"}); st != http.StatusServiceUnavailable {
		t.Fatalf("trigger while NATS is down: %d %s, want 503", st, out)
	}

	startNATS(t, port, dir)
	for _, n := range []*node{a, b} {
		waitReady(t, n, true, 30*time.Second)
	}
	trigger(t, b, feed, "e", "after", "")
	oa.expectEvent(feed, "e", "after")
	ob.expectEvent(feed, "e", "after")
	for _, n := range []*node{a, b} {
		if users := channelUsers(t, n, ch); !slices.Equal(users, []string{"oa", "ob"}) {
			t.Fatalf("users on %s after the restart: %v", n.name, users)
		}
	}
	carol := pconnect(t, a, "carol")
	carol.subscribed(ch, `{"user_id":"carol"}`)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("a:\n%s\nb:\n%s", a.Log, b.Log)
		}
	})
	ob.expectMember("pusher_internal:member_added", "carol")
}

// TestPusherTerminateAcrossNodes: terminate_connections on one node's API
// closes the user's connections on every node (4009), and no one
// else's.
func TestPusherTerminateAcrossNodes(t *testing.T) {
	s := startNATS(t, 0, t.TempDir())
	a := startPusherNode(t, "a", s.ClientURL())
	b := startPusherNode(t, "b", s.ClientURL())
	da, db, other := pconnect(t, a, "dave on a"), pconnect(t, b, "dave on b"), pconnect(t, b, "erin on b")
	da.signin("dave")
	db.signin("dave")
	other.signin("erin")
	if st, out := papi(t, a, "POST", "/apps/"+pusherAppID+"/users/dave/terminate_connections", nil, map[string]any{}); st != http.StatusOK {
		t.Fatalf("terminate_connections: %d %s", st, out)
	}
	da.expectClose(4009)
	db.expectClose(4009)
	other.subscribed("erin-still-here", "")
}

package pusher

import (
	"context"
	"encoding/json"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-push/herald/hub"
	"github.com/herald-push/herald/pusher/webhook"
	"github.com/herald-push/herald/server"
)

// fakeRoster records what the Protocol tells the cluster.
type fakeRoster struct {
	ops   chan string // "put {channel} {user} {info}", "remove {channel} {user}"
	first atomic.Bool
	mu    sync.Mutex
	subs  map[string]int // channel → this node's subscriptions
}

func newFakeRoster() *fakeRoster {
	return &fakeRoster{ops: make(chan string, 100), subs: map[string]int{}}
}

func (f *fakeRoster) SetSubscriptions(channel string, n int) {
	f.mu.Lock()
	f.subs[channel] = n
	f.mu.Unlock()
}

func (f *fakeRoster) subscriptions(channel string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.subs[channel]
}

func (f *fakeRoster) Put(channel, user string, info []byte) {
	f.ops <- "put " + channel + " " + user + " " + string(info)
}
func (f *fakeRoster) Remove(channel, user string) { f.ops <- "remove " + channel + " " + user }
func (f *fakeRoster) First() bool                 { return f.first.Load() }

// expect reads the next operation and compares it with want.
func (f *fakeRoster) expect(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-f.ops:
		if got != want {
			t.Fatalf("roster got %q, want %q", got, want)
		}
	case <-time.After(testTimeout):
		t.Fatalf("roster: nothing, want %q", want)
	}
}

// memberEvent reads frames until a member event and returns its name and
// user id.
func (c *client) memberEvent() (string, string) {
	c.t.Helper()
	for {
		m := c.next()
		ev, _ := m["event"].(string)
		if ev != "pusher_internal:member_added" && ev != "pusher_internal:member_removed" {
			continue
		}
		var d struct {
			UserID string `json:"user_id"`
		}
		if err := json.Unmarshal([]byte(m["data"].(string)), &d); err != nil {
			c.t.Fatalf("%s data %v: %v", ev, m["data"], err)
		}
		return ev, d.UserID
	}
}

// expectMember reads the next member event and checks it.
func (c *client) expectMember(event, uid string) {
	c.t.Helper()
	if ev, id := c.memberEvent(); ev != event || id != uid {
		c.t.Fatalf("member event %s %s, want %s %s", ev, id, event, uid)
	}
}

// A member whose last connection leaves stays for the leave delay: a
// reload within it posts and tells nothing; the next member event the
// others see is of someone else.
func TestPresenceLeaveDelay(t *testing.T) {
	n := start(t, func(o *Options, _ *server.Config) { o.LeaveDelay = time.Hour })
	const ch = "presence-room"
	obs := n.connect(t)
	obs.subscribed(ch, `{"user_id":"obs"}`)
	alice := n.connect(t)
	alice.subscribed(ch, `{"user_id":"alice"}`)
	obs.expectMember("pusher_internal:member_added", "alice")
	alice.c.NC.Close()
	again := n.connect(t) // the reload
	if ids, _, count := members(t, again.subscribed(ch, `{"user_id":"alice"}`)); count != 2 || !reflect.DeepEqual(ids, []string{"alice", "obs"}) {
		t.Fatalf("after the reload: %v %d", ids, count)
	}
	bob := n.connect(t)
	bob.subscribed(ch, `{"user_id":"bob"}`)
	obs.expectMember("pusher_internal:member_added", "bob")

	// With a short delay the leave comes, once the delay passed.
	m := start(t, func(o *Options, _ *server.Config) { o.LeaveDelay = 20 * time.Millisecond })
	obs = m.connect(t)
	obs.subscribed(ch, `{"user_id":"obs"}`)
	alice = m.connect(t)
	alice.subscribed(ch, `{"user_id":"alice"}`)
	obs.expectMember("pusher_internal:member_added", "alice")
	alice.c.NC.Close()
	obs.expectMember("pusher_internal:member_removed", "alice")
	if users, _ := m.p.Users(testApp.ID, ch); !reflect.DeepEqual(users, []string{"obs"}) {
		t.Fatalf("users %v", users)
	}
}

// Another node's members come through RemoteChange: they are listed to
// joiners, told to subscribers as member_added and member_removed (once
// the user has no connection on any node, after the delay), counted, and
// a user both here and there is one member. This node's members go to the
// roster when their first connection here joins and when the last leaves.
func TestPresenceRemoteMembers(t *testing.T) {
	r := newFakeRoster()
	hooks := newHookReceiver(t, nil)
	n := start(t, withHooks(hooks, -1, func(o *Options) {
		o.Roster = r
		o.LeaveDelay = 20 * time.Millisecond
	}))
	const ch = "presence-room"
	name := testApp.ID + ":" + ch
	obs := n.connect(t)
	obs.subscribed(ch, `{"user_id":"obs"}`)
	r.expect(t, "put "+name+" obs null")
	hooks.expect(webhook.Event{Name: webhook.ChannelOccupied, Channel: ch})
	hooks.expect(webhook.Event{Name: webhook.MemberAdded, Channel: ch, UserID: "obs"})

	n.p.RemoteChange(RemoteEntry{Node: 2, Channel: name, User: "remy", Info: []byte(`{"n":2}`)})
	obs.expectMember("pusher_internal:member_added", "remy")
	joiner := n.connect(t)
	ids, hash, count := members(t, joiner.subscribed(ch, `{"user_id":"jo"}`))
	if count != 3 || !reflect.DeepEqual(ids, []string{"jo", "obs", "remy"}) || !reflect.DeepEqual(hash["remy"], map[string]any{"n": float64(2)}) {
		t.Fatalf("joiner sees %v %v %d", ids, hash, count)
	}
	r.expect(t, "put "+name+" jo null")
	hooks.expect(webhook.Event{Name: webhook.MemberAdded, Channel: ch, UserID: "jo"})
	obs.expectMember("pusher_internal:member_added", "jo")
	if info, _ := n.p.Channel(testApp.ID, ch); info.UserCount != 3 {
		t.Fatalf("user_count %d, want 3", info.UserCount)
	}

	// remy joins here too (a second tab): no member_added; the roster
	// hears of it. remy leaves node 2: still a member through this node.
	tab := n.connect(t)
	tab.subscribed(ch, `{"user_id":"remy"}`)
	r.expect(t, "put "+name+" remy null")
	n.p.RemoteChange(RemoteEntry{Node: 2, Channel: name, User: "remy", Gone: true})
	tab.c.NC.Close()
	r.expect(t, "remove "+name+" remy")
	// The leave is this node's (its last connection was here): this node
	// posts member_removed.
	obs.expectMember("pusher_internal:member_removed", "remy")
	hooks.expect(webhook.Event{Name: webhook.MemberRemoved, Channel: ch, UserID: "remy"})

	// A member of a node that stopped: removed; its webhook is posted by
	// the first live node only.
	r.first.Store(true)
	n.p.RemoteChange(RemoteEntry{Node: 3, Channel: name, User: "dan"})
	obs.expectMember("pusher_internal:member_added", "dan")
	n.p.RemoteChange(RemoteEntry{Node: 3, Channel: name, User: "dan", Gone: true, NodeDown: true})
	obs.expectMember("pusher_internal:member_removed", "dan")
	hooks.expect(webhook.Event{Name: webhook.MemberRemoved, Channel: ch, UserID: "dan"})
	r.first.Store(false)
	n.p.RemoteChange(RemoteEntry{Node: 3, Channel: name, User: "dora"})
	obs.expectMember("pusher_internal:member_added", "dora")
	n.p.RemoteChange(RemoteEntry{Node: 3, Channel: name, User: "dora", Gone: true, NodeDown: true})
	obs.expectMember("pusher_internal:member_removed", "dora")
	// The next webhook is jo's leave: none for dora.
	joiner.c.NC.Close()
	hooks.expect(webhook.Event{Name: webhook.MemberRemoved, Channel: ch, UserID: "jo"})
}

// Channel occupancy across nodes: the API counts every node's
// subscriptions; channel_occupied is posted by the node whose
// subscription made the channel occupied in the cluster, channel_vacated
// by the node whose unsubscription left it empty (the first live node's
// job when that node stopped), after the vacate delay.
func TestOccupancyAcrossNodes(t *testing.T) {
	r := newFakeRoster()
	hooks := newHookReceiver(t, nil)
	n := start(t, withHooks(hooks, 20*time.Millisecond, func(o *Options) { o.Roster = r }))
	name := func(ch string) string { return testApp.ID + ":" + ch }
	count := func(ch string) int {
		t.Helper()
		info, err := n.p.Channel(testApp.ID, ch)
		if err != nil {
			t.Fatal(err)
		}
		if info.Occupied != (info.SubscriptionCount > 0) {
			t.Fatalf("%s: %+v", ch, info)
		}
		return info.SubscriptionCount
	}

	// Occupied by node 2 (which posts channel_occupied): counted here.
	n.p.RemoteChange(RemoteEntry{Node: 2, Channel: name("news"), Subscriptions: 3})
	c := n.connect(t)
	c.subscribed("news", "")
	if got := count("news"); got != 4 || r.subscriptions(name("news")) != 1 {
		t.Fatalf("news: %d subscriptions, this node's %d", got, r.subscriptions(name("news")))
	}
	if list, _ := n.p.Channels(testApp.ID, ""); !reflect.DeepEqual(list, map[string]ChannelInfo{"news": {Occupied: true, SubscriptionCount: 4}}) {
		t.Fatalf("channels %+v", list)
	}
	// Node 2's subscribers leave, then this node's: this node posts
	// channel_vacated, and the first webhook of all (no occupied, as node
	// 2 occupied the channel first).
	n.p.RemoteChange(RemoteEntry{Node: 2, Channel: name("news"), Gone: true})
	c.send(map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": "news"}})
	hooks.expect(webhook.Event{Name: webhook.ChannelVacated, Channel: "news"})
	if got := count("news"); got != 0 || r.subscriptions(name("news")) != 0 {
		t.Fatalf("news after: %d, this node's %d", got, r.subscriptions(name("news")))
	}

	// Channels of a node that stopped: vacated by the first live node
	// only.
	r.first.Store(true)
	n.p.RemoteChange(RemoteEntry{Node: 3, Channel: name("b"), Subscriptions: 1})
	n.p.RemoteChange(RemoteEntry{Node: 3, Channel: name("b"), Gone: true, NodeDown: true})
	hooks.expect(webhook.Event{Name: webhook.ChannelVacated, Channel: "b"})
	r.first.Store(false)
	n.p.RemoteChange(RemoteEntry{Node: 3, Channel: name("a"), Subscriptions: 1})
	n.p.RemoteChange(RemoteEntry{Node: 3, Channel: name("a"), Gone: true, NodeDown: true})

	// A channel this node occupies first: channel_occupied from here.
	c.subscribed("fresh", "")
	hooks.expect(webhook.Event{Name: webhook.ChannelOccupied, Channel: "fresh"})
}

// fakeBroker delivers through the hub like one node would, holds every
// Acquire back until the test lets it go, and counts acquisitions.
type fakeBroker struct {
	h        *hub.Hub
	mu       sync.Mutex
	held     map[string][]func()
	acquired map[string]int
	released chan string
}

func newFakeBroker() *fakeBroker {
	return &fakeBroker{held: map[string][]func(){}, acquired: map[string]int{}, released: make(chan string, 100)}
}

func (b *fakeBroker) Publish(_ context.Context, channel string, data []byte) (hub.Position, error) {
	m, err := b.h.Publish(channel, data)
	if err != nil {
		return hub.Position{}, err
	}
	return hub.Position{Offset: m.Offset, Epoch: m.Epoch}, nil
}

func (b *fakeBroker) Acquire(channel string, _ *hub.Position, ready func()) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.acquired[channel]++
	b.held[channel] = append(b.held[channel], ready)
	return false
}

func (b *fakeBroker) Release(channel string) {
	b.mu.Lock()
	b.acquired[channel]--
	b.mu.Unlock()
	b.released <- channel
}

// waitHeld waits until an Acquire of channel is held back, and returns
// its ready func.
func (b *fakeBroker) waitHeld(t *testing.T, channel string) func() {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for time.Now().Before(deadline) {
		b.mu.Lock()
		if rs := b.held[channel]; len(rs) > 0 {
			b.held[channel] = rs[1:]
			b.mu.Unlock()
			return rs[0]
		}
		b.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("no Acquire of %s", channel)
	return nil
}

// expectReleased waits for a Release of channel.
func (b *fakeBroker) expectReleased(t *testing.T, channel string) {
	t.Helper()
	select {
	case got := <-b.released:
		if got != channel {
			t.Fatalf("released %s, want %s", got, channel)
		}
	case <-time.After(testTimeout):
		t.Fatalf("no Release of %s", channel)
	}
}

// With a Broker, a subscription waits for its channel: answered once the
// broker lets it go; dropped, and the channel released, when the client
// unsubscribed or left meanwhile; a second subscribe while one waits is
// answered once. Triggered and client events go through the broker.
func TestBrokerSubscriptions(t *testing.T) {
	b := newFakeBroker()
	n := start(t, func(o *Options, _ *server.Config) { o.Broker = b })
	b.h = n.hub
	name := func(ch string) string { return testApp.ID + ":" + ch }

	c := n.connect(t)
	c.subscribe("private-a", "")
	c.subscribe("private-a", "") // while the first waits: one answer
	ready := b.waitHeld(t, name("private-a"))
	c.ping() // nothing answered yet
	ready()
	c.expect(`{"event":"pusher_internal:subscription_succeeded","channel":"private-a"}`)
	c.ping()

	// Unsubscribed while waiting: no answer, the channel released.
	c.subscribe("b", "")
	ready = b.waitHeld(t, name("b"))
	c.send(map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": "b"}})
	c.ping()
	ready()
	b.expectReleased(t, name("b"))
	c.ping()

	// Events through the broker reach the subscriber; its own client
	// event does not come back, another's does.
	if err := n.p.Trigger(testApp.ID, Event{Name: "e", Channels: []string{"private-a"}, Data: "1"}); err != nil {
		t.Fatal(err)
	}
	c.expect(`{"event":"e","channel":"private-a","data":"1"}`)
	d := n.connect(t)
	d.subscribe("private-a", "")
	b.waitHeld(t, name("private-a"))()
	d.expect(`{"event":"pusher_internal:subscription_succeeded","channel":"private-a"}`)
	d.send(map[string]any{"event": "client-x", "channel": "private-a", "data": map[string]any{"from": "d"}})
	c.expect(`{"event":"client-x","channel":"private-a","data":{"from":"d"}}`)
	if err := n.p.Trigger(testApp.ID, Event{Name: "e", Channels: []string{"private-a"}, Data: "2", SocketID: c.sid}); err != nil {
		t.Fatal(err)
	}
	d.expect(`{"event":"e","channel":"private-a","data":"2"}`)
	if err := n.p.Trigger(testApp.ID, Event{Name: "e", Channels: []string{"private-a"}, Data: "3"}); err != nil {
		t.Fatal(err)
	}
	c.expect(`{"event":"e","channel":"private-a","data":"3"}`) // not 2: excluded

	// Gone while waiting: the channel released.
	e := n.connect(t)
	e.subscribe("c", "")
	ready = b.waitHeld(t, name("c"))
	e.c.NC.Close()
	c.send(map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": "private-a"}})
	b.expectReleased(t, name("private-a"))
	waitUntil(t, "the closed connection's end", func() bool { return n.srv.Stats().Connections == 2 })
	ready()
	b.expectReleased(t, name("c"))
}

// waitUntil polls cond until it holds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

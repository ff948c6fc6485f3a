package broker_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald/broker"
)

// rosterNode is a Roster and the changes of the other nodes it reports.
type rosterNode struct {
	r       *broker.Roster
	changes chan broker.RosterEntry
}

func newRoster(t *testing.T, url string, node uint32) *rosterNode {
	t.Helper()
	r, err := broker.NewRoster(context.Background(), broker.RosterConfig{URL: url, Node: node, Log: quiet,
		Heartbeat: 100 * time.Millisecond, NodeTimeout: time.Second})
	if err != nil {
		t.Fatalf("NewRoster %d: %v", node, err)
	}
	n := &rosterNode{r: r, changes: make(chan broker.RosterEntry, 100)}
	r.Start(func(e broker.RosterEntry) { n.changes <- e })
	t.Cleanup(func() { _ = r.Close() })
	waitFor(t, 10*time.Second, fmt.Sprintf("roster %d ready", node), func() bool { ok, _ := r.Ready(); return ok })
	return n
}

// expect reads the next change and compares it with want.
func (n *rosterNode) expect(t *testing.T, want broker.RosterEntry) {
	t.Helper()
	select {
	case got := <-n.changes:
		if got.Node != want.Node || got.Channel != want.Channel || got.User != want.User || string(got.Info) != string(want.Info) ||
			got.Subscriptions != want.Subscriptions || got.Gone != want.Gone || got.NodeDown != want.NodeDown {
			t.Fatalf("change %+v (info %s), want %+v (info %s)", got, got.Info, want, want.Info)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("no change, want %+v", want)
	}
}

// Two nodes' rosters: each reports the other's entries (the state
// before it started, then changes), never its own; a number held by a
// live node is refused; an entry another writer removed is written again
// by its node; a node that closes takes its entries with it.
func TestRoster(t *testing.T) {
	s := startNATS(t, 0, t.TempDir())
	url := s.ClientURL()
	one := newRoster(t, url, 1)
	one.r.Put("1:presence-a", "alice", []byte(`{"n":1}`))
	two := newRoster(t, url, 2)
	two.expect(t, broker.RosterEntry{Node: 1, Channel: "1:presence-a", User: "alice", Info: []byte(`{"n":1}`)})
	if _, err := broker.NewRoster(context.Background(), broker.RosterConfig{URL: url, Node: 1, Log: quiet}); !errors.Is(err, broker.ErrNodeTaken) {
		t.Fatalf("a second node 1: %v, want ErrNodeTaken", err)
	}

	// Names outside the key alphabet survive the trip.
	two.r.Put("1:presence-b.c;d", "ünïcode user", nil)
	one.expect(t, broker.RosterEntry{Node: 2, Channel: "1:presence-b.c;d", User: "ünïcode user", Info: []byte("null")})
	two.r.Remove("1:presence-b.c;d", "ünïcode user")
	one.expect(t, broker.RosterEntry{Node: 2, Channel: "1:presence-b.c;d", User: "ünïcode user", Gone: true})
	// Occupancy: a node's count of subscriptions, its latest value.
	two.r.SetSubscriptions("1:news", 3)
	one.expect(t, broker.RosterEntry{Node: 2, Channel: "1:news", Subscriptions: 3})
	two.r.SetSubscriptions("1:news", 0)
	one.expect(t, broker.RosterEntry{Node: 2, Channel: "1:news", Gone: true})
	if !one.r.First() || two.r.First() {
		t.Fatalf("first: one %v, two %v", one.r.First(), two.r.First())
	}

	// Someone removes node 1's entry: node 1 writes it again.
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	kv, err := js.KeyValue(context.Background(), broker.DefaultRosterBucket)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var alice string
	for _, k := range keys {
		if len(k) > 4 && k[:4] == "m.1." {
			alice = k
		}
	}
	if alice == "" {
		t.Fatalf("no key of node 1 among %v", keys)
	}
	if err := kv.Purge(context.Background(), alice); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "node 1 writing its entry again", func() bool {
		e, err := kv.Get(context.Background(), alice)
		return err == nil && string(e.Value()) == `{"n":1}`
	})
	// Node 2 saw the removal and the entry again, or (when the entry came
	// back before its watcher read the removal, which the bucket then no
	// longer holds) nothing: never a lasting removal.
	one.r.Put("1:presence-sync", "s", nil)
	var seen []broker.RosterEntry
	for done := false; !done; {
		select {
		case e := <-two.changes:
			if done = e.User == "s"; !done {
				seen = append(seen, e)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("node 2 did not see the sync entry; saw %+v", seen)
		}
	}
	if len(seen) != 0 && (len(seen) != 2 || !seen[0].Gone || seen[1].Gone || seen[1].User != "alice") {
		t.Fatalf("node 2 saw %+v", seen)
	}
	one.r.Remove("1:presence-sync", "s")
	two.expect(t, broker.RosterEntry{Node: 1, Channel: "1:presence-sync", User: "s", Gone: true})

	// Node 1 shuts down: its entries leave at once.
	_ = one.r.Close()
	two.expect(t, broker.RosterEntry{Node: 1, Channel: "1:presence-a", User: "alice", Gone: true, NodeDown: true})
}

// A roster started before NATS (Optional) claims its number, opens the
// bucket and shares its entries once NATS is up.
func TestRosterStartWithoutServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	if _, err := broker.NewRoster(context.Background(), broker.RosterConfig{URL: url, Node: 1, Log: quiet}); err == nil {
		t.Fatal("NewRoster without a server: no error")
	}
	r, err := broker.NewRoster(context.Background(), broker.RosterConfig{URL: url, Node: 1, Log: quiet, Optional: true,
		Heartbeat: 100 * time.Millisecond})
	if err != nil {
		t.Fatalf("optional roster: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	r.Start(func(broker.RosterEntry) {})
	if ok, why := r.Ready(); ok || why == "" {
		t.Fatalf("Ready() = %v %q without a server", ok, why)
	}
	r.Put("1:presence-a", "early", nil)
	startNATS(t, port, t.TempDir())
	waitFor(t, 15*time.Second, "ready once NATS starts", func() bool { ok, _ := r.Ready(); return ok })
	other := newRoster(t, url, 2)
	other.expect(t, broker.RosterEntry{Node: 1, Channel: "1:presence-a", User: "early", Info: []byte("null")})
}

package broker_test

import (
	"context"
	"errors"
	"fmt"
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
	two.expect(t, broker.RosterEntry{Node: 1, Channel: "1:presence-a", User: "alice", Gone: true})
	two.expect(t, broker.RosterEntry{Node: 1, Channel: "1:presence-a", User: "alice", Info: []byte(`{"n":1}`)})

	// Node 1 shuts down: its entries leave at once.
	_ = one.r.Close()
	two.expect(t, broker.RosterEntry{Node: 1, Channel: "1:presence-a", User: "alice", Gone: true, NodeDown: true})
}

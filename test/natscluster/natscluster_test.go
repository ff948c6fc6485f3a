package natscluster

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/herald-push/herald/internal/testutil"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald/test/internal/natstest"
)

// checkReplicas fails unless the stream (HERALD) and the presence
// bucket's stream exist with 3 replicas, each on 3 servers, all current.
func checkReplicas(t *testing.T, urls string) {
	t.Helper()
	nc, err := nats.Connect(urls)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"HERALD", "KV_HERALD_PUSHER_PRESENCE"} {
		waitFor(t, name+" on 3 current servers", func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			s, err := js.Stream(ctx, name)
			if err != nil {
				return false
			}
			info := s.CachedInfo()
			if info.Config.Replicas != 3 {
				t.Fatalf("stream %s has %d replicas, want 3", name, info.Config.Replicas)
			}
			if info.Cluster == nil || info.Cluster.Leader == "" || len(info.Cluster.Replicas) != 2 {
				return false
			}
			for _, r := range info.Cluster.Replicas {
				if !r.Current || r.Offline {
					return false
				}
			}
			return true
		})
	}
}

// TestCluster: three herald nodes, node i on NATS server i of a
// 3-server JetStream cluster (one URL each), the stream and the presence
// bucket with 3 replicas. A publish on A reaches B and C exactly once; a
// client moving from B to C recovers exactly what it missed; presence is
// the cluster's on every node; and when server 3 goes, node C, given
// only its URL, carries on through the servers NATS told it of.
func TestCluster(t *testing.T) {
	nc := natstest.StartCluster(t, 3, t.TempDir())
	var nodes []*node
	for i, name := range []string{"a", "b", "c"} {
		nodes = append(nodes, startNode(t, name, nc.Servers[i].ClientURL()))
	}
	a, b, c := nodes[0], nodes[1], nodes[2]
	checkReplicas(t, nc.URLs())
	for i, n := range nodes {
		if s := n.serverOf(nc.Servers); s != nc.Servers[i] {
			t.Fatalf("node %s is on NATS server %v, want %s", n.name, s, nc.Servers[i].Name())
		}
	}

	t.Run("fan-out", func(t *testing.T) {
		onB, subB := b.subscribe(t, "u1", "news", position{})
		onC, subC := c.subscribe(t, "u2", "news", position{})
		if subB.Offset != 0 || subB.Epoch == "" || subB.Epoch != subC.Epoch {
			t.Fatalf("subscribed on b %+v and on c %+v: want offset 0 and one epoch", subB, subC)
		}
		const n = 20
		for i := 1; i <= n; i++ {
			if p := a.mustPublish(t, "news", i); p.Epoch != subB.Epoch {
				t.Fatalf("publish %d in epoch %q, want %q", i, p.Epoch, subB.Epoch)
			}
		}
		a.mustPublish(t, "news", n+1) // nothing else may come before it
		onB.expect("news", 1, n+1)
		onC.expect("news", 1, n+1)
		// a stored them in the stream; b and c stored none.
		if got := testutil.Metric(t, a.API, "herald_broker_publishes_total"); got < n+1 {
			t.Errorf("a: herald_broker_publishes_total %v, want at least %d", got, n+1)
		}
		if got := testutil.Metric(t, b.API, "herald_broker_publishes_total"); got != 0 {
			t.Errorf("b: herald_broker_publishes_total %v, want 0", got)
		}
	})

	t.Run("recovery on another node", func(t *testing.T) {
		mover, sub := b.subscribe(t, "u3", "moves", position{})
		stay, _ := c.subscribe(t, "u4", "moves", position{})
		for i := 1; i <= 10; i++ {
			a.mustPublish(t, "moves", i)
		}
		mover.expect("moves", 1, 10)
		mover.conn.Close()
		for i := 11; i <= 25; i++ { // missed by mover; published on the node it goes to and elsewhere
			[]*node{a, c}[i%2].mustPublish(t, "moves", i)
		}
		back, r := c.subscribe(t, "u3", "moves", position{Offset: 10, Epoch: sub.Epoch})
		if r.Recovered == nil || !*r.Recovered || r.Epoch != sub.Epoch {
			t.Fatalf("resubscribed on c since 10: %+v, want recovered in epoch %q", r, sub.Epoch)
		}
		a.mustPublish(t, "moves", 26)
		back.expect("moves", 11, 26)
		stay.expect("moves", 1, 26)
	})

	t.Run("presence", func(t *testing.T) {
		const ch = "lobby"
		bob, _ := a.subscribe(t, "bob", ch, position{})
		alice, _ := b.subscribe(t, "alice", ch, position{})
		bob.event("join", ch, "alice")
		waitFor(t, "c's view of bob and alice", func() bool { return c.presenceOf(t, ch).Count == 2 })
		carol, r := c.subscribe(t, "carol", ch, position{})
		if r.Presence == nil || r.Presence.Count != 3 {
			t.Fatalf("carol's subscribed on c: %+v, want bob, alice and carol", r.Presence)
		}
		bob.event("join", ch, "carol")
		alice.event("join", ch, "carol")
		for _, n := range nodes {
			waitFor(t, n.name+"'s view of the lobby", func() bool { return n.presenceOf(t, ch).Count == 3 })
		}
		if p := b.presenceOf(t, ch); !slices.Equal(sorted(p.Users), []string{"alice", "bob", "carol"}) {
			t.Fatalf("b's GET /api/presence: %+v", p)
		}
		carol.conn.Close()
		bob.event("leave", ch, "carol")
		alice.event("leave", ch, "carol")
		for _, n := range nodes {
			waitFor(t, n.name+"'s view after carol left", func() bool { return n.presenceOf(t, ch).Count == 2 })
		}
	})

	t.Run("server 3 lost, node c had its URL only", func(t *testing.T) {
		onC, sub := c.subscribe(t, "u5", "after", position{})
		onA, _ := a.subscribe(t, "u6", "after", position{})
		b.mustPublish(t, "after", 1)
		onC.expect("after", 1, 1)
		nc.Servers[2].Shutdown()
		nc.Servers[2].WaitForShutdown()
		waitFor(t, "node c on another NATS server", func() bool { return c.serverOf(nc.Servers) != nil })
		c.waitReady(t)
		for i := 2; i <= 10; i++ {
			[]*node{c, a}[i%2].mustPublish(t, "after", i)
		}
		onC.expect("after", 2, 10)
		onA.expect("after", 1, 10)
		onC.conn.Close()
		b.mustPublish(t, "after", 11)
		back, r := c.subscribe(t, "u5", "after", position{Offset: 10, Epoch: sub.Epoch})
		if r.Recovered == nil || !*r.Recovered {
			t.Fatalf("resubscribed on c since 10: %+v, want recovered", r)
		}
		c.mustPublish(t, "after", 12)
		back.expect("after", 11, 12)
	})
}

// TestServerLoss: nodes given every server's URL (as in production), and
// the NATS server node A is connected to stops under a sustained publish
// through A and B: A reconnects to another server, every publish is
// acknowledged once with the next offset (retries carry an idempotency
// key), A's, B's and C's subscribers get every message once, a client of
// A recovers exactly its missed messages on C, and presence goes on
// across the nodes (no false leave: the node timeout outlasts the loss).
func TestServerLoss(t *testing.T) {
	nc := natstest.StartCluster(t, 3, t.TempDir())
	var nodes []*node
	for i, name := range []string{"a", "b", "c"} {
		nodes = append(nodes, startNode(t, name, nc.URLsFrom(i), "--pusher-node-timeout", "1m"))
	}
	a, b, c := nodes[0], nodes[1], nodes[2]
	checkReplicas(t, nc.URLs())
	lost := a.serverOf(nc.Servers)
	if lost == nil {
		t.Fatal("node a is on no NATS server")
	}
	const ch, lobby = "live", "lobby"
	var subs []*client
	var epoch string
	for i, n := range nodes {
		cl, r := n.subscribe(t, fmt.Sprintf("s%d", i), ch, position{})
		subs, epoch = append(subs, cl), r.Epoch
	}
	mover, _ := a.subscribe(t, "mover", ch, position{})
	bob, _ := a.subscribe(t, "bob", lobby, position{})
	// c learns of bob through the roster: wait for it, so that alice finds
	// bob in her subscription's list rather than in a join (which a loaded
	// machine can deliver after her subscription).
	waitFor(t, "c's view of bob", func() bool { return c.presenceOf(t, lobby).Count == 1 })
	alice, r := c.subscribe(t, "alice", lobby, position{})
	if r.Presence == nil || r.Presence.Count != 2 {
		t.Fatalf("alice's subscribed on c: %+v, want bob and alice", r.Presence)
	}
	bob.event("join", lobby, "alice")

	const total, stopAt, moveAt = 60, 20, 40
	for i := 1; i <= total; i++ {
		p := []*node{a, b}[i%2].mustPublish(t, ch, i)
		if p.Epoch != epoch {
			t.Fatalf("publish %d in epoch %q, want %q", i, p.Epoch, epoch)
		}
		switch i {
		case stopAt:
			t.Logf("stopping %s, node a's NATS server", lost.Name())
			lost.Shutdown()
		case moveAt:
			mover.expect(ch, 1, moveAt)
			mover.conn.Close()
		}
	}
	for _, cl := range subs {
		cl.expect(ch, 1, total)
	}
	if s := a.serverOf(nc.Servers); s == nil || s == lost {
		t.Fatalf("node a's broker connection is on %v after %s stopped", s, lost.Name())
	}
	back, r := c.subscribe(t, "mover", ch, position{Offset: moveAt, Epoch: epoch})
	if r.Recovered == nil || !*r.Recovered {
		t.Fatalf("mover on c since %d: %+v, want recovered", moveAt, r)
	}
	a.mustPublish(t, ch, total+1)
	back.expect(ch, moveAt+1, total+1)
	for _, cl := range subs {
		cl.expect(ch, total+1, total+1) // and nothing between
	}

	a.subscribe(t, "dave", lobby, position{})
	alice.event("join", lobby, "dave") // nothing of bob (a false leave) before it
	bob.event("join", lobby, "dave")
	waitFor(t, "c's view of the lobby", func() bool { return c.presenceOf(t, lobby).Count == 3 })
}

// sorted returns a sorted copy of ss.
func sorted(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return out
}

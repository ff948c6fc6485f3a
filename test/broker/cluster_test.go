package broker_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald/broker"
	"github.com/herald-push/herald/hub"
	"github.com/herald-push/herald/test/internal/natstest"
)

// TestNATSClusterConcurrentStart: three nodes start at once on a fresh
// 3-server JetStream cluster, each on its own server, each creating the
// stream and the presence bucket with 3 replicas. Every NewNATS and
// NewRoster succeeds: a cluster leaves the stream lookup of a node
// unanswered while another node's creation is under way (in about half
// the rounds here), and the node asks again instead of failing its
// start. Each node's first publish, right after its start, is stored: a
// replicated stream just created has no replica answering direct gets
// for a moment (the last message's read), and NewNATS returns only once
// one does. The stream ends with 3 replicas, and a publish through one
// node reaches the others.
func TestNATSClusterConcurrentStart(t *testing.T) {
	const rounds = 3
	for round := range rounds {
		t.Run(fmt.Sprintf("round %d", round), func(t *testing.T) {
			nc := natstest.StartCluster(t, 3, t.TempDir())
			var (
				wg    sync.WaitGroup
				nodes = make([]*broker.NATS, 3)
				hubs  = make([]*hub.Hub, 3)
				errs  = make([]error, 6)
			)
			for i := range 3 {
				hubs[i] = hub.New(hub.Config{HistorySize: 50})
				url := nc.Servers[i].ClientURL()
				wg.Go(func() {
					nodes[i], errs[i] = broker.NewNATS(context.Background(), hubs[i], broker.NATSConfig{URL: url, Replicas: 3, HistorySize: 50, Log: quiet})
					if errs[i] == nil { // at once: a node publishes as soon as it started
						if _, err := nodes[i].Publish(context.Background(), fmt.Sprintf("first-%d", i), []byte("x")); err != nil {
							errs[i] = fmt.Errorf("the first publish: %w", err)
						}
					}
				})
				wg.Go(func() {
					var r *broker.Roster
					r, errs[3+i] = broker.NewRoster(context.Background(), broker.RosterConfig{URL: url, Replicas: 3, Node: uint32(i + 1), Log: quiet})
					if r != nil {
						t.Cleanup(func() { _ = r.Close() })
					}
				})
			}
			wg.Wait()
			for _, b := range nodes {
				if b != nil {
					t.Cleanup(func() { _ = b.Close() })
				}
			}
			for i, err := range errs {
				if err != nil {
					t.Fatalf("start %d of 6 (3 brokers, then 3 rosters): %v", i, err)
				}
			}
			checkStreamReplicas(t, nc.URLs(), "HERALD", 3)
			checkStreamReplicas(t, nc.URLs(), "KV_"+broker.DefaultRosterBucket, 3)

			n1 := &node{h: hubs[1], b: nodes[1], l: newGoLoop(t)}
			s := &sink{}
			n1.subscribe(t, "c", s, nil)
			if _, err := nodes[0].Publish(context.Background(), "c", []byte("x")); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(20 * time.Second)
			for len(s.offsets()) == 0 {
				if time.Now().After(deadline) {
					t.Fatal("publish through node 0 never reached node 1")
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// checkStreamReplicas fails unless the stream name has replicas replicas.
func checkStreamReplicas(t *testing.T, urls, name string, replicas int) {
	t.Helper()
	c, err := nats.Connect(urls)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	js, err := jetstream.New(c)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	if got := s.CachedInfo().Config.Replicas; got != replicas {
		t.Fatalf("stream %s has %d replicas, want %d", name, got, replicas)
	}
}

// TestNATSClusterContention: three nodes, each on its own server of a
// 3-server cluster, publish to one channel at once as fast as they can.
// Every publish is stored (none refused after losing the
// compare-and-set too often: a node that lost twice in a row pauses at
// random, so the winner, which publishes again from its cache at once,
// does not starve the others), and the offsets acknowledged are 1 … N
// once each, in one epoch.
func TestNATSClusterContention(t *testing.T) {
	nc := natstest.StartCluster(t, 3, t.TempDir())
	const each = 300
	var nodes []*broker.NATS
	for i := range 3 {
		b, err := broker.NewNATS(context.Background(), hub.New(hub.Config{HistorySize: 50}),
			broker.NATSConfig{URL: nc.Servers[i].ClientURL(), Replicas: 3, HistorySize: 50, Log: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		nodes = append(nodes, b)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[uint64]int{}
		eps  = map[string]bool{}
		errs []error
	)
	for i, b := range nodes {
		wg.Go(func() {
			for k := range each {
				pos, err := b.Publish(context.Background(), "busy", fmt.Appendf(nil, "%d-%d", i, k))
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("node %d, publish %d: %w", i, k, err))
				} else {
					seen[pos.Offset]++
					eps[pos.Epoch] = true
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for _, err := range errs[:min(len(errs), 5)] {
		t.Error(err)
	}
	if len(errs) > 0 {
		t.Fatalf("%d of %d publishes refused", len(errs), 3*each)
	}
	if len(eps) != 1 {
		t.Errorf("epochs %v, want one", eps)
	}
	for off := uint64(1); off <= 3*each; off++ {
		if seen[off] != 1 {
			t.Fatalf("offset %d acknowledged %d times, want once", off, seen[off])
		}
	}
	for i, b := range nodes {
		t.Logf("node %d: %+v", i, b.Stats())
	}
}

package loadgen

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// recoveryConfig is a small jitter or deploy run against nodes, published
// through pub.
func recoveryConfig(scenario, pub string, urls ...string) Config {
	return Config{
		URLs: urls, PubHTTP: pub, Scenario: scenario,
		Conns: 20, Loops: 2, Rate: 100, Duration: time.Second,
		Drain: 15 * time.Second, Deadline: 40 * time.Second,
		ConnectRate: -1, SourceAddrs: []string{"127.0.0.1"},
	}
}

// checkComplete asserts that every client had every message exactly once.
func checkComplete(t *testing.T, res *Result, clients int64) {
	t.Helper()
	rc := res.Recovery
	if rc == nil {
		t.Fatal("no recovery section")
	}
	if res.Published == 0 || len(res.PublishFailures) != 0 {
		t.Fatalf("published %d, failures %v", res.Published, res.PublishFailures)
	}
	if rc.Clients != clients || rc.Expected != clients*res.Published || rc.Delivered != rc.Expected ||
		rc.DeliveredPct != 100 || rc.Duplicates != 0 || rc.CompleteClients != clients || res.Lost != 0 {
		t.Errorf("clients %d, delivered %d of %d (%.2f%%), duplicates %d, complete %d, lost %d; want all %d clients complete, no duplicates",
			rc.Clients, rc.Delivered, rc.Expected, rc.DeliveredPct, rc.Duplicates, rc.CompleteClients, res.Lost, clients)
	}
	if rc.NotRecovered != 0 || rc.NeverReturned != 0 {
		t.Errorf("not recovered %d, never returned %d; want 0, 0", rc.NotRecovered, rc.NeverReturned)
	}
}

// TestJitterRecoversEverything cuts every client at least once while
// publishing and checks that resubscribing with since loses nothing and
// repeats nothing.
func TestJitterRecoversEverything(t *testing.T) {
	t.Parallel()
	hub := newFakeHub()
	node := newFakeNode(t, hub)
	cfg := recoveryConfig(ScenarioJitter, node.URL+"/publish", node.wsURL())
	// Every client's first cut comes within 450 ms of a 1 s phase.
	cfg.JitterEvery, cfg.JitterDist, cfg.Offline = 300*time.Millisecond, JitterUniform, 100*time.Millisecond
	res := run(t, cfg)
	checkComplete(t, res, 20)
	rc := res.Recovery
	if rc.ReconnectedClients != 20 || rc.Cuts < 20 || rc.Reconnects != rc.Cuts || rc.Recovered != rc.Cuts || rc.AffectedClients != 20 || rc.RecoveredClients != 20 {
		t.Errorf("reconnected clients %d, cuts %d, reconnects %d, recovered %d, affected %d, recovered clients %d; want every client cut, back and recovered",
			rc.ReconnectedClients, rc.Cuts, rc.Reconnects, rc.Recovered, rc.AffectedClients, rc.RecoveredClients)
	}
	if rc.Drops != 0 || len(res.Dropped) != 0 {
		t.Errorf("drops %d %v: the cuts are the load generator's own", rc.Drops, res.Dropped)
	}
	if rc.ReplayLatency.Count() == 0 || rc.Replayed == 0 {
		t.Errorf("replay measured %d times over %d messages; want some", rc.ReplayLatency.Count(), rc.Replayed)
	}
	dir := t.TempDir()
	if err := WritePlots(dir, res); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "recovery.svg")); err != nil {
		t.Error(err)
	}
	if got := res.Latency.Count() + rc.Replayed; got != rc.Delivered {
		t.Errorf("live %d + replayed %d = %d, want every delivery (%d)", res.Latency.Count(), rc.Replayed, got, rc.Delivered)
	}
}

// TestDeployMovesClients takes one of two nodes away mid-run: its clients
// reconnect to the other and recover there, with every message once.
func TestDeployMovesClients(t *testing.T) {
	t.Parallel()
	hub := newFakeHub()
	a, b := newFakeNode(t, hub), newFakeNode(t, hub)
	cfg := recoveryConfig(ScenarioDeploy, b.URL+"/publish", a.wsURL(), b.wsURL())
	cfg.DeployAt = 300 * time.Millisecond
	deployed := make(chan struct{})
	cfg.Deploy = func() error { a.Stop(); close(deployed); return nil }
	res := run(t, cfg)
	select {
	case <-deployed:
	default:
		t.Fatal("the deploy never ran")
	}
	checkComplete(t, res, 20)
	rc := res.Recovery
	if rc.Drops != 10 || rc.AffectedClients != 10 || rc.RecoveredClients != 10 || rc.RecoveredPct != 100 || rc.Recovered != 10 || rc.Cuts != 0 {
		t.Errorf("drops %d, affected %d, recovered clients %d (%.1f%%), recovered %d, cuts %d; want node A's 10 clients dropped and recovered",
			rc.Drops, rc.AffectedClients, rc.RecoveredClients, rc.RecoveredPct, rc.Recovered, rc.Cuts)
	}
	if !slices.Equal(rc.OpenByNode, []int64{0, 20}) {
		t.Errorf("open by node %v, want [0 20]", rc.OpenByNode)
	}
	if rc.Downtime.Count() != 10 {
		t.Errorf("downtime measured %d times, want 10", rc.Downtime.Count())
	}
	if rc.DeployAt <= 0 || rc.DeployErr != "" {
		t.Errorf("deploy at %v s, error %q", rc.DeployAt, rc.DeployErr)
	}
}

func TestShootoutSteps(t *testing.T) {
	t.Parallel()
	t.Run("all pass", func(t *testing.T) {
		t.Parallel()
		srv := newFakeServer(t, fakePolicy{})
		cfg := srv.baseConfig(ScenarioShootout)
		cfg.ShootoutStart, cfg.Conns, cfg.Count, cfg.Interval = 4, 20, 3, 10*time.Millisecond
		cfg.P95Bound = time.Minute // nothing here is about time
		res := run(t, cfg)
		sh := res.Shootout
		if sh == nil {
			t.Fatal("no shootout section")
		}
		var clients []int
		for _, st := range sh.Steps {
			clients = append(clients, st.Clients)
			if !st.Pass || st.Open != int64(st.Clients) || st.Published != 3 || st.Deliveries != st.Expected || st.Expected != 3*int64(st.Clients) {
				t.Errorf("step %+v: want passed, every client open, every delivery", st)
			}
		}
		if !slices.Equal(clients, []int{4, 8, 16, 20}) || sh.MaxPassing != 20 || sh.Stop != "max" {
			t.Errorf("steps %v, largest passing %d, stop %q; want [4 8 16 20], 20, max", clients, sh.MaxPassing, sh.Stop)
		}
		dir := t.TempDir()
		if err := WritePlots(dir, res); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "shootout.svg")); err != nil {
			t.Error(err)
		}
		if res.Latency.Count() != 3*(4+8+16+20) || res.Duplicates != 0 {
			t.Errorf("latency holds %d deliveries, dups %d; want %d, 0", res.Latency.Count(), res.Duplicates, 3*(4+8+16+20))
		}
	})
	t.Run("late registration", func(t *testing.T) {
		t.Parallel()
		// The server adds each connection to its broadcast set 20 ms
		// after its 101: the settle pause covers it, so no step loses
		// the newest clients' first message.
		srv := newFakeServer(t, fakePolicy{registerLate: 20 * time.Millisecond})
		cfg := srv.baseConfig(ScenarioShootout)
		cfg.ShootoutStart, cfg.Conns, cfg.Count, cfg.Interval = 4, 20, 3, 10*time.Millisecond
		cfg.P95Bound, cfg.ShootoutSettle = time.Minute, time.Second
		res := run(t, cfg)
		sh := res.Shootout
		if sh == nil || sh.MaxPassing != 20 || sh.Stop != "max" {
			t.Fatalf("shootout %+v; want every step passed up to 20", sh)
		}
		for _, st := range sh.Steps {
			if st.Deliveries != st.Expected {
				t.Errorf("step %d: %d of %d deliveries", st.Clients, st.Deliveries, st.Expected)
			}
		}
	})
	t.Run("first step over the bound", func(t *testing.T) {
		t.Parallel()
		// Every message is held 50 ms: no delivery can be within 1 ms.
		srv := newFakeServer(t, fakePolicy{delay: 50 * time.Millisecond})
		cfg := srv.baseConfig(ScenarioShootout)
		cfg.ShootoutStart, cfg.Conns, cfg.Count = 4, 20, 2
		cfg.P95Bound = time.Millisecond
		res := run(t, cfg)
		sh := res.Shootout
		if sh == nil || len(sh.Steps) != 1 || sh.Steps[0].Pass || sh.MaxPassing != 0 || sh.Stop != "p95" {
			t.Errorf("shootout %+v; want one failed step, stop p95, nothing passing", sh)
		}
	})
}

// TestRecoveryResultSkipsFailedPublishes checks that a message whose
// publish failed (the only node restarting) is expected by no client: a
// client with every other message is complete, and recovered.
func TestRecoveryResultSkipsFailedPublishes(t *testing.T) {
	t.Parallel()
	f := &fleet{targets: make([]target, 1)}
	all, short := &client{id: 0}, &client{id: 1}
	for _, s := range []uint64{0, 1, 3, 4} {
		all.mark(s)
		all.unique++
	}
	for _, s := range []uint64{0, 1, 3} {
		short.mark(s)
		short.unique++
	}
	all.drv.drops, short.drv.drops = 1, 1
	f.clients = []*client{all, short}

	r := f.recoveryResult(4, []uint64{2}, []bool{true, true})
	if r.Expected != 8 || r.Delivered != 7 || r.CompleteClients != 1 || r.AffectedClients != 2 || r.RecoveredClients != 1 || r.RecoveredPct != 50 {
		t.Errorf("expected %d, delivered %d, complete %d, affected %d, recovered %d (%.0f%%); want 8, 7, 1, 2, 1 (50%%)",
			r.Expected, r.Delivered, r.CompleteClients, r.AffectedClients, r.RecoveredClients, r.RecoveredPct)
	}
	// Without the failure known, seq 2 is missing for both.
	if r := f.recoveryResult(4, nil, []bool{true, true}); r.CompleteClients != 0 {
		t.Errorf("complete %d without the failed seq skipped; want 0", r.CompleteClients)
	}
}

// TestPendingKeyTellsNodesApart checks that two attempts from one local
// address:port (the kernel gives one to connections to different nodes
// with IP_BIND_ADDRESS_NO_PORT) are told apart by their remote end.
func TestPendingKeyTellsNodesApart(t *testing.T) {
	t.Parallel()
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 40000}
	a := pendingKey(local, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080})
	b := pendingKey(local, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8090})
	if a == b {
		t.Errorf("one key %q for connections to two nodes", a)
	}
}

package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-push/herald/internal/testutil"
)

// TestFanOutAcrossNodes: a publish on node A reaches subscribers on B and
// C with the offsets A's API acknowledged, and A, which has no subscriber,
// does not carry the channel.
func TestFanOutAcrossNodes(t *testing.T) {
	s := startNATS(t, 0, t.TempDir())
	nodes := startCluster(t, s.ClientURL(), "a", "b", "c")
	a, b, c := nodes[0], nodes[1], nodes[2]

	cb, subB, err := subscribe(t, b, "news", published{})
	if err != nil {
		t.Fatal(err)
	}
	cc, subC, err := subscribe(t, c, "news", published{})
	if err != nil {
		t.Fatal(err)
	}
	if subB.Offset != 0 || subB.Epoch == "" || subB.Epoch != subC.Epoch {
		t.Fatalf("subscribed on b %+v and on c %+v: want offset 0 and one epoch", subB, subC)
	}
	const n = 20
	for i := 1; i <= n; i++ {
		p := mustPublish(t, a, "news", fmt.Sprintf(`{"n":%d}`, i))
		if p.Offset != uint64(i) || p.Epoch != subB.Epoch {
			t.Fatalf("publish %d acknowledged at %+v, want offset %d in epoch %q", i, p, i, subB.Epoch)
		}
	}
	for name, cl := range map[string]*client{"b": cb, "c": cc} {
		for i := 1; i <= n; i++ {
			e, err := cl.next(5 * time.Second)
			if err != nil {
				t.Fatalf("%s: message %d: %v", name, i, err)
			}
			if e.Offset != uint64(i) || string(e.Data) != fmt.Sprintf(`{"n":%d}`, i) {
				t.Fatalf("%s: got %+v (data %s), want offset %d", name, e, e.Data, i)
			}
		}
	}

	watched := func(n *node) int {
		_, body := get(n.API + "/api/stats")
		var st struct {
			Broker struct {
				Watched int `json:"watched_channels"`
			} `json:"broker"`
		}
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatalf("%s /api/stats: %v: %s", n.name, err, body)
		}
		return st.Broker.Watched
	}
	if w := watched(a); w != 0 {
		t.Errorf("node a watches %d channels with no subscriber", w)
	}
	if w := watched(b); w != 1 {
		t.Errorf("node b watches %d channels, want 1", w)
	}
}

// TestNodeDeath kills node B (SIGKILL) in the middle of a sustained
// publish on A: B's clients reconnect to A or C with their last position
// and every client ends with every message exactly once, in order.
func TestNodeDeath(t *testing.T) {
	s := startNATS(t, 0, t.TempDir())
	nodes := startCluster(t, s.ClientURL(), "a", "b", "c")
	a, b, c := nodes[0], nodes[1], nodes[2]

	const (
		total   = 300 // messages published
		killAt  = 100 // B dies after this many
		clients = 6   // on B, plus one on C that sees no failure
	)
	type sub struct {
		name  string
		cl    *client
		last  published
		other *node // where it goes when its node dies
	}
	var subs []*sub
	for i := 0; i < clients; i++ {
		other := a
		if i%2 == 1 {
			other = c
		}
		cl, e, err := subscribe(t, b, "live", published{})
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, &sub{name: fmt.Sprintf("b-client-%d", i), cl: cl, last: published{Offset: e.Offset, Epoch: e.Epoch}, other: other})
	}
	cl, e, err := subscribe(t, c, "live", published{})
	if err != nil {
		t.Fatal(err)
	}
	subs = append(subs, &sub{name: "c-client", cl: cl, last: published{Offset: e.Offset, Epoch: e.Epoch}, other: a})

	var errs log
	var wg sync.WaitGroup
	deadline := time.Now().Add(60 * time.Second)
	reconnected := make([]bool, len(subs))
	for i, s := range subs {
		wg.Go(func() {
			for s.last.Offset < total && time.Now().Before(deadline) {
				e, err := s.cl.next(time.Until(deadline))
				if err != nil {
					if reconnected[i] {
						errs.errorf("%s: read after reconnecting: %v", s.name, err)
						return
					}
					// Its node died: go elsewhere and recover from the last position.
					reconnected[i] = true
					cl, sub, err := subscribe(t, s.other, "live", s.last)
					if err != nil {
						errs.errorf("%s: reconnect to %s: %v", s.name, s.other.name, err)
						return
					}
					if sub.Recovered == nil || !*sub.Recovered {
						errs.errorf("%s: reconnect to %s since %+v: not recovered (%+v)", s.name, s.other.name, s.last, sub)
						return
					}
					s.cl = cl
					continue
				}
				if e.Op != "" {
					errs.errorf("%s: unexpected reply %+v", s.name, e)
					return
				}
				if e.Offset != s.last.Offset+1 || string(e.Data) != fmt.Sprintf(`{"n":%d}`, e.Offset) {
					errs.errorf("%s: got offset %d (data %s) after %d: lost or duplicated", s.name, e.Offset, e.Data, s.last.Offset)
					return
				}
				s.last.Offset = e.Offset
			}
			if s.last.Offset != total {
				errs.errorf("%s: ended at offset %d of %d", s.name, s.last.Offset, total)
			}
		})
	}

	for i := 1; i <= total; i++ {
		st, p, err := publish(a, "live", fmt.Sprintf(`{"n":%d}`, i))
		if err != nil || st != http.StatusOK || p.Offset != uint64(i) {
			t.Errorf("publish %d on a: status %d, %+v, %v", i, st, p, err)
			break
		}
		if i == killAt {
			if err := b.Cmd.Process.Kill(); err != nil { // SIGKILL, by PID
				t.Fatalf("kill b: %v", err)
			}
		}
		time.Sleep(3 * time.Millisecond)
	}
	wg.Wait()
	errs.check(t)
	for i, s := range subs[:clients] {
		if !reconnected[i] {
			t.Errorf("%s never saw its node die", s.name)
		}
	}
}

// TestNATSRestart stops the NATS server under running nodes: they report
// not ready, keep their clients, refuse publishes with 503, and once NATS
// is back (same port, same store) they are ready again and deliver, with
// offsets continuing where they were.
func TestNATSRestart(t *testing.T) {
	dir := t.TempDir()
	s := startNATS(t, 0, dir)
	port := natsPort(s)
	nodes := startCluster(t, s.ClientURL(), "a", "b", "c")
	a, b, c := nodes[0], nodes[1], nodes[2]

	cb, _, err := subscribe(t, b, "ops", published{})
	if err != nil {
		t.Fatal(err)
	}
	cc, _, err := subscribe(t, c, "ops", published{})
	if err != nil {
		t.Fatal(err)
	}
	first := mustPublish(t, a, "ops", `{"n":1}`)
	for _, cl := range []*client{cb, cc} {
		if e, err := cl.next(5 * time.Second); err != nil || e.Offset != 1 {
			t.Fatalf("first message: %+v %v", e, err)
		}
	}

	s.Shutdown()
	s.WaitForShutdown()
	for _, n := range nodes {
		body := waitReady(t, n, false, 10*time.Second)
		if !strings.Contains(body, "NATS") {
			t.Errorf("%s /readyz while NATS is down: %s, want the reason", n.name, body)
		}
	}
	if st, _, err := publish(a, "ops", `{"n":"refused"}`); err != nil || st != http.StatusServiceUnavailable {
		t.Fatalf("publish while NATS is down: status %d, %v; want 503", st, err)
	}
	// Local service goes on: the clients' connections answer.
	if err := cb.conn.WriteMessage(1, []byte(`{"op":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	if e, err := cb.next(5 * time.Second); err != nil || e.Op != "pong" {
		t.Fatalf("ping on b while NATS is down: %+v %v", e, err)
	}

	startNATS(t, port, dir)
	for _, n := range nodes {
		waitReady(t, n, true, 30*time.Second)
	}
	p := mustPublish(t, a, "ops", `{"n":2}`)
	if p.Offset != 2 || p.Epoch != first.Epoch {
		t.Fatalf("after the restart: %+v, want offset 2 in epoch %q", p, first.Epoch)
	}
	for name, cl := range map[string]*client{"b": cb, "c": cc} {
		e, err := cl.next(30 * time.Second)
		if err != nil || e.Offset != 2 || string(e.Data) != `{"n":2}` {
			t.Fatalf("%s after the restart: %+v %v, want offset 2", name, e, err)
		}
	}
}

// TestStartWithoutNATS: a node whose NATS is unreachable refuses to start
// with a clear error, or, with --broker-optional, starts not ready and
// becomes ready when NATS appears.
func TestStartWithoutNATS(t *testing.T) {
	port := testutil.FreePort(t)
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	bin := testutil.Binary(t, "herald")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "serve", "--listen", "127.0.0.1:0", "--api-listen", "",
		"--allow-anonymous", "--broker", url).CombinedOutput()
	if err == nil || ctx.Err() != nil || !strings.Contains(string(out), "NATS") {
		t.Fatalf("start without NATS: err %v, output:\n%s\nwant a quick failure naming NATS", err, out)
	}

	n := startNode(t, "optional", url, "--broker-optional")
	if body := waitReady(t, n, false, 5*time.Second); !strings.Contains(body, "NATS") {
		t.Errorf("/readyz without NATS: %s", body)
	}
	if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
		l.Close()
	} else {
		t.Fatalf("port %d taken meanwhile: %v", port, err)
	}
	startNATS(t, port, t.TempDir())
	waitReady(t, n, true, 30*time.Second)
	mustPublish(t, n, "late", `{"n":1}`)
}

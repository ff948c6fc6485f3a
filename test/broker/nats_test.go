// Package broker_test checks the NATS broker (broker.NATS) against an
// embedded NATS server with JetStream: the cluster's promises across two
// nodes, outages and a start before NATS is up. It lives in the test
// module, which keeps nats-server out of the root module; the broker's
// other tests are in the broker package.
package broker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/herald-push/herald/broker"
	"github.com/herald-push/herald/hub"
	"github.com/herald-push/herald/test/internal/natstest"
)

// startNATS runs an embedded NATS server (see natstest.Start).
func startNATS(t testing.TB, port int, dir string) *server.Server {
	t.Helper()
	return natstest.Start(t, port, dir)
}

// quiet is a logger that drops everything.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// node is one broker with its hub, as a herald node holds them.
type node struct {
	h *hub.Hub
	b *broker.NATS
	l *goLoop
}

func newNode(t testing.TB, url string, cfg broker.NATSConfig) *node {
	t.Helper()
	h := hub.New(hub.Config{HistorySize: 50})
	cfg.URL, cfg.Log, cfg.HistorySize = url, quiet, 50
	b, err := broker.NewNATS(context.Background(), h, cfg)
	if err != nil {
		t.Fatalf("NewNATS: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return &node{h: h, b: b, l: newGoLoop(t)}
}

// goLoop is a hub.Loop running funcs on its own goroutine.
type goLoop struct {
	fns  chan func()
	done chan struct{}
}

func newGoLoop(t testing.TB) *goLoop {
	l := &goLoop{fns: make(chan func(), 1024), done: make(chan struct{})}
	go func() {
		for {
			select {
			case fn := <-l.fns:
				fn()
			case <-l.done:
				return
			}
		}
	}()
	t.Cleanup(func() { close(l.done) })
	return l
}

func (l *goLoop) Index() int { return 0 }

func (l *goLoop) Run(fn func()) error { l.fns <- fn; return nil }

// do runs fn on the loop and waits for it.
func (l *goLoop) do(fn func()) {
	done := make(chan struct{})
	l.fns <- func() { fn(); close(done) }
	<-done
}

// sink is a Subscriber keeping the offsets and payloads delivered.
type sink struct {
	mu   sync.Mutex
	offs []uint64
	data []string
}

func (s *sink) Deliver(m *hub.Message) {
	s.mu.Lock()
	s.offs = append(s.offs, m.Offset)
	s.data = append(s.data, string(m.Data))
	s.mu.Unlock()
}

func (s *sink) offsets() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.offs)
}

// subscription is what a subscribe through Acquire returned.
type subscription struct {
	pos       hub.Position
	backlog   []uint64
	recovered bool
}

// subscribe subscribes s to channel on n the way the push app does:
// Acquire, waiting for ready when asked to, then Hub.Subscribe on the loop.
func (n *node) subscribe(t testing.TB, channel string, s *sink, since *hub.Position) subscription {
	t.Helper()
	ready := make(chan struct{})
	if n.b.Acquire(channel, since, func() { close(ready) }) {
		close(ready)
	}
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatalf("subscription to %q never ready", channel)
	}
	var r subscription
	l := n.l
	l.do(func() {
		var backlog []*hub.Message
		r.pos, backlog, r.recovered, _ = n.h.Subscribe(l, channel, s, since)
		for _, m := range backlog {
			r.backlog = append(r.backlog, m.Offset)
		}
	})
	return r
}

func publish(t testing.TB, n *node, channel, data string) hub.Position {
	t.Helper()
	pos, err := n.b.Publish(context.Background(), channel, []byte(data))
	if err != nil {
		t.Fatalf("Publish(%q): %v", channel, err)
	}
	return pos
}

// waitFor polls cond every 10 ms until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func seq(from, to uint64) []uint64 {
	var out []uint64
	for o := from; o <= to; o++ {
		out = append(out, o)
	}
	return out
}

// TestNATSAcrossNodes checks the cluster's promises on two brokers of one
// NATS server: shared offsets and epochs, recovery on a node that never
// saw the messages, live fan-out, and publishes racing from two nodes.
func TestNATSAcrossNodes(t *testing.T) {
	t.Parallel()
	s := startNATS(t, 0, t.TempDir())
	a := newNode(t, s.ClientURL(), broker.NATSConfig{Name: "a"})
	b := newNode(t, s.ClientURL(), broker.NATSConfig{Name: "b"})

	t.Run("recovery on a cold node", func(t *testing.T) {
		var first hub.Position
		for i := 1; i <= 5; i++ {
			pos := publish(t, a, "news", fmt.Sprint(i))
			if i == 1 {
				first = pos
			}
			if pos.Offset != uint64(i) || pos.Epoch != first.Epoch {
				t.Fatalf("publish %d at %+v (first %+v)", i, pos, first)
			}
		}
		if got, ok := a.h.Info("news"); ok {
			t.Fatalf("node a has no subscriber of news but holds it: %+v", got)
		}
		sub := &sink{}
		r := b.subscribe(t, "news", sub, &hub.Position{Offset: 2, Epoch: first.Epoch})
		if r.pos != (hub.Position{Offset: 5, Epoch: first.Epoch}) || !r.recovered || !slices.Equal(r.backlog, seq(3, 5)) {
			t.Fatalf("subscribe on b: %+v, want position 5, recovered 3..5", r)
		}
		publish(t, a, "news", "6")
		waitFor(t, 5*time.Second, "live delivery on b", func() bool { return slices.Equal(sub.offsets(), []uint64{6}) })
	})

	t.Run("empty channel has one epoch", func(t *testing.T) {
		ra := a.subscribe(t, "fresh", &sink{}, nil)
		rb := b.subscribe(t, "fresh", &sink{}, nil)
		if ra.pos != rb.pos || ra.pos.Offset != 0 {
			t.Fatalf("empty channel: a at %+v, b at %+v", ra.pos, rb.pos)
		}
		pos := publish(t, b, "fresh", "x")
		if pos != (hub.Position{Offset: 1, Epoch: ra.pos.Epoch}) {
			t.Fatalf("first message at %+v, want offset 1 in epoch %q", pos, ra.pos.Epoch)
		}
	})

	t.Run("racing publishers", func(t *testing.T) {
		sub := &sink{}
		b.subscribe(t, "race", sub, nil)
		const each = 40
		var wg sync.WaitGroup
		offs := make(chan uint64, 2*each)
		for _, n := range []*node{a, b} {
			wg.Go(func() {
				for i := 0; i < each; i++ {
					pos, err := n.b.Publish(context.Background(), "race", []byte("x"))
					if err != nil {
						t.Error(err)
						return
					}
					offs <- pos.Offset
				}
			})
		}
		wg.Wait()
		close(offs)
		var got []uint64
		for o := range offs {
			got = append(got, o)
		}
		slices.Sort(got)
		if !slices.Equal(got, seq(1, 2*each)) {
			t.Fatalf("acknowledged offsets %v, want 1..%d once each", got, 2*each)
		}
		waitFor(t, 5*time.Second, "every message delivered in order", func() bool { return slices.Equal(sub.offsets(), seq(1, 2*each)) })
	})

	t.Run("refusals", func(t *testing.T) {
		if _, err := a.b.Publish(context.Background(), "bad name", []byte("x")); !errors.Is(err, hub.ErrInvalidChannel) {
			t.Errorf("invalid channel: %v", err)
		}
		if _, err := a.b.Publish(context.Background(), "big", make([]byte, hub.DefaultMaxPayload+1)); !errors.Is(err, hub.ErrTooLarge) {
			t.Errorf("too large: %v", err)
		}
	})
}

// TestNATSOutage checks the start without NATS (an error, or degraded when
// optional), refusals while NATS is away, and recovery when it returns.
func TestNATSOutage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startNATS(t, 0, dir)
	port := s.Addr().(*net.TCPAddr).Port
	n := newNode(t, s.ClientURL(), broker.NATSConfig{Name: "n"})
	sub := &sink{}
	first := n.subscribe(t, "ops", sub, nil)
	publish(t, n, "ops", "1")
	waitFor(t, 5*time.Second, "first delivery", func() bool { return len(sub.offsets()) == 1 })

	s.Shutdown()
	s.WaitForShutdown()
	waitFor(t, 5*time.Second, "not ready", func() bool { ok, _ := n.b.Ready(); return !ok })
	if _, why := n.b.Ready(); why == "" {
		t.Error("not ready without a reason")
	}
	start := time.Now()
	if _, err := n.b.Publish(context.Background(), "ops", []byte("lost?")); !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("publish while NATS is down: %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusal took %v", d)
	}

	// Same port, same store: the node reconnects and resubscribes alone.
	startNATS(t, port, dir)
	waitFor(t, 15*time.Second, "ready again", func() bool { ok, _ := n.b.Ready(); return ok })
	pos := publish(t, n, "ops", "2")
	if pos != (hub.Position{Offset: 2, Epoch: first.pos.Epoch}) {
		t.Fatalf("after the restart the message is at %+v, want offset 2 in epoch %q", pos, first.pos.Epoch)
	}
	waitFor(t, 20*time.Second, "delivery after the restart", func() bool { return slices.Equal(sub.offsets(), []uint64{1, 2}) })
}

func TestNATSStartWithoutServer(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	h := hub.New(hub.Config{})
	if _, err := broker.NewNATS(context.Background(), h, broker.NATSConfig{URL: url, Log: quiet}); err == nil {
		t.Fatal("NewNATS without a server: no error")
	}
	b, err := broker.NewNATS(context.Background(), h, broker.NATSConfig{URL: url, Log: quiet, Optional: true})
	if err != nil {
		t.Fatalf("optional broker: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if ok, why := b.Ready(); ok || why == "" {
		t.Fatalf("Ready() = %v %q without a server", ok, why)
	}
	if _, err := b.Publish(context.Background(), "a", []byte("x")); !errors.Is(err, broker.ErrUnavailable) {
		t.Fatalf("publish: %v, want ErrUnavailable", err)
	}
	startNATS(t, port, t.TempDir())
	waitFor(t, 15*time.Second, "ready once NATS starts", func() bool { ok, _ := b.Ready(); return ok })
	if _, err := b.Publish(context.Background(), "a", []byte("x")); err != nil {
		t.Fatalf("publish once ready: %v", err)
	}
}

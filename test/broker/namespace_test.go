package broker_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald/broker"
	"github.com/herald-push/herald/hub"
	"github.com/herald-push/herald/namespace"
)

// TestNATSNamespaceRetention: a namespace whose TTL is longer than the
// top level's keeps its history across nodes. The top-level TTL is short
// (200 ms) and namespace "long" keeps an hour; once the messages are older
// than 200 ms, a node that never saw them recovers the long channel's
// from JetStream, but not the top-level channel's. The stream a node
// creates covers the longest TTL and carries the byte bound.
func TestNATSNamespaceRetention(t *testing.T) {
	t.Parallel()
	s := startNATS(t, 0, t.TempDir())
	var list []namespace.Config
	if err := json.Unmarshal([]byte(`[{"name": "long", "history_ttl": "1h", "history_size": 200}]`), &list); err != nil {
		t.Fatal(err)
	}
	tab, err := namespace.New(list)
	if err != nil {
		t.Fatal(err)
	}
	const shortTTL = 200 * time.Millisecond
	d := namespace.Defaults{HistorySize: 50, HistoryTTL: shortTTL, MaxMessageSize: hub.DefaultMaxPayload}
	size, ttl, payload := tab.Retention(d)
	newNSNode := func(name string) *node {
		h := hub.New(hub.Config{HistorySize: 50, HistoryTTL: shortTTL, Options: tab.HubOptions})
		b, err := broker.NewNATS(context.Background(), h, broker.NATSConfig{
			URL: s.ClientURL(), Name: name, Log: quiet,
			HistorySize: size, HistoryTTL: shortTTL, MaxAge: max(ttl, broker.DefaultMaxAge),
			MaxBytes: 64 << 20, MaxPayload: payload,
		})
		if err != nil {
			t.Fatalf("NewNATS: %v", err)
		}
		t.Cleanup(func() { _ = b.Close() })
		return &node{h: h, b: b, l: newGoLoop(t)}
	}
	a := newNSNode("a")

	var first = map[string]hub.Position{}
	published := time.Now()
	for _, ch := range []string{"long:a", "plain"} {
		for i := range 3 {
			pos := publish(t, a, ch, `"m"`)
			if i == 0 {
				first[ch] = pos
			}
		}
	}
	// Wait until every message is past the top-level TTL (a condition on
	// the clock, not a fixed sleep: the messages' age is what matters).
	waitFor(t, 10*time.Second, "messages older than the top-level TTL", func() bool {
		return time.Since(published) > 2*shortTTL
	})

	b := newNSNode("b")
	cases := []struct {
		channel   string
		recovered bool
		backlog   []uint64
	}{
		{"long:a", true, seq(2, 3)},
		{"plain", false, nil},
	}
	for _, tc := range cases {
		since := first[tc.channel]
		got := b.subscribe(t, tc.channel, &sink{}, &since)
		if got.pos.Offset != 3 || got.pos.Epoch != since.Epoch {
			t.Errorf("%s on b: position %+v, want offset 3 in epoch %s", tc.channel, got.pos, since.Epoch)
		}
		if got.recovered != tc.recovered || !slices.Equal(got.backlog, tc.backlog) {
			t.Errorf("%s on b: recovered %v backlog %v, want %v %v", tc.channel, got.recovered, got.backlog, tc.recovered, tc.backlog)
		}
	}

	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(context.Background(), broker.DefaultStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	if cfg.MaxAge < time.Hour || cfg.MaxBytes != 64<<20 || cfg.MaxMsgsPerSubject != 201 {
		t.Errorf("stream max_age %v max_bytes %d max_msgs_per_subject %d; want >= 1h, 64 MiB, 201", cfg.MaxAge, cfg.MaxBytes, cfg.MaxMsgsPerSubject)
	}
}

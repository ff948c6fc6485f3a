package cluster

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestNamespaceRetentionAcrossNodes: the top-level history TTL is short
// (500 ms) and namespace "long" keeps an hour. Once the messages published
// through node a are older than the top-level TTL, a client resubscribing
// on node b (which never saw them) recovers the long channel's from
// JetStream, and is told recovered:false on the top-level channel.
func TestNamespaceRetentionAcrossNodes(t *testing.T) {
	s := startNATS(t, 0, t.TempDir())
	file := filepath.Join(t.TempDir(), "herald.json")
	const ttl = 500 * time.Millisecond
	cfg := `{"history_ttl": "500ms", "broker_max_bytes": 67108864,
		"namespaces": [{"name": "long", "history_ttl": "1h"}]}`
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startNode(t, "a", s.ClientURL(), "--config", file)
	b := startNode(t, "b", s.ClientURL(), "--config", file)
	waitReady(t, a, true, 10*time.Second)
	waitReady(t, b, true, 10*time.Second)

	first := map[string]published{}
	start := time.Now()
	for _, ch := range []string{"long:x", "plain"} {
		for i := range 3 {
			p := mustPublish(t, a, ch, `"m"`)
			if i == 0 {
				first[ch] = p
			}
		}
	}
	// The messages' age is what matters: wait on the clock until they
	// are past the top-level TTL.
	waitFor(t, 10*time.Second, "messages older than the top-level TTL", func() bool { return time.Since(start) > 2*ttl })

	cases := []struct {
		channel   string
		recovered bool
		backlog   []uint64
	}{
		{"long:x", true, []uint64{2, 3}},
		{"plain", false, nil},
	}
	for _, tc := range cases {
		c, sub, err := subscribe(t, b, tc.channel, first[tc.channel])
		if err != nil {
			t.Fatal(err)
		}
		if sub.Offset != 3 || sub.Recovered == nil || *sub.Recovered != tc.recovered {
			t.Fatalf("%s on b: %+v, want offset 3 and recovered=%v", tc.channel, sub, tc.recovered)
		}
		var got []uint64
		for range tc.backlog {
			e, err := c.next(5 * time.Second)
			if err != nil {
				t.Fatalf("%s backlog on b: %v", tc.channel, err)
			}
			got = append(got, e.Offset)
		}
		if !slices.Equal(got, tc.backlog) {
			t.Fatalf("%s backlog on b: %v, want %v", tc.channel, got, tc.backlog)
		}
		mustPublish(t, a, tc.channel, `"live"`)
		if e, err := c.next(5 * time.Second); err != nil || e.Offset != 4 {
			t.Fatalf("%s on b after the backlog: %+v (%v), want the live message at 4", tc.channel, e, err)
		}
	}
}

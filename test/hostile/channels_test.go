package hostile

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/herald-push/herald/auth"
)

// urlChannels is the query of a connection subscribing to n new channels
// named prefix0 .. prefix<n-1> in its URL.
func urlChannels(prefix string, n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf("channel=%s%d", prefix, i)
	}
	return strings.Join(parts, "&")
}

// waitChannels waits until the node knows at most want channels.
func (n *node) waitChannels(want float64) {
	n.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		v := n.metric("herald_channels")
		if v <= want {
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("herald_channels = %v, want <= %v", v, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestChannelFlood: anonymous clients naming many new channels in their
// URLs cannot take the node's channels from everyone. A connection that
// leaves takes its channels with it at once (not at the next sweep), so a
// connect-and-close flood leaves nothing behind; clients holding every
// channel the cap allows are refused new ones (counted), but a token
// user's personal channel and the backend's publishes to new channels
// still go through.
func TestChannelFlood(t *testing.T) {
	const limit = 200
	n := start(t, "--allow-anonymous", "--anonymous-subscribe=*", fmt.Sprintf("--max-channels=%d", limit))

	// Connect and close, 20 times 128 new channels: ten times the cap.
	for i := range 20 {
		c := n.mustDial(urlChannels(fmt.Sprintf("flood%d-", i), 128))
		for range 128 {
			if m := c.expectOp("subscribed"); m.Code != "" {
				t.Fatalf("flood connection %d: %+v", i, m)
			}
		}
		c.Close()
		n.waitChannels(0)
	}

	// Clients holding the whole cap.
	hold1 := n.mustDial(urlChannels("hold-a-", 128))
	hold2 := n.mustDial(urlChannels("hold-b-", limit-128))
	for range 128 {
		hold1.expectOp("subscribed")
	}
	for range limit - 128 {
		hold2.expectOp("subscribed")
	}
	hold2.send(map[string]any{"op": "sub", "channel": "one-too-many"})
	if m := hold2.expectOp("error"); m.Code != "limit" || m.Channel != "one-too-many" {
		t.Fatalf("sub past the cap: %+v, want error limit", m)
	}
	n.waitMetric(refusals("channels"), 1)

	// A token user's personal channel, and the backend publishing to it,
	// to another user's and to a new channel.
	tok := token(t, auth.TokenSpec{Subject: "alice", ExpiresAt: time.Now().Add(time.Hour), Subscribe: []string{"news"}})
	alice := n.mustDial("token=" + tok)
	alice.send(map[string]any{"op": "ping"})
	alice.expectOp("pong")
	n.mustPublish("user:alice", "for alice")
	m, err := alice.next(10 * time.Second)
	if err != nil || m.Channel != "user:alice" || m.Offset != 1 {
		t.Fatalf("alice's personal channel past the cap: %+v %v", m, err)
	}
	n.mustPublish("user:bob", "for bob")
	n.mustPublish("brand-new", "from the backend")
	if v := n.metric(refusals("channels")); v != 1 {
		t.Fatalf("%s = %v, want 1 (only the client's sub)", refusals("channels"), v)
	}
}

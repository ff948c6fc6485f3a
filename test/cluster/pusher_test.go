package cluster

import (
	"fmt"
	"net/http"
	"testing"
)

// TestPusherEventsAcrossNodes: a Pusher app on two nodes sharing NATS.
// Events triggered through either node's HTTP API (single and batch)
// reach the subscribers of both nodes once each and in order; a
// socket_id excludes its connection whatever node it is on; a client
// event from a client of A reaches B's client and not its sender; a cache
// channel's last event, triggered on A before anyone subscribed, is
// served to a subscriber on B.
func TestPusherEventsAcrossNodes(t *testing.T) {
	s := startNATS(t, 0, t.TempDir())
	a := startPusherNode(t, "a", s.ClientURL())
	b := startPusherNode(t, "b", s.ClientURL())

	ca, cb := pconnect(t, a, "ca"), pconnect(t, b, "cb")
	if ca.sid == cb.sid {
		t.Fatalf("two nodes gave one socket id %s", ca.sid)
	}
	const ch = "orders"
	ca.subscribed(ch, "")
	cb.subscribed(ch, "")

	// Triggered on A, then on B: both clients see both, in order, once
	// (the next event after each is the one triggered after it).
	trigger(t, a, ch, "created", "1", "")
	trigger(t, b, ch, "created", "2", "")
	for _, c := range []*pclient{ca, cb} {
		c.expectEvent(ch, "created", "1")
		c.expectEvent(ch, "created", "2")
	}

	// A batch on B keeps its order on both nodes.
	batch := []map[string]any{}
	for i := 3; i <= 6; i++ {
		batch = append(batch, map[string]any{"name": "created", "channel": ch, "data": fmt.Sprint(i)})
	}
	if st, out := papi(t, b, "POST", "/apps/"+pusherAppID+"/batch_events", nil, map[string]any{"batch": batch}); st != http.StatusOK {
		t.Fatalf("batch_events: %d %s", st, out)
	}
	for _, c := range []*pclient{ca, cb} {
		for i := 3; i <= 6; i++ {
			c.expectEvent(ch, "created", fmt.Sprint(i))
		}
	}

	// socket_id exclusion across nodes, both ways: the excluded client's
	// next event is the one triggered after.
	trigger(t, a, ch, "excluded", "b", cb.sid)
	trigger(t, b, ch, "excluded", "a", ca.sid)
	trigger(t, a, ch, "after", "x", "")
	ca.expectEvent(ch, "excluded", "b")
	ca.expectEvent(ch, "after", "x")
	cb.expectEvent(ch, "excluded", "a")
	cb.expectEvent(ch, "after", "x")

	// A client event from A's client reaches B's client once, not its
	// sender.
	const priv = "private-chat"
	ca.subscribed(priv, "")
	cb.subscribed(priv, "")
	ca.send(map[string]any{"event": "client-typing", "channel": priv, "data": map[string]any{"who": "ca"}})
	f := cb.onChannel(priv)
	if f.Event != "client-typing" || string(f.Data) != `{"who":"ca"}` {
		t.Fatalf("cb got %+v (data %s), want client-typing", f, f.Data)
	}
	trigger(t, b, priv, "after", "y", "")
	ca.expectEvent(priv, "after", "y")
	cb.expectEvent(priv, "after", "y")

	// A cache channel keeps its last event across nodes.
	const cache = "cache-price"
	trigger(t, a, cache, "price", "41", "")
	trigger(t, a, cache, "price", "42", "")
	cc := pconnect(t, b, "cc")
	cc.subscribed(cache, "")
	f = cc.next()
	if f.Event != "price" || f.text() != "42" {
		t.Fatalf("cache subscriber on b got %+v, want the last event (42)", f)
	}
}

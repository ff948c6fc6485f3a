package sse

import (
	"fmt"
	"github.com/herald-push/herald/test/internal/cutproxy"
	"sort"
	"strings"
	"testing"
)

// TestEventSourceNodeResumes: the eventsource package receives live
// messages of two channels, reconnects by itself after a cut with
// Last-Event-ID and gets exactly what it missed on both; after the node
// restarts (history gone) it is told recovered false, then gets live
// messages again.
func TestEventSourceNodeResumes(t *testing.T) {
	n := startHerald(t, "--reconnect-spread", "-1s")
	proxy := cutproxy.New(t, n.WS)
	c := startNodeClient(t, "http://"+proxy.Addr()+"/sse?channel=a&channel=b")
	c.waitN(t, "open", 1)
	// The subscriptions are made as the stream opens: publish once the
	// client saw the stream's first bytes (open), and check the order.
	n.publish(t, "a", `"a1"`)
	n.publish(t, "b", `"b1"`)
	got := c.waitN(t, "message", 2)
	checkMessages(t, got, "a:1:a1 b:1:b1")
	if f := strings.Fields(got[1].ID); len(f) != 2 {
		t.Fatalf("id %q, want both channels' positions", got[1].ID)
	}

	proxy.SetTarget(n.WS)
	proxy.SetMode(cutproxy.Reject)
	if proxy.Cut() != 1 {
		t.Fatal("no stream to cut")
	}
	c.waitN(t, "error", 1)
	n.publish(t, "a", `"a2"`)
	n.publish(t, "b", `"b2"`)
	n.publish(t, "a", `"a3"`)
	proxy.SetTarget(n.WS)
	proxy.SetMode(cutproxy.Pass)
	got = c.waitN(t, "message", 5)
	checkMessages(t, got[2:], "a:2:a2 b:2:b2 a:3:a3")
	n.publish(t, "b", `"b3"`)
	got = c.waitN(t, "message", 6)
	checkMessages(t, got[5:], "b:3:b3")

	// Restart: the new node has no history for the client's positions.
	proxy.SetTarget(n.WS)
	proxy.SetMode(cutproxy.Reject)
	n.Stop(t)
	proxy.Cut()
	n2 := startHerald(t, "--reconnect-spread", "-1s")
	proxy.SetTarget(n2.WS)
	proxy.SetMode(cutproxy.Pass)
	rec := c.waitN(t, "recovered", 2)
	for _, e := range rec {
		if !strings.Contains(e.Data, `"recovered":false`) {
			t.Fatalf("recovered event %q", e.Data)
		}
	}
	n2.publish(t, "a", `"new"`)
	got = c.waitN(t, "message", 7)
	checkMessages(t, got[6:], "a:1:new")
	if len(c.of("message")) != 7 {
		t.Fatalf("messages %v", c.of("message"))
	}
}

// checkMessages compares message events with "channel:offset:data ...",
// sorted: a recovery sends each channel's backlog in order, one channel
// after the other.
func checkMessages(t *testing.T, got []sseEvent, want string) {
	t.Helper()
	var s []string
	for _, e := range got {
		ch, off, data := e.envelope(t)
		s = append(s, fmt.Sprintf("%s:%d:%s", ch, off, data))
	}
	sort.Strings(s)
	w := strings.Fields(want)
	sort.Strings(w)
	want = strings.Join(w, " ")
	if strings.Join(s, " ") != want {
		t.Fatalf("messages %q, want %q", strings.Join(s, " "), want)
	}
}

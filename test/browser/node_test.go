package browser

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/herald-push/herald/auth"
	"github.com/herald-push/herald/test/internal/cutproxy"
)

// fast is a reconnect policy without jitter, so delays can be asserted.
var fast = map[string]any{"minDelay": 100, "maxDelay": 2000, "factor": 2, "jitter": 0}

// checkExactlyOnce asserts the publications on channel carry offsets
// 1..n with payloads "m1".."mn", each once and in order.
func checkExactlyOnce(t *testing.T, c *nodeClient, channel string, n int) {
	t.Helper()
	var got []uint64
	for _, e := range c.snapshot() {
		if e.Ev != "pub" || e.Channel != channel {
			continue
		}
		got = append(got, e.Offset)
		if want := strconv.Quote(fmt.Sprintf("m%d", e.Offset)); string(e.Data) != want {
			t.Errorf("offset %d carried %s, want %s", e.Offset, e.Data, want)
		}
	}
	if len(got) != n {
		t.Fatalf("got offsets %v, want 1..%d exactly once", got, n)
	}
	for i, o := range got {
		if o != uint64(i+1) {
			t.Fatalf("got offsets %v, want 1..%d in order", got, n)
		}
	}
}

// TestNodeClientRecoversAfterCut cuts the client's connection, refuses its
// first reconnects, publishes while it is away, and checks the backoff
// delays and that it then sees every message exactly once.
func TestNodeClientRecoversAfterCut(t *testing.T) {
	t.Parallel()
	n := startHerald(t)
	proxy := cutproxy.New(t, n.WS)
	c := startNodeClient(t, harnessConfig{URL: "ws://" + proxy.Addr() + "/ws", Channels: []string{"news"}, Reconnect: fast})
	c.waitN("the subscription", 1, 10*time.Second, is("subscribed"))
	for i := 1; i <= 5; i++ {
		n.publish(t, "news", fmt.Sprintf("m%d", i))
	}
	c.waitN("messages 1..5", 5, 10*time.Second, pubsOn("news"))

	proxy.SetMode(cutproxy.Reject)
	if cut := proxy.Cut(); cut != 1 {
		t.Fatalf("cut %d connections, want 1", cut)
	}
	c.waitN("the close", 1, 10*time.Second, is("close"))
	for i := 6; i <= 10; i++ {
		n.publish(t, "news", fmt.Sprintf("m%d", i))
	}
	// Reconnect attempts 1..3 are refused; the 4th gets through.
	c.waitN("three refused reconnects", 4, 10*time.Second, is("reconnect"))
	proxy.SetMode(cutproxy.Pass)
	c.waitN("messages 6..10", 10, 10*time.Second, pubsOn("news"))
	rec := c.waitN("the recovery", 1, 5*time.Second, is("recovered"))
	if !rec.Recovered {
		t.Fatalf("recovered = false after a short cut: %+v", rec)
	}
	var delays []int
	for _, e := range c.snapshot() {
		if e.Ev == "reconnect" {
			delays = append(delays, e.Delay)
		}
	}
	want := []int{100, 200, 400, 800}
	if fmt.Sprint(delays[:4]) != fmt.Sprint(want) {
		t.Fatalf("reconnect delays %v, want %v (min 100, factor 2, no jitter)", delays, want)
	}
	n.publish(t, "news", "m11")
	c.waitN("a live message after recovery", 11, 10*time.Second, pubsOn("news"))
	checkExactlyOnce(t, c, "news", 11)
}

// TestNodeClientDedupes makes the server replay history the client has
// already seen; the client must not deliver it again.
func TestNodeClientDedupes(t *testing.T) {
	t.Parallel()
	n := startHerald(t)
	c := startNodeClient(t, harnessConfig{URL: "ws://" + n.WS + "/ws", Channels: []string{"news"}, Reconnect: fast})
	sub := c.waitN("the subscription", 1, 10*time.Second, is("subscribed"))
	for i := 1; i <= 3; i++ {
		n.publish(t, "news", fmt.Sprintf("m%d", i))
	}
	c.waitN("messages 1..3", 3, 10*time.Second, pubsOn("news"))
	// Ask for everything since offset 0 behind the client's back: the
	// server sends 1..3 again.
	c.do(map[string]any{"cmd": "raw", "frame": map[string]any{"op": "sub", "channel": "news", "since": map[string]any{"offset": 0, "epoch": sub.Epoch}}})
	c.waitN("the second subscription", 2, 10*time.Second, is("subscribed"))
	n.publish(t, "news", "m4")
	c.waitN("message 4", 4, 10*time.Second, pubsOn("news"))
	checkExactlyOnce(t, c, "news", 4)
}

// TestNodeClientCloseCodes checks the close codes that end or renew a
// session: 4003 (kicked by the backend) stops reconnecting; 4001 (token
// expired) fetches a new token and reconnects, recovering what it missed.
func TestNodeClientCloseCodes(t *testing.T) {
	t.Parallel()
	n := startHerald(t, "--jwt-leeway", "0s")
	var minted atomic.Int32
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The first token lives two seconds; later ones an hour.
		life := time.Hour
		if minted.Add(1) == 1 {
			life = 2 * time.Second
		}
		tok, err := auth.Sign([]byte(jwtSecret), auth.TokenSpec{
			Subject: "alice", Subscribe: []string{"news"}, ExpiresAt: time.Now().Add(life),
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, tok)
	}))
	t.Cleanup(tokens.Close)

	c := startNodeClient(t, harnessConfig{URL: "ws://" + n.WS + "/ws", TokenURL: tokens.URL, Channels: []string{"news"}, Reconnect: fast})
	c.waitN("the subscription", 1, 10*time.Second, is("subscribed"))
	n.publish(t, "news", "m1")
	c.waitN("message 1", 1, 10*time.Second, pubsOn("news"))

	exp := c.waitN("the expiry close", 1, 10*time.Second, is("close"))
	if exp.Code != 4001 || !exp.WillReconnect {
		t.Fatalf("close %+v, want 4001 with a reconnect", exp)
	}
	n.publish(t, "news", "m2") // while the client fetches its new token
	c.waitN("a second token", 2, 10*time.Second, is("token"))
	c.waitN("message 2, recovered", 2, 10*time.Second, pubsOn("news"))
	checkExactlyOnce(t, c, "news", 2)

	n.post(t, "/api/disconnect", `{"user":"alice"}`)
	kick := c.waitN("the kick", 2, 10*time.Second, is("close"))
	if kick.Code != 4003 || kick.WillReconnect {
		t.Fatalf("close %+v, want 4003 without a reconnect", kick)
	}
	c.waitN("the closed state", 1, 5*time.Second, func(e event) bool { return e.Ev == "state" && e.State == "closed" })
	reconnects := c.count(is("reconnect"))
	time.Sleep(500 * time.Millisecond) // five times the reconnect delay
	if got := c.count(is("reconnect")) + c.count(is("open")); got != reconnects+2 {
		t.Fatalf("the client went on after 4003:\n%s", c.dump())
	}
}

// TestNodeClientDetectsDeadConnection freezes the network path: no close
// arrives, so the client must notice the silence, drop the connection and
// reconnect, recovering what was published meanwhile.
func TestNodeClientDetectsDeadConnection(t *testing.T) {
	t.Parallel()
	n := startHerald(t)
	proxy := cutproxy.New(t, n.WS)
	c := startNodeClient(t, harnessConfig{URL: "ws://" + proxy.Addr() + "/ws", Channels: []string{"news"},
		Reconnect: fast, PingInterval: 300, PongTimeout: 300})
	c.waitN("the subscription", 1, 10*time.Second, is("subscribed"))
	n.publish(t, "news", "m1")
	c.waitN("message 1", 1, 10*time.Second, pubsOn("news"))

	proxy.SetMode(cutproxy.Freeze)
	n.publish(t, "news", "m2") // swallowed by the frozen path
	dead := c.waitN("the ping timeout", 1, 10*time.Second, is("close"))
	if dead.Code != 4000 || !dead.WillReconnect {
		t.Fatalf("close %+v, want 4000 (pong timeout) with a reconnect", dead)
	}
	proxy.SetMode(cutproxy.Pass)
	c.waitN("message 2, recovered", 2, 10*time.Second, pubsOn("news"))
	checkExactlyOnce(t, c, "news", 2)
}

// TestNodeClientHonoursReconnectAdvice SIGTERMs the node herald.js is
// connected to: its 1001 carries reconnect_after_ms, and the client waits
// that long (plus at most its minDelay of jitter) instead of its backoff
// before it reconnects, here to a second node behind the same address.
func TestNodeClientHonoursReconnectAdvice(t *testing.T) {
	t.Parallel()
	first := startHerald(t, "--reconnect-spread", "1500ms", "--drain-timeout", "1s")
	second := startHerald(t)
	proxy := cutproxy.New(t, first.WS)
	c := startNodeClient(t, harnessConfig{URL: "ws://" + proxy.Addr() + "/ws", Channels: []string{"news"}, Reconnect: fast})
	c.waitN("the subscription", 1, 10*time.Second, is("subscribed"))
	proxy.SetTarget(second.WS)
	if err := first.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	cl := c.waitN("the drain's close", 1, 10*time.Second, is("close"))
	m := regexp.MustCompile(`reconnect_after_ms=(\d+)`).FindStringSubmatch(cl.Reason)
	if cl.Code != 1001 || !cl.WillReconnect || m == nil {
		t.Fatalf("close %+v, want 1001 with reconnect_after_ms", cl)
	}
	advice, _ := strconv.Atoi(m[1])
	if advice < 0 || advice >= 1500 {
		t.Fatalf("advised %d ms, want within [0, 1500)", advice)
	}
	r := c.waitN("the reconnect", 1, 5*time.Second, is("reconnect"))
	if r.Delay < advice || r.Delay > advice+100 {
		t.Fatalf("reconnect in %d ms for an advice of %d ms (minDelay 100)", r.Delay, advice)
	}
	open := c.waitN("the new connection", 2, 10*time.Second, is("open"))
	if gap := open.T - cl.T; gap < int64(advice) {
		t.Fatalf("reconnected %d ms after the close, sooner than the advised %d ms", gap, advice)
	}
	c.waitN("the resubscription on the second node", 2, 10*time.Second, is("subscribed"))
	second.publish(t, "news", `"m1"`)
	c.waitN("a live message from the second node", 1, 10*time.Second, pubsOn("news"))
}

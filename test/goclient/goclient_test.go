// Package goclient tests herald with its own Go client
// (client/heraldclient) against the real binary: a subscriber that lives
// through a node restart and through a cut network path.
package goclient

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-push/herald/auth"
	"github.com/herald-push/herald/client/heraldclient"
	"github.com/herald-push/herald/internal/testutil"
	"github.com/herald-push/herald/test/internal/cutproxy"
)

const secret = "goclient-test-secret-that-is-long-enough-for-hs256"

var fast = heraldclient.Backoff{Min: 20 * time.Millisecond, Max: 200 * time.Millisecond}

// node is a herald process on fixed addresses, so that a restart comes
// back on the same port.
type node struct {
	ws, api string
	cmd     *exec.Cmd
	log     *testutil.SyncBuffer
	done    chan struct{}
}

func start(t *testing.T, ws, api string) *node {
	t.Helper()
	n := &node{ws: ws, api: api, log: &testutil.SyncBuffer{}, done: make(chan struct{})}
	n.cmd = exec.Command(testutil.Binary(t, "herald"), "serve", "--listen", ws, "--api-listen", api,
		"--log-level=warn", "--jwt-secret", secret, "--demo=false", "--drain-timeout", "1s")
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { n.cmd.Wait(); close(n.done) }()
	t.Cleanup(func() { n.stop(t) })
	deadline := time.Now().Add(15 * time.Second)
	for {
		if resp, err := http.Get("http://" + api + "/healthz"); err == nil {
			resp.Body.Close()
			return n
		}
		select {
		case <-n.done:
			t.Fatalf("herald exited: %s", n.log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("herald did not start: %s", n.log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the process with SIGTERM (drain), SIGKILL after 10 s.
func (n *node) stop(t *testing.T) {
	select {
	case <-n.done:
		return
	default:
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		n.cmd.Process.Kill()
		<-n.done
		t.Logf("herald %d needed SIGKILL", n.cmd.Process.Pid)
	}
}

func (n *node) publish(t *testing.T, channel, body string) {
	t.Helper()
	resp, err := http.Post("http://"+n.api+"/api/publish?channel="+url.QueryEscape(channel), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if b, _ := io.ReadAll(resp.Body); resp.StatusCode != 200 {
		t.Fatalf("publish: %d %s", resp.StatusCode, b)
	}
}

func token(t *testing.T, channels ...string) string {
	t.Helper()
	tok, err := auth.Sign([]byte(secret), auth.TokenSpec{Subject: "go", Subscribe: channels, IssuedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func addr(t *testing.T) string { return fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)) }

// next waits for the next event of type T, skipping others.
func next[T heraldclient.Event](t *testing.T, c *heraldclient.Client) T {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				t.Fatalf("events closed: %v", c.Err())
			}
			if v, ok := ev.(T); ok {
				return v
			}
		case <-timeout:
			var zero T
			t.Fatalf("no %T within 20s", zero)
		}
	}
}

func nextEvent(t *testing.T, c *heraldclient.Client) heraldclient.Event {
	t.Helper()
	select {
	case ev, ok := <-c.Events():
		if !ok {
			t.Fatalf("events closed: %v", c.Err())
		}
		return ev
	case <-time.After(20 * time.Second):
		t.Fatal("no event within 20s")
		return nil
	}
}

func expectMessages(t *testing.T, c *heraldclient.Client, from, to uint64) {
	t.Helper()
	for want := from; want <= to; want++ {
		m := next[heraldclient.Message](t, c)
		if m.Offset != want || string(m.Data) != fmt.Sprint(want) {
			t.Fatalf("got offset %d data %s, want offset %d", m.Offset, m.Data, want)
		}
	}
}

// TestNodeRestart: SIGTERM drains the node (1001); the client reconnects
// to the node started again on the same port. The memory broker lost the
// history, so the resubscription answers recovered:false with a new
// epoch, and live messages flow again from the new offsets.
func TestNodeRestart(t *testing.T) {
	ws, api := addr(t), addr(t)
	n := start(t, ws, api)
	ctx := context.Background()
	c, err := heraldclient.Dial(ctx, "ws://"+ws+"/ws", heraldclient.Options{Token: token(t, "news"), Backoff: fast})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Subscribe(ctx, "news"); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		n.publish(t, "news", fmt.Sprint(i))
	}
	expectMessages(t, c, 1, 3)
	before, _ := c.Position("news")

	n.stop(t)
	d := next[heraldclient.Disconnected](t, c)
	if !d.WillReconnect {
		t.Fatalf("disconnected for good: %+v", d)
	}
	n = start(t, ws, api)
	if !next[heraldclient.Connected](t, c).Reconnected {
		t.Fatal("not a reconnection")
	}
	s := next[heraldclient.Subscribed](t, c)
	if !s.Resubscribed || s.Recovered {
		t.Fatalf("resubscription after a restart: %+v, want recovered:false", s)
	}
	if s.Epoch == before.Epoch {
		t.Fatalf("epoch %q survived a restart of the memory broker", s.Epoch)
	}
	for i := 1; i <= 3; i++ {
		n.publish(t, "news", fmt.Sprint(i))
	}
	expectMessages(t, c, 1, 3)
	if pos, _ := c.Position("news"); pos.Epoch != s.Epoch || pos.Offset != 3 {
		t.Fatalf("position %+v", pos)
	}
}

// TestCutRecoversExactly: the network path is cut in the middle of the
// deliveries and stays down while more is published; after the reconnect
// every offset arrives once, in order, and the server says recovered:true.
func TestCutRecoversExactly(t *testing.T) {
	ws, api := addr(t), addr(t)
	n := start(t, ws, api)
	p := cutproxy.New(t, ws)
	ctx := context.Background()
	c, err := heraldclient.Dial(ctx, "ws://"+p.Addr()+"/ws", heraldclient.Options{Token: token(t, "feed"), Backoff: fast})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Subscribe(ctx, "feed"); err != nil {
		t.Fatal(err)
	}
	const perRound, rounds = 20, 3
	var published, expect uint64 = 0, 1
	for round := range rounds {
		for range perRound {
			published++
			n.publish(t, "feed", fmt.Sprint(published))
		}
		// Cut once the first of these arrived: the rest is in flight.
		expectMessages(t, c, expect, expect)
		expect++
		p.SetMode(cutproxy.Reject)
		p.Cut()
		// Read what got through until the client sees the drop.
		for disconnected := false; !disconnected; {
			switch ev := nextEvent(t, c).(type) {
			case heraldclient.Message:
				if ev.Offset != expect {
					t.Fatalf("round %d: offset %d, want %d", round, ev.Offset, expect)
				}
				expect++
			case heraldclient.Disconnected:
				disconnected = true
			}
		}
		// Published while the client cannot connect.
		for range perRound {
			published++
			n.publish(t, "feed", fmt.Sprint(published))
		}
		p.SetMode(cutproxy.Pass)
		for recovered := false; !recovered || expect <= published; {
			switch ev := nextEvent(t, c).(type) {
			case heraldclient.Message:
				if !recovered || ev.Offset != expect {
					t.Fatalf("round %d: offset %d (recovered %v), want %d", round, ev.Offset, recovered, expect)
				}
				expect++
			case heraldclient.Subscribed:
				if !ev.Resubscribed || !ev.Recovered {
					t.Fatalf("round %d: resubscription %+v", round, ev)
				}
				recovered = true
			}
		}
	}
	// Nothing more is pending: the next message is the next offset.
	n.publish(t, "feed", fmt.Sprint(published+1))
	expectMessages(t, c, published+1, published+1)
}

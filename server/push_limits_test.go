package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/herald-push/herald/auth"
	"github.com/herald-push/herald/hub"
	"github.com/herald-push/herald/internal/wstest"
)

// pushNode is a push app on a real loopback server, for tests that drive
// the protocol end to end.
type pushNode struct {
	hub  *hub.Hub
	app  *PushApp
	srv  *Server
	addr string
}

// startPush starts a one-loop push server with anonymous access to every
// channel; edit adjusts the options and the server config first.
func startPush(t *testing.T, hc hub.Config, edit func(*PushOptions, *Config)) *pushNode {
	t.Helper()
	v, err := auth.NewVerifier(auth.Config{AllowAnonymous: true, AnonymousSubscribe: []string{"*"}, AnonymousPublish: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	h := hub.New(hc)
	o := PushOptions{Hub: h, Verifier: v}
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Loops = 1
	cfg.Compression = false
	cfg.PingInterval = 0
	if edit != nil {
		edit(&o, &cfg)
	}
	app := NewPushApp(o)
	srv, err := New(cfg, app, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	app.Bind(srv)
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	<-srv.Ready()
	if srv.Addr() == nil {
		t.Fatalf("server did not start: %v", <-done)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	return &pushNode{hub: h, app: app, srv: srv, addr: srv.Addr().String()}
}

// dial connects a client to path (e.g. "/ws?channel=a").
func (n *pushNode) dial(t *testing.T, path string) *wstest.Conn {
	t.Helper()
	return wstest.Dial(t, n.addr, wstest.Options{Path: path})
}

// send writes one text command.
func send(c *wstest.Conn, cmd string) {
	c.Send(wstest.Frame{Fin: true, Op: wstest.OpText, Payload: []byte(cmd)})
}

// next reads the next text frame as JSON; close frames fail the test
// unless want says so.
func next(t *testing.T, c *wstest.Conn) map[string]any {
	t.Helper()
	f, err := c.Read(10 * time.Second)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if f.Op == wstest.OpClose {
		t.Fatalf("closed: %d %q", closeCode(f), f.Payload[min(2, len(f.Payload)):])
	}
	var m map[string]any
	if err := json.Unmarshal(f.Payload, &m); err != nil {
		t.Fatalf("frame %q: %v", f.Payload, err)
	}
	return m
}

// closeCode is the status code of a close frame.
func closeCode(f wstest.Frame) int {
	if len(f.Payload) < 2 {
		return 0
	}
	return int(f.Payload[0])<<8 | int(f.Payload[1])
}

// expectClose reads until a close frame and returns its code and reason.
func readClose(t *testing.T, c *wstest.Conn) (int, string) {
	t.Helper()
	for {
		f, err := c.Read(10 * time.Second)
		if err != nil {
			t.Fatalf("read: %v (no close frame)", err)
		}
		if f.Op == wstest.OpClose {
			return closeCode(f), string(f.Payload[min(2, len(f.Payload)):])
		}
	}
}

func TestSubscriptionLimit(t *testing.T) {
	t.Parallel()
	n := startPush(t, hub.Config{}, func(o *PushOptions, _ *Config) { o.MaxSubscriptions = 3; o.CommandRate = -1 })
	c := n.dial(t, "/ws?channel=a")
	for _, ch := range []string{"b", "c"} {
		send(c, `{"op":"sub","channel":"`+ch+`"}`)
	}
	send(c, `{"op":"sub","channel":"d","id":7}`)
	send(c, `{"op":"sub","channel":"a"}`) // already subscribed: resubscribing is allowed
	if m := next(t, c); m["op"] != "subscribed" || m["channel"] != "a" {
		t.Fatalf("reply %v", m)
	}
	var got []string
	for range 4 {
		m := next(t, c)
		got = append(got, fmt.Sprint(m["op"], ":", m["channel"], ":", m["code"]))
	}
	want := []string{"subscribed:b:<nil>", "subscribed:c:<nil>", "error:d:limit", "subscribed:a:<nil>"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("replies %v, want %v", got, want)
	}
	// Unsubscribing frees a slot.
	send(c, `{"op":"unsub","channel":"b"}`)
	send(c, `{"op":"sub","channel":"d"}`)
	if m := next(t, c); m["op"] != "unsubscribed" {
		t.Fatalf("reply %v", m)
	}
	if m := next(t, c); m["op"] != "subscribed" || m["channel"] != "d" {
		t.Fatalf("reply %v", m)
	}
	if st := n.app.Stats(); st.SubscriptionLimited != 1 {
		t.Fatalf("SubscriptionLimited = %d, want 1", st.SubscriptionLimited)
	}
}

func TestManySubscriptionsO1(t *testing.T) {
	t.Parallel()
	const subs = 20000
	n := startPush(t, hub.Config{}, func(o *PushOptions, _ *Config) { o.MaxSubscriptions = -1; o.CommandRate = -1 })
	c := n.dial(t, "/ws")
	for i := range subs {
		send(c, `{"op":"sub","channel":"c`+fmt.Sprint(i)+`"}`)
	}
	for i := range subs {
		send(c, `{"op":"unsub","channel":"c`+fmt.Sprint(i)+`"}`)
	}
	send(c, `{"op":"ping","id":1}`)
	for {
		if m := next(t, c); m["op"] == "pong" {
			break
		}
	}
	if st := n.hub.Stats(); st.Subscriptions != 0 {
		t.Fatalf("%d subscriptions left", st.Subscriptions)
	}
}

func TestChannelLimitSubscribe(t *testing.T) {
	t.Parallel()
	n := startPush(t, hub.Config{MaxChannels: 2}, nil)
	c := n.dial(t, "/ws?channel=a&channel=b&channel=c")
	var codes []string
	for range 3 {
		m := next(t, c)
		codes = append(codes, fmt.Sprint(m["op"], ":", m["code"]))
	}
	if strings.Join(codes, " ") != "subscribed:<nil> subscribed:<nil> error:limit" {
		t.Fatalf("replies %v", codes)
	}
	if st := n.app.Stats(); st.ChannelLimited != 1 {
		t.Fatalf("ChannelLimited = %d", st.ChannelLimited)
	}
}

func TestCommandRate(t *testing.T) {
	t.Parallel()
	n := startPush(t, hub.Config{}, func(o *PushOptions, _ *Config) { o.CommandRate = 5 })
	c := n.dial(t, "/ws")
	// A burst of 2×5 passes at once; far more cannot.
	var all []wstest.Frame
	for range 100 {
		all = append(all, wstest.Frame{Fin: true, Op: wstest.OpText, Payload: []byte(`{"op":"ping"}`)})
	}
	c.Send(all...)
	pongs := 0
	for {
		f, err := c.Read(10 * time.Second)
		if err != nil {
			t.Fatalf("read: %v after %d pongs", err, pongs)
		}
		if f.Op == wstest.OpClose {
			if code := closeCode(f); code != 1008 || string(f.Payload[2:]) != "too many commands" {
				t.Fatalf("close %d %q", code, f.Payload[2:])
			}
			break
		}
		pongs++
	}
	if pongs < 10 || pongs > 12 {
		t.Fatalf("%d pongs before the close, want the burst of 10 (give or take refill)", pongs)
	}
	if st := n.app.Stats(); st.CommandRateClosed != 1 {
		t.Fatalf("CommandRateClosed = %d", st.CommandRateClosed)
	}
}

// TestBacklogPaged: a recovery backlog far larger than the output budget
// arrives whole, once and in order, followed by live messages, instead of
// a 1013 close on every reconnect.
func TestBacklogPaged(t *testing.T) {
	t.Parallel()
	const (
		backlog = 300
		live    = 5 // a burst that fits the budget: a bigger one is a slow consumer
		limit   = 32 << 10
	)
	n := startPush(t, hub.Config{HistorySize: 1000, HistoryTTL: -1, MaxFrameBytes: limit},
		func(_ *PushOptions, cfg *Config) { cfg.WriteBufferLimit = limit })
	payload := `"` + strings.Repeat("x", 2000) + `"`
	var epoch string
	for range backlog {
		m, err := n.hub.Publish("news", []byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		epoch = m.Epoch
	}
	c := n.dial(t, "/ws?channel=news&since=news:0:"+epoch)
	if m := next(t, c); m["op"] != "subscribed" || m["recovered"] != true {
		t.Fatalf("reply %v", m)
	}
	// Live messages published while the backlog is still being paged.
	go func() {
		for range live {
			if _, err := n.hub.Publish("news", []byte(payload)); err != nil {
				t.Error(err)
			}
		}
	}()
	for want := uint64(1); want <= backlog+live; want++ {
		m := next(t, c)
		if off, _ := m["offset"].(float64); uint64(off) != want || m["channel"] != "news" {
			t.Fatalf("message %v, want offset %d", m["offset"], want)
		}
	}
	st := n.app.Stats()
	if st.PagedBacklogs == 0 || st.SlowClosed != 0 {
		t.Fatalf("stats %+v: want paged, none closed", st)
	}
	// Nothing more: no duplicate.
	send(c, `{"op":"ping"}`)
	if m := next(t, c); m["op"] != "pong" {
		t.Fatalf("after the last message: %v", m)
	}
}

// goSubmitter runs each task on a goroutine of its own.
type goSubmitter struct{}

func (goSubmitter) Submit(_ uint64, task func()) error { go task(); return nil }

// sendHandler answers every application message with a Send of size bytes.
type sendHandler struct{ size int }

func (h sendHandler) OnMessage(s *Session, _ []byte) {
	s.Send([]byte(`"` + strings.Repeat("y", h.size) + `"`))
}

// TestSendBudget: Session.Send goes through the output budget and the
// slow-consumer policy.
func TestSendBudget(t *testing.T) {
	t.Parallel()
	n := startPush(t, hub.Config{}, func(o *PushOptions, cfg *Config) {
		cfg.WriteBufferLimit = 4 << 10
		o.Handlers = sendHandler{size: 8 << 10}
		o.Workers = goSubmitter{}
	})
	c := n.dial(t, "/ws")
	send(c, `{"op":"msg","data":1}`)
	if code, reason := readClose(t, c); code != 1013 || reason != "slow consumer" {
		t.Fatalf("close %d %q, want 1013 slow consumer", code, reason)
	}
	if st := n.app.Stats(); st.SlowClosed != 1 {
		t.Fatalf("SlowClosed = %d", st.SlowClosed)
	}
}

package push

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/herald-push/herald/hub"
	"github.com/herald-push/herald/internal/wstest"
	"github.com/herald-push/herald/server"
)

func TestSubscriptionLimit(t *testing.T) {
	t.Parallel()
	n := startPush(t, hub.Config{}, func(o *Options, _ *server.Config) { o.MaxSubscriptions = 3; o.CommandRate = -1 })
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
	n := startPush(t, hub.Config{}, func(o *Options, _ *server.Config) { o.MaxSubscriptions = -1; o.CommandRate = -1 })
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
	n := startPush(t, hub.Config{}, func(o *Options, _ *server.Config) { o.CommandRate = 5 })
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
	n := startPush(t, hub.Config{HistorySize: 1000, HistoryTTL: -1, Encoder: Encoder{MaxFrame: limit}},
		func(_ *Options, cfg *server.Config) { cfg.WriteBufferLimit = limit })
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

// TestSendBudget: Session.Send goes through the output budget and the
// slow-consumer policy.
func TestSendBudget(t *testing.T) {
	t.Parallel()
	n := startPush(t, hub.Config{}, func(o *Options, cfg *server.Config) {
		cfg.WriteBufferLimit = 4 << 10
		o.Handlers = sendHandler{size: 8 << 10}
		o.Workers = goSubmitter{}
	})
	c := n.dial(t, "/ws")
	send(c, `{"op":"msg","data":1}`)
	if code, reason, _ := readClose(t, c); code != 1013 || reason != "slow consumer" {
		t.Fatalf("close %d %q, want 1013 slow consumer", code, reason)
	}
	if st := n.app.Stats(); st.SlowClosed != 1 {
		t.Fatalf("SlowClosed = %d", st.SlowClosed)
	}
}

// TestChannelLimitClientsOnly: the node's channel cap counts the channels
// clients create; once clients have taken every one, a token user's
// personal channel and the backend's publishes to new channels still go
// through, and channels whose last subscriber left give their place back
// at once (a connect-and-close flood leaves nothing behind).
func TestChannelLimitClientsOnly(t *testing.T) {
	t.Parallel()
	n := startPush(t, hub.Config{MaxChannels: 2}, nil)
	// A connect-and-close flood of new channels leaves none behind.
	for i := range 20 {
		c := n.dial(t, fmt.Sprintf("/ws?channel=f%da&channel=f%db", i, i))
		expect(t, c, `{"op":"subscribed","channel":"f`+fmt.Sprint(i)+`a","offset":0}`)
		expect(t, c, `{"op":"subscribed","channel":"f`+fmt.Sprint(i)+`b","offset":0}`)
		_ = c.NC.Close()
		// The next connection's request may reach the loop before this
		// one's close (it is read as it is accepted); under the cap of 2
		// it must find this one's channels given back.
		waitFor(t, "the flood's channels to be forgotten", func() bool {
			return n.hub.Stats().Channels == 0
		})
	}

	// Clients take the whole cap.
	hog := n.dial(t, "/ws?channel=a&channel=b&channel=c")
	var codes []string
	for range 3 {
		m := next(t, hog)
		codes = append(codes, fmt.Sprint(m["op"], ":", m["channel"], ":", m["code"]))
	}
	if got := strings.Join(codes, " "); got != "subscribed:a:<nil> subscribed:b:<nil> error:c:limit" {
		t.Fatalf("replies %v", got)
	}
	send(hog, `{"op":"pub","channel":"d","data":1,"id":1}`)
	if m := next(t, hog); m["op"] != "error" || m["code"] != "limit" || m["channel"] != "d" {
		t.Fatalf("client publish to a new channel past the cap: %v, want error limit", m)
	}
	send(hog, `{"op":"pub","channel":"a","data":1,"id":2}`)
	expect(t, hog, `{"op":"published","channel":"a","offset":1,"id":2}`)
	expect(t, hog, `{"channel":"a","offset":1,"data":1}`)

	// A token user's personal channel is not refused, nor is the
	// backend's publish to it or to any new channel.
	alice := n.dial(t, "/ws?token="+token(t, "alice", nil, nil))
	send(alice, `{"op":"ping"}`)
	expect(t, alice, `{"op":"pong"}`)
	n.publish(t, "user:alice", `"hi"`)
	expect(t, alice, `{"channel":"user:alice","offset":1,"data":"hi"}`)
	n.publish(t, "user:bob", `"later"`)
	n.publish(t, "api-new", `"x"`)

	st := n.hub.Stats()
	if st.ClientChannels != 2 || st.ChannelLimited != 2 {
		t.Fatalf("hub stats %+v: want 2 client channels and 2 refusals", st)
	}
	if ast := n.app.Stats(); ast.ChannelLimited != 1 {
		t.Fatalf("app ChannelLimited = %d, want 1 (the subscribe)", ast.ChannelLimited)
	}
}

package pusher

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/herald-push/herald/pusher/webhook"
	"github.com/herald-push/herald/server"
)

// hookReceiver collects the webhook events posted to it, checking each
// POST's signature with an HMAC of its own; hold, when set, keeps every
// request waiting until it is closed (the test closes it before its
// cleanups, which flush the webhooks).
type hookReceiver struct {
	t      *testing.T
	url    string
	events chan webhook.Event
}

func newHookReceiver(t *testing.T, hold chan struct{}) *hookReceiver {
	r := &hookReceiver{t: t, events: make(chan webhook.Event, 1000)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		m := hmac.New(sha256.New, []byte(testApp.Secret))
		m.Write(body)
		if got, want := req.Header.Get("X-Pusher-Signature"), hex.EncodeToString(m.Sum(nil)); got != want || req.Header.Get("X-Pusher-Key") != testApp.Key {
			t.Errorf("webhook signature %q key %q, want %q %q", got, req.Header.Get("X-Pusher-Key"), want, testApp.Key)
		}
		if hold != nil {
			select {
			case <-hold:
			case <-req.Context().Done():
				return
			}
		}
		var p webhook.Payload
		if err := json.Unmarshal(body, &p); err != nil || p.TimeMS == 0 {
			t.Errorf("webhook body %q: %v", body, err)
		}
		for _, ev := range p.Events {
			r.events <- ev
		}
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

// expect reads the next event and compares it with want.
func (r *hookReceiver) expect(want webhook.Event) {
	r.t.Helper()
	select {
	case got := <-r.events:
		if got != want {
			r.t.Fatalf("webhook event %+v, want %+v", got, want)
		}
	case <-time.After(testTimeout):
		r.t.Fatalf("no webhook event, want %+v", want)
	}
}

// withHooks starts the harness with the test app posting to r, in order
// (one POST at a time), within a short window.
func withHooks(r *hookReceiver, vacate time.Duration, edit func(*Options)) func(*Options, *server.Config) {
	return func(o *Options, _ *server.Config) {
		a := testApp
		a.Webhooks = []string{r.url}
		o.Apps = []App{a}
		o.Webhooks = WebhookOptions{Sender: webhook.Config{Window: 5 * time.Millisecond, Concurrency: 1, Backoff: time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, VacateDelay: vacate}
		if edit != nil {
			edit(o)
		}
	}
}

func TestWebhookEvents(t *testing.T) {
	r := newHookReceiver(t, nil)
	// No leave delay: member_removed before the channel's vacated.
	n := start(t, withHooks(r, 20*time.Millisecond, func(o *Options) { o.LeaveDelay = -1 }))
	const ch = "presence-room"
	cd := func(uid string) string { return `{"user_id":"` + uid + `"}` }
	a1, a2, b := n.connect(t), n.connect(t), n.connect(t)
	a1.subscribed(ch, cd("alice"))
	r.expect(webhook.Event{Name: webhook.ChannelOccupied, Channel: ch})
	r.expect(webhook.Event{Name: webhook.MemberAdded, Channel: ch, UserID: "alice"})
	// A second connection of alice's: no member_added, no occupied.
	a2.subscribed(ch, cd("alice"))
	b.subscribed(ch, cd("bob"))
	r.expect(webhook.Event{Name: webhook.MemberAdded, Channel: ch, UserID: "bob"})
	a1.expect(`{"event":"pusher_internal:member_added"}`)
	a1.send(map[string]any{"event": "client-typing", "channel": ch, "data": map[string]any{"on": true}})
	r.expect(webhook.Event{Name: webhook.ClientEvent, Channel: ch, Event: "client-typing", Data: `{"on":true}`, SocketID: a1.sid, UserID: "alice"})
	// alice leaves on one connection: still a member.
	a1.send(map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": ch}})
	a1.ping()
	b.send(map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": ch}})
	r.expect(webhook.Event{Name: webhook.MemberRemoved, Channel: ch, UserID: "bob"})
	a2.send(map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": ch}})
	r.expect(webhook.Event{Name: webhook.MemberRemoved, Channel: ch, UserID: "alice"})
	r.expect(webhook.Event{Name: webhook.ChannelVacated, Channel: ch})

	// A client event on a private channel: no user_id, data a string as is.
	c, d := n.connect(t), n.connect(t)
	c.subscribed("private-x", "")
	r.expect(webhook.Event{Name: webhook.ChannelOccupied, Channel: "private-x"})
	d.subscribed("private-x", "")
	c.send(map[string]any{"event": "client-say", "channel": "private-x", "data": "hi"})
	r.expect(webhook.Event{Name: webhook.ClientEvent, Channel: "private-x", Event: "client-say", Data: "hi", SocketID: c.sid})
	d.expect(`{"event":"client-say","data":"hi"}`)
	if err := n.p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s := n.p.Stats().Webhooks; s.Sent != 9 || s.Posts == 0 || s.Dropped != 0 || s.Failed != 0 {
		t.Fatalf("webhook stats %+v", s)
	}
}

func TestWebhookVacateDebounced(t *testing.T) {
	r := newHookReceiver(t, nil)
	// A delay longer than the test: a vacated channel never posts here.
	n := start(t, withHooks(r, time.Hour, nil))
	a := n.connect(t)
	a.subscribed("news", "")
	r.expect(webhook.Event{Name: webhook.ChannelOccupied, Channel: "news"})
	a.send(map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": "news"}})
	a.subscribed("news", "")
	// Events arrive in order: the marker's occupied comes next, so the
	// resubscribe posted neither vacated nor occupied.
	a.subscribed("marker", "")
	r.expect(webhook.Event{Name: webhook.ChannelOccupied, Channel: "marker"})
}

func TestWebhookVacatedWithoutDelay(t *testing.T) {
	r := newHookReceiver(t, nil)
	n := start(t, withHooks(r, -1, nil))
	a := n.connect(t)
	a.subscribed("news", "")
	a.send(map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": "news"}})
	a.subscribed("news", "")
	r.expect(webhook.Event{Name: webhook.ChannelOccupied, Channel: "news"})
	r.expect(webhook.Event{Name: webhook.ChannelVacated, Channel: "news"})
	r.expect(webhook.Event{Name: webhook.ChannelOccupied, Channel: "news"})
}

// A receiver that hangs delays nothing: clients get every event at once,
// the webhooks past the queue are dropped and counted.
func TestWebhookStuckReceiverDoesNotBlock(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	r := newHookReceiver(t, hold)
	n := start(t, withHooks(r, -1, func(o *Options) {
		o.Webhooks.Sender.QueueSize = 4
		o.Webhooks.Sender.MaxBatch = 1
		o.Webhooks.Sender.Client = &http.Client{Timeout: time.Hour}
	}))
	a, b := n.connect(t), n.connect(t)
	a.subscribed("private-x", "")
	b.subscribed("private-x", "")
	const events = 40
	for i := range events {
		a.send(map[string]any{"event": "client-n", "channel": "private-x", "data": strconv.Itoa(i)})
	}
	for i := range events {
		b.expect(`{"event":"client-n","data":"` + strconv.Itoa(i) + `"}`)
	}
	if err := n.p.Trigger(testApp.ID, Event{Name: "server", Channels: []string{"private-x"}, Data: "x"}); err != nil {
		t.Fatal(err)
	}
	b.expect(`{"event":"server"}`)
	// One POST in flight, one batch waiting for it, 4 queued: the rest
	// (of the occupied and the 40 client events) dropped.
	if s := n.p.Stats().Webhooks; s.Dropped < 1+events-6 || s.Sent != 0 {
		t.Fatalf("webhook stats %+v, want at least %d dropped", s, 1+events-6)
	}
}

func TestValidateWebhookURLs(t *testing.T) {
	a := testApp
	a.Webhooks = []string{"ftp://example.com/hook"}
	if err := Validate([]App{a}); err == nil {
		t.Fatal("Validate took an ftp:// webhook")
	}
	a.Webhooks = []string{"https://example.com/hook"}
	if err := Validate([]App{a}); err != nil {
		t.Fatal(err)
	}
}

package pusher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/herald-push/herald/pusher/webhook"
)

// DefaultVacateDelay is how long a channel stays empty before
// channel_vacated is posted: a subscriber that comes back within it (a
// page reload, an unsubscribe and resubscribe) posts neither
// channel_vacated nor a second channel_occupied.
const DefaultVacateDelay = time.Second

// WebhookOptions tune the webhooks of every app that lists URLs in
// App.Webhooks. The zero value means the defaults.
type WebhookOptions struct {
	// Sender is the template of each app's dispatcher (its Key, Secret
	// and URLs are the app's): client, batch window and size, queue,
	// attempts, backoff, concurrency (see package webhook).
	Sender webhook.Config
	// VacateDelay debounces channel_vacated (0: DefaultVacateDelay,
	// negative: none).
	VacateDelay time.Duration
}

// hooks is the Protocol's webhook state: a dispatcher per app with URLs
// and the occupancy of those apps' channels, across loops.
type hooks struct {
	by       map[*App]*webhook.Dispatcher
	counters webhook.Counters
	delay    time.Duration

	mu    sync.Mutex
	chans map[string]*occupancy // by hub name
}

// occupancy is one channel's subscriptions on this node; pending while
// its channel_vacated waits out the delay (gen names that wait).
type occupancy struct {
	n       int
	gen     uint64
	pending bool
}

// newHooks starts a dispatcher for each app with webhooks.
func newHooks(apps map[string]*App, o WebhookOptions) (*hooks, error) {
	h := &hooks{by: map[*App]*webhook.Dispatcher{}, chans: map[string]*occupancy{}, delay: o.VacateDelay}
	if h.delay == 0 {
		h.delay = DefaultVacateDelay
	}
	for _, a := range apps {
		if len(a.Webhooks) == 0 {
			continue
		}
		cfg := o.Sender
		cfg.Key, cfg.Secret, cfg.URLs = a.Key, a.Secret, a.Webhooks
		d, err := webhook.New(cfg, &h.counters)
		if err != nil {
			h.close(context.Background())
			return nil, err
		}
		h.by[a] = d
	}
	return h, nil
}

// close flushes every dispatcher.
func (h *hooks) close(ctx context.Context) error {
	var errs []error
	for _, d := range h.by {
		errs = append(errs, d.Close(ctx))
	}
	return errors.Join(errs...)
}

// of is app's dispatcher, nil without webhooks.
func (h *hooks) of(a *App) *webhook.Dispatcher {
	if h == nil {
		return nil
	}
	return h.by[a]
}

// subscribed counts a subscription to ch: the channel's first posts
// channel_occupied, unless it ends a pending channel_vacated.
func (h *hooks) subscribed(a *App, ch string) {
	d := h.of(a)
	if d == nil || strings.HasPrefix(ch, serverToUserPrefix) {
		return
	}
	name := hubName(a, ch)
	h.mu.Lock()
	defer h.mu.Unlock()
	o := h.chans[name]
	if o == nil {
		o = &occupancy{}
		h.chans[name] = o
	}
	o.n++
	if o.n > 1 {
		return
	}
	if o.pending {
		o.pending = false
		o.gen++
		return
	}
	d.Send(webhook.Event{Name: webhook.ChannelOccupied, Channel: ch})
}

// unsubscribed counts a subscription's end: the channel's last posts
// channel_vacated after the delay, if nobody subscribed meanwhile.
func (h *hooks) unsubscribed(a *App, ch string) {
	d := h.of(a)
	if d == nil || strings.HasPrefix(ch, serverToUserPrefix) {
		return
	}
	name := hubName(a, ch)
	h.mu.Lock()
	defer h.mu.Unlock()
	o := h.chans[name]
	if o == nil || o.n == 0 {
		return
	}
	o.n--
	if o.n > 0 {
		return
	}
	if h.delay < 0 {
		delete(h.chans, name)
		d.Send(webhook.Event{Name: webhook.ChannelVacated, Channel: ch})
		return
	}
	o.pending = true
	o.gen++
	gen := o.gen
	time.AfterFunc(h.delay, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.chans[name] == o && o.pending && o.gen == gen {
			delete(h.chans, name)
			d.Send(webhook.Event{Name: webhook.ChannelVacated, Channel: ch})
		}
	})
}

// member posts member_added or member_removed.
func (h *hooks) member(a *App, ch, name, uid string) {
	if d := h.of(a); d != nil {
		d.Send(webhook.Event{Name: name, Channel: ch, UserID: uid})
	}
}

// clientEvent posts client_event; data is the client's JSON value, a
// string's text as it is.
func (h *hooks) clientEvent(a *App, ch, event string, data json.RawMessage, sid, uid string) {
	d := h.of(a)
	if d == nil {
		return
	}
	s := string(bytes.TrimSpace(data))
	if len(s) > 0 && s[0] == '"' {
		var str string
		if json.Unmarshal(data, &str) == nil {
			s = str
		}
	}
	d.Send(webhook.Event{Name: webhook.ClientEvent, Channel: ch, Event: event, Data: s, SocketID: sid, UserID: uid})
}

// WebhookStats are the webhooks' counters (every app's together).
func (p *Protocol) WebhookStats() webhook.Stats {
	if p.hooks == nil {
		return webhook.Stats{}
	}
	return p.hooks.counters.Stats()
}

// Close posts the webhooks still queued and stops their senders; when
// ctx ends first the POSTs in flight are abandoned. Call it after the
// server has shut down.
func (p *Protocol) Close(ctx context.Context) error {
	if p.hooks == nil {
		return nil
	}
	return p.hooks.close(ctx)
}

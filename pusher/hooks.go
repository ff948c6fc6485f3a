package pusher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
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
// (occupancy decides the channel events, presence the member events).
type hooks struct {
	by       map[*App]*webhook.Dispatcher
	counters webhook.Counters
}

// newHooks starts a dispatcher for each app with webhooks.
func newHooks(apps map[string]*App, o WebhookOptions) (*hooks, error) {
	h := &hooks{by: map[*App]*webhook.Dispatcher{}}
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

// channel posts channel_occupied or channel_vacated (never for the
// #server-to-user- channels).
func (h *hooks) channel(a *App, ch, name string) {
	if d := h.of(a); d != nil && !strings.HasPrefix(ch, serverToUserPrefix) {
		d.Send(webhook.Event{Name: name, Channel: ch})
	}
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

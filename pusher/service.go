package pusher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/herald-push/herald/hub"
	"github.com/herald-push/herald/pusher/webhook"
)

var _ Service = (*Protocol)(nil)

// App finds an application by its ID.
func (p *Protocol) App(id string) (App, bool) {
	if a := p.byID[id]; a != nil {
		return *a, true
	}
	return App{}, false
}

// app finds an application by ID or fails with ErrNotFound.
func (p *Protocol) app(id string) (*App, error) {
	if a := p.byID[id]; a != nil {
		return a, nil
	}
	return nil, fmt.Errorf("app %q: %w", id, ErrNotFound)
}

// Trigger publishes ev to each of its channels: its JSON text is built
// once per channel and framed once by the Encoder, whatever the number of
// subscribers. The connection ev.SocketID names, if any, is left out.
func (p *Protocol) Trigger(appID string, ev Event) error {
	a, err := p.app(appID)
	if err != nil {
		return err
	}
	switch {
	case ev.Name == "" || len(ev.Name) > maxEventName:
		return fmt.Errorf("event name: 1 to %d characters: %w", maxEventName, ErrBadRequest)
	case len(ev.Channels) == 0 || len(ev.Channels) > 100:
		return fmt.Errorf("channels: 1 to 100: %w", ErrBadRequest)
	case len(ev.Data) > p.o.Hub.MaxPayload():
		return fmt.Errorf("data of %d bytes exceeds %d: %w", len(ev.Data), p.o.Hub.MaxPayload(), ErrTooLarge)
	}
	for _, ch := range ev.Channels {
		if !validChannel(ch) {
			return fmt.Errorf("channel %q: invalid name: %w", ch, ErrBadRequest)
		}
	}
	var exclude uint64
	if ev.SocketID != "" {
		id, ok := p.parseSocketID(a, ev.SocketID)
		if !ok {
			return fmt.Errorf("socket_id %q: want NNN.NNN: %w", ev.SocketID, ErrBadRequest)
		}
		exclude = id
	}
	for _, ch := range ev.Channels {
		b, err := json.Marshal(map[string]any{"event": ev.Name, "channel": ch, "data": ev.Data})
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadRequest, err)
		}
		if err := p.publish(hubName(a, ch), wire(kindEvent, exclude, b)); err != nil {
			switch {
			case errors.Is(err, hub.ErrTooLarge):
				return fmt.Errorf("%w: %w", ErrTooLarge, err)
			case errors.Is(err, hub.ErrInvalidChannel):
				return fmt.Errorf("%w: %w", ErrBadRequest, err)
			case errors.Is(err, hub.ErrChannelLimit):
				return fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
			return err
		}
	}
	return nil
}

// publish sends a hub payload to channel name: through the Broker, to
// every node, when there is one, else to the hub.
func (p *Protocol) publish(name string, data []byte) error {
	if p.o.Broker == nil {
		_, err := p.o.Hub.Publish(name, data)
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
	defer cancel()
	_, err := p.o.Broker.Publish(ctx, name, data)
	return err
}

// info describes one hub channel: every field is set (the API keeps those
// asked for); UserCount only for presence channels.
func (p *Protocol) info(name, ch string, ci hub.ChannelInfo) ChannelInfo {
	if n, ok := p.occ.count(name); ok {
		ci.Subscribers = n // the cluster's
	}
	out := ChannelInfo{Occupied: ci.Subscribers > 0, SubscriptionCount: ci.Subscribers}
	if isPresence(ch) {
		out.UserCount = p.presence.count(name)
	}
	return out
}

// Channels lists the occupied channels whose names start with prefix.
func (p *Protocol) Channels(appID, prefix string) (map[string]ChannelInfo, error) {
	a, err := p.app(appID)
	if err != nil {
		return nil, err
	}
	out := map[string]ChannelInfo{}
	if p.o.Roster != nil {
		// Every node's channels, as the roster tells them.
		for ch, n := range p.occ.list(a, prefix) {
			info := ChannelInfo{Occupied: true, SubscriptionCount: n}
			if isPresence(ch) {
				info.UserCount = p.presence.count(hubName(a, ch))
			}
			out[ch] = info
		}
		return out, nil
	}
	o := hub.ListOptions{Prefix: hubName(a, prefix), Limit: 1000}
	for {
		page, more := p.o.Hub.List(o)
		for _, ci := range page {
			if ci.Subscribers == 0 {
				continue
			}
			ch := strings.TrimPrefix(ci.Name, a.ID+":")
			out[ch] = p.info(ci.Name, ch, ci)
		}
		if !more || len(page) == 0 {
			return out, nil
		}
		o.After = page[len(page)-1].Name
	}
}

// Channel describes one channel, occupied or not.
func (p *Protocol) Channel(appID, ch string) (ChannelInfo, error) {
	a, err := p.app(appID)
	if err != nil {
		return ChannelInfo{}, err
	}
	if !validChannel(ch) {
		return ChannelInfo{}, fmt.Errorf("channel %q: invalid name: %w", ch, ErrBadRequest)
	}
	name := hubName(a, ch)
	ci, _ := p.o.Hub.Info(name)
	return p.info(name, ch, ci), nil
}

// Users lists the user ids present in a presence channel: of the whole
// cluster with a Roster.
func (p *Protocol) Users(appID, ch string) ([]string, error) {
	a, err := p.app(appID)
	if err != nil {
		return nil, err
	}
	if !isPresence(ch) || !validChannel(ch) {
		return nil, fmt.Errorf("channel %q: not a presence channel: %w", ch, ErrBadRequest)
	}
	return p.presence.users(hubName(a, ch)), nil
}

// TerminateUser closes every connection signed in as user, with 4009.
func (p *Protocol) TerminateUser(appID, user string) error {
	a, err := p.app(appID)
	if err != nil {
		return err
	}
	if p.srv == nil {
		return nil
	}
	k := a.ID + "\x00" + user
	loops := p.srv.Loops()
	done := make(chan struct{}, len(loops))
	for _, l := range loops {
		err := l.Run(func() {
			defer func() { done <- struct{}{} }()
			for _, s := range append([]*socket(nil), p.loops[l.Index()].users[k]...) {
				if s.c.Open() {
					p.fail(s, CodeUnauthorized, "Connection terminated by the server")
				}
			}
		})
		if err != nil {
			done <- struct{}{}
		}
	}
	for range loops {
		<-done
	}
	return nil
}

// Stats are the Protocol's counters, a snapshot.
type Stats struct {
	UnknownApp        uint64 `json:"unknown_app"`
	AuthFailed        uint64 `json:"auth_failed"`
	ClientEvents      uint64 `json:"client_events"`
	CommandRateClosed uint64 `json:"command_rate_closed"`
	SlowClosed        uint64 `json:"slow_closed"`
	Dropped           uint64 `json:"dropped"`
	// SubscriptionLimited counts subscribes refused by MaxSubscriptions.
	SubscriptionLimited uint64 `json:"subscription_limited"`
	// PresenceMembersLimited counts presence joins refused by the member
	// cap, UserInfoLimited those whose user_id or user_info was too large.
	PresenceMembersLimited uint64 `json:"presence_members_limited"`
	UserInfoLimited        uint64 `json:"user_info_limited"`
	// BudgetClosed counts connections closed with 4100 for output they
	// caused past the output budget.
	BudgetClosed uint64 `json:"budget_closed"`
	// Webhooks count the webhook events posted, failed and dropped.
	Webhooks webhook.Stats `json:"webhooks"`
}

// Stats returns the counters. Safe from any goroutine.
func (p *Protocol) Stats() Stats {
	return Stats{
		UnknownApp: p.unknownApp.Load(), AuthFailed: p.authFailed.Load(), ClientEvents: p.clientEvents.Load(),
		CommandRateClosed: p.rateClosed.Load(), SlowClosed: p.slowClosed.Load(), Dropped: p.dropped.Load(),
		SubscriptionLimited: p.subLimited.Load(), Webhooks: p.WebhookStats(),
		PresenceMembersLimited: p.membersLimited.Load(), UserInfoLimited: p.userInfoLimited.Load(), BudgetClosed: p.budgetClosed.Load(),
	}
}

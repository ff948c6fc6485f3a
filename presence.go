package herald

import (
	"fmt"
	"strings"

	"github.com/herald-push/herald/api"
	"github.com/herald-push/herald/auth"
	"github.com/herald-push/herald/broker"
	"github.com/herald-push/herald/hub"
	"github.com/herald-push/herald/namespace"
	"github.com/herald-push/herald/push"
	"github.com/herald-push/herald/pusher"
)

// presenceChannels is push.Options.Presence for cfg: a namespace's
// channels have presence with its "presence" option, the channels
// outside namespaces where presence_channels match them. Nil when no
// channel can have presence, so a node without it pays nothing.
func presenceChannels(cfg Config, t *namespace.Table) (func(string) bool, error) {
	pats, err := auth.CompilePatterns(cfg.PresenceChannels)
	if err != nil {
		return nil, fmt.Errorf("presence_channels: %w", err)
	}
	on := len(cfg.PresenceChannels) > 0
	for _, ns := range t.Namespaces() {
		on = on || ns.Presence()
	}
	if !on {
		return nil, nil
	}
	return func(ch string) bool {
		ns, err := t.Lookup(ch)
		if err != nil {
			return false
		}
		if ns.Name != "" {
			return ns.Presence()
		}
		return pats.Match(ch)
	}, nil
}

var _ api.PresenceBackend = apiBackend{}

// Presence answers GET /api/presence: the node's view of a presence
// channel's members (with NATS, the cluster's).
func (b apiBackend) Presence(channel string, limit int) (api.Presence, error) {
	if !hub.ValidChannel(channel) {
		return api.Presence{}, fmt.Errorf("%w: channel %.300q: %w", api.ErrBadRequest, channel, hub.ErrInvalidChannel)
	}
	if _, err := b.n.ns.Lookup(channel); err != nil {
		return api.Presence{}, apiError(err)
	}
	p, ok := b.n.push.Presence(channel, limit)
	if !ok {
		return api.Presence{}, fmt.Errorf("%w: channel %.300q has no presence (see presence_channels and the namespaces' presence option)", api.ErrBadRequest, channel)
	}
	return api.Presence{Channel: channel, Count: p.Count, Users: p.Users}, nil
}

// pushRosterPrefix starts the roster's channel names of herald's own
// presence channels: the Pusher protocol's are "{app id}:{channel}", and
// no app id starts with a NUL byte, so the two never meet.
const pushRosterPrefix = "\x00herald:"

// pushRoster is push.PresenceRoster on the node's roster, which the
// Pusher protocol's presence shares.
type pushRoster struct{ r *broker.Roster }

func (p pushRoster) Put(ch, user string, info []byte) { p.r.Put(pushRosterPrefix+ch, user, info) }
func (p pushRoster) Remove(ch, user string)           { p.r.Remove(pushRosterPrefix+ch, user) }

// startRoster starts the roster, handing the other nodes' changes to the
// protocol they belong to: herald's presence channels (by their prefix)
// or the Pusher apps'.
func (n *Node) startRoster() {
	app, p := n.push, n.pusher
	n.roster.Start(func(e broker.RosterEntry) {
		if ch, ok := strings.CutPrefix(e.Channel, pushRosterPrefix); ok {
			app.RemotePresence(push.PresenceEntry{Node: e.Node, Channel: ch, User: e.User, Gone: e.Gone, NodeDown: e.NodeDown})
			return
		}
		if p != nil {
			p.RemoteChange(pusher.RemoteEntry(e))
		}
	})
}

package push

import (
	"encoding/json"
	"strings"

	"github.com/herald-push/herald/hub"
)

// Interest learns which channels have subscribers on this node, for a
// broker that carries only those between nodes (Options.Interest). The
// push app calls Acquire before each subscription and Release once for
// each Acquire, when that subscription ends; both run on event-loop
// goroutines and must not block.
type Interest interface {
	// Acquire counts one more local subscriber of channel, which wants
	// the messages after since (nil: from now on). It returns true when
	// the hub's copy of the channel is current, so the subscription
	// proceeds at once. Otherwise it returns false and calls ready exactly
	// once, from any goroutine, when the subscription may proceed (the
	// copy is current, or waiting longer would not help). channel is only
	// valid during the call: an implementation that keeps it copies it.
	Acquire(channel string, since *hub.Position, ready func()) bool
	// Release counts one local subscriber of channel fewer.
	Release(channel string)
}

// errUnavailable is the protocol error code of a publish the broker
// refused for now (it is unreachable); the client may retry.
const errUnavailable = "unavailable"

// acquire asks Interest for ch and reports whether the subscription may
// proceed now. When it may not, join runs later on s's loop, or the
// acquisition is released if the connection closed meanwhile; either way
// the hub's reservation of ch (taken by subscribe) is given back then. It
// runs on s's loop.
func (a *App) acquire(s *Session, ch string, since *hub.Position, id json.RawMessage, quiet bool) bool {
	in := a.o.Interest
	if in == nil {
		return true
	}
	// The deferred join outlives the command and the upgrade request that
	// ch, since and id may point into.
	ch = strings.Clone(ch)
	if since != nil {
		p := ownPosition(*since)
		since = &p
	}
	id = append(json.RawMessage(nil), id...)
	l := s.conn.Loop()
	h := a.o.Hub
	ready := func() {
		err := l.Run(func() {
			defer h.Unreserve(ch)
			if !s.conn.Open() {
				in.Release(ch)
				return
			}
			a.join(s, ch, since, id, quiet)
		})
		if err != nil { // the loop is stopping: nobody will subscribe
			in.Release(ch)
			h.Unreserve(ch)
		}
	}
	return in.Acquire(ch, since, ready)
}

// release tells Interest that a subscription to ch ended. It runs on the
// subscriber's loop.
func (a *App) release(ch string) {
	if in := a.o.Interest; in != nil {
		in.Release(ch)
	}
}

// publishVia publishes a client's message through Options.Publish,
// which may block: on the worker pool in the connection's order, with the
// reply written back on the connection's loop.
func (a *App) publishVia(s *Session, cmd *command) {
	ch := strings.Clone(cmd.Channel)
	data := append([]byte(nil), cmd.Data...)
	id := append(json.RawMessage(nil), cmd.ID...)
	publish := a.o.Publish
	task := func() {
		pos, err := publish(ch, data)
		_ = s.conn.Loop().Run(func() {
			if !s.conn.Open() {
				return
			}
			if err != nil {
				a.replyError(s, id, publishErrorCode(err, errUnavailable), err.Error(), ch)
				return
			}
			a.reply(s, id, map[string]any{"op": "published", "channel": ch, "offset": pos.Offset})
		})
	}
	if a.o.Workers == nil {
		go task()
		return
	}
	if err := a.o.Workers.Submit(s.conn.ID(), task); err != nil {
		a.replyError(s, id, errRateLimited, "server busy: "+err.Error(), ch)
	}
}

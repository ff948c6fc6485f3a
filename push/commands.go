package push

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/herald-push/herald/codec"
	"github.com/herald-push/herald/hook"
	"github.com/herald-push/herald/hub"
	"github.com/herald-push/herald/namespace"
)

// command is a client → server message (docs/protocol.md).
type command struct {
	Op      string          `json:"op"`
	Channel string          `json:"channel"`
	Since   *hub.Position   `json:"since"`
	Data    json.RawMessage `json:"data"`
	ID      json.RawMessage `json:"id"`
}

// Protocol error codes sent in {"op":"error"} replies.
const (
	errBadRequest    = "bad_request"
	errForbidden     = "forbidden"
	errNotSubscribed = "not_subscribed"
	errUnsupported   = "not_supported"
	errRateLimited   = "rate_limited"
	errInternal      = "internal"
	// errLimit refuses a command that would pass a cap (subscriptions per
	// connection, channels per node); the connection stays.
	errLimit = "limit"
	// errUnknownNamespace refuses a channel whose prefix names no
	// configured namespace (docs/namespaces.md).
	errUnknownNamespace = "unknown_namespace"
)

// command parses and runs one client command. Commands are rare next to
// deliveries, so encoding/json's allocations are acceptable here.
func (a *App) command(s *Session, payload []byte) {
	a.commands.Add(1)
	cmd, err := parseCommand(payload)
	if err != nil {
		a.replyError(s, nil, errBadRequest, err.Error(), "")
		return
	}
	switch cmd.Op {
	case "sub":
		a.subscribe(s, cmd.Channel, cmd.Since, cmd.ID, false)
	case "unsub":
		if !a.unsubscribe(s, cmd.Channel) {
			a.replyError(s, cmd.ID, errNotSubscribed, "not subscribed", cmd.Channel)
			return
		}
		a.reply(s, cmd.ID, map[string]any{"op": "unsubscribed", "channel": cmd.Channel})
	case "pub":
		a.publish(s, &cmd)
	case "ping":
		a.reply(s, cmd.ID, map[string]any{"op": "pong"})
	case "presence":
		a.presenceQuery(s, &cmd)
	case "msg":
		a.appMessage(s, &cmd)
	case "":
		a.replyError(s, cmd.ID, errBadRequest, `missing "op"`, "")
	default:
		a.replyError(s, cmd.ID, errBadRequest, "unknown op "+strconv.Quote(cmd.Op), "")
	}
}

// parseCommand decodes one client command: the first JSON value of
// payload, which must be an object (what follows it is ignored).
func parseCommand(payload []byte) (command, error) {
	var cmd command
	dec := json.NewDecoder(bytes.NewReader(payload))
	if err := dec.Decode(&cmd); err != nil {
		return command{}, fmt.Errorf("command is not a JSON object: %w", err)
	}
	return cmd, nil
}

// subscribe adds a subscription and sends the reply and any backlog. quiet
// subscriptions (the personal channel) send no reply.
func (a *App) subscribe(s *Session, ch string, since *hub.Position, id json.RawMessage, quiet bool) {
	if !hub.ValidChannel(ch) {
		a.replyError(s, id, errBadRequest, "invalid channel name", ch)
		return
	}
	ns, err := a.o.Namespaces.Lookup(ch)
	if err != nil {
		a.replyError(s, id, errUnknownNamespace, err.Error(), ch)
		return
	}
	own := s.owns(ch)
	// A namespace only takes rights away: its refusal of anonymous
	// clients holds whatever the credentials or the hook would say.
	anonRefused := s.claims.Anonymous && !ns.AnonymousSubscribe()
	if !own && a.asksSubscribe(s, ch) {
		if anonRefused {
			a.replyError(s, id, errForbidden, "anonymous clients may not subscribe in namespace "+strconv.Quote(ns.Name), ch)
			return
		}
		if a.overCap(s, ch, id) {
			return
		}
		a.askSubscribe(s, ch, since, id, quiet)
		return
	}
	if !own && !s.claims.CanSubscribe(ch) {
		a.replyError(s, id, errForbidden, "not allowed to subscribe", ch)
		return
	}
	if anonRefused {
		a.replyError(s, id, errForbidden, "anonymous clients may not subscribe in namespace "+strconv.Quote(ns.Name), ch)
		return
	}
	a.granted(s, ch, since, id, quiet)
}

// overCap answers a subscription past MaxSubscriptions (those waiting
// for the subscribe hook count; one already held or asked for does not
// add) and reports whether it was one.
func (a *App) overCap(s *Session, ch string, id json.RawMessage) bool {
	if max := a.o.MaxSubscriptions; max > 0 && s.subscriptions()+a.asked(s) >= max && a.find(s, ch) < 0 && !a.asking(s, ch) {
		a.subLimited.Add(1)
		a.replyError(s, id, errLimit, "too many subscriptions on this connection (limit "+strconv.Itoa(max)+")", ch)
		return true
	}
	return false
}

// granted is subscribe once the subscription is authorized: the caps,
// Interest, then join.
func (a *App) granted(s *Session, ch string, since *hub.Position, id json.RawMessage, quiet bool) {
	own := s.owns(ch)
	if !own && a.overCap(s, ch, id) {
		return
	}
	if a.o.Interest != nil {
		// What Interest spends on a channel (a broker's watch) is bounded
		// by the hub's channel cap: admit the channel first, and hold it
		// in the hub until the subscription is made or abandoned. A
		// user's personal channel is the backend's, never refused.
		reserve := a.o.Hub.Reserve
		if own {
			reserve = a.o.Hub.ReserveTrusted
		}
		if err := reserve(ch); err != nil {
			a.subscribeRefused(s, id, ch, err)
			return
		}
		if !a.acquire(s, ch, since, id, quiet) {
			return // join runs once the broker has the channel current
		}
		a.join(s, ch, since, id, quiet)
		a.o.Hub.Unreserve(ch)
		return
	}
	a.join(s, ch, since, id, quiet)
}

// owns reports whether ch is s's personal channel, user:<subject>, which
// the backend vouches for: it is subscribed to past the connection's and
// the node's caps.
func (s *Session) owns(ch string) bool {
	return s.claims.Subject != "" && len(ch) == len("user:")+len(s.claims.Subject) &&
		strings.HasPrefix(ch, "user:") && ch[len("user:"):] == s.claims.Subject
}

// join is subscribe once Interest has acquired ch. It runs on s's loop.
func (a *App) join(s *Session, ch string, since *hub.Position, id json.RawMessage, quiet bool) {
	l := s.conn.Loop()
	if a.removeChannel(s, ch) {
		// Resubscribing (e.g. to recover with since): start over.
		a.o.Hub.Unsubscribe(l, ch, s)
		a.dropPager(s, ch)
		a.release(ch)
	}
	// s is not subscribed to ch now (removeChannel above made sure), and
	// the hub learns of it before anything else can run on this loop:
	// SubscribeNew skips the hub's own look for it. A client's channel
	// counts against the cap; the session's own is trusted.
	name, pos, backlog, recovered, err := a.o.Hub.SubscribeNew(l, ch, s, since, s.owns(ch))
	pres := a.hasPresence(ch)
	if err != nil {
		a.release(ch)
		if pres {
			a.presenceLeft(s, ch) // a resubscription that failed
		}
		a.subscribeRefused(s, id, ch, err)
		return
	}
	// ch may point into the upgrade request's buffer or a command's: what
	// outlives them is the hub's copy of the name, which the channel has
	// as long as s is subscribed to it.
	ch = name
	var members Presence
	if pres {
		if members, err = a.presenceJoined(s, ch); err != nil {
			a.o.Hub.Unsubscribe(l, ch, s)
			a.release(ch)
			a.replyError(s, id, errLimit, "too many members in this presence channel (limit "+strconv.Itoa(a.pres.limit)+")", ch)
			return
		}
	}
	a.addChannel(s, ch)
	if s.streaming() {
		a.streamJoined(s, ch, pos, since, recovered)
	} else if !quiet && !s.raw && len(id) == 0 && !pres {
		// The common reply, built in the loop's scratch memory; one with
		// an id or a member list goes the general way.
		a.replySubscribed(s, ch, pos, since != nil, recovered)
	} else if !quiet && !s.raw {
		r := map[string]any{"op": "subscribed", "channel": ch, "offset": pos.Offset, "epoch": pos.Epoch}
		if since != nil {
			r["recovered"] = recovered
		}
		if pres {
			r["presence"] = members
		}
		a.reply(s, id, r)
	}
	if len(backlog) > 0 && s.conn.Open() {
		a.sendBacklog(s, ch, backlog)
	}
}

// subscribeRefused answers a subscription the hub refused: past the
// channel cap, or (a hub whose options refuse it) in an unknown namespace.
func (a *App) subscribeRefused(s *Session, id json.RawMessage, ch string, err error) {
	if errors.Is(err, namespace.ErrUnknown) {
		a.replyError(s, id, errUnknownNamespace, err.Error(), ch)
		return
	}
	a.channelLimited.Add(1)
	a.replyError(s, id, errLimit, "too many channels on this server", ch)
}

// unsubscribe ends s's subscription to ch and reports whether there was
// one. s's loop only.
func (a *App) unsubscribe(s *Session, ch string) bool {
	asked := a.cancelAsk(s, ch) // its answer will be ignored
	if !a.removeChannel(s, ch) {
		return asked
	}
	a.o.Hub.Unsubscribe(s.conn.Loop(), ch, s)
	a.dropPager(s, ch)
	a.release(ch)
	if a.hasPresence(ch) {
		a.presenceLeft(s, ch)
	}
	return true
}

func (a *App) publish(s *Session, cmd *command) {
	if !hub.ValidChannel(cmd.Channel) {
		a.replyError(s, cmd.ID, errBadRequest, "invalid channel name", cmd.Channel)
		return
	}
	ns, err := a.o.Namespaces.Lookup(cmd.Channel)
	if err != nil {
		a.replyError(s, cmd.ID, errUnknownNamespace, err.Error(), cmd.Channel)
		return
	}
	// The publish hook, when set, decides every client publish in place
	// of the credentials; the namespace's refusals hold either way.
	hooked := a.o.Hooks.Enabled(hook.EventPublish)
	if !hooked && !s.claims.CanPublish(cmd.Channel) {
		a.replyError(s, cmd.ID, errForbidden, "not allowed to publish", cmd.Channel)
		return
	}
	if !ns.ClientPublish() {
		a.replyError(s, cmd.ID, errForbidden, "clients may not publish in namespace "+strconv.Quote(ns.Name)+" (publish through the API)", cmd.Channel)
		return
	}
	if s.claims.Anonymous && !ns.AnonymousPublish() {
		a.replyError(s, cmd.ID, errForbidden, "anonymous clients may not publish in namespace "+strconv.Quote(ns.Name), cmd.Channel)
		return
	}
	if hooked {
		// The hook may rewrite the data.
		a.askPublish(s, cmd)
		return
	}
	if len(cmd.Data) == 0 {
		a.replyError(s, cmd.ID, errBadRequest, `missing "data"`, cmd.Channel)
		return
	}
	if a.o.Publish != nil {
		a.publishVia(s, cmd)
		return
	}
	m, err := a.o.Hub.PublishClient(cmd.Channel, cmd.Data)
	if err != nil {
		a.replyError(s, cmd.ID, publishErrorCode(err, errInternal), err.Error(), cmd.Channel)
		return
	}
	a.reply(s, cmd.ID, map[string]any{"op": "published", "channel": cmd.Channel, "offset": m.Offset})
}

// publishErrorCode is the protocol error code of a refused publish;
// other is the code of errors that are not the client's.
func publishErrorCode(err error, other string) string {
	switch {
	case errors.Is(err, hub.ErrTooLarge) || errors.Is(err, hub.ErrInvalidChannel):
		return errBadRequest
	case errors.Is(err, hub.ErrChannelLimit):
		return errLimit
	case errors.Is(err, namespace.ErrUnknown):
		return errUnknownNamespace
	}
	return other
}

// appMessage hands an application message to the library-mode handlers on
// the worker pool, in per-connection order.
func (a *App) appMessage(s *Session, cmd *command) {
	if a.o.Handlers == nil || a.o.Workers == nil {
		a.replyError(s, cmd.ID, errUnsupported, "this server has no message handlers", "")
		return
	}
	data := append([]byte(nil), cmd.Data...)
	h := a.o.Handlers
	if err := a.o.Workers.Submit(s.conn.ID(), func() { h.OnMessage(s, data) }); err != nil {
		a.handlerRefused.Add(1)
		a.replyError(s, cmd.ID, errRateLimited, "server busy: "+err.Error(), "")
	}
}

// reply writes a JSON reply, echoing the command's id.
func (a *App) reply(s *Session, id json.RawMessage, r map[string]any) {
	if s.raw && r["op"] != "error" {
		return
	}
	if len(id) > 0 {
		r["id"] = id
	}
	b, err := json.Marshal(r)
	if err != nil {
		return
	}
	if s.streaming() {
		a.streamReply(s, r, b)
		return
	}
	// Replies are client-caused output: past the budget the connection
	// is closed with 1008 (not the slow-consumer policy).
	s.conn.WriteMessage(codec.OpText, b)
}

func (a *App) replyError(s *Session, id json.RawMessage, code, msg, ch string) {
	a.commandErrors.Add(1)
	r := map[string]any{"op": "error", "code": code, "message": msg}
	if ch != "" {
		r["channel"] = ch
	}
	a.reply(s, id, r)
}

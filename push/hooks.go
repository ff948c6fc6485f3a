package push

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/herald-push/herald/auth"
	"github.com/herald-push/herald/codec"
	"github.com/herald-push/herald/hook"
	"github.com/herald-push/herald/hub"
	"github.com/herald-push/herald/server"
)

// Backend hooks (Options.Hooks, docs/hooks.md). Each call runs on the
// worker pool in the connection's order and its answer is applied on the
// connection's loop (Loop.Run), as publishVia does; what waits meanwhile
// (an upgrade, a subscription) is bounded and answered whatever the
// backend does: a rejection with its code, an unavailable backend with a
// retryable refusal.

// hooked is what a session the connect hook authorized keeps for its
// refresh (appLoop.hooked).
type hooked struct {
	// req is the connect request, reused for each refresh (the same
	// headers and cookies, the user).
	req hook.Request
	// timer fires the next refresh; nil without a refresh hook or expiry.
	timer *time.Timer
	// tries counts the refreshes in a row the backend did not answer.
	tries int
}

// Refresh timing: a refresh is asked refreshLead before expire_at (half
// the time left, when that is shorter); an unanswered one is retried
// every refreshRetry until the connection expires.
const (
	refreshLead  = 30 * time.Second
	refreshRetry = time.Second
)

// Refusals of the connect hook.
var (
	errHookUnavailable = &codec.HandshakeError{Status: 503, Reason: "authorization backend unavailable, retry"}
	errHookBusy        = &codec.HandshakeError{Status: 503, Reason: "server busy, retry"}
)

// baseRequest is the part of a hook request every event shares.
func baseRequest(c *server.Conn, ev hook.Event) hook.Request {
	r := hook.Request{Event: ev, Client: strconv.FormatUint(c.ID(), 10), Transport: "websocket"}
	if c.Stream() {
		r.Transport = "sse"
	}
	if ra := c.RemoteAddr(); ra != nil {
		r.RemoteAddr = ra.String()
	}
	return r
}

// call runs the hook on the worker pool, in c's order, and then done
// with its answer on c's loop, unless c is gone by then. It returns false
// when the pool refused the work (done will not run).
func (a *App) call(c *server.Conn, req *hook.Request, done func(*hook.Result, error)) bool {
	l := c.Loop()
	task := func() {
		res, err := a.o.Hooks.Call(context.Background(), req)
		_ = l.Run(func() { done(res, err) })
	}
	if a.o.Workers == nil {
		go task()
		return true
	}
	return a.o.Workers.Submit(c.ID(), task) == nil
}

// askConnect holds the upgrade back (server.ErrDeferred) while the
// connect hook decides; on its answer the upgrade completes with the
// hook's user, or is refused: the hook's 4xx (else 403) for a rejection,
// 503 with Retry-After for a backend that does not answer. ps are the
// subscriptions the upgrade asked for. It runs on c's loop.
func (a *App) askConnect(c *server.Conn, req *codec.Request, sess *Session, ps *pendingSubs) error {
	hr := baseRequest(c, hook.EventConnect)
	if req.Plain {
		hr.Transport = "sse"
	}
	hr.Headers, hr.Cookies = a.o.Hooks.Forwarded(req)
	ps = ps.clone() // it points into req, a view that ends with Accept
	ok := a.call(c, &hr, func(res *hook.Result, err error) {
		if !c.Deferred() {
			return // closed or timed out meanwhile
		}
		claims, err := hookClaims(res, err)
		if err != nil {
			c.Refuse(err)
			return
		}
		sess.claims = claims
		a.admit(c, sess, ps)
		if !c.Complete("") {
			return
		}
		if !c.Open() {
			return // OnOpen closed it (a stream over budget)
		}
		hr.User = claims.Subject
		a.trackHooked(sess, hr)
	})
	if !ok {
		return errHookBusy
	}
	return server.ErrDeferred
}

// hookClaims turns the connect hook's answer into the session's claims,
// or the handshake error refusing it.
func hookClaims(res *hook.Result, err error) (*auth.Claims, error) {
	var rej *hook.Rejection
	switch {
	case errors.As(err, &rej):
		status := rej.Code
		if status < 400 || status > 499 {
			status = 403
		}
		reason := rej.Message
		if reason == "" {
			reason = "refused by the authorization backend"
		}
		return nil, &codec.HandshakeError{Status: status, Reason: reason}
	case err != nil:
		return nil, errHookUnavailable
	}
	claims, err := auth.NewClaims(res.User, res.Channels, res.Publish)
	if err != nil {
		// The backend's patterns do not compile: its fault, not the
		// client's, and retrying will not help; refuse plainly.
		return nil, &codec.HandshakeError{Status: 403, Reason: "authorization backend's answer: " + err.Error()}
	}
	if res.ExpireAt > 0 {
		claims.ExpiresAt = time.Unix(res.ExpireAt, 0)
	}
	return claims, nil
}

// trackHooked records a hook-authorized session and arms its refresh. It
// runs on the session's loop.
func (a *App) trackHooked(s *Session, req hook.Request) {
	pl := &a.loops[s.conn.Loop().Index()]
	if pl.hooked == nil {
		pl.hooked = map[*Session]*hooked{}
	}
	h := &hooked{req: req}
	pl.hooked[s] = h
	a.armRefresh(s, h, 0)
}

// armRefresh schedules s's next refresh: after retry when it is not 0,
// else refreshLead before its expiry. Without a refresh hook or an expiry
// nothing is scheduled, and the server closes the connection with 4001
// at the expiry, as for a token.
func (a *App) armRefresh(s *Session, h *hooked, retry time.Duration) {
	if !a.o.Hooks.Enabled(hook.EventRefresh) || s.claims.ExpiresAt.IsZero() {
		return
	}
	left := time.Until(s.claims.ExpiresAt)
	d := retry
	if d == 0 {
		d = left - min(refreshLead, left/2)
	}
	if d >= left {
		return // too late: the expiry closes it
	}
	l := s.conn.Loop()
	fire := func() {
		_ = l.Run(func() { a.refresh(s, h) })
	}
	if h.timer != nil {
		h.timer.Stop()
	}
	h.timer = time.AfterFunc(max(d, 0), fire)
}

// refresh asks the refresh hook to extend s's authorization: an answer
// extends the expiry (ExpireAt), a rejection closes the connection with
// the hook's 4xxx code (else 4001), no answer is retried until the
// expiry closes it. It runs on s's loop.
func (a *App) refresh(s *Session, h *hooked) {
	pl := &a.loops[s.conn.Loop().Index()]
	if pl.hooked[s] != h || !s.conn.Open() {
		return
	}
	req := h.req
	req.Event = hook.EventRefresh
	ok := a.call(s.conn, &req, func(res *hook.Result, err error) {
		if pl.hooked[s] != h || !s.conn.Open() {
			return
		}
		var rej *hook.Rejection
		switch {
		case errors.As(err, &rej):
			code := rej.Code
			if code < 4000 || code > 4999 {
				code = server.CloseTokenExpired
			}
			reason := rej.Message
			if reason == "" {
				reason = "session expired"
			}
			s.conn.Close(uint16(code), truncateReason(reason))
		case err != nil || res.ExpireAt == 0:
			h.tries++
			a.armRefresh(s, h, refreshRetry)
		default:
			h.tries = 0
			claims := *s.claims
			claims.ExpiresAt = time.Unix(res.ExpireAt, 0)
			s.claims = &claims
			s.conn.ExpireAt(claims.ExpiresAt)
			a.armRefresh(s, h, 0)
		}
	})
	if !ok {
		a.armRefresh(s, h, refreshRetry)
	}
}

// truncateReason cuts a close reason to the 123 bytes a close frame
// carries, on a rune boundary.
func truncateReason(r string) string {
	if len(r) <= 123 {
		return r
	}
	r = r[:123]
	for !utf8.ValidString(r) {
		r = r[:len(r)-1]
	}
	return r
}

// forgetHooks drops what the hooks keep for a closing session. It runs
// on the session's loop.
func (a *App) forgetHooks(pl *appLoop, s *Session) {
	if h := pl.hooked[s]; h != nil {
		if h.timer != nil {
			h.timer.Stop()
		}
		delete(pl.hooked, s)
	}
	delete(pl.asking, s)
}

// asksSubscribe reports whether the subscribe hook decides s's
// subscription to ch (not its personal channel).
func (a *App) asksSubscribe(s *Session, ch string) bool {
	hk := a.o.Hooks
	return hk.Enabled(hook.EventSubscribe) && (hk.Config().SubscribeAll || !s.claims.CanSubscribe(ch))
}

// asked is the number of s's subscriptions waiting for the subscribe
// hook: they count against MaxSubscriptions while they wait.
func (a *App) asked(s *Session) int { return len(a.loops[s.conn.Loop().Index()].asking[s]) }

// asking reports whether s's subscription to ch waits for the subscribe
// hook.
func (a *App) asking(s *Session, ch string) bool {
	_, ok := a.loops[s.conn.Loop().Index()].asking[s][ch]
	return ok
}

// askSubscribe asks the subscribe hook about s's subscription to ch and
// subscribes on its answer (granted), unless s unsubscribed, asked again
// or closed meanwhile. A rejection is answered with the error code
// "forbidden" and the hook's message (and its code as "hook_code"), a
// backend that does not answer with "unavailable": the client may retry.
// It runs on s's loop.
func (a *App) askSubscribe(s *Session, ch string, since *hub.Position, id json.RawMessage, quiet bool) {
	ch = strings.Clone(ch)
	if since != nil {
		p := ownPosition(*since)
		since = &p
	}
	id = append(json.RawMessage(nil), id...)
	pl := &a.loops[s.conn.Loop().Index()]
	if pl.asking == nil {
		pl.asking = map[*Session]map[string]uint64{}
	}
	if pl.asking[s] == nil {
		pl.asking[s] = map[string]uint64{}
	}
	pl.asks++
	n := pl.asks
	pl.asking[s][ch] = n
	req := baseRequest(s.conn, hook.EventSubscribe)
	req.User, req.Channel = s.claims.Subject, ch
	if h := pl.hooked[s]; h != nil {
		req.Headers, req.Cookies = h.req.Headers, h.req.Cookies
	}
	ok := a.call(s.conn, &req, func(_ *hook.Result, err error) {
		if pl.asking[s][ch] != n || !s.conn.Open() {
			return // unsubscribed, asked again or closed
		}
		a.endAsk(pl, s, ch)
		var rej *hook.Rejection
		switch {
		case errors.As(err, &rej):
			a.replyHookError(s, id, rej, ch)
		case err != nil:
			a.replyError(s, id, errUnavailable, "subscribe hook unavailable, retry", ch)
		default:
			a.granted(s, ch, since, id, quiet)
		}
	})
	if !ok {
		a.endAsk(pl, s, ch)
		a.replyError(s, id, errUnavailable, "server busy, retry", ch)
	}
}

// endAsk forgets s's wait for the subscribe hook's answer about ch.
func (a *App) endAsk(pl *appLoop, s *Session, ch string) {
	if m := pl.asking[s]; m != nil {
		delete(m, ch)
		if len(m) == 0 {
			delete(pl.asking, s)
		}
	}
}

// cancelAsk forgets a subscription waiting for the subscribe hook (the
// client unsubscribed) and reports whether there was one.
func (a *App) cancelAsk(s *Session, ch string) bool {
	if !a.asking(s, ch) {
		return false
	}
	a.endAsk(&a.loops[s.conn.Loop().Index()], s, ch)
	return true
}

// replyHookError answers a command the hook rejected.
func (a *App) replyHookError(s *Session, id json.RawMessage, rej *hook.Rejection, ch string) {
	a.commandErrors.Add(1)
	msg := rej.Message
	if msg == "" {
		msg = "refused by the backend"
	}
	r := map[string]any{"op": "error", "code": errForbidden, "message": msg, "hook_code": rej.Code}
	if ch != "" {
		r["channel"] = ch
	}
	a.reply(s, id, r)
}

// askPublish runs a client's publish through the publish hook, on the
// worker pool in the connection's order: a rejection is answered
// "forbidden" with the hook's message, no answer "unavailable"; an
// accepting answer's data (if any) replaces the client's, then the
// message is published (through Options.Publish when set) and the reply
// written on the loop.
func (a *App) askPublish(s *Session, cmd *command) {
	if len(cmd.Data) == 0 {
		a.replyError(s, cmd.ID, errBadRequest, `missing "data"`, cmd.Channel)
		return
	}
	c := s.conn
	ch := strings.Clone(cmd.Channel)
	id := append(json.RawMessage(nil), cmd.ID...)
	req := baseRequest(c, hook.EventPublish)
	req.User, req.Channel, req.Data = s.claims.Subject, ch, append(json.RawMessage(nil), cmd.Data...)
	if h := a.loops[c.Loop().Index()].hooked[s]; h != nil {
		req.Headers, req.Cookies = h.req.Headers, h.req.Cookies
	}
	hk, publish, h := a.o.Hooks, a.o.Publish, a.o.Hub
	l := c.Loop()
	task := func() {
		res, err := hk.Call(context.Background(), &req)
		var pos hub.Position
		if err == nil {
			data := req.Data
			if len(res.Data) > 0 {
				if !json.Valid(res.Data) {
					err = errors.New("publish hook's data is not JSON")
				}
				data = res.Data
			}
			if err == nil && publish != nil {
				pos, err = publish(ch, data)
			} else if err == nil {
				var m *hub.Message
				if m, err = h.PublishClient(ch, data); err == nil {
					pos = hub.Position{Offset: m.Offset}
				}
			}
			if err != nil && !errors.Is(err, hook.ErrUnavailable) {
				err = &publishError{err}
			}
		}
		_ = l.Run(func() {
			if !c.Open() {
				return
			}
			var rej *hook.Rejection
			var pe *publishError
			switch {
			case errors.As(err, &rej):
				a.replyHookError(s, id, rej, ch)
			case errors.As(err, &pe):
				a.replyError(s, id, publishErrorCode(pe.err, errUnavailable), pe.err.Error(), ch)
			case err != nil:
				a.replyError(s, id, errUnavailable, "publish hook unavailable, retry", ch)
			default:
				a.reply(s, id, map[string]any{"op": "published", "channel": ch, "offset": pos.Offset})
			}
		})
	}
	if a.o.Workers == nil {
		go task()
		return
	}
	if err := a.o.Workers.Submit(c.ID(), task); err != nil {
		a.replyError(s, id, errRateLimited, "server busy: "+err.Error(), ch)
	}
}

// publishError is a publish that failed after the hook accepted it.
type publishError struct{ err error }

func (e *publishError) Error() string { return e.err.Error() }

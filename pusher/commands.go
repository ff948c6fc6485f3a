package pusher

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/herald-push/herald/codec"
	"github.com/herald-push/herald/hub"
	"github.com/herald-push/herald/pusher/webhook"
	"github.com/herald-push/herald/server"
)

// message is a client → server message.
type message struct {
	Event   string          `json:"event"`
	Channel string          `json:"channel"`
	Data    json.RawMessage `json:"data"`
}

// subscribeData is pusher:subscribe's data.
type subscribeData struct {
	Channel     string `json:"channel"`
	Auth        string `json:"auth"`
	ChannelData string `json:"channel_data"`
}

// signinData is pusher:signin's data.
type signinData struct {
	Auth     string `json:"auth"`
	UserData string `json:"user_data"`
}

// dataOf decodes a message's data into v: an object, or a string holding
// one (clients send both).
func dataOf(raw json.RawMessage, v any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		raw = []byte(s)
	}
	return json.Unmarshal(raw, v)
}

// OnMessage runs one client message; past CommandRate the connection is
// closed with 4301.
func (p *Protocol) OnMessage(c *server.Conn, op codec.OpCode, payload []byte) {
	s := c.App.(*socket)
	if s.app == nil || !c.Open() {
		return
	}
	if !p.allow(s) {
		p.rateClosed.Add(1)
		p.fail(s, CodeRateLimited, "Too many messages")
		return
	}
	var m message
	if op != codec.OpText || json.Unmarshal(payload, &m) != nil || m.Event == "" {
		p.sendError(s, 0, "Invalid message: want a JSON object with an event")
		return
	}
	switch {
	case m.Event == "pusher:ping":
		p.send(s, map[string]any{"event": "pusher:pong", "data": map[string]any{}})
	case m.Event == "pusher:pong":
	case m.Event == "pusher:subscribe":
		var d subscribeData
		if err := dataOf(m.Data, &d); err != nil {
			p.sendError(s, 0, "Invalid pusher:subscribe data")
			return
		}
		p.subscribe(s, d)
	case m.Event == "pusher:unsubscribe":
		var d subscribeData
		if err := dataOf(m.Data, &d); err != nil {
			p.sendError(s, 0, "Invalid pusher:unsubscribe data")
			return
		}
		p.leave(s, d.Channel)
	case m.Event == "pusher:signin":
		var d signinData
		if err := dataOf(m.Data, &d); err != nil {
			p.sendError(s, 0, "Invalid pusher:signin data")
			return
		}
		p.signin(s, d)
	case strings.HasPrefix(m.Event, "client-"):
		p.clientEvent(s, &m)
	default:
		p.sendError(s, 0, "Unsupported event "+strconv.Quote(m.Event))
	}
}

// find returns ch's position in s.channels, or -1.
func (s *socket) find(ch string) int {
	for i, have := range s.channels {
		if have == ch {
			return i
		}
	}
	return -1
}

// subscribe checks a subscription's auth and joins the channel (with a
// Broker, once it has the channel current).
func (p *Protocol) subscribe(s *socket, d subscribeData) {
	ch := d.Channel
	if !validChannel(ch) {
		p.subError(s, ch, "InvalidChannel", "Invalid channel name", 400)
		return
	}
	if s.find(ch) >= 0 {
		p.send(s, map[string]any{"event": "pusher_internal:subscription_succeeded", "channel": ch, "data": "{}"})
		return
	}
	if s.pendingIndex(ch) >= 0 {
		return // answered when the broker has the channel
	}
	if max := p.o.MaxSubscriptions; max > 0 && len(s.channels)+len(s.pending) >= max {
		p.subLimited.Add(1)
		p.subError(s, ch, "LimitReached", "Too many subscriptions on this connection (limit "+strconv.Itoa(max)+")", 429)
		return
	}
	sid := p.socketID(s)
	var uid string
	var info json.RawMessage
	switch {
	case strings.HasPrefix(ch, serverToUserPrefix):
		if u, ok := p.loops[s.c.Loop().Index()].signedIn[s]; !ok || u != ch[len(serverToUserPrefix):] {
			p.authFailed.Add(1)
			p.subError(s, ch, "AuthError", "Sign in as this user first", 401)
			return
		}
	case isPresence(ch):
		if !checkAuth(s.app, d.Auth, sid+":"+ch+":"+d.ChannelData) {
			p.authFailed.Add(1)
			p.subError(s, ch, "AuthError", "Invalid signature", 401)
			return
		}
		var cd struct {
			UserID   json.RawMessage `json:"user_id"`
			UserInfo json.RawMessage `json:"user_info"`
		}
		if json.Unmarshal([]byte(d.ChannelData), &cd) != nil || len(cd.UserID) == 0 {
			p.subError(s, ch, "AuthError", "channel_data must hold a user_id", 400)
			return
		}
		uid = idString(cd.UserID)
		if uid == "" {
			p.subError(s, ch, "AuthError", "channel_data must hold a user_id", 400)
			return
		}
		if len(uid) > MaxUserID || len(cd.UserInfo) > MaxUserInfo || !utf8.ValidString(uid) || !utf8.Valid(cd.UserInfo) {
			p.userInfoLimited.Add(1)
			p.subError(s, ch, "LimitReached", fmt.Sprintf("The maximum size of a presence member is %d bytes of user_id and %d bytes of user_info (valid UTF-8)", MaxUserID, MaxUserInfo), 413)
			return
		}
		info = cd.UserInfo
	case isPrivate(ch):
		if !checkAuth(s.app, d.Auth, sid+":"+ch) {
			p.authFailed.Add(1)
			p.subError(s, ch, "AuthError", "Invalid signature", 401)
			return
		}
	}
	br := p.o.Broker
	if br == nil {
		p.join(s, ch, uid, info)
		return
	}
	// What the broker spends on a channel (a watch) is bounded by the
	// hub's channel cap: admit the channel first, and hold it until the
	// subscription is made or abandoned.
	name := hubName(s.app, ch)
	if err := p.o.Hub.Reserve(name); err != nil {
		p.fail(s, CodeOverCapacity, "Over capacity")
		return
	}
	ch = strings.Clone(ch)
	ps := &pending{ch: ch}
	l := s.c.Loop()
	ready := func() {
		err := l.Run(func() {
			defer p.o.Hub.Unreserve(name)
			if !s.c.Open() || !s.dropPending(ps) {
				br.Release(name) // closed or unsubscribed meanwhile
				return
			}
			p.join(s, ch, uid, info)
		})
		if err != nil { // the loop is stopping: nobody will subscribe
			br.Release(name)
			p.o.Hub.Unreserve(name)
		}
	}
	if !br.Acquire(name, nil, ready) {
		// ready runs the join on this loop, after this callback.
		s.pending = append(s.pending, ps)
		return
	}
	p.join(s, ch, uid, info)
	p.o.Hub.Unreserve(name)
}

// pending is a subscription waiting for the broker.
type pending struct{ ch string }

// pendingIndex is the position of ch's pending subscription in s.pending,
// or -1.
func (s *socket) pendingIndex(ch string) int {
	for i, ps := range s.pending {
		if ps.ch == ch {
			return i
		}
	}
	return -1
}

// dropPending removes ps from s.pending and reports whether it was there
// (not cancelled by an unsubscribe).
func (s *socket) dropPending(ps *pending) bool {
	for i, x := range s.pending {
		if x == ps {
			s.pending = append(s.pending[:i], s.pending[i+1:]...)
			if len(s.pending) == 0 {
				s.pending = nil
			}
			return true
		}
	}
	return false
}

// release gives back a broker acquisition of a hub channel.
func (p *Protocol) release(name string) {
	if p.o.Broker != nil {
		p.o.Broker.Release(name)
	}
}

// join subscribes s to ch (checked, and acquired from the broker) as uid
// with info on presence channels. It runs on s's loop.
func (p *Protocol) join(s *socket, ch, uid string, info json.RawMessage) {
	name := hubName(s.app, ch)
	var since *hub.Position
	if isCache(ch) {
		if ci, ok := p.o.Hub.Info(name); ok && ci.Offset > 0 {
			since = &hub.Position{Offset: ci.Offset - min(ci.Offset, cacheScan), Epoch: ci.Epoch}
		}
	}
	l := s.c.Loop()
	_, backlog, _, err := p.o.Hub.Subscribe(l, name, s, since)
	if err != nil {
		p.release(name)
		p.fail(s, CodeOverCapacity, "Over capacity")
		return
	}
	if !isPresence(ch) {
		s.channels = append(s.channels, ch)
		p.occ.subscribed(s.app, ch)
		p.send(s, map[string]any{"event": "pusher_internal:subscription_succeeded", "channel": ch, "data": "{}"})
	} else {
		first, snap, ok := p.presence.join(name, s, uid, info, s.app.presenceCap())
		if !ok {
			p.o.Hub.Unsubscribe(l, name, s)
			p.release(name)
			p.membersLimited.Add(1)
			p.subError(s, ch, "LimitReached", fmt.Sprintf("The maximum of %d members of a presence channel was reached", s.app.presenceCap()), 4100)
			return
		}
		s.channels = append(s.channels, ch)
		p.occ.subscribed(s.app, ch)
		s.c.WriteMessage(codec.OpText, snap.message(ch))
		if first {
			p.hooks.member(s.app, ch, webhook.MemberAdded, uid)
		}
	}
	if isCache(ch) && s.c.Open() {
		var last *hub.Message
		for _, m := range backlog {
			if f, ok := m.Frames.(*frames); ok && f.kind == kindEvent {
				last = m
			}
		}
		if last != nil {
			s.Deliver(last)
		} else {
			p.send(s, map[string]any{"event": "pusher:cache_miss", "channel": ch})
		}
	}
}

// idString is a user id as a string: a JSON string's value, a number's
// text.
func idString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// leave ends s's subscription to ch, if any.
func (p *Protocol) leave(s *socket, ch string) {
	i := s.find(ch)
	if i < 0 {
		if j := s.pendingIndex(ch); j >= 0 {
			s.dropPending(s.pending[j]) // its join releases the channel
		}
		return
	}
	last := len(s.channels) - 1
	s.channels[i] = s.channels[last]
	s.channels[last] = ""
	s.channels = s.channels[:last]
	name := hubName(s.app, ch)
	p.o.Hub.Unsubscribe(s.c.Loop(), name, s)
	p.release(name)
	if isPresence(ch) {
		p.presence.leave(name, s)
	}
	p.occ.unsubscribed(s.app, ch)
}

// clientEvent forwards a client-* event to the channel's other
// subscribers: private and presence channels only, subscribed ones only.
func (p *Protocol) clientEvent(s *socket, m *message) {
	ch := m.Channel
	switch {
	case !isPrivate(ch) && !isPresence(ch):
		p.sendError(s, 0, "Client event rejected - only supported on private and presence channels")
		return
	case strings.HasPrefix(ch, "private-encrypted-"):
		p.sendError(s, 0, "Client event rejected - not supported on encrypted channels")
		return
	case s.find(ch) < 0:
		p.sendError(s, 0, "Client event rejected - not subscribed to "+ch)
		return
	case len(m.Event) > maxEventName:
		p.sendError(s, 0, "Client event rejected - event name too long")
		return
	}
	ev := map[string]any{"event": m.Event, "channel": ch, "data": json.RawMessage(m.Data)}
	if len(m.Data) == 0 {
		ev["data"] = "{}"
	}
	name := hubName(s.app, ch)
	var uid string
	if isPresence(ch) {
		if u, ok := p.presence.userOf(name, s); ok {
			ev["user_id"], uid = u, u
		}
	}
	b, err := json.Marshal(ev)
	if err != nil {
		p.sendError(s, 0, "Client event rejected - invalid data")
		return
	}
	p.clientEvents.Add(1)
	sid := p.socketID(s)
	data := wire(kindClient, s.num(), b)
	if p.o.Broker != nil {
		p.publishClient(s, name, ch, data, m.Event, m.Data, sid, uid)
		return
	}
	if _, err := p.o.Hub.Publish(name, data); err != nil {
		p.sendError(s, 0, "Client event rejected - "+err.Error())
		return
	}
	p.hooks.clientEvent(s.app, ch, m.Event, m.Data, sid, uid)
}

// publishClient publishes a client event through the broker, which may
// block: on the worker pool in the connection's order, a refusal told
// back on the connection's loop.
func (p *Protocol) publishClient(s *socket, name, ch string, data []byte, event string, raw json.RawMessage, sid, uid string) {
	ch, event = strings.Clone(ch), strings.Clone(event)
	raw = append(json.RawMessage(nil), raw...)
	a := s.app
	task := func() {
		ctx, cancel := context.WithTimeout(context.Background(), publishTimeout)
		defer cancel()
		if _, err := p.o.Broker.Publish(ctx, name, data); err != nil {
			_ = s.c.Loop().Run(func() {
				if s.c.Open() {
					p.sendError(s, 0, "Client event rejected - "+err.Error())
				}
			})
			return
		}
		p.hooks.clientEvent(a, ch, event, raw, sid, uid)
	}
	if p.o.Workers == nil {
		go task()
		return
	}
	if err := p.o.Workers.Submit(s.c.ID(), task); err != nil {
		p.sendError(s, 0, "Client event rejected - server busy")
	}
}

// publishTimeout bounds a broker publish of a client event.
const publishTimeout = 10 * time.Second

// deliverLocal writes a pusher_internal event of ch to targets, this
// node's other subscribers of the channel, each on its own loop: the
// presence registry decides member events per node, so they never travel
// through the hub or the broker.
func (p *Protocol) deliverLocal(ch, event, data string, targets []*socket) {
	if len(targets) == 0 {
		return
	}
	ev, _ := json.Marshal(map[string]any{"event": event, "channel": ch, "data": data})
	f := &server.Frame{}
	f.Set(codec.AppendFrame(make([]byte, 0, codec.FrameHeaderLen(len(ev), false)+len(ev)), codec.OpText, true, ev))
	by := map[int][]*socket{}
	for _, s := range targets {
		i := s.c.Loop().Index()
		by[i] = append(by[i], s)
	}
	for _, ss := range by {
		_ = ss[0].c.Loop().Run(func() {
			for _, s := range ss {
				if s.c.Open() && s.find(ch) >= 0 {
					s.write(f)
				}
			}
		})
	}
}

// signin checks a pusher:signin and records the user.
func (p *Protocol) signin(s *socket, d signinData) {
	sid := p.socketID(s)
	if !checkAuth(s.app, d.Auth, sid+"::user::"+d.UserData) {
		p.authFailed.Add(1)
		p.sendError(s, CodeUnauthorized, "Invalid signature")
		return
	}
	var ud struct {
		ID json.RawMessage `json:"id"`
	}
	uid := ""
	if json.Unmarshal([]byte(d.UserData), &ud) == nil && len(ud.ID) > 0 {
		uid = idString(ud.ID)
	}
	if uid == "" {
		p.sendError(s, CodeUnauthorized, "user_data must hold an id")
		return
	}
	pl := &p.loops[s.c.Loop().Index()]
	if pl.signedIn == nil {
		pl.signedIn, pl.users = map[*socket]string{}, map[string][]*socket{}
	}
	if _, ok := pl.signedIn[s]; ok {
		p.sendError(s, CodeUnauthorized, "Already signed in")
		return
	}
	pl.signedIn[s] = uid
	k := s.app.ID + "\x00" + uid
	pl.users[k] = append(pl.users[k], s)
	inner, _ := json.Marshal(map[string]any{"user_data": d.UserData})
	p.send(s, map[string]any{"event": "pusher:signin_success", "data": string(inner)})
}

// Message kinds, the first byte of a hub payload.
const (
	kindEvent  byte = iota // triggered through the Service: cacheable
	kindClient             // a client event
)

// headerLen is the hub payload's header: kind, then the connection id
// excluded from delivery (0: none).
const headerLen = 9

// wire is a hub payload: the header and the event's JSON text.
func wire(kind byte, exclude uint64, event []byte) []byte {
	b := make([]byte, headerLen, headerLen+len(event))
	b[0] = kind
	binary.BigEndian.PutUint64(b[1:], exclude)
	return append(b, event...)
}

// frames is what the Encoder attaches to a message.
type frames struct {
	f       server.Frame
	exclude uint64
	kind    byte
}

// Encoder is the hub.Encoder of Pusher channels: it frames each event's
// JSON text once per publish, for every subscriber to share.
type Encoder struct {
	// MaxFrame, when positive, is the largest frame accepted (the output
	// budget); larger events fail with hub.ErrTooLarge.
	MaxFrame int
}

var _ hub.Encoder = Encoder{}

// Check refuses payloads that are not herald's Pusher payloads or whose
// frame would not fit the budget.
func (e Encoder) Check(_ string, data []byte) (uint32, error) {
	if len(data) <= headerLen {
		return 0, errors.New("pusher: not an event")
	}
	n := len(data) - headerLen
	if e.MaxFrame > 0 && codec.FrameHeaderLen(n, false)+n > e.MaxFrame {
		return 0, fmt.Errorf("pusher: an event frame of %d bytes exceeds the write buffer limit of %d: %w", n, e.MaxFrame, hub.ErrTooLarge)
	}
	return 0, nil
}

// Encode builds m's frame.
func (e Encoder) Encode(m *hub.Message, _ uint32) int {
	ev := m.Data[headerLen:]
	f := &frames{kind: m.Data[0], exclude: binary.BigEndian.Uint64(m.Data[1:headerLen])}
	buf := codec.AppendFrame(make([]byte, 0, codec.FrameHeaderLen(len(ev), false)+len(ev)), codec.OpText, true, ev)
	f.f.Set(buf)
	m.Data = buf[len(buf)-len(ev):]
	m.Frames = f
	return len(buf)
}

// Deliver writes an event to s (hub.Subscriber), applying the
// slow-consumer policy.
func (s *socket) Deliver(m *hub.Message) {
	f, ok := m.Frames.(*frames)
	if !ok || !s.c.Open() || (f.exclude != 0 && f.exclude == s.num()) {
		return
	}
	s.write(&f.f)
}

// write queues a shared frame to s, applying the slow-consumer policy.
func (s *socket) write(f *server.Frame) {
	if s.c.WriteFrame(f) {
		return
	}
	p := s.p
	switch p.o.Slow {
	case "drop":
		p.dropped.Add(1)
	case "close-policy":
		p.slowClosed.Add(1)
		s.c.Close(CodeOverCapacity, "slow consumer")
	default:
		p.slowClosed.Add(1)
		s.c.Close(CodeReconnect, "slow consumer")
	}
}

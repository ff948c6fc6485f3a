package server

import (
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/herald-push/herald/auth"
	"github.com/herald-push/herald/codec"
	"github.com/herald-push/herald/hub"
)

// SlowPolicy is what happens to a subscriber whose unsent bytes would pass
// the write-buffer limit.
type SlowPolicy string

// The slow-consumer policies.
const (
	// SlowClose closes the connection with 1013 (try again later): the
	// client reconnects and recovers what it missed from history. Default.
	SlowClose SlowPolicy = "close"
	// SlowClosePolicy closes with 1008 (policy violation).
	SlowClosePolicy SlowPolicy = "close-policy"
	// SlowDrop drops the message for that subscriber and counts it; the
	// subscriber sees a gap in offsets.
	SlowDrop SlowPolicy = "drop"
)

// ParseSlowPolicy checks a policy name.
func ParseSlowPolicy(s string) (SlowPolicy, bool) {
	switch p := SlowPolicy(s); p {
	case SlowClose, SlowClosePolicy, SlowDrop:
		return p, true
	case "":
		return SlowClose, true
	}
	return "", false
}

// Handlers are the library-mode callbacks for application messages
// (`{"op":"msg"}`); the push app hands them to the worker pool in
// per-connection order. Nil handlers answer such messages with an error.
type Handlers interface {
	// OnMessage receives an application message from a client. It runs on
	// a worker goroutine, never two at once for one connection.
	OnMessage(s *Session, data []byte)
}

// Submitter runs blocking work in per-key order (pool.Workers).
type Submitter interface {
	Submit(key uint64, task func()) error
}

// PushOptions configure the push app.
type PushOptions struct {
	Hub      *hub.Hub
	Verifier *auth.Verifier
	Origins  *auth.OriginPolicy
	Slow     SlowPolicy
	// Path is the WebSocket endpoint (default "/ws").
	Path     string
	Handlers Handlers
	Workers  Submitter
	// Interest, when set, is told which channels have subscribers on this
	// node and may hold a subscription back until the node's copy of the
	// channel is current: a multi-node broker (broker.NATS) uses it. Nil:
	// subscriptions go straight to Hub.
	Interest Interest
	// Publish, when set, publishes clients' `pub` commands instead of
	// Hub.Publish: a multi-node broker sequences them for every node. It
	// may block; the app calls it on Workers, in per-connection order.
	Publish func(channel string, data []byte) (hub.Position, error)
	// MaxSubscriptions caps one connection's subscriptions, not counting
	// its personal user: channel; past it a subscribe is answered with
	// the error code "limit". 0 means DefaultMaxSubscriptions (128), a
	// negative value sets no cap.
	MaxSubscriptions int
	// CommandRate is how many commands per second one connection may
	// send, with bursts of twice as many; past it the connection is
	// closed with 1008 "too many commands". 0 means DefaultCommandRate
	// (50), a negative value sets no limit.
	CommandRate float64
}

// PushApp is herald's client protocol (docs/protocol.md) on top of the
// connection state machine: authentication at upgrade, subscriptions,
// publishing, recovery and delivery with backpressure. Its per-loop user
// index lets the API disconnect a user's every connection.
type PushApp struct {
	o     PushOptions
	srv   *Server
	loops []pushLoop // indexed by loop index; touched only by that loop

	// interval is the command bucket's nanoseconds per command and
	// tolerance how far ahead of now its arrival time may run (burst−1
	// intervals); interval 0: no rate limit.
	interval, tolerance int64

	dropped        atomic.Uint64
	slowClosed     atomic.Uint64
	kicked         atomic.Uint64
	commands       atomic.Uint64
	commandErrors  atomic.Uint64
	handlerRefused atomic.Uint64
	subLimited     atomic.Uint64
	channelLimited atomic.Uint64
	rateClosed     atomic.Uint64
	paged          atomic.Uint64
}

// pushLoop is per-loop state of the push app.
type pushLoop struct {
	users map[string][]*Session
	// index maps each channel of a session with many subscriptions to its
	// position in Session.channels, so subscribe and unsubscribe stay
	// O(1) (see indexFrom).
	index map[*Session]map[string]int32
	// pagers holds the recovery backlogs waiting for room in a session's
	// output budget (flagPaging).
	pagers map[*Session][]*pager
}

// NewPushApp builds the push app; attach it with New(cfg, app, log) and
// then call Bind with the server.
func NewPushApp(o PushOptions) *PushApp {
	if o.Path == "" {
		o.Path = "/ws"
	}
	if o.Slow == "" {
		o.Slow = SlowClose
	}
	if o.MaxSubscriptions == 0 {
		o.MaxSubscriptions = DefaultMaxSubscriptions
	}
	if o.CommandRate == 0 {
		o.CommandRate = DefaultCommandRate
	}
	a := &PushApp{o: o}
	if o.CommandRate > 0 {
		a.interval = max(1, int64(float64(time.Second)/o.CommandRate))
		a.tolerance = a.interval * max(1, int64(2*o.CommandRate)-1)
	}
	return a
}

// Bind ties the app to the server that runs it (it needs the server's loop
// count and write-buffer limit).
func (a *PushApp) Bind(s *Server) {
	a.srv = s
	a.loops = make([]pushLoop, len(s.loops))
}

// Session is one client's push state: who it is, what it subscribed to. It
// is owned by the connection's loop; methods other than ID and Subject are
// for that loop only unless stated.
//
// It is kept small (64 bytes) because every connection has one: the app is
// reached through the connection, and what few sessions need (an index of
// many channels, a paged backlog) lives in the loop's tables.
type Session struct {
	conn     *Conn
	claims   *auth.Claims
	channels []string // in no particular order
	// pending holds what the upgrade request asked for until OnOpen acts
	// on it; nil afterwards, so an idle session keeps none of it.
	pending *pendingSubs
	// tat is the command bucket's theoretical arrival time (see
	// allowCommand).
	tat   int64
	raw   bool
	flags uint8
}

// pendingSubs are the subscriptions requested in the upgrade URL.
type pendingSubs struct {
	channels []string
	since    map[string]hub.Position
}

// ID is the connection id.
func (s *Session) ID() uint64 { return s.conn.ID() }

// Subject is the token's subject ("" for anonymous clients).
func (s *Session) Subject() string { return s.claims.Subject }

// Send writes data to this client as an application message
// `{"op":"msg","data":...}`. Safe from any goroutine: the write happens on
// the connection's loop, within the connection's output budget: past it
// the slow-consumer policy applies, as for published messages.
func (s *Session) Send(data []byte) {
	frame := appendMsgFrame(nil, data)
	c := s.conn
	if c.z.Enabled() {
		if zf, ok := c.srv.deflate.AppendCompressedOf(nil, frame, c.z.ServerWindowBits); ok {
			frame = zf
		}
	}
	_ = c.pc.Loop().Run(func() {
		if c.Open() && c.srv.app.(*PushApp).admit(c, len(frame)) {
			c.WritePrepared(frame)
		}
	})
}

// PushStats are the push app's counters.
type PushStats struct {
	Dropped       uint64 `json:"dropped"`
	SlowClosed    uint64 `json:"slow_closed"`
	Kicked        uint64 `json:"kicked"`
	Commands      uint64 `json:"commands"`
	CommandErrors uint64 `json:"command_errors"`
	// SubscriptionLimited counts subscribes refused by MaxSubscriptions.
	SubscriptionLimited uint64 `json:"subscription_limited"`
	// ChannelLimited counts subscribes refused because the hub holds its
	// most channels (hub.ErrChannelLimit).
	ChannelLimited uint64 `json:"channel_limited"`
	// CommandRateClosed counts connections closed for passing
	// CommandRate.
	CommandRateClosed uint64 `json:"command_rate_closed"`
	// PagedBacklogs counts recovery backlogs that did not fit the output
	// budget and were sent in pages.
	PagedBacklogs uint64 `json:"paged_backlogs"`
}

// Stats returns the push app's counters.
func (a *PushApp) Stats() PushStats {
	return PushStats{
		Dropped: a.dropped.Load(), SlowClosed: a.slowClosed.Load(),
		Kicked: a.kicked.Load(), Commands: a.commands.Load(), CommandErrors: a.commandErrors.Load(),
		SubscriptionLimited: a.subLimited.Load(), ChannelLimited: a.channelLimited.Load(),
		CommandRateClosed: a.rateClosed.Load(), PagedBacklogs: a.paged.Load(),
	}
}

// Accept authenticates the upgrade request.
func (a *PushApp) Accept(c *Conn, req *codec.Request) (string, error) {
	if req.Path != a.o.Path {
		return "", &codec.HandshakeError{Status: 404, Reason: "no WebSocket endpoint at " + req.Path + " (use " + a.o.Path + ")"}
	}
	if a.o.Origins != nil && req.Origin != "" && !a.o.Origins.Allowed(req.Origin, req.Host) {
		return "", &codec.HandshakeError{Status: 403, Reason: "origin not allowed"}
	}
	q := parseQuery(req.RawQuery)
	token := q.first("token")
	if token == "" {
		if t, ok := strings.CutPrefix(req.Authorization, "Bearer "); ok {
			token = strings.TrimSpace(t)
		}
	}
	var claims *auth.Claims
	var err error
	if token != "" {
		claims, err = a.o.Verifier.Verify(token)
	} else {
		claims, err = a.o.Verifier.Anonymous()
	}
	if err != nil {
		return "", &codec.HandshakeError{Status: 401, Reason: err.Error()}
	}
	sess := &Session{conn: c, claims: claims, raw: q.first("format") == "raw"}
	var ps pendingSubs
	ps.channels = q.all("channel")
	for _, s := range q.all("since") {
		// channel:offset:epoch; the channel may itself contain ':'.
		i := strings.LastIndexByte(s, ':')
		if i <= 0 {
			continue
		}
		j := strings.LastIndexByte(s[:i], ':')
		if j <= 0 {
			continue
		}
		off, perr := strconv.ParseUint(s[j+1:i], 10, 64)
		if perr != nil {
			continue
		}
		if ps.since == nil {
			ps.since = map[string]hub.Position{}
		}
		ps.since[s[:j]] = hub.Position{Offset: off, Epoch: s[i+1:]}
	}
	if len(ps.channels) > 0 {
		sess.pending = &ps
	}
	c.App = sess
	return "", nil
}

// OnOpen subscribes the personal channel and the channels of the URL.
func (a *PushApp) OnOpen(c *Conn) {
	sess := c.App.(*Session)
	now := time.Now()
	if ttl, ok := sess.claims.TTL(now); ok {
		c.ExpireAt(now.Add(ttl))
	}
	li := c.li
	if sub := sess.claims.Subject; sub != "" {
		pl := &a.loops[li]
		if pl.users == nil {
			pl.users = map[string][]*Session{}
		}
		pl.users[sub] = append(pl.users[sub], sess)
		a.subscribe(sess, "user:"+sub, nil, nil, true)
	}
	if ps := sess.pending; ps != nil {
		sess.pending = nil
		for _, ch := range ps.channels {
			var since *hub.Position
			if p, ok := ps.since[ch]; ok {
				since = &p
			}
			a.subscribe(sess, ch, since, nil, false)
		}
	}
}

// OnClose unsubscribes everything.
func (a *PushApp) OnClose(c *Conn) {
	sess, _ := c.App.(*Session)
	if sess == nil {
		return
	}
	l := c.pc.Loop()
	for _, ch := range sess.channels {
		a.o.Hub.Unsubscribe(l, ch, sess)
		a.release(ch)
	}
	sess.channels = nil
	pl := &a.loops[c.li]
	delete(pl.index, sess)
	if sess.flags&flagPaging != 0 {
		delete(pl.pagers, sess)
		sess.flags &^= flagPaging
	}
	if sub := sess.claims.Subject; sub != "" {
		pl := &a.loops[c.li]
		list := pl.users[sub]
		for i, s := range list {
			if s == sess {
				list[i] = list[len(list)-1]
				list = list[:len(list)-1]
				break
			}
		}
		if len(list) == 0 {
			delete(pl.users, sub)
		} else {
			pl.users[sub] = list
		}
	}
}

// OnMessage runs a client command; a connection past CommandRate is
// closed with 1008 instead.
func (a *PushApp) OnMessage(c *Conn, op codec.OpCode, payload []byte) {
	s := c.App.(*Session)
	if !a.allowCommand(s) {
		a.rateClosed.Add(1)
		c.Close(codec.ClosePolicyViolation, "too many commands")
		return
	}
	a.command(s, payload)
}

// Deliver writes a published message to the session, applying the
// slow-consumer policy. It runs on the session's loop.
func (s *Session) Deliver(m *hub.Message) {
	c := s.conn
	if !c.Open() {
		return
	}
	frame := s.frameOf(m)
	if c.srv.app.(*PushApp).admit(c, len(frame)) {
		c.WritePrepared(frame)
	}
}

// frameOf picks the frame of m this session receives: the envelope or the
// bare payload, compressed when the session negotiated permessage-deflate.
// Sessions with a full window share the message's compressed frame (built
// once per publish); those that asked for a smaller window get a
// compression of their own, in the loop's scratch arena.
func (s *Session) frameOf(m *hub.Message) []byte {
	c := s.conn
	if !c.z.Enabled() {
		if s.raw {
			return m.Raw()
		}
		return m.Envelope()
	}
	z := c.srv.deflate
	if c.z.ServerWindowBits == 15 {
		if s.raw {
			return m.RawDeflate(z)
		}
		return m.EnvelopeDeflate(z)
	}
	plain := m.Envelope()
	if s.raw {
		plain = m.Raw()
	}
	buf := c.Scratch(len(plain))
	if f, ok := z.AppendCompressedOf(buf, plain, c.z.ServerWindowBits); ok {
		return f
	}
	return plain
}

// DisconnectUser closes every connection of user on this node with 4003
// and returns how many there were. Safe from any goroutine.
func (a *PushApp) DisconnectUser(user string, reason string) int {
	if reason == "" {
		reason = "disconnected by the server"
	}
	var total atomic.Int64
	done := make(chan struct{}, 64)
	loops := a.srv.allLoops()
	for _, l := range loops {
		err := l.Run(func() {
			defer func() { done <- struct{}{} }()
			pl := &a.loops[l.Index()]
			list := append([]*Session(nil), pl.users[user]...)
			for _, s := range list {
				if s.conn.Open() {
					total.Add(1)
					a.kicked.Add(1)
					a.srv.closeConn(s.conn.pc, CloseKicked, reason)
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
	return int(total.Load())
}

// CloseKicked is the close code for a connection the backend disconnected:
// the client should not reconnect automatically.
const CloseKicked = 4003

// query is a parsed URL query that keeps order and repeats.
type query [][2]string

// parseQuery parses a raw query; bad escapes keep the raw text.
func parseQuery(raw string) query {
	var q query
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		q = append(q, [2]string{unescape(k), unescape(v)})
	}
	return q
}

func unescape(s string) string {
	if v, err := url.QueryUnescape(s); err == nil {
		return v
	}
	return s
}

func (q query) first(k string) string {
	for _, kv := range q {
		if kv[0] == k {
			return kv[1]
		}
	}
	return ""
}

func (q query) all(k string) []string {
	var out []string
	for _, kv := range q {
		if kv[0] == k {
			out = append(out, kv[1])
		}
	}
	return out
}

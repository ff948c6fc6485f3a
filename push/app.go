package push

import (
	"strings"
	"sync/atomic"
	"time"

	"github.com/herald-push/herald/auth"
	"github.com/herald-push/herald/codec"
	"github.com/herald-push/herald/hook"
	"github.com/herald-push/herald/hub"
	"github.com/herald-push/herald/namespace"
	"github.com/herald-push/herald/server"
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
// (`{"op":"msg"}`); the app hands them to the worker pool in
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

// Options configure the App. Hub and Verifier are required; every other
// zero field means its default.
type Options struct {
	// Hub routes the messages; build it with Encoder as its
	// hub.Config.Encoder, so each message's frames are built once per
	// publish (without, every delivery encodes a frame of its own).
	Hub *hub.Hub
	// Verifier authenticates the upgrade requests' tokens.
	Verifier *auth.Verifier
	// Origins, when set, refuses browsers from other origins (403).
	Origins *auth.OriginPolicy
	// Slow is the slow-consumer policy (default SlowClose).
	Slow SlowPolicy
	// Path is the WebSocket endpoint (default "/ws").
	Path string
	// StreamPath is the Server-Sent Events endpoint (default
	// DefaultStreamPath, "/sse").
	StreamPath string
	// Handlers receive application messages; nil answers them with the
	// error code "not_supported".
	Handlers Handlers
	// Workers runs Handlers and Publish off the loops, in per-connection
	// order.
	Workers Submitter
	// Interest, when set, is told which channels have subscribers on this
	// node and may hold a subscription back until the node's copy of the
	// channel is current: a multi-node broker (broker.NATS) uses it. Nil:
	// subscriptions go straight to Hub.
	Interest Interest
	// Hooks, when set, asks the application's backend about the events
	// it has URLs for (docs/hooks.md): a request without a token is
	// authorized by the connect hook, a subscribe the claims do not grant
	// by the subscribe hook, every client publish by the publish hook,
	// and a hook-authorized connection's expiry extended by the refresh
	// hook. The calls run on Workers, never on a loop.
	Hooks *hook.Client
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
	// Namespaces, when set, refuses channels of unknown namespaces (error
	// code "unknown_namespace") and applies each namespace's permissions
	// to clients' sub and pub (docs/namespaces.md); build the Hub with
	// its HubOptions, so history and sizes follow too. Nil: no
	// namespaces.
	Namespaces *namespace.Table
	// Presence, when set, reports which channels have presence
	// (docs/protocol.md, "Presence"): one member per token subject,
	// join and leave events to the channel's subscribers, the member
	// list in the subscribed reply and the presence command. Nil: no
	// channel has presence.
	Presence func(channel string) bool
	// PresenceLeaveDelay is how long a member whose last connection left
	// stays before its leave event (0: DefaultPresenceLeaveDelay;
	// negative: none).
	PresenceLeaveDelay time.Duration
	// PresenceRoster, when set, shares the presence channels' members
	// with the other nodes; hand its changes to App.RemotePresence.
	PresenceRoster PresenceRoster
	// PresenceMaxMembers caps the members (distinct users) of one
	// presence channel; a subscribe of a new member past it is answered
	// with the error code "limit" (members of other nodes are not
	// refused). 0 means DefaultPresenceMaxMembers (100), a negative value
	// sets no cap.
	PresenceMaxMembers int
}

// App is herald's client protocol (docs/protocol.md), a server.App on top
// of the WebSocket transport: authentication at upgrade, subscriptions,
// publishing, recovery and delivery with backpressure. Its per-loop user
// index lets the API disconnect a user's every connection. Build it with
// New and hand it to server.New, which attaches it; Stats and
// DisconnectUser are safe from any goroutine, the server.App methods run
// on the connections' loops.
type App struct {
	o     Options
	srv   *server.Server
	loops []appLoop // indexed by Loop.Index; touched only by that loop
	// pres is the node's presence view, nil without Options.Presence.
	pres *presence

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
	presEvents     atomic.Uint64
	presMembers    atomic.Int64
}

// appLoop is the App's state for one event loop, touched only by that
// loop's goroutine.
type appLoop struct {
	// index maps each channel of a session with many subscriptions to its
	// position in Session.channels, so subscribe and unsubscribe stay
	// O(1) (see indexFrom).
	index map[*Session]map[string]int32
	// pagers holds the recovery backlogs waiting for room in a session's
	// output budget (flagPaging).
	pagers map[*Session][]*pager
	// opening is the session being opened and what its upgrade request
	// asked for, from admit until its OnOpen acts on it (synchronously,
	// in the same upgrade, once Accept or the connect hook said yes), so
	// an idle session keeps none of it.
	opening opening
	// one is the pending subscriptions of an upgrade URL with a single
	// channel, reused by each accepted upgrade of the loop; the channel
	// is a view of the request (server.App.Accept), valid until OnOpen
	// returns.
	one pendingOne
	// streams holds the event-stream sessions' positions (flagStream).
	streams map[*Session]*stream
	// hooked holds the sessions the connect hook authorized, with what
	// their refresh needs (hooks.go).
	hooked map[*Session]*hooked
	// asking holds the subscriptions waiting for the subscribe hook, by
	// session and channel: the number of the ask whose answer counts.
	asking map[*Session]map[string]uint64
	// asks numbers the subscribe hook's asks.
	asks uint64
	// idBuf is where the loop builds a stream event's id line; it is
	// reused, since Conn.WriteStream copies what it queues.
	idBuf []byte
	// tokens are the verified tokens the loop keeps at hand, in front of
	// the Verifier's cache (nil without a Verifier).
	tokens *auth.LoopCache
}

// New builds the App; server.New(cfg, app, log) attaches it to the
// server that runs it.
func New(o Options) *App {
	if o.Path == "" {
		o.Path = "/ws"
	}
	if o.StreamPath == "" {
		o.StreamPath = DefaultStreamPath
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
	a := &App{o: o}
	if o.Presence != nil {
		a.pres = newPresence(a)
	}
	if o.CommandRate > 0 {
		a.interval = max(1, int64(float64(time.Second)/o.CommandRate))
		a.tolerance = a.interval * max(1, int64(2*o.CommandRate)-1)
	}
	return a
}

// Attach ties the app to the server that runs it (server.App): it sizes
// the per-loop tables. server.New calls it once, before serving.
func (a *App) Attach(s *server.Server) {
	a.srv = s
	a.loops = make([]appLoop, s.NumLoops())
	if a.o.Verifier != nil {
		for i := range a.loops {
			a.loops[i].tokens = a.o.Verifier.NewLoopCache()
		}
	}
}

// Session is one client's push state: who it is, what it subscribed to. It
// is owned by the connection's loop; methods other than ID and Subject are
// for that loop only unless stated.
//
// It is kept small (64 bytes) because every connection has one: what few
// sessions need (the subscriptions of the upgrade URL until OnOpen, an
// index of many channels, a paged backlog) lives in the loop's tables.
type Session struct {
	app      *App
	conn     *server.Conn
	claims   *auth.Claims
	channels []string // in no particular order
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

// list is the channels to subscribe to (none for a nil ps).
func (ps *pendingSubs) list() []string {
	if ps == nil {
		return nil
	}
	return ps.channels
}

// ID is the connection id.
func (s *Session) ID() uint64 { return s.conn.ID() }

// Subject is the token's subject ("" for anonymous clients).
func (s *Session) Subject() string { return s.claims.Subject }

// Send writes data to this client as an application message
// `{"op":"msg","data":...}`. Safe from any goroutine: the write happens on
// the connection's loop, within the connection's output budget: past it
// the slow-consumer policy applies, as for published messages. An event
// stream (Server-Sent Events) gets no application messages.
func (s *Session) Send(data []byte) {
	f := server.NewFrame(appendMsgFrame(nil, data))
	_ = s.conn.Loop().Run(func() { s.write(f) })
}

// Stats are the App's counters, a snapshot.
type Stats struct {
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
	// PresenceMembers is the members of presence channels this node
	// knows (with NATS, the cluster's), one per user and channel;
	// PresenceEvents counts the join and leave events it decided (each
	// once, however many subscribers it reached).
	PresenceMembers int64  `json:"presence_members"`
	PresenceEvents  uint64 `json:"presence_events"`
	// PresenceLimited counts subscribes refused by PresenceMaxMembers.
	PresenceLimited uint64 `json:"presence_limited"`
}

// Stats returns the App's counters. Safe from any goroutine.
func (a *App) Stats() Stats {
	return Stats{
		Dropped: a.dropped.Load(), SlowClosed: a.slowClosed.Load(),
		Kicked: a.kicked.Load(), Commands: a.commands.Load(), CommandErrors: a.commandErrors.Load(),
		SubscriptionLimited: a.subLimited.Load(), ChannelLimited: a.channelLimited.Load(),
		CommandRateClosed: a.rateClosed.Load(), PagedBacklogs: a.paged.Load(),
		PresenceMembers: a.presMembers.Load(), PresenceEvents: a.presEvents.Load(),
		PresenceLimited: a.presenceLimited(),
	}
}

// Accept authenticates the upgrade request.
func (a *App) Accept(c *server.Conn, req *codec.Request) (string, error) {
	if req.Path != a.o.Path {
		return "", &codec.HandshakeError{Status: 404, Reason: "no WebSocket endpoint at " + req.Path + " (use " + a.o.Path + ")"}
	}
	q := parseQuery(req.RawQuery).scan()
	sess, err := a.authenticate(c, req, q.token)
	if err != nil {
		return "", err
	}
	sess.raw = q.format == "raw"
	ps := q.pending(&a.loops[c.Loop().Index()].one)
	if sess.claims == nil {
		return "", a.askConnect(c, req, sess, ps)
	}
	a.admit(c, sess, ps)
	return "", nil
}

// opening is a session between admit and its OnOpen.
type opening struct {
	sess *Session
	ps   *pendingSubs
}

// admit makes sess the connection's session, with the subscriptions ps
// the upgrade asked for (nil: none), for OnOpen to act on; OnOpen runs
// next on this loop, in the same upgrade.
func (a *App) admit(c *server.Conn, sess *Session, ps *pendingSubs) {
	pl := &a.loops[c.Loop().Index()]
	pl.opening = opening{sess: sess, ps: ps}
	if sess.streaming() {
		if pl.streams == nil {
			pl.streams = map[*Session]*stream{}
		}
		pl.streams[sess] = &stream{pos: map[string]hub.Position{}}
	}
	c.App = sess
}

var _ server.StreamApp = (*App)(nil)

// authenticate checks a request's Origin and token, for the WebSocket
// and the event stream alike, and returns the new session: without its
// claims when the connect hook is to decide.
func (a *App) authenticate(c *server.Conn, req *codec.Request, token string) (*Session, error) {
	if a.o.Origins != nil && req.Origin != "" && !a.o.Origins.Allowed(req.Origin, req.Host) {
		return nil, &codec.HandshakeError{Status: 403, Reason: "origin not allowed"}
	}
	if token == "" {
		if t, ok := strings.CutPrefix(req.Authorization, "Bearer "); ok {
			token = strings.TrimSpace(t)
		}
	}
	var claims *auth.Claims
	var err error
	switch {
	case token != "":
		// On c's loop: its own cache first, and its clock.
		claims, err = a.loops[c.Loop().Index()].tokens.Verify(token, c.Loop().Now())
	case a.o.Hooks.Enabled(hook.EventConnect):
		// No token: the connect hook decides (askConnect), from the
		// cookies and headers it is shown.
		return newSession(a, c, nil), nil
	default:
		claims, err = a.o.Verifier.Anonymous()
	}
	if err != nil {
		return nil, &codec.HandshakeError{Status: 401, Reason: err.Error()}
	}
	return newSession(a, c, claims), nil
}

// sessionOfOne and sessionOfTwo are a Session allocated with room for
// its first channel or two (Session.channels starts in room): the one an
// anonymous connection's URL names, or a user's personal channel and the
// URL's, mostly.
type (
	sessionOfOne struct {
		sess Session
		room [1]string
	}
	sessionOfTwo struct {
		sess Session
		room [2]string
	}
)

// newSession is the session of c with claims (nil: the connect hook is to
// give them), allocated with room for its first channels, since every
// handshake pays for each allocation twice, in the allocator and in the
// collector.
func newSession(a *App, c *server.Conn, claims *auth.Claims) *Session {
	if claims == nil || claims.Subject == "" {
		one := &sessionOfOne{sess: Session{app: a, conn: c, claims: claims}}
		one.sess.channels = one.room[:0]
		return &one.sess
	}
	two := &sessionOfTwo{sess: Session{app: a, conn: c, claims: claims}}
	two.sess.channels = two.room[:0]
	return &two.sess
}

// OnOpen subscribes the personal channel and the channels of the URL.
func (a *App) OnOpen(c *server.Conn) {
	sess := c.App.(*Session)
	if !sess.claims.ExpiresAt.IsZero() { // the clock only for a token's expiry
		now := c.Loop().Now()
		if ttl, ok := sess.claims.TTL(now); ok {
			c.ExpireAt(now.Add(ttl))
		}
	}
	pl := &a.loops[c.Loop().Index()]
	var ps *pendingSubs
	if pl.opening.sess == sess {
		ps = pl.opening.ps
	}
	pl.opening = opening{}
	if sess.streaming() && !c.WriteFrame(streamPrelude) {
		a.overflow(c)
		return
	}
	n := len(ps.list())
	if sess.claims.Subject != "" {
		n++ // the personal channel
	}
	if n > cap(sess.channels) {
		// Room for all the channels at once, not grown one at a time.
		sess.channels = make([]string, 0, n)
	}
	if sess.claims.Subject != "" {
		personal := sess.claims.PersonalChannel()
		var since *hub.Position
		if sess.streaming() {
			// A stream's id carries the personal channel's position too.
			since = ps.at(personal)
		}
		a.subscribe(sess, personal, since, nil, true)
	}
	for _, ch := range ps.list() {
		a.subscribe(sess, ch, ps.at(ch), nil, false)
	}
}

// OnClose unsubscribes everything.
func (a *App) OnClose(c *server.Conn) {
	sess, _ := c.App.(*Session)
	if sess == nil {
		return
	}
	l := c.Loop()
	for _, ch := range sess.channels {
		a.o.Hub.Unsubscribe(l, ch, sess)
		a.release(ch)
		if a.hasPresence(ch) {
			a.presenceLeft(sess, ch)
		}
	}
	sess.channels = nil
	pl := &a.loops[l.Index()]
	delete(pl.index, sess)
	if pl.opening.sess == sess {
		pl.opening = opening{}
	}
	delete(pl.streams, sess)
	a.forgetHooks(pl, sess)
	if sess.flags&flagPaging != 0 {
		delete(pl.pagers, sess)
		sess.flags &^= flagPaging
	}
}

// OnMessage runs a client command; a connection past CommandRate is
// closed with 1008 instead.
func (a *App) OnMessage(c *server.Conn, op codec.OpCode, payload []byte) {
	s := c.App.(*Session)
	if !a.allowCommand(s) {
		a.rateClosed.Add(1)
		c.Close(codec.ClosePolicyViolation, "too many commands")
		return
	}
	a.command(s, payload)
}

// Deliver writes a published message to the session, applying the
// slow-consumer policy (hub.Subscriber). It runs on the session's loop.
func (s *Session) Deliver(m *hub.Message) {
	if s.conn.Open() && !s.writeMessage(m) && s.conn.Open() {
		s.app.overflow(s.conn)
	}
}

// write queues f within the output budget; past it the slow-consumer
// policy applies. Every frame the App queues besides command replies goes
// through it. s's loop only.
func (s *Session) write(f *server.Frame) {
	c := s.conn
	if s.streaming() {
		return // WebSocket frames only: a stream gets no application messages
	}
	if c.Open() && !c.WriteFrame(f) {
		s.app.overflow(c)
	}
}

// frameOf picks the frame of m this session receives: the envelope or the
// bare payload (the transport picks its compression).
func (s *Session) frameOf(m *hub.Message) *server.Frame {
	f := framesOf(m)
	if s.raw {
		return &f.Raw
	}
	return &f.Envelope
}

// DisconnectUser closes every connection of user on this node with 4003
// and returns how many there were. Safe from any goroutine.
func (a *App) DisconnectUser(user string, reason string) int {
	if reason == "" {
		reason = "disconnected by the server"
	}
	if a.srv == nil {
		return 0 // not attached (echo mode): no push connections
	}
	// A user's connections on a loop are its subscribers of the user's
	// personal channel there.
	personal := auth.PersonalChannelOf(user)
	var total atomic.Int64
	done := make(chan struct{}, 64)
	loops := a.srv.Loops()
	for _, l := range loops {
		err := l.Run(func() {
			defer func() { done <- struct{}{} }()
			for _, sub := range a.o.Hub.LoopSubscribers(l, personal) {
				if s, ok := sub.(*Session); ok && s.conn.Open() {
					total.Add(1)
					a.kicked.Add(1)
					s.conn.Close(CloseKicked, reason)
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

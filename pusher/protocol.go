package pusher

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/herald-push/herald/codec"
	"github.com/herald-push/herald/pusher/webhook"
	"github.com/herald-push/herald/server"
)

// Close and error codes of the Pusher protocol.
const (
	CodeUnknownApp      = 4001 // no application with that key: do not reconnect
	CodeBadProtocol     = 4007 // unsupported protocol version
	CodeUnauthorized    = 4009 // sign-in refused, or the user's connections terminated
	CodeOverCapacity    = 4100 // reconnect with backoff
	CodeReconnect       = 4200 // reconnect at once (drain, slow consumer)
	CodeRateLimited     = 4301 // too many messages from the client
	defaultActivity     = 120
	defaultMaxSubs      = 128
	defaultCommandRate  = 50
	maxChannelName      = 164
	maxEventName        = 200
	serverToUserPrefix  = "#server-to-user-"
	cacheScan           = 16 // history messages scanned for a cache channel's last event
	pathPrefix          = "/app/"
	supportedProtocolLo = 5
	supportedProtocolHi = 7
)

// Presence limits, Pusher's: a channel's members (App.MaxPresenceMembers
// by default), one member's user_id and user_info (its JSON text).
const (
	DefaultMaxPresenceMembers = 100
	MaxUserID                 = 128
	MaxUserInfo               = 1024
)

// maxMemberBytes bounds one member's bytes in a subscription_succeeded
// message: its id three times (in ids, and as the key of its hash entry,
// itself built from the id and user_info) and its user_info, each
// JSON-encoded inside the data string, with their separators. An id byte
// takes at most 7 bytes there (a control character, \\u00XX), a
// user_info byte at most 2 (valid UTF-8 compact JSON: only '"', '\' and
// U+2028/9 are escaped again).
const maxMemberBytes = 3*(7*MaxUserID+4) + 2*MaxUserInfo + 4

// snapshotOverhead bounds a subscription_succeeded message's bytes other
// than its members': the event, the channel and the frame header.
const snapshotOverhead = 256 + 2*maxChannelName

// CheckBudget reports an app whose full presence channel's
// subscription_succeeded message would not fit writeBufferLimit, the
// output budget of one connection: every joiner of such a channel would be
// closed.
func CheckBudget(apps []App, writeBufferLimit int) error {
	for i := range apps {
		a := &apps[i]
		if a.MaxPresenceMembers < 0 {
			return errors.New("pusher app " + strconv.Quote(a.ID) + ": max_presence_members must not be negative")
		}
		if writeBufferLimit <= 0 {
			continue
		}
		if need := a.presenceCap()*maxMemberBytes + snapshotOverhead; need > writeBufferLimit {
			return fmt.Errorf("pusher app %q: a presence channel of %d members may need %d bytes to list (%d bytes a member), more than write_buffer_limit %d: raise write_buffer_limit or lower max_presence_members",
				a.ID, a.presenceCap(), need, maxMemberBytes, writeBufferLimit)
		}
	}
	return nil
}

// Protocol is the Pusher Channels protocol (v7), a server.App for the
// paths /app/{key}, and the node's side of Service. Build it with New;
// server.New (through a server.Mux) attaches it.
type Protocol struct {
	o     Options
	apps  map[string]*App // by key
	byID  map[string]*App
	srv   *server.Server
	loops []protoLoop

	interval, tolerance int64
	// node is this process's part of every socket id (a random number,
	// shifted above the connection ids); tagKeys key each app's socket-id
	// tags (from the app's secret, so every node checks every node's ids).
	node     uint64
	tagKeys  map[*App][]byte
	presence presence
	occ      *occupancy // nil: the hub counts, no webhooks
	hooks    *hooks     // nil: no app has webhooks

	unknownApp, authFailed, clientEvents, rateClosed, slowClosed, dropped, subLimited atomic.Uint64
	membersLimited, userInfoLimited, budgetClosed                                     atomic.Uint64
}

// protoLoop is the Protocol's state for one loop, touched only there.
type protoLoop struct {
	// users maps "{app id}\x00{user id}" to the signed-in sockets.
	users map[string][]*socket
	// signedIn holds the user id of each signed-in socket.
	signedIn map[*socket]string
}

// socket is one Pusher connection's state; kept small, as every
// connection has one.
type socket struct {
	p        *Protocol
	c        *server.Conn
	app      *App // nil: unknown key (closed with 4001 at open)
	channels []string
	pending  []*pending // subscriptions waiting for the Broker
	tat      int64
	bad      uint8 // protocol version refused (closed with 4007 at open)
}

// New builds the Protocol.
func New(o Options) *Protocol {
	if o.Slow == "" {
		o.Slow = "close"
	}
	if o.MaxSubscriptions == 0 {
		o.MaxSubscriptions = defaultMaxSubs
	}
	if o.CommandRate == 0 {
		o.CommandRate = defaultCommandRate
	}
	if o.ActivityTimeout <= 0 {
		o.ActivityTimeout = defaultActivity
	}
	p := &Protocol{o: o, apps: map[string]*App{}, byID: map[string]*App{}, tagKeys: map[*App][]byte{}}
	for i := range o.Apps {
		a := &o.Apps[i]
		p.apps[a.Key], p.byID[a.ID] = a, a
		m := hmac.New(sha256.New, []byte(a.Secret))
		m.Write([]byte("herald pusher socket id"))
		p.tagKeys[a] = m.Sum(nil)
	}
	p.node = uint64(o.Node) << connBits
	if o.Node == 0 {
		var b [4]byte
		_, _ = rand.Read(b[:])
		p.node = uint64(1+binary.BigEndian.Uint32(b[:])%(1<<nodeBits-1)) << connBits
	}
	if o.CommandRate > 0 {
		p.interval = max(1, int64(float64(time.Second)/o.CommandRate))
		p.tolerance = p.interval * max(1, int64(2*o.CommandRate)-1)
	}
	p.presence = newPresence(p, o.LeaveDelay)
	for _, a := range p.apps {
		if len(a.Webhooks) > 0 {
			// Validate has checked the URLs: newHooks cannot fail on them.
			if h, err := newHooks(p.apps, o.Webhooks); err == nil {
				p.hooks = h
			}
			break
		}
	}
	p.occ = newOccupancy(p, o.Webhooks.VacateDelay)
	return p
}

// Validate reports the first application that cannot work.
func Validate(apps []App) error {
	ids, keys := map[string]bool{}, map[string]bool{}
	for _, a := range apps {
		switch {
		case a.ID == "" || a.Key == "" || a.Secret == "":
			return errors.New("pusher app: id, key and secret are required")
		case strings.ContainsAny(a.ID, ":/ ") || strings.ContainsAny(a.Key, "/?# "):
			return errors.New("pusher app " + strconv.Quote(a.ID) + ": id and key must not hold ':', '/', '?', '#' or spaces")
		case ids[a.ID] || keys[a.Key]:
			return errors.New("pusher app " + strconv.Quote(a.ID) + ": id and key must be unique")
		}
		for _, u := range a.Webhooks {
			if err := webhook.CheckURL(u); err != nil {
				return errors.New("pusher app " + strconv.Quote(a.ID) + ": " + err.Error())
			}
		}
		ids[a.ID], keys[a.Key] = true, true
	}
	return nil
}

// Attach sizes the per-loop tables (server.App).
func (p *Protocol) Attach(s *server.Server) {
	p.srv = s
	p.loops = make([]protoLoop, s.NumLoops())
}

// Accept takes every upgrade to /app/{key}: an unknown key is told 4001
// once open, as Pusher does.
func (p *Protocol) Accept(c *server.Conn, req *codec.Request) (string, error) {
	key, ok := strings.CutPrefix(req.Path, pathPrefix)
	if !ok || key == "" || strings.Contains(key, "/") {
		return "", &codec.HandshakeError{Status: 404, Reason: "no Pusher endpoint at " + req.Path + " (use /app/{key})"}
	}
	if p.o.Origins != nil && req.Origin != "" && !p.o.Origins.Allowed(req.Origin, req.Host) {
		return "", &codec.HandshakeError{Status: 403, Reason: "origin not allowed"}
	}
	s := &socket{p: p, c: c, app: p.apps[key]}
	if v := queryValue(req.RawQuery, "protocol"); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < supportedProtocolLo || n > supportedProtocolHi {
			s.bad = 1
		}
	}
	c.App = s
	return "", nil
}

// queryValue returns the first value of name in a raw query.
func queryValue(raw, name string) string {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		if k, v, _ := strings.Cut(kv, "="); k == name {
			return v
		}
	}
	return ""
}

// OnOpen sends pusher:connection_established, or the error that ends a
// connection to an unknown app.
func (p *Protocol) OnOpen(c *server.Conn) {
	s := c.App.(*socket)
	switch {
	case s.app == nil:
		p.unknownApp.Add(1)
		p.fail(s, CodeUnknownApp, "App key not in this server")
		return
	case s.bad != 0:
		p.fail(s, CodeBadProtocol, "Unsupported protocol version")
		return
	}
	inner, _ := json.Marshal(map[string]any{"socket_id": p.socketID(s), "activity_timeout": p.o.ActivityTimeout})
	p.send(s, map[string]any{"event": "pusher:connection_established", "data": string(inner)})
}

// fail sends pusher:error with code and closes with it.
func (p *Protocol) fail(s *socket, code int, msg string) {
	p.sendError(s, code, msg)
	s.c.Close(uint16(code), msg)
}

// OnBudget closes with 4100 (over capacity: reconnect with backoff) a
// connection whose own output (replies, the member list) passed its
// output budget (server.BudgetApp), not with 1008, which Pusher clients
// do not take for a Pusher close.
func (p *Protocol) OnBudget(*server.Conn) (uint16, string) {
	p.budgetClosed.Add(1)
	return CodeOverCapacity, "Over capacity: output budget exceeded"
}

// OnDrain closes with 4200 (reconnect now) in a graceful shutdown.
func (p *Protocol) OnDrain(*server.Conn) (uint16, string) {
	return CodeReconnect, "server shutting down"
}

// OnClose leaves every channel.
func (p *Protocol) OnClose(c *server.Conn) {
	s, _ := c.App.(*socket)
	if s == nil || s.app == nil {
		return
	}
	for len(s.channels) > 0 {
		p.leave(s, s.channels[len(s.channels)-1])
	}
	pl := &p.loops[c.Loop().Index()]
	if uid, ok := pl.signedIn[s]; ok {
		delete(pl.signedIn, s)
		k := s.app.ID + "\x00" + uid
		list := pl.users[k]
		for i, o := range list {
			if o == s {
				list[i] = list[len(list)-1]
				list = list[:len(list)-1]
				break
			}
		}
		if len(list) == 0 {
			delete(pl.users, k)
		} else {
			pl.users[k] = list
		}
	}
}

// Socket numbers: the first part of a socket id is the node's number
// (nodeBits, drawn at random by each process unless Options.Node sets it)
// above the connection id (connBits), so that the ids of two nodes differ
// and an id of an earlier process names no connection of this one.
const (
	connBits = 40
	nodeBits = 23
)

// num is s's socket number, the first part of its socket id, unique
// across the nodes of a cluster: what an exclusion (socket_id) names.
func (s *socket) num() uint64 { return s.p.node | s.c.ID() }

// socketID is s's Pusher socket id: "{number}.{tag}", the tag a hash of
// the number keyed by the app's secret.
func (p *Protocol) socketID(s *socket) string {
	return p.formatSocketID(s.app, s.num())
}

// formatSocketID is the socket id of number n in app a.
func (p *Protocol) formatSocketID(a *App, n uint64) string {
	return strconv.FormatUint(n, 10) + "." + strconv.FormatUint(uint64(p.tag(a, n)), 10)
}

func (p *Protocol) tag(a *App, n uint64) uint32 {
	m := hmac.New(sha256.New, p.tagKeys[a])
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	m.Write(b[:])
	return binary.BigEndian.Uint32(m.Sum(nil)) % 1_000_000_000
}

// parseSocketID returns the socket number a socket id of app a names: ok
// false when it is malformed, n 0 when it is well formed but its tag is
// not the app's (it names no connection of any node).
func (p *Protocol) parseSocketID(a *App, sid string) (n uint64, ok bool) {
	x, y, found := strings.Cut(sid, ".")
	if !found {
		return 0, false
	}
	n, err1 := strconv.ParseUint(x, 10, 64)
	t, err2 := strconv.ParseUint(y, 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	if uint64(p.tag(a, n)) != t {
		return 0, true
	}
	return n, true
}

// sign is the hex HMAC-SHA256 of msg with secret.
func sign(secret, msg string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

// checkAuth verifies an "key:signature" auth string over msg, in
// constant time.
func checkAuth(app *App, auth, msg string) bool {
	key, sig, ok := strings.Cut(auth, ":")
	if !ok || key != app.Key {
		return false
	}
	want := sign(app.Secret, msg)
	return hmac.Equal([]byte(sig), []byte(want))
}

// send writes a protocol message of the server's (client-caused output:
// past the budget the transport closes, with 4100 through OnBudget).
func (p *Protocol) send(s *socket, msg map[string]any) {
	b, err := json.Marshal(msg)
	if err != nil {
		return
	}
	s.c.WriteMessage(codec.OpText, b)
}

// sendError writes pusher:error (code 0: none).
func (p *Protocol) sendError(s *socket, code int, msg string) {
	d := map[string]any{"message": msg, "code": nil}
	if code != 0 {
		d["code"] = code
	}
	p.send(s, map[string]any{"event": "pusher:error", "data": d})
}

// subError writes pusher:subscription_error on channel.
func (p *Protocol) subError(s *socket, ch, typ, msg string, status int) {
	p.send(s, map[string]any{"event": "pusher:subscription_error", "channel": ch,
		"data": map[string]any{"type": typ, "error": msg, "status": status}})
}

// clock is the command buckets' time base.
var clockStart = time.Now()

// allow takes one message from s's bucket (a GCRA, as push's).
func (p *Protocol) allow(s *socket) bool {
	if p.interval <= 0 {
		return true
	}
	now := int64(time.Since(clockStart))
	tat := max(s.tat, now)
	if tat-now > p.tolerance {
		return false
	}
	s.tat = tat + p.interval
	return true
}

// hubName is a channel's name in the hub.
func hubName(app *App, ch string) string { return app.ID + ":" + ch }

// validChannel reports whether ch is a Pusher channel name.
func validChannel(ch string) bool {
	if rest, ok := strings.CutPrefix(ch, serverToUserPrefix); ok {
		ch = rest
	}
	if len(ch) == 0 || len(ch) > maxChannelName {
		return false
	}
	for i := 0; i < len(ch); i++ {
		c := ch[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_-=@,.;", c) >= 0) {
			return false
		}
	}
	return true
}

func isPresence(ch string) bool { return strings.HasPrefix(ch, "presence-") }
func isPrivate(ch string) bool  { return strings.HasPrefix(ch, "private-") }
func isCache(ch string) bool {
	for _, pre := range []string{"cache-", "private-cache-", "private-encrypted-cache-", "presence-cache-"} {
		if strings.HasPrefix(ch, pre) {
			return true
		}
	}
	return false
}

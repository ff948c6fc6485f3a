package push

import (
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/herald-push/herald/codec"
	"github.com/herald-push/herald/hub"
	"github.com/herald-push/herald/server"
)

// DefaultPresenceLeaveDelay is how long a member whose last connection
// left stays in a presence channel before its leave event: a page reload,
// or a client reconnecting to another node, within it is no leave.
const DefaultPresenceLeaveDelay = time.Second

// MaxPresenceList is the most user ids a member list carries (the
// subscribed reply's and the presence reply's); the count beside it is
// exact. It is Pusher's cap on a presence channel's listed members.
const MaxPresenceList = 100

// PresenceRoster shares presence between the nodes of a cluster
// (Options.PresenceRoster; broker.Roster has these methods): this node
// tells it which members it has, and hands the other nodes' changes to
// App.RemotePresence. Its methods must not block.
type PresenceRoster interface {
	// Put records that this node has channel's member user.
	Put(channel, user string, info []byte)
	// Remove records that this node no longer has it.
	Remove(channel, user string)
}

// PresenceEntry is another node's change of its members: Node has
// Channel's member User, or no longer has it (Gone; NodeDown when its
// node stopped).
type PresenceEntry struct {
	Node           uint32
	Channel, User  string
	Gone, NodeDown bool
}

// Presence is a presence channel's members, a snapshot: Count is exact,
// Users lists at most the limit asked for, in no set order (join order
// until a member leaves).
type Presence struct {
	Count int      `json:"count"`
	Users []string `json:"users"`
}

// presence is the node's view of presence: who is in each presence
// channel, one member per user however many connections it has on
// whatever nodes. A member is in its channel while it has a connection
// here or an entry of another node (through the roster), and for the
// leave delay after it had neither. Join and leave events are decided
// here and delivered to this node's subscribers only, each on its own
// loop, so every node tells its own. Safe for concurrent use: the
// loops, the API and the roster's goroutine meet under mu, which is
// never held while a loop runs a session's work.
type presence struct {
	a      *App
	delay  time.Duration // negative: none
	roster PresenceRoster
	mu     sync.Mutex
	chans  map[string]*presenceChannel
}

// presenceChannel is one presence channel on this node.
type presenceChannel struct {
	members map[string]*presenceMember
	order   []*presenceMember // the members, in join order (swap-removed)
	// subs are this node's subscribed sessions, each with its user (""
	// for anonymous clients, which receive events but are no members).
	subs map[*Session]string
}

type presenceMember struct {
	user  string
	idx   int      // position in order
	conns int      // this node's connections
	nodes []uint32 // the other nodes that have it
	// leaving counts the member's absences; the removal that waits out
	// the delay goes ahead if it is still the latest and away still set.
	leaving uint64
	away    bool
}

func (m *presenceMember) present() bool { return m.conns > 0 || len(m.nodes) > 0 }

func newPresence(a *App) *presence {
	d := a.o.PresenceLeaveDelay
	if d == 0 {
		d = DefaultPresenceLeaveDelay
	}
	return &presence{a: a, delay: d, roster: a.o.PresenceRoster, chans: map[string]*presenceChannel{}}
}

// hasPresence reports whether ch is a presence channel.
func (a *App) hasPresence(ch string) bool {
	return a.o.Presence != nil && a.o.Presence(ch)
}

// channelLocked is ch's entry, made when new. Lock held.
func (pr *presence) channelLocked(ch string) *presenceChannel {
	pc := pr.chans[ch]
	if pc == nil {
		pc = &presenceChannel{members: map[string]*presenceMember{}, subs: map[*Session]string{}}
		pr.chans[ch] = pc
	}
	return pc
}

// presenceJoined records s's new subscription to the presence channel ch
// and returns the member list for its subscribed reply. The channel's
// other subscribers hear of s's user if it is a new member. s's loop.
func (a *App) presenceJoined(s *Session, ch string) Presence {
	pr := a.pres
	user := s.claims.Subject
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pc := pr.channelLocked(ch)
	if _, again := pc.subs[s]; !again && user != "" {
		m := pc.members[user]
		if m == nil {
			m = &presenceMember{user: user, idx: len(pc.order)}
			pc.members[user] = m
			pc.order = append(pc.order, m)
			pr.a.presMembers.Add(1)
			pr.eventLocked(pc, ch, "join", user)
		}
		m.away = false // a leave waiting for the delay is off
		if m.conns == 0 && pr.roster != nil {
			pr.roster.Put(ch, user, nil)
		}
		m.conns++
	}
	pc.subs[s] = user
	return pc.snapshot(MaxPresenceList)
}

// presenceLeft records that s's subscription to ch ended; its user
// leaves (after the delay) if s was its last connection in the cluster.
// s's loop.
func (a *App) presenceLeft(s *Session, ch string) {
	pr := a.pres
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pc := pr.chans[ch]
	if pc == nil {
		return
	}
	user, ok := pc.subs[s]
	if !ok {
		return
	}
	delete(pc.subs, s)
	if user == "" {
		pr.dropLocked(ch, pc)
		return
	}
	m := pc.members[user]
	m.conns--
	if m.conns > 0 {
		return
	}
	if pr.roster != nil {
		pr.roster.Remove(ch, user)
	}
	if !m.present() {
		pr.absentLocked(ch, pc, m)
	}
}

// RemotePresence applies another node's presence change (wire the
// roster's changes of this protocol's channels to it). Safe from any
// goroutine; it never blocks on a loop.
func (a *App) RemotePresence(e PresenceEntry) {
	pr := a.pres
	if pr == nil || e.User == "" || !a.hasPresence(e.Channel) {
		return
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if e.Gone {
		pc := pr.chans[e.Channel]
		if pc == nil {
			return
		}
		m := pc.members[e.User]
		if m == nil {
			return
		}
		i := slices.Index(m.nodes, e.Node)
		if i < 0 {
			return
		}
		m.nodes = slices.Delete(m.nodes, i, i+1)
		if !m.present() {
			pr.absentLocked(e.Channel, pc, m)
		}
		return
	}
	pc := pr.channelLocked(e.Channel)
	m := pc.members[e.User]
	if m == nil {
		m = &presenceMember{user: e.User, idx: len(pc.order)}
		pc.members[e.User] = m
		pc.order = append(pc.order, m)
		a.presMembers.Add(1)
		pr.eventLocked(pc, e.Channel, "join", e.User)
	}
	m.away = false
	if !slices.Contains(m.nodes, e.Node) {
		m.nodes = append(m.nodes, e.Node)
	}
}

// absentLocked starts m's leave: now without a delay, else once the
// delay passed with m still absent. Lock held.
func (pr *presence) absentLocked(ch string, pc *presenceChannel, m *presenceMember) {
	m.leaving++
	m.away = true
	if pr.delay < 0 {
		pr.removeLocked(ch, pc, m)
		return
	}
	gen := m.leaving
	time.AfterFunc(pr.delay, func() {
		pr.mu.Lock()
		defer pr.mu.Unlock()
		if pr.chans[ch] == pc && pc.members[m.user] == m && m.away && m.leaving == gen && !m.present() {
			pr.removeLocked(ch, pc, m)
		}
	})
}

// removeLocked takes m out of its channel and tells the channel's
// subscribers. Lock held.
func (pr *presence) removeLocked(ch string, pc *presenceChannel, m *presenceMember) {
	delete(pc.members, m.user)
	pr.a.presMembers.Add(-1)
	last := pc.order[len(pc.order)-1]
	pc.order[m.idx], last.idx = last, m.idx
	pc.order[len(pc.order)-1] = nil
	pc.order = pc.order[:len(pc.order)-1]
	pr.eventLocked(pc, ch, "leave", m.user)
	pr.dropLocked(ch, pc)
}

// dropLocked forgets pc once it has no member and no subscriber. Lock
// held.
func (pr *presence) dropLocked(ch string, pc *presenceChannel) {
	if len(pc.members) == 0 && len(pc.subs) == 0 {
		delete(pr.chans, ch)
	}
}

// snapshot is pc's member list, at most limit users. Lock held.
func (pc *presenceChannel) snapshot(limit int) Presence {
	n := min(limit, len(pc.order))
	p := Presence{Count: len(pc.order), Users: make([]string, n)}
	for i := range n {
		p.Users[i] = pc.order[i].user
	}
	return p
}

// presenceEvent is a join or leave event as clients receive it.
type presenceEvent struct {
	Op      string `json:"op"`
	Channel string `json:"channel"`
	User    string `json:"user"`
}

// eventLocked writes a join or leave event of ch to this node's
// subscribers of it, each group on its own loop, encoded once. A
// subscriber that unsubscribed meanwhile gets nothing; raw clients and
// event streams get no events. Lock held; the writes happen after it,
// on the loops.
func (pr *presence) eventLocked(pc *presenceChannel, ch, op, user string) {
	pr.a.presEvents.Add(1)
	if len(pc.subs) == 0 {
		return
	}
	ev, err := json.Marshal(presenceEvent{Op: op, Channel: ch, User: user})
	if err != nil {
		return
	}
	f := server.NewFrame(codec.AppendFrame(make([]byte, 0, codec.FrameHeaderLen(len(ev), false)+len(ev)), codec.OpText, true, ev))
	by := map[int][]*Session{}
	for s := range pc.subs {
		if s.raw || s.streaming() {
			continue
		}
		i := s.conn.Loop().Index()
		by[i] = append(by[i], s)
	}
	a := pr.a
	for _, ss := range by {
		_ = ss[0].conn.Loop().Run(func() {
			for _, s := range ss {
				if s.conn.Open() && a.find(s, ch) >= 0 {
					s.write(f)
				}
			}
		})
	}
}

// Presence returns the members of the presence channel ch, at most limit
// users listed (0 or less: MaxPresenceList), and false when ch has no
// presence. Safe from any goroutine.
func (a *App) Presence(ch string, limit int) (Presence, bool) {
	if a.pres == nil || !a.hasPresence(ch) {
		return Presence{}, false
	}
	if limit <= 0 {
		limit = MaxPresenceList
	}
	pr := a.pres
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pc := pr.chans[ch]; pc != nil {
		return pc.snapshot(limit), true
	}
	return Presence{Users: []string{}}, true
}

// presenceQuery answers {"op":"presence","channel":C}: the channel's
// members, to its subscribers and to those who may subscribe to it.
func (a *App) presenceQuery(s *Session, cmd *command) {
	ch := cmd.Channel
	if !hub.ValidChannel(ch) {
		a.replyError(s, cmd.ID, errBadRequest, "invalid channel name", ch)
		return
	}
	if !a.hasPresence(ch) {
		a.replyError(s, cmd.ID, errBadRequest, "channel has no presence", ch)
		return
	}
	if a.find(s, ch) < 0 && !s.owns(ch) {
		ns, err := a.o.Namespaces.Lookup(ch)
		if err != nil {
			a.replyError(s, cmd.ID, errUnknownNamespace, err.Error(), ch)
			return
		}
		if !s.claims.CanSubscribe(ch) || (s.claims.Anonymous && !ns.AnonymousSubscribe()) {
			a.replyError(s, cmd.ID, errForbidden, "not allowed to subscribe", ch)
			return
		}
	}
	p, _ := a.Presence(ch, MaxPresenceList)
	a.reply(s, cmd.ID, map[string]any{"op": "presence", "channel": ch, "count": p.Count, "users": p.Users})
}

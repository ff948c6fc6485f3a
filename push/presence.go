package push

import (
	"encoding/json"
	"sync/atomic"

	"github.com/herald-push/herald/codec"
	"github.com/herald-push/herald/hub"
	"github.com/herald-push/herald/internal/memberset"
	"github.com/herald-push/herald/server"
)

// DefaultPresenceLeaveDelay is how long a member whose last connection
// left stays in a presence channel before its leave event: a page reload,
// or a client reconnecting to another node, within it is no leave.
const DefaultPresenceLeaveDelay = memberset.DefaultLeaveDelay

// DefaultPresenceMaxMembers is a presence channel's most members
// (distinct users) when Options.PresenceMaxMembers is 0, Pusher's cap.
const DefaultPresenceMaxMembers = 100

// MaxPresenceList is the most user ids a member list carries (the
// subscribed reply's and the presence reply's); the count beside it is
// exact. It is Pusher's cap on a presence channel's listed members.
const MaxPresenceList = 100

// PresenceRoster shares presence between the nodes of a cluster
// (Options.PresenceRoster; broker.Roster has these methods): this node
// tells it which members it has, and hands the other nodes' changes to
// App.RemotePresence. Its methods must not block (they run under the
// member set's lock).
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
// channel (the member set is memberset.Set's, across this node's
// connections and the other nodes' entries in the roster). Join and leave
// events are decided there and delivered here to this node's subscribers
// only, each on its own loop, so every node tells its own. Safe for
// concurrent use: the loops, the API and the roster's goroutine meet
// under the set's lock, which is never held while a loop runs a
// session's work.
type presence struct {
	a     *App
	set   *presenceSet
	limit int // members of one channel; 0 or less: none
	// limited counts joins refused by limit.
	limited atomic.Uint64
}

// presenceSet is the member set of herald's presence channels: a
// subscriber is a session, a member and a channel carry nothing of the
// protocol's own.
type presenceSet = memberset.Set[*Session, struct{}, struct{}]

// presenceChannel is one presence channel of the set.
type presenceChannel = memberset.Channel[*Session, struct{}, struct{}]

// presenceMember is one member of a presence channel.
type presenceMember = memberset.Member[struct{}]

func newPresence(a *App) *presence {
	pr := &presence{a: a, limit: a.o.PresenceMaxMembers}
	if pr.limit == 0 {
		pr.limit = DefaultPresenceMaxMembers
	}
	var roster memberset.Roster
	if a.o.PresenceRoster != nil {
		roster = a.o.PresenceRoster
	}
	pr.set = memberset.New(memberset.Config{LeaveDelay: a.o.PresenceLeaveDelay, Roster: roster}, presenceNotifier{pr})
	return pr
}

// hasPresence reports whether ch is a presence channel.
func (a *App) hasPresence(ch string) bool {
	return a.o.Presence != nil && a.o.Presence(ch)
}

// presenceNotifier tells a presence channel's subscribers of the set's
// changes (memberset.Events). The set's lock is held.
type presenceNotifier struct{ pr *presence }

// Added tells the channel's subscribers of a new member.
func (e presenceNotifier) Added(c *presenceChannel, m *presenceMember, _ []byte) {
	e.pr.a.presMembers.Add(1)
	e.pr.eventLocked(c, "join", m.User())
}

// Removed tells the channel's subscribers of a member's leave.
func (e presenceNotifier) Removed(c *presenceChannel, m *presenceMember, _ memberset.Leave) {
	e.pr.a.presMembers.Add(-1)
	e.pr.eventLocked(c, "leave", m.User())
}

// presenceJoined records s's new subscription to the presence channel ch
// and returns the member list for its subscribed reply. The channel's
// other subscribers hear of s's user if it is a new member; a new member
// past the channel's cap is refused (memberset.ErrFull), nothing changed.
// s's loop.
func (a *App) presenceJoined(s *Session, ch string) (Presence, error) {
	pr := a.pres
	var p Presence
	if _, err := pr.set.Join(ch, s, s.claims.Subject, nil, pr.limit, func(c *presenceChannel) { p = snapshot(c, MaxPresenceList) }); err != nil {
		pr.limited.Add(1)
		return Presence{}, err
	}
	return p, nil
}

// presenceLeft records that s's subscription to ch ended; its user
// leaves (after the delay) if s was its last connection in the cluster.
// s's loop.
func (a *App) presenceLeft(s *Session, ch string) {
	a.pres.set.Leave(ch, s)
}

// RemotePresence applies another node's presence change (wire the
// roster's changes of this protocol's channels to it). Safe from any
// goroutine; it never blocks on a loop.
func (a *App) RemotePresence(e PresenceEntry) {
	if a.pres == nil || e.User == "" || !a.hasPresence(e.Channel) {
		return
	}
	a.pres.set.Remote(memberset.Entry{Node: e.Node, Channel: e.Channel, User: e.User, Gone: e.Gone, NodeDown: e.NodeDown})
}

// presenceLimited is the number of subscribes the member cap refused.
func (a *App) presenceLimited() uint64 {
	if a.pres == nil {
		return 0
	}
	return a.pres.limited.Load()
}

// snapshot is c's member list, at most limit users. The set's lock is
// held.
func snapshot(c *presenceChannel, limit int) Presence {
	members := c.Members()
	n := min(limit, len(members))
	p := Presence{Count: len(members), Users: make([]string, n)}
	for i := range n {
		p.Users[i] = members[i].User()
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
func (pr *presence) eventLocked(pc *presenceChannel, op, user string) {
	pr.a.presEvents.Add(1)
	if pc.NumSubscribers() == 0 {
		return
	}
	ch := pc.Key()
	ev, err := json.Marshal(presenceEvent{Op: op, Channel: ch, User: user})
	if err != nil {
		return
	}
	f := server.NewFrame(codec.AppendFrame(make([]byte, 0, codec.FrameHeaderLen(len(ev), false)+len(ev)), codec.OpText, true, ev))
	by := map[int][]*Session{}
	for s := range pc.Subscribers() {
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
	p := Presence{Users: []string{}}
	a.pres.set.View(ch, func(c *presenceChannel) { p = snapshot(c, limit) })
	return p, true
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

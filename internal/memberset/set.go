package memberset

import (
	"errors"
	"iter"
	"slices"
	"sync"
	"time"
)

// DefaultLeaveDelay is how long a member whose last connection left
// stays in its channel before it leaves (Config.LeaveDelay 0).
const DefaultLeaveDelay = time.Second

// ErrFull refuses a join of a new member to a channel that already has
// the most members Join was given.
var ErrFull = errors.New("presence: channel full")

// Roster shares this node's members with the other nodes of a cluster
// (broker.Roster has these methods, behind each protocol's channel
// names). Its methods run with the Set's lock held and must not block.
type Roster interface {
	// Put records that this node has channel's member user.
	Put(channel, user string, info []byte)
	// Remove records that this node no longer has it.
	Remove(channel, user string)
}

// Entry is another node's change of its members, from the roster: Node
// has Channel's member User (with Info), or no longer has it (Gone;
// NodeDown when its node stopped).
type Entry struct {
	Node           uint32
	Channel, User  string
	Info           []byte
	Gone, NodeDown bool
}

// Leave says whose leave made a removed member absent: this node's last
// connection's (Node 0), or another node's entry's, gone because that
// node stopped when Down.
type Leave struct {
	Node uint32
	Down bool
}

// Events is a protocol's side of a Set: what it does when the Set
// decides a change of a channel's members. Both run with the Set's lock
// held, in the order the changes happened: they must not block nor call
// the Set (hand writes to the loops with Loop.Run).
type Events[S comparable, M, C any] interface {
	// Added: m is a new member of c, through a join here or another
	// node's entry; info is what that join or entry carried. m is
	// already listed; c's subscribers do not include the joiner yet.
	Added(c *Channel[S, M, C], m *Member[M], info []byte)
	// Removed: m left c after the leave delay, by's leave the last one;
	// m is no longer listed.
	Removed(c *Channel[S, M, C], m *Member[M], by Leave)
}

// Config configures a Set. The zero value is valid.
type Config struct {
	// LeaveDelay is how long a member whose last connection (on any
	// node) left stays before it is removed (0: DefaultLeaveDelay;
	// negative: none).
	LeaveDelay time.Duration
	// Roster, when set, hears of this node's members: a user's first
	// connection here puts its entry, the last one's leave removes it.
	// Nil: the members are this node's only.
	Roster Roster
}

// Set is the members of a protocol's presence channels, keyed by the
// protocol's channel names. S is the protocol's subscriber (one
// connection's subscription: a session, a socket), M and C what the
// protocol keeps of each member and each channel (Member.Data,
// Channel.Data). Safe for concurrent use (the package doc says what runs
// under its lock).
type Set[S comparable, M, C any] struct {
	ev     Events[S, M, C]
	delay  time.Duration // negative: none
	roster Roster

	mu    sync.Mutex
	chans map[string]*Channel[S, M, C]
}

// New returns an empty Set that tells ev of its changes.
func New[S comparable, M, C any](cfg Config, ev Events[S, M, C]) *Set[S, M, C] {
	d := cfg.LeaveDelay
	if d == 0 {
		d = DefaultLeaveDelay
	}
	return &Set[S, M, C]{ev: ev, delay: d, roster: cfg.Roster, chans: map[string]*Channel[S, M, C]{}}
}

// Channel is one presence channel of a Set: its members and this node's
// subscribers. Touched only under the Set's lock (in Events, View and
// Join's view).
type Channel[S comparable, M, C any] struct {
	key     string
	members map[string]*Member[M]
	order   []*Member[M] // the members, in join order (swap-removed)
	// subs are this node's subscribers, each with its user id ("" for
	// those that are no members).
	subs map[S]string
	// Data is the protocol's own state of the channel (zero when the
	// Set makes the channel).
	Data C
}

// Key is the channel's name in the Set.
func (c *Channel[S, M, C]) Key() string { return c.key }

// Len is the channel's number of members.
func (c *Channel[S, M, C]) Len() int { return len(c.order) }

// Members lists the channel's members, in join order until one leaves
// (the last one then takes its place). The slice is the Set's: read it
// under the lock only, and do not keep it.
func (c *Channel[S, M, C]) Members() []*Member[M] { return c.order }

// Member is user's member, nil when user is none.
func (c *Channel[S, M, C]) Member(user string) *Member[M] { return c.members[user] }

// Subscribers yields this node's subscribers of the channel and their
// user ids ("" for those that are no members).
func (c *Channel[S, M, C]) Subscribers() iter.Seq2[S, string] {
	return func(yield func(S, string) bool) {
		for s, u := range c.subs {
			if !yield(s, u) {
				return
			}
		}
	}
}

// NumSubscribers is the number of this node's subscribers of the channel.
func (c *Channel[S, M, C]) NumSubscribers() int { return len(c.subs) }

// Member is one user in one presence channel, however many connections
// it has here and however many other nodes have it. Touched only under
// the Set's lock.
type Member[M any] struct {
	user  string
	idx   int      // position in its channel's order
	conns int      // this node's connections
	nodes []uint32 // the other nodes that have it
	// leaving counts the member's absences (no connection, no node); the
	// removal that waits out the leave delay goes ahead if it is still
	// the latest and away still set. last is whose leave made it absent.
	leaving uint64
	away    bool
	last    Leave
	// Data is the protocol's own state of the member (zero when the Set
	// makes the member; Events.Added fills it).
	Data M
}

// User is the member's user id.
func (m *Member[M]) User() string { return m.user }

// Conns is the member's number of connections on this node.
func (m *Member[M]) Conns() int { return m.conns }

// Away reports whether the member has no connection anywhere and waits
// out the leave delay.
func (m *Member[M]) Away() bool { return m.away }

// present reports whether m has a connection here or on another node.
func (m *Member[M]) present() bool { return m.conns > 0 || len(m.nodes) > 0 }

// channelLocked is key's channel, made when new. Lock held.
func (s *Set[S, M, C]) channelLocked(key string) *Channel[S, M, C] {
	c := s.chans[key]
	if c == nil {
		c = &Channel[S, M, C]{key: key, members: map[string]*Member[M]{}, subs: map[S]string{}}
		s.chans[key] = c
	}
	return c
}

// addLocked lists a new member of c and tells the protocol. Lock held.
func (s *Set[S, M, C]) addLocked(c *Channel[S, M, C], user string, info []byte) *Member[M] {
	m := &Member[M]{user: user, idx: len(c.order)}
	c.members[user] = m
	c.order = append(c.order, m)
	s.ev.Added(c, m, info)
	return m
}

// Join records sub's subscription to the channel key as user ("": a
// subscriber that is told of members but is none), with the member's
// info (for the roster and Events.Added). It returns whether user is a
// new member of the channel. A new user past limit members (limit 0 or
// less: no cap) is refused with ErrFull, nothing changed. A sub that has
// joined already changes nothing (a resubscription). view, when set,
// runs after the join with the lock held, to read the channel (the
// member list of the joiner's reply); it does not run on a refusal.
func (s *Set[S, M, C]) Join(key string, sub S, user string, info []byte, limit int, view func(*Channel[S, M, C])) (added bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channelLocked(key)
	if _, again := c.subs[sub]; !again && user != "" {
		m := c.members[user]
		if m == nil {
			if limit > 0 && len(c.members) >= limit {
				s.dropLocked(c)
				return false, ErrFull
			}
			m = s.addLocked(c, user, info)
			added = true
		}
		m.away = false // a removal waiting for the delay is off
		if m.conns == 0 && s.roster != nil {
			s.roster.Put(key, user, info)
		}
		m.conns++
	}
	c.subs[sub] = user
	if view != nil {
		view(c)
	}
	return added, nil
}

// Leave records that sub's subscription to the channel key ended; its
// member leaves (after the delay) if sub was its last connection in the
// cluster. A sub that has not joined changes nothing. key is only looked
// up, never kept: it may be a view of the caller's input.
func (s *Set[S, M, C]) Leave(key string, sub S) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chans[key]
	if c == nil {
		return
	}
	user, ok := c.subs[sub]
	if !ok {
		return
	}
	delete(c.subs, sub)
	m := c.members[user]
	if m == nil { // no member (user ""), or none any more
		s.dropLocked(c)
		return
	}
	m.conns--
	if m.conns > 0 {
		return
	}
	if s.roster != nil {
		s.roster.Remove(key, user)
	}
	if !m.present() {
		s.absentLocked(c, m, Leave{})
	}
}

// Remote applies another node's change of its members (an entry without
// a User changes nothing). Safe from any goroutine; it never blocks on a
// loop.
func (s *Set[S, M, C]) Remote(e Entry) {
	if e.User == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.Gone {
		c := s.chans[e.Channel]
		if c == nil {
			return
		}
		m := c.members[e.User]
		if m == nil {
			return
		}
		i := slices.Index(m.nodes, e.Node)
		if i < 0 {
			return
		}
		m.nodes = slices.Delete(m.nodes, i, i+1)
		if !m.present() {
			s.absentLocked(c, m, Leave{Node: e.Node, Down: e.NodeDown})
		}
		return
	}
	c := s.channelLocked(e.Channel)
	m := c.members[e.User]
	if m == nil {
		m = s.addLocked(c, e.User, e.Info)
	}
	m.away = false
	if !slices.Contains(m.nodes, e.Node) {
		m.nodes = append(m.nodes, e.Node)
	}
}

// absentLocked starts m's leave: now without a delay, else once the
// delay passed with m still absent. Lock held.
func (s *Set[S, M, C]) absentLocked(c *Channel[S, M, C], m *Member[M], by Leave) {
	m.leaving++
	m.away, m.last = true, by
	if s.delay < 0 {
		s.removeLocked(c, m)
		return
	}
	gen := m.leaving
	time.AfterFunc(s.delay, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.chans[c.key] == c && c.members[m.user] == m && m.away && m.leaving == gen && !m.present() {
			s.removeLocked(c, m)
		}
	})
}

// removeLocked takes m out of c and tells the protocol. Lock held.
func (s *Set[S, M, C]) removeLocked(c *Channel[S, M, C], m *Member[M]) {
	delete(c.members, m.user)
	last := c.order[len(c.order)-1]
	c.order[m.idx], last.idx = last, m.idx
	c.order[len(c.order)-1] = nil
	c.order = c.order[:len(c.order)-1]
	s.ev.Removed(c, m, m.last)
	s.dropLocked(c)
}

// dropLocked forgets c once it has no member and no subscriber. Lock
// held.
func (s *Set[S, M, C]) dropLocked(c *Channel[S, M, C]) {
	if len(c.members) == 0 && len(c.subs) == 0 {
		delete(s.chans, c.key)
	}
}

// View runs f on the channel key with the lock held and reports whether
// there is one (f does not run otherwise). f must not block nor call the
// Set.
func (s *Set[S, M, C]) View(key string, f func(*Channel[S, M, C])) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chans[key]
	if c == nil {
		return false
	}
	f(c)
	return true
}

// Count is the channel key's number of members.
func (s *Set[S, M, C]) Count(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.chans[key]; c != nil {
		return len(c.order)
	}
	return 0
}

// Users lists the user ids of the channel key's members, in the order
// of Channel.Members (empty, not nil, when there are none).
func (s *Set[S, M, C]) Users(key string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chans[key]
	if c == nil {
		return []string{}
	}
	out := make([]string, len(c.order))
	for i, m := range c.order {
		out[i] = m.user
	}
	return out
}

// UserOf is the user id sub joined the channel key as, and whether it
// joined.
func (s *Set[S, M, C]) UserOf(key string, sub S) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.chans[key]; c != nil {
		user, ok := c.subs[sub]
		return user, ok
	}
	return "", false
}

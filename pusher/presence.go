package pusher

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/herald-push/herald/internal/memberset"
	"github.com/herald-push/herald/pusher/webhook"
)

// DefaultLeaveDelay is how long a member whose last connection left
// stays in its presence channels before member_removed: a page reload, or
// a client reconnecting to another node, within it is no leave.
const DefaultLeaveDelay = memberset.DefaultLeaveDelay

// Roster shares presence between the nodes of a cluster (the broker
// package's Roster has these methods): each node tells it the members it
// has, and hands the other nodes' changes to Protocol.RemoteChange. Its
// methods must not block.
type Roster interface {
	// Put records that this node has channel's member user (channel is
	// the hub name, "{app id}:{channel}").
	Put(channel, user string, info []byte)
	// Remove records that this node no longer has it.
	Remove(channel, user string)
	// SetSubscriptions records this node's number of subscriptions to
	// channel (0: none).
	SetSubscriptions(channel string, n int)
	// First reports whether this node is the live node with the smallest
	// number, which posts the webhooks of the members of nodes that died.
	First() bool
}

// RemoteEntry is another node's change of its entries (the broker
// package's RosterEntry): Node has Channel's member User (Info), or no
// longer has it (Gone; NodeDown when its node stopped); without a User,
// Node has Subscriptions subscriptions to Channel (Gone: none).
type RemoteEntry struct {
	Node           uint32
	Channel        string
	User           string
	Info           []byte
	Subscriptions  int
	Gone, NodeDown bool
}

// presence is the node's view of presence: who is in each presence
// channel (the member set is memberset.Set's, across this node's
// connections and the other nodes' entries in the Roster, with
// LeaveDelay); member events are decided there and delivered here to
// this node's subscribers only, so every node tells its own.
//
// Each channel keeps its member list encoded as it appears in
// subscription_succeeded's data string (ids and hash, each member's
// entries encoded once, when it joins), appended to as members join and
// rebuilt into fresh buffers only after a member left: a join costs O(1)
// amortised under the set's lock; the message is assembled outside it,
// from buffers no later join writes into.
type presence struct {
	p   *Protocol
	set *presenceSet
}

// presenceSet is the member set of the Pusher apps' presence channels,
// by hub name ("{app id}:{channel}"): a subscriber is a socket.
type presenceSet = memberset.Set[*socket, member, memberList]

// presenceChannel is one presence channel of the set.
type presenceChannel = memberset.Channel[*socket, member, memberList]

// presenceMember is one member of a presence channel.
type presenceMember = memberset.Member[member]

// member is what a presence member carries: its user_info and its
// entries of the encoded list.
type member struct {
	info  json.RawMessage // user_info (null when none)
	idEnc []byte          // the id, JSON-encoded within the data string
	entry []byte          // idEnc ":" user_info, JSON-encoded within the data string
}

// memberList is a channel's encoded member list: ids and hash
// ("\"a\",\"b\"" and "\"a\":{..},\"b\":null"); stale after a member
// left, until the next join rebuilds them.
type memberList struct {
	ids, hash []byte
	stale     bool
}

// newPresence returns the presence of p, with delay (LeaveDelay).
func newPresence(p *Protocol, delay time.Duration) presence {
	pr := presence{p: p}
	var roster memberset.Roster
	if p.o.Roster != nil {
		roster = p.o.Roster
	}
	pr.set = memberset.New(memberset.Config{LeaveDelay: delay, Roster: roster}, presenceNotifier{p})
	return pr
}

// channelOf is the app and Pusher channel name of a hub name (nil: no
// app of this node's).
func (p *Protocol) channelOf(name string) (*App, string) {
	appID, ch, ok := strings.Cut(name, ":")
	if !ok {
		return nil, ""
	}
	return p.byID[appID], ch
}

// presenceNotifier tells a presence channel's sockets of the set's
// changes and posts member_removed (memberset.Events). The set's lock is
// held.
type presenceNotifier struct{ p *Protocol }

// Added encodes a new member and tells the channel's sockets.
func (n presenceNotifier) Added(c *presenceChannel, m *presenceMember, info []byte) {
	m.Data = newMember(m.User(), info)
	c.Data.add(m.Data)
	_, ch := n.p.channelOf(c.Key())
	d, _ := json.Marshal(map[string]any{"user_id": m.User(), "user_info": m.Data.info})
	n.p.deliverLocal(ch, "pusher_internal:member_added", string(d), socketList(c))
}

// Removed tells the channel's sockets of a member's leave; the webhook
// is posted by the node whose leave it was (by the first live node when
// that node stopped).
func (n presenceNotifier) Removed(c *presenceChannel, m *presenceMember, by memberset.Leave) {
	c.Data.stale = true
	a, ch := n.p.channelOf(c.Key())
	d, _ := json.Marshal(map[string]any{"user_id": m.User()})
	n.p.deliverLocal(ch, "pusher_internal:member_removed", string(d), socketList(c))
	if by.Node == 0 || (by.Down && n.p.o.Roster != nil && n.p.o.Roster.First()) {
		n.p.hooks.member(a, ch, webhook.MemberRemoved, m.User())
	}
}

// join adds s as uid to a presence channel and returns whether uid is a
// new member (whom the channel's other sockets are told of) and the
// member list; ok false (nothing changed) when uid is new and the channel
// already has limit members.
func (pr *presence) join(name string, s *socket, uid string, info json.RawMessage, limit int) (first bool, sn snapshot, ok bool) {
	first, err := pr.set.Join(name, s, uid, compactInfo(info), limit, func(c *presenceChannel) {
		l := &c.Data
		if l.stale {
			l.rebuild(c.Members())
		}
		// Full slices: a later append never writes into what sn reads.
		sn = snapshot{ids: l.ids[:len(l.ids):len(l.ids)], hash: l.hash[:len(l.hash):len(l.hash)], count: c.Len()}
	})
	return first, sn, err == nil
}

// leave removes s from a presence channel; the member leaves (after the
// delay) if s was its last connection in the cluster.
func (pr *presence) leave(name string, s *socket) { pr.set.Leave(name, s) }

// remote applies another node's change.
func (pr *presence) remote(e RemoteEntry) {
	a, ch := pr.p.channelOf(e.Channel)
	if a == nil || !isPresence(ch) {
		return
	}
	pr.set.Remote(memberset.Entry{Node: e.Node, Channel: e.Channel, User: e.User, Info: e.Info, Gone: e.Gone, NodeDown: e.NodeDown})
}

// socketList is c's subscribed sockets. The set's lock is held.
func socketList(c *presenceChannel) []*socket {
	out := make([]*socket, 0, c.NumSubscribers())
	for s := range c.Subscribers() {
		out = append(out, s)
	}
	return out
}

// userOf is s's user id in a presence channel.
func (pr *presence) userOf(name string, s *socket) (string, bool) { return pr.set.UserOf(name, s) }

// users lists a presence channel's user ids.
func (pr *presence) users(name string) []string { return pr.set.Users(name) }

// count is a presence channel's number of users.
func (pr *presence) count(name string) int { return pr.set.Count(name) }

// RemoteChange applies another node's presence change (wire the Roster's
// changes to it). Safe from any goroutine; it never blocks on a loop.
func (p *Protocol) RemoteChange(e RemoteEntry) {
	if e.User == "" {
		p.occ.remote(e)
		return
	}
	p.presence.remote(e)
}

// snapshot is a presence channel's member list at one join: slices of
// buffers that later joins only append to.
type snapshot struct {
	ids, hash []byte
	count     int
}

// message is the pusher_internal:subscription_succeeded message of ch.
func (sn snapshot) message(ch string) []byte {
	chJSON, _ := json.Marshal(ch) // a valid channel name: no escapes
	cnt := strconv.Itoa(sn.count)
	b := make([]byte, 0, 128+len(chJSON)+len(sn.ids)+len(sn.hash)+len(cnt))
	b = append(b, `{"event":"pusher_internal:subscription_succeeded","channel":`...)
	b = append(b, chJSON...)
	b = append(b, `,"data":"{\"presence\":{\"ids\":[`...)
	b = append(b, sn.ids...)
	b = append(b, `],\"hash\":{`...)
	b = append(b, sn.hash...)
	b = append(b, `},\"count\":`...)
	b = append(b, cnt...)
	return append(b, `}}"}`...)
}

// embed is JSON text encoded as the inside of a JSON string (no quotes,
// HTML characters left as they are).
func embed(text []byte) []byte {
	var buf bytes.Buffer
	e := json.NewEncoder(&buf)
	e.SetEscapeHTML(false)
	_ = e.Encode(string(text))
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	return b[1 : len(b)-1]
}

// newMember encodes a member's entries once.
func newMember(uid string, info json.RawMessage) member {
	var m member
	var idText bytes.Buffer
	e := json.NewEncoder(&idText)
	e.SetEscapeHTML(false)
	_ = e.Encode(uid)
	m.idEnc = embed(bytes.TrimSuffix(idText.Bytes(), []byte("\n")))
	m.info = compactInfo(info)
	m.entry = append(append(append([]byte(nil), m.idEnc...), ':'), embed(m.info)...)
	return m
}

// compactInfo is user_info as compact JSON text, null when there is none
// (or it is not JSON).
func compactInfo(info json.RawMessage) json.RawMessage {
	var compact bytes.Buffer
	if len(info) == 0 || json.Compact(&compact, info) != nil {
		return json.RawMessage("null")
	}
	return compact.Bytes()
}

// add appends m to the encoded list (stale: nothing to append to).
func (l *memberList) add(m member) {
	if l.stale {
		return
	}
	if len(l.ids) > 0 {
		l.ids, l.hash = append(l.ids, ','), append(l.hash, ',')
	}
	l.ids, l.hash = append(l.ids, m.idEnc...), append(l.hash, m.entry...)
}

// rebuild encodes members again into fresh buffers (a snapshot taken
// before still reads the old ones).
func (l *memberList) rebuild(members []*presenceMember) {
	var ids, hash []byte
	for i, m := range members {
		if i > 0 {
			ids, hash = append(ids, ','), append(hash, ',')
		}
		ids, hash = append(ids, m.Data.idEnc...), append(hash, m.Data.entry...)
	}
	l.ids, l.hash, l.stale = ids, hash, false
}

package pusher

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/herald-push/herald/pusher/webhook"
)

// DefaultLeaveDelay is how long a member whose last connection left
// stays in its presence channels before member_removed: a page reload, or
// a client reconnecting to another node, within it is no leave.
const DefaultLeaveDelay = time.Second

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
// channel, one member per user id however many connections it has on
// whatever nodes. A member is in its channel while it has a connection
// here or an entry of another node (through the Roster), and for
// LeaveDelay after it had neither; member events are decided here and
// delivered to this node's subscribers only, so every node tells its own.
//
// Each channel keeps its member list encoded as it appears in
// subscription_succeeded's data string (ids and hash, each member's
// entries encoded once, when it joins), appended to as members join and
// rebuilt into fresh buffers only after a member left: a join costs O(1)
// amortised under mu; the message is assembled outside it, from buffers
// no later join writes into.
type presence struct {
	p     *Protocol
	delay time.Duration // LeaveDelay; negative: none
	mu    sync.Mutex
	chans map[string]*presenceChannel // by hub name
}

type presenceChannel struct {
	app     *App
	ch      string             // the Pusher channel name
	members map[string]*member // by user id
	sockets map[*socket]string // each subscribed socket's user id
	order   []*member          // the members, in list order
	// ids and hash are the encoded list ("\"a\",\"b\"" and
	// "\"a\":{..},\"b\":null"); stale after a member left, until the
	// next join rebuilds them.
	ids, hash []byte
	stale     bool
}

type member struct {
	id    string
	info  json.RawMessage // user_info (null when none)
	idEnc []byte          // the id, JSON-encoded within the data string
	entry []byte          // idEnc ":" user_info, JSON-encoded within the data string
	idx   int             // position in order
	conns int             // this node's connections
	nodes []uint32        // the other nodes that have it
	// leaving counts the member's absences (no connection, no node); the
	// removal that waits out LeaveDelay goes ahead if it is still the
	// latest. last is the node whose leave made it absent (0: this one),
	// down whether that node stopped.
	leaving uint64
	away    bool
	last    uint32
	down    bool
}

// present reports whether m has a connection here or on another node.
func (m *member) present() bool { return m.conns > 0 || len(m.nodes) > 0 }

// channelLocked is name's channel, made when new. Lock held.
func (pr *presence) channelLocked(name string, a *App, ch string) *presenceChannel {
	pc := pr.chans[name]
	if pc == nil {
		pc = &presenceChannel{app: a, ch: ch, members: map[string]*member{}, sockets: map[*socket]string{}}
		pr.chans[name] = pc
	}
	return pc
}

// join adds s as uid to a presence channel and returns whether uid is a
// new member (whom the channel's other sockets are told of) and the
// member list; ok false (nothing changed) when uid is new and the channel
// already has limit members.
func (pr *presence) join(name string, s *socket, ch, uid string, info json.RawMessage, limit int) (first bool, sn snapshot, ok bool) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pc := pr.channelLocked(name, s.app, ch)
	m := pc.members[uid]
	if m == nil {
		if len(pc.members) >= limit {
			pr.dropLocked(name, pc)
			return false, snapshot{}, false
		}
		first = true
		m = newMember(uid, info)
		pc.members[uid] = m
		pc.add(m)
		d, _ := json.Marshal(map[string]any{"user_id": uid, "user_info": m.info})
		pr.p.deliverLocal(ch, "pusher_internal:member_added", string(d), pc.socketList())
	}
	m.away = false // a removal waiting for the delay is off
	if m.conns == 0 && pr.p.o.Roster != nil {
		pr.p.o.Roster.Put(name, uid, compactInfo(info))
	}
	pc.sockets[s] = uid
	m.conns++
	if pc.stale {
		pc.rebuild()
	}
	// Full slices: a later append never writes into what sn reads.
	return first, snapshot{ids: pc.ids[:len(pc.ids):len(pc.ids)], hash: pc.hash[:len(pc.hash):len(pc.hash)], count: len(pc.order)}, true
}

// leave removes s from a presence channel; the member leaves (after the
// delay) if s was its last connection in the cluster.
func (pr *presence) leave(name string, s *socket) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pc := pr.chans[name]
	if pc == nil {
		return
	}
	uid, ok := pc.sockets[s]
	if !ok {
		return
	}
	delete(pc.sockets, s)
	m := pc.members[uid]
	m.conns--
	if m.conns > 0 {
		return
	}
	if pr.p.o.Roster != nil {
		pr.p.o.Roster.Remove(name, uid)
	}
	if !m.present() {
		pr.absentLocked(name, pc, m, 0, false)
	}
}

// remote applies another node's change.
func (pr *presence) remote(e RemoteEntry) {
	appID, ch, ok := strings.Cut(e.Channel, ":")
	a := pr.p.byID[appID]
	if !ok || a == nil || !isPresence(ch) {
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
			pr.absentLocked(e.Channel, pc, m, e.Node, e.NodeDown)
		}
		return
	}
	pc := pr.channelLocked(e.Channel, a, ch)
	m := pc.members[e.User]
	if m == nil {
		m = newMember(e.User, json.RawMessage(e.Info))
		pc.members[e.User] = m
		pc.add(m)
		d, _ := json.Marshal(map[string]any{"user_id": e.User, "user_info": m.info})
		pr.p.deliverLocal(ch, "pusher_internal:member_added", string(d), pc.socketList())
	}
	m.away = false
	if !slices.Contains(m.nodes, e.Node) {
		m.nodes = append(m.nodes, e.Node)
	}
}

// absentLocked starts m's leave: now without a delay, else once the delay
// passed with m still absent. node is the node whose leave it was (0:
// this one). Lock held.
func (pr *presence) absentLocked(name string, pc *presenceChannel, m *member, node uint32, down bool) {
	m.leaving++
	m.away, m.last, m.down = true, node, down
	if pr.delay < 0 {
		pr.removeLocked(name, pc, m)
		return
	}
	gen := m.leaving
	time.AfterFunc(pr.delay, func() {
		pr.mu.Lock()
		defer pr.mu.Unlock()
		if pr.chans[name] == pc && pc.members[m.id] == m && m.away && m.leaving == gen && !m.present() {
			pr.removeLocked(name, pc, m)
		}
	})
}

// removeLocked takes m out of its channel and tells the channel's
// sockets; the webhook is posted by the node whose leave it was (by the
// first live node when that node stopped). Lock held.
func (pr *presence) removeLocked(name string, pc *presenceChannel, m *member) {
	delete(pc.members, m.id)
	last := pc.order[len(pc.order)-1]
	pc.order[m.idx], last.idx = last, m.idx
	pc.order[len(pc.order)-1] = nil
	pc.order = pc.order[:len(pc.order)-1]
	pc.stale = true
	d, _ := json.Marshal(map[string]any{"user_id": m.id})
	pr.p.deliverLocal(pc.ch, "pusher_internal:member_removed", string(d), pc.socketList())
	if m.last == 0 || (m.down && pr.p.o.Roster != nil && pr.p.o.Roster.First()) {
		pr.p.hooks.member(pc.app, pc.ch, webhook.MemberRemoved, m.id)
	}
	pr.dropLocked(name, pc)
}

// dropLocked forgets pc once it has no member and no socket. Lock held.
func (pr *presence) dropLocked(name string, pc *presenceChannel) {
	if len(pc.members) == 0 && len(pc.sockets) == 0 {
		delete(pr.chans, name)
	}
}

// socketList is pc's subscribed sockets. Lock held.
func (pc *presenceChannel) socketList() []*socket {
	out := make([]*socket, 0, len(pc.sockets))
	for s := range pc.sockets {
		out = append(out, s)
	}
	return out
}

// userOf is s's user id in a presence channel.
func (pr *presence) userOf(name string, s *socket) (string, bool) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pc := pr.chans[name]; pc != nil {
		uid, ok := pc.sockets[s]
		return uid, ok
	}
	return "", false
}

// users lists a presence channel's user ids.
func (pr *presence) users(name string) []string {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pc := pr.chans[name]
	if pc == nil {
		return []string{}
	}
	out := make([]string, 0, len(pc.members))
	for id := range pc.members {
		out = append(out, id)
	}
	return out
}

// count is a presence channel's number of users.
func (pr *presence) count(name string) int {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pc := pr.chans[name]; pc != nil {
		return len(pc.members)
	}
	return 0
}

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
func newMember(uid string, info json.RawMessage) *member {
	m := &member{id: uid, info: info}
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

// add appends m to pc's encoded list (stale: nothing to append to).
func (pc *presenceChannel) add(m *member) {
	m.idx = len(pc.order)
	pc.order = append(pc.order, m)
	if pc.stale {
		return
	}
	if len(pc.ids) > 0 {
		pc.ids, pc.hash = append(pc.ids, ','), append(pc.hash, ',')
	}
	pc.ids, pc.hash = append(pc.ids, m.idEnc...), append(pc.hash, m.entry...)
}

// rebuild encodes pc's list again into fresh buffers (a snapshot taken
// before still reads the old ones).
func (pc *presenceChannel) rebuild() {
	var ids, hash []byte
	for i, m := range pc.order {
		if i > 0 {
			ids, hash = append(ids, ','), append(hash, ',')
		}
		ids, hash = append(ids, m.idEnc...), append(hash, m.entry...)
	}
	pc.ids, pc.hash, pc.stale = ids, hash, false
}

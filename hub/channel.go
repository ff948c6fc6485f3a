package hub

import (
	"encoding/base32"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// MaxChannelLen is the longest channel name, in bytes.
const MaxChannelLen = 255

// ValidChannel reports whether name is a valid channel name: 1 to 255 bytes
// of printable ASCII without spaces (0x21 to 0x7E), such as "news",
// "user:alice" or "chat.room-1".
func ValidChannel(name string) bool {
	if len(name) == 0 || len(name) > MaxChannelLen {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x21 || c > 0x7E {
			return false
		}
	}
	return true
}

// Position is a place in a channel's history: the offset of a message and
// the epoch it belongs to. A client that saw Position p resumes with
// Subscribe(..., &p) to get what it missed.
type Position struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// epochEncoding spells epochs in lower-case base32 without padding.
var epochEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newEpoch mints a random 8-character epoch (40 bits), unique enough that a
// channel re-created after losing its history is never mistaken for the old
// one.
func newEpoch() string {
	var e [epochLen]byte
	putEpoch(&e)
	return string(e[:])
}

// epochLen is the length of an epoch.
const epochLen = 8

// putEpoch writes a new random epoch into e.
func putEpoch(e *[epochLen]byte) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], rand.Uint64())
	epochEncoding.Encode(e[:], b[:5])
}

// channel is one channel's state. Its mutex guards every field below it
// but the few marked otherwise; first is written under it too. The hub
// holds one per channel, a user's personal channel included, so it is
// kept to 208 bytes (TestChannelSize), its home loop's subscriber list
// included: what only a channel that stores messages needs is in its
// history, allocated with the first, the counters are 32 bits and the
// small fields share words.
type channel struct {
	name string
	// opts are the channel's history settings, fixed at creation and
	// shared with the hub's other channels of the same options.
	opts *chanOpts

	// first is the offset of the oldest message in history, or offset+1
	// when history is empty.
	first atomic.Uint64

	mu sync.Mutex
	// gone is set when the hub forgets the channel; whoever finds it set
	// after locking looks the name up again.
	gone bool
	// client is set when a client created the channel (Subscribe,
	// PublishClient, Reserve): it counts against Config.MaxChannels.
	// Guarded by Hub.mu, not by mu.
	client bool
	// holds counts the reservations on the channel (Reserve,
	// ReserveTrusted) not yet given back: a held channel is never
	// forgotten.
	holds  int32
	epoch  string
	offset uint64 // last offset assigned; 0 before the first message
	// seq counts the messages handed to loops, across epochs. Loops filter
	// deliveries by it rather than by offset, because PublishAt may move
	// offsets backwards (a new epoch) or jump them (a gap).
	seq uint64
	// past is the channel's history, nil until it stores a message.
	past *history
	// home is the index plus one of the loop whose subscriber list is
	// local (0: none yet). The first loop to subscribe settles it, under
	// mu, for the channel's life; its loop reads it without the lock.
	home atomic.Int32
	// homeSubs counts the channel's subscribers on its home loop and
	// loopSubs those on each other loop (by index; allocated when a
	// second loop subscribes); subs is their sum.
	homeSubs int32
	subs     int32
	loopSubs []int32
	// idx is the channel's place in Hub.all. Guarded by Hub.mu, not by
	// mu.
	idx int32

	// local is the channel's subscriber list on its home loop, with room
	// for its first entry: a channel subscribed on one loop only, as a
	// user's personal channel mostly is, needs no list or table entry of
	// the loop's. Its home loop's goroutine only, like any subList.
	local      subList
	localFirst [1]subEntry
}

// history is what a channel that stores messages keeps of them, under
// the channel's lock: allocated with its first stored message, since
// most channels (a user's personal one) never store any.
type history struct {
	msgs  ring[*Message]
	bytes int64 // sum of the sizes of the messages in msgs
	// snap is msgs laid out flat, shared by every recovery: each gets a
	// capacity-capped subslice of it, which later appends never touch. It
	// is brought up to date only when a recovery needs it (new messages
	// appended, what history dropped resliced off the front), so a storm
	// of resubscriptions with since copies history once between two
	// publishes, not once per subscriber, and holds the channel's lock
	// for O(1) each. snapDead counts the dropped messages its array still
	// holds before snap[0]; past len(snap) it is let go, so it never
	// keeps alive more than history itself.
	snap     []*Message
	snapDead int32
	// heapIdx is the channel's place in the history budget's heap, plus
	// one (0: not in it). Guarded by budget.mu, not by the channel's
	// lock; a channel enters the heap only once it holds bytes, so after
	// its history exists.
	heapIdx int32
	// budgeted is bytes as the history budget last heard it.
	budgeted int64
}

// histLen is how many messages history holds. Lock should be held.
func (c *channel) histLen() int {
	if c.past == nil {
		return 0
	}
	return c.past.msgs.Len()
}

// histBytes is the size of the messages history holds. Lock should be
// held.
func (c *channel) histBytes() int64 {
	if c.past == nil {
		return 0
	}
	return c.past.bytes
}

// newChannel returns a channel named name, with a fresh epoch, no history
// and the given options. name may be a view of the caller's input: the
// channel keeps a copy of its own, made in one allocation with its first
// epoch (a user's personal channel, made at each new user's handshake,
// has no other string of its own).
func newChannel(name string, opts *chanOpts) *channel {
	var e [epochLen]byte
	putEpoch(&e)
	var b strings.Builder
	b.Grow(len(name) + epochLen)
	b.WriteString(name)
	b.Write(e[:])
	both := b.String()
	c := &channel{name: both[:len(name)], opts: opts, epoch: both[len(name):]}
	c.first.Store(1)
	c.local = subList{ch: c, entries: c.localFirst[:0]}
	return c
}

// setFirst refreshes c.first after a change of history. Lock should be held.
func (c *channel) setFirst() {
	if c.histLen() == 0 {
		c.first.Store(c.offset + 1)
		if c.past != nil {
			c.past.snap, c.past.snapDead = nil, 0
		}
		return
	}
	c.first.Store(c.past.msgs.front().Offset)
	c.past.trimSnap()
}

// trimSnap drops from snap's front what history no longer holds, or
// lets snap go when it does not match history or holds too much that is
// dead. The channel's lock should be held; history is not empty.
func (p *history) trimSnap() {
	if len(p.snap) == 0 {
		return
	}
	front := p.msgs.front()
	k := -1
	if o := p.snap[0].Offset; o <= front.Offset && front.Offset-o < uint64(len(p.snap)) {
		k = int(front.Offset - o)
	}
	if k < 0 || p.snap[k] != front {
		p.snap, p.snapDead = nil, 0
		return
	}
	p.snap = p.snap[k:]
	p.snapDead += int32(k)
	if int(p.snapDead) > len(p.snap) {
		p.snap, p.snapDead = nil, 0
	}
}

// flat returns history as one slice (snap, brought up to date); callers
// must not write to it. Lock should be held.
func (c *channel) flat() []*Message {
	p := c.past
	if p == nil {
		return nil
	}
	n := p.msgs.Len()
	if m := len(p.snap); m > n || (m > 0 && (p.snap[0] != p.msgs.front() || p.snap[m-1] != p.msgs.at(m-1))) {
		p.snap, p.snapDead = nil, 0
	}
	if len(p.snap) == 0 {
		p.snap, p.snapDead = make([]*Message, 0, n+n/4+4), 0
	}
	before := cap(p.snap)
	for i := len(p.snap); i < n; i++ {
		p.snap = append(p.snap, p.msgs.at(i))
	}
	if cap(p.snap) != before {
		p.snapDead = 0 // a new array holds only history
	}
	return p.snap
}

// store appends m to history, dropping the oldest message when history
// holds limit messages, and returns the bytes and messages it dropped.
// limit must be > 0. Lock should be held.
func (c *channel) store(m *Message, limit int) (freedBytes int64, freed int) {
	if c.past == nil {
		c.past = &history{}
	}
	p := c.past
	if p.msgs.Len() >= limit {
		old := p.msgs.pop()
		p.bytes -= old.size
		freedBytes, freed = old.size, 1
	}
	p.msgs.push(m, limit)
	p.bytes += m.size
	c.setFirst()
	return freedBytes, freed
}

// expire drops history older than ttl (none when ttl <= 0) and returns the
// bytes and messages it dropped. Lock should be held.
func (c *channel) expire(now time.Time, ttl time.Duration) (freedBytes int64, freed int) {
	if ttl <= 0 {
		return 0, 0
	}
	return c.dropWhile(func(m *Message) bool { return now.Sub(m.Time) > ttl })
}

// trimTo drops the oldest messages until history holds at most limit
// bytes or only its newest message, and returns the bytes and messages it
// dropped. Lock should be held.
func (c *channel) trimTo(limit int64) (freedBytes int64, freed int) {
	left := c.histBytes()
	return c.dropWhile(func(m *Message) bool {
		if left <= limit || c.histLen() <= 1 {
			return false
		}
		left -= m.size
		return true
	})
}

// trimThrough drops the messages of history with offsets up to off and
// returns the bytes and messages it dropped. Lock should be held.
func (c *channel) trimThrough(off uint64) (freedBytes int64, freed int) {
	return c.dropWhile(func(m *Message) bool { return m.Offset <= off })
}

// dropWhile drops messages from the front of history while drop says so
// and returns the bytes and messages it dropped. Lock should be held.
func (c *channel) dropWhile(drop func(*Message) bool) (freedBytes int64, freed int) {
	p := c.past
	if p == nil {
		return 0, 0
	}
	for p.msgs.Len() > 0 && drop(p.msgs.front()) {
		old := p.msgs.pop()
		freedBytes += old.size
		freed++
	}
	if freed > 0 {
		p.bytes -= freedBytes
		c.shrink()
		c.setFirst()
	}
	return freedBytes, freed
}

// clear drops all history and returns the bytes and messages it dropped.
// Lock should be held.
func (c *channel) clear() (freedBytes int64, freed int) {
	freedBytes, freed = c.histBytes(), c.histLen()
	if c.past != nil {
		c.past.msgs.reset()
		c.past.bytes = 0
	}
	c.setFirst()
	return freedBytes, freed
}

// shrink releases the storage of an emptied history: most channels fall
// quiet, and an idle one should cost no slots.
func (c *channel) shrink() {
	if c.past != nil && c.past.msgs.Len() == 0 {
		c.past.msgs.reset()
	}
}

// recover returns the messages after since, and true, when history still
// holds all of them in since's epoch; else nil and false. Lock should be
// held, and history already expired.
func (c *channel) recover(since Position) ([]*Message, bool) {
	if since.Epoch != c.epoch || since.Offset > c.offset {
		return nil, false
	}
	if since.Offset == c.offset {
		return nil, true
	}
	if since.Offset+1 < c.first.Load() {
		return nil, false
	}
	n := int(c.offset - since.Offset)
	all := c.flat()
	skip := len(all) - n
	return all[skip:len(all):len(all)], true
}

// addSub counts a subscriber on loop idx, which becomes the channel's
// home if it has none yet. Lock should be held.
func (c *channel) addSub(idx int) {
	c.subs++
	switch home := int(c.home.Load()); {
	case home == 0:
		c.home.Store(int32(idx) + 1)
		fallthrough
	case home == idx+1:
		c.homeSubs++
		return
	}
	if idx >= len(c.loopSubs) {
		grown := make([]int32, idx+1)
		copy(grown, c.loopSubs)
		c.loopSubs = grown
	}
	c.loopSubs[idx]++
}

// removeSub uncounts a subscriber on loop idx. Lock should be held.
func (c *channel) removeSub(idx int) {
	c.subs--
	if int(c.home.Load()) == idx+1 {
		c.homeSubs--
		return
	}
	c.loopSubs[idx]--
}

// idle reports whether the hub may forget c: no subscribers, no history,
// no reservation. Lock should be held.
func (c *channel) idle() bool {
	return c.subs == 0 && c.histLen() == 0 && c.holds == 0
}

// forget marks the channel gone. Lock should be held; the caller removes
// it from the registry.
func (c *channel) forget() {
	c.gone = true
	c.first.Store(math.MaxUint64)
}

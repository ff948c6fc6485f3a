package hub

import (
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/cpu"
)

// Loop is the part of an event loop the hub needs; *poller.Loop satisfies
// it, and tests use fakes. Index must be unique among the loops of one Hub
// and never change; Run must be safe for concurrent use and run fn later on
// the loop's goroutine, one func at a time, in the order queued.
type Loop interface {
	Index() int
	Run(fn func()) error
}

// Subscriber is one connection's side of its subscriptions. The hub calls
// its methods only on the goroutine of the loop it subscribed on. Values
// must be pointers: the hub finds a subscription by its (channel,
// Subscriber) pair, and keys its index by the pointer's address.
type Subscriber interface {
	// Deliver hands m to the subscriber, which writes the frames its
	// protocol's Encoder attached (m.Frames) to its socket, or applies its
	// backpressure policy. It runs
	// on the subscriber's loop goroutine and must not block; it may
	// Subscribe and Unsubscribe (itself or others on the same loop). m is
	// shared: Deliver must not modify it and may keep it as long as it
	// likes.
	Deliver(m *Message)
}

// subEntry is one subscription on a loop. sub is nil for an entry removed
// while the loop was walking its subscribers.
type subEntry struct {
	sub   Subscriber
	after uint64 // deliver only messages with a seq above this (channel.seq at Subscribe)
}

// indexThreshold is the size from which a subList looks subscribers up in
// an index: below it, a linear scan is as fast as a map and costs no
// memory, which suits the many personal channels with one or two
// subscribers.
const indexThreshold = 16

// subList is a loop's subscribers of one channel. Loop goroutine only.
type subList struct {
	ch      *channel
	entries []subEntry
	// index maps each subscriber's address (subKey) to its entry's
	// position: built by the first look-up in a list of at least
	// indexThreshold entries (find), then kept up to date. A storm of new
	// subscriptions (SubscribeNew, which looks nothing up) so costs no
	// index until the first of them leaves, whose removal indexes the
	// list in one pass. Keyed by address, not
	// by the interface, it holds no pointer: the collector never scans it,
	// and the map hashes a word instead of dispatching on the dynamic
	// type. An address stays a valid key while its entry holds the
	// subscriber (Go's heap objects do not move), and the key goes with
	// the entry.
	index map[uintptr]int32
	holes int32 // entries with a nil sub awaiting compaction
	live  int32 // entries with a non-nil sub
}

// subKey is the address of the pointer sub holds (see mustBePointer).
func subKey(sub Subscriber) uintptr {
	return reflect.ValueOf(sub).Pointer()
}

// mustBePointer panics unless sub holds a pointer, which subKey needs:
// any other value is boxed afresh each time it becomes an interface, so
// its address would not identify it.
func mustBePointer(sub Subscriber) {
	if t := reflect.TypeOf(sub); t == nil || t.Kind() != reflect.Pointer {
		panic(fmt.Sprintf("hub: a Subscriber must be a pointer, not %v", t))
	}
}

// find returns the position of sub's entry, or -1.
func (s *subList) find(sub Subscriber) int {
	if s.index == nil && len(s.entries) >= indexThreshold {
		s.reindex()
	}
	if s.index != nil {
		if i, ok := s.index[subKey(sub)]; ok {
			return int(i)
		}
		return -1
	}
	for i := range s.entries {
		if s.entries[i].sub == sub {
			return i
		}
	}
	return -1
}

// add appends an entry for sub.
func (s *subList) add(sub Subscriber, after uint64) {
	old := s.entries
	s.entries = append(s.entries, subEntry{sub: sub, after: after})
	if cap(old) == 1 && len(old) == 1 {
		// Moved out of a list's room for one (subListOfOne,
		// channel.localFirst), which lives on with the list: it must not
		// keep the first subscriber alive once that one leaves.
		clear(old)
	}
	s.live++
	if s.index != nil {
		s.index[subKey(sub)] = int32(len(s.entries) - 1)
	}
}

// remove removes the entry at i: at once by moving the last entry into its
// place, or, while the loop walks the list (walking), by leaving a hole
// that compact fills later, so the walk neither skips nor repeats anyone.
func (s *subList) remove(i int, walking bool) {
	if s.index != nil {
		delete(s.index, subKey(s.entries[i].sub))
	}
	s.live--
	if walking {
		s.entries[i].sub = nil
		s.holes++
		return
	}
	last := len(s.entries) - 1
	if i != last {
		s.entries[i] = s.entries[last]
		if s.index != nil {
			s.index[subKey(s.entries[i].sub)] = int32(i)
		}
	}
	s.entries[last] = subEntry{}
	s.entries = s.entries[:last]
}

// compact fills the holes left by removals during a walk.
func (s *subList) compact() {
	if s.holes == 0 {
		return
	}
	kept := s.entries[:0]
	for _, e := range s.entries {
		if e.sub != nil {
			kept = append(kept, e)
		}
	}
	clear(s.entries[len(kept):])
	s.entries, s.holes = kept, 0
	if s.index != nil {
		s.reindex()
	}
}

// reindex rebuilds the index from the entries.
func (s *subList) reindex() {
	s.index = make(map[uintptr]int32, len(s.entries))
	for i, e := range s.entries {
		if e.sub != nil {
			s.index[subKey(e.sub)] = int32(i)
		}
	}
}

// loopState is the hub's side of one event loop: a mailbox that any
// goroutine may append to (under mu), and the loop's subscriptions, which
// only the loop's goroutine touches.
type loopState struct {
	h     *Hub
	loop  Loop
	idx   int32  // loop.Index()
	drain func() // ls.run, bound once so a wakeup allocates nothing

	mu  sync.Mutex
	box []*Message // published, not yet walked; guarded by mu

	// Loop goroutine only from here on.

	spare []*Message // the other mailbox buffer, swapped in by run
	// subs holds the loop's subscriber lists of the channels whose home
	// is another loop (channel.home); a channel's list on its home loop
	// is its own (list).
	subs    map[*channel]*subList
	walking int        // depth of nested runs walking subscribers (an inline Loop.Run nests)
	dirty   []*subList // lists with holes to compact after the walk

	// subscriptions counts the loop's subscriptions (Stats sums the
	// loops'): written by the loop per subscribe, read by Stats, on a
	// cache line of its own so that the loops do not share one.
	_             cpu.CacheLinePad
	subscriptions atomic.Int64
	_             cpu.CacheLinePad
}

func newLoopState(h *Hub, l Loop) *loopState {
	ls := &loopState{h: h, loop: l, idx: int32(l.Index()), subs: make(map[*channel]*subList)}
	ls.drain = ls.run
	return ls
}

// post appends m to the mailbox and reports whether the loop needs a
// wakeup (the mailbox was empty: a drain already queued takes m too).
// Any goroutine; the caller holds m's channel lock, so that messages of a
// channel enter every mailbox in offset order.
func (ls *loopState) post(m *Message) (wake bool) {
	ls.mu.Lock()
	wake = len(ls.box) == 0
	ls.box = append(ls.box, m)
	ls.mu.Unlock()
	return wake
}

// wake queues a drain on the loop. If the loop refuses (it is stopping),
// the mailbox is emptied and its messages counted as dropped, so a dead
// loop holds no memory and the next post tries again.
func (ls *loopState) wake() {
	if err := ls.loop.Run(ls.drain); err != nil {
		ls.mu.Lock()
		n := len(ls.box)
		clear(ls.box)
		ls.box = ls.box[:0]
		ls.mu.Unlock()
		ls.h.dropped.Add(uint64(n))
	}
}

// run walks the mailbox: for each message, every subscriber of its channel
// on this loop whose subscription began before the message gets it. It
// runs on the loop's goroutine; the loop flushes each connection's writes
// once when it returns, so a burst drained in one run costs one write per
// connection.
func (ls *loopState) run() {
	ls.mu.Lock()
	batch := ls.box
	ls.box, ls.spare = ls.spare[:0], nil
	ls.mu.Unlock()
	if len(batch) == 0 {
		ls.spare = batch
		return
	}
	start := time.Now()
	ls.walking++
	var n uint64
	for i, m := range batch {
		batch[i] = nil
		s := ls.list(m.ch)
		if s == nil {
			continue
		}
		// Deliver may subscribe (appending, possibly reallocating) or
		// unsubscribe (leaving holes): index afresh on every step.
		for j := 0; j < len(s.entries); j++ {
			e := s.entries[j]
			if e.sub != nil && m.seq > e.after {
				e.sub.Deliver(m)
				n++
			}
		}
	}
	ls.walking--
	ls.spare = batch[:0]
	ls.h.deliveries.Add(n)
	d := time.Since(start)
	ls.h.lastFanout.Store(int64(d))
	if obs := ls.h.cfg.ObserveFanout; obs != nil {
		obs(d)
	}
	if ls.walking > 0 {
		return // the outer run compacts
	}
	for i, s := range ls.dirty {
		s.compact()
		if s.live == 0 {
			ls.emptied(s)
		}
		ls.dirty[i] = nil
	}
	ls.dirty = ls.dirty[:0]
}

// list is c's subscriber list on this loop, nil when the loop has none:
// the channel's own (channel.local) on its home loop, else the loop's
// table. Loop goroutine only.
func (ls *loopState) list(c *channel) *subList {
	if c.home.Load() == ls.idx+1 {
		return &c.local
	}
	return ls.subs[c]
}

// add subscribes sub to c on this loop, to messages with a seq above
// after; s is c's subscriber list here (ls.list(c)), looked up by the
// caller, nil when the loop has none yet. The channel's home loop was
// settled under its lock (channel.addSub) before add runs. Loop goroutine
// only.
func (ls *loopState) add(s *subList, c *channel, sub Subscriber, after uint64) {
	if s == nil {
		if c.home.Load() == ls.idx+1 {
			s = &c.local
		} else {
			s = newSubList(c)
			ls.subs[c] = s
		}
	}
	s.add(sub, after)
}

// emptied lets go of s, a list whose last subscriber left, outside a walk:
// a list of the loop's table leaves it; the channel's own keeps its place
// and drops an array it grew, so an emptied channel that lives on (its
// history) holds no more than a new one.
func (ls *loopState) emptied(s *subList) {
	c := s.ch
	if s == &c.local {
		s.entries, s.index = c.localFirst[:0], nil
		return
	}
	if ls.subs[c] == s {
		delete(ls.subs, c)
	}
}

// subListOfOne is a subList allocated with room for its first entry, for
// a channel's loops other than its home (whose list is the channel's
// own): one allocation instead of two. A second entry moves the list to an
// array of its own, as append does.
type subListOfOne struct {
	list  subList
	first [1]subEntry
}

// newSubList is an empty list of c's subscribers, with room for one.
func newSubList(c *channel) *subList {
	one := &subListOfOne{list: subList{ch: c}}
	one.list.entries = one.first[:0]
	return &one.list
}

// subscribers is a copy of the list's subscribers.
func (s *subList) subscribers() []Subscriber {
	out := make([]Subscriber, 0, s.live)
	for _, e := range s.entries {
		if e.sub != nil {
			out = append(out, e.sub)
		}
	}
	return out
}

// remove removes sub's subscription to c and reports whether there was
// one. Loop goroutine only.
func (ls *loopState) remove(c *channel, sub Subscriber) bool {
	s := ls.list(c)
	if s == nil {
		return false
	}
	i := s.find(sub)
	if i < 0 {
		return false
	}
	if ls.walking > 0 {
		if s.holes == 0 {
			ls.dirty = append(ls.dirty, s)
		}
		s.remove(i, true)
		return true
	}
	s.remove(i, false)
	if s.live == 0 {
		ls.emptied(s)
	}
	return true
}

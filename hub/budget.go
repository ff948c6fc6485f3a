package hub

import "sync"

// The history budget (Config.MaxHistoryBytes) is global: when the history
// of all channels together outgrows it, the oldest messages go first,
// whatever their channel. budget keeps a queue of every stored message in
// the order stored; eviction pops it from the front and trims each victim's
// channel up to the victim's offset.
//
// Entries hold the channel and offset, not the message, so an entry whose
// message already left history (by count or age) retains no payload. Such
// dead entries are recognised without the channel's lock (channel.gen and
// channel.first are atomics) and skipped; the queue is compacted when dead
// entries outnumber live ones, so its length stays within about twice the
// number of stored messages.

// budgetEntry is one stored message in the budget's queue.
type budgetEntry struct {
	ch   *channel
	off  uint64
	size int64
	gen  uint32
}

// dead reports whether the entry's message has already left history.
func (e *budgetEntry) dead() bool {
	return e.gen != e.ch.gen.Load() || e.off < e.ch.first.Load()
}

// budget is the queue of stored messages. Its mutex is taken after a
// channel's, never before one.
type budget struct {
	mu   sync.Mutex
	fifo ring[budgetEntry]
}

// record queues a newly stored message; stored is the number of messages
// in history after it. The caller holds the message's channel lock, so a
// channel's entries are queued in offset order.
func (b *budget) record(c *channel, m *Message, stored int64) {
	b.mu.Lock()
	b.fifo.push(budgetEntry{ch: c, off: m.Offset, size: m.size, gen: c.gen.Load()}, 0)
	if n := int64(b.fifo.Len()); n > 2*stored+256 {
		b.fifo.filter(func(e budgetEntry) bool { return !e.dead() })
	}
	b.mu.Unlock()
}

// compact drops dead entries.
func (b *budget) compact() {
	b.mu.Lock()
	b.fifo.filter(func(e budgetEntry) bool { return !e.dead() })
	if b.fifo.Len() == 0 {
		b.fifo.reset()
	}
	b.mu.Unlock()
}

// victims pops live entries from the front until the sizes popped cover
// excess bytes or dst is full, and returns them in dst.
func (b *budget) victims(dst []budgetEntry, excess int64) []budgetEntry {
	b.mu.Lock()
	for len(dst) < cap(dst) && excess > 0 && b.fifo.Len() > 0 {
		e := b.fifo.pop()
		if e.dead() {
			continue
		}
		dst = append(dst, e)
		excess -= e.size
	}
	b.mu.Unlock()
	return dst
}

// evict trims the oldest history of any channel until the total is back
// within Config.MaxHistoryBytes. One goroutine evicts at a time; others
// return at once, and the evicting one checks again after letting go, so
// what they stored meanwhile is not left over the cap.
func (h *Hub) evict() {
	for h.histBytes.Load() > h.cfg.MaxHistoryBytes {
		if !h.evicting.CompareAndSwap(false, true) {
			return
		}
		progress := h.evictLocked()
		h.evicting.Store(false)
		if !progress {
			return
		}
	}
}

// evictLocked does evict's work; h.evicting must be held. It reports false
// when it found nothing to evict although over the cap (a message counted
// but not queued yet: its publisher, which holds its channel's lock, will
// evict after queueing it).
func (h *Hub) evictLocked() (progress bool) {
	var buf [64]budgetEntry
	for {
		excess := h.histBytes.Load() - h.cfg.MaxHistoryBytes
		if excess <= 0 {
			return true
		}
		vs := h.budget.victims(buf[:0], excess)
		if len(vs) == 0 {
			return false
		}
		for i := range vs {
			e := &vs[i]
			e.ch.mu.Lock()
			if e.ch.gen.Load() == e.gen {
				h.freed(e.ch.trimThrough(e.off))
			}
			e.ch.mu.Unlock()
			*e = budgetEntry{}
		}
	}
}

package hub

import "sync"

// History is bounded twice by bytes. Each channel keeps at most
// Config.HistoryChannelBytes: a channel's own publishes trim only its own
// history, oldest first. All channels together keep at most
// Config.MaxHistoryBytes: past it, the channel holding the most bytes loses
// its oldest message, again and again until the total fits. So a publisher
// flooding channels of its own shrinks them first, and a quiet channel's
// few messages go only once every other channel is as small.
//
// budget finds the channel holding the most bytes with a max-heap of the
// channels that hold history, keyed by a copy of their byte counts taken
// under the channel's lock. An update costs O(log channels).

// heapEntry is one channel in the budget's heap.
type heapEntry struct {
	ch    *channel
	bytes int64 // the channel's history bytes when last updated
}

// budget is the heap of channels with history. Its mutex is taken after a
// channel's, never before one; channel.heapIdx is guarded by it.
type budget struct {
	mu   sync.Mutex
	heap []heapEntry
}

// update records that c now holds bytes of history (0 removes it from the
// heap). The caller holds c's lock, so a channel's updates come in order.
func (b *budget) update(c *channel, bytes int64) {
	b.mu.Lock()
	i := int(c.past.heapIdx) - 1 // heapIdx is 1-based: 0 means not in the heap
	switch {
	case i < 0 && bytes > 0:
		b.heap = append(b.heap, heapEntry{ch: c, bytes: bytes})
		c.past.heapIdx = int32(len(b.heap))
		b.up(len(b.heap) - 1)
	case i >= 0 && bytes == 0:
		b.removeAt(i)
	case i >= 0:
		old := b.heap[i].bytes
		b.heap[i].bytes = bytes
		if bytes > old {
			b.up(i)
		} else {
			b.down(i)
		}
	}
	b.mu.Unlock()
}

// largest returns the channel holding the most history bytes, or nil.
func (b *budget) largest() *channel {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.heap) == 0 {
		return nil
	}
	return b.heap[0].ch
}

// len returns how many channels the heap holds.
func (b *budget) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.heap)
}

// removeAt removes the entry at i. Lock should be held.
func (b *budget) removeAt(i int) {
	b.heap[i].ch.past.heapIdx = 0
	last := len(b.heap) - 1
	if i != last {
		b.heap[i] = b.heap[last]
		b.heap[i].ch.past.heapIdx = int32(i + 1)
	}
	b.heap[last] = heapEntry{}
	b.heap = b.heap[:last]
	if i < len(b.heap) {
		b.down(i)
		b.up(i)
	}
	if len(b.heap) == 0 {
		b.heap = nil
	}
}

// up moves the entry at i towards the root while it is larger than its
// parent. Lock should be held.
func (b *budget) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if b.heap[p].bytes >= b.heap[i].bytes {
			return
		}
		b.swap(i, p)
		i = p
	}
}

// down moves the entry at i towards the leaves while a child is larger.
// Lock should be held.
func (b *budget) down(i int) {
	n := len(b.heap)
	for {
		big := i
		if l := 2*i + 1; l < n && b.heap[l].bytes > b.heap[big].bytes {
			big = l
		}
		if r := 2*i + 2; r < n && b.heap[r].bytes > b.heap[big].bytes {
			big = r
		}
		if big == i {
			return
		}
		b.swap(i, big)
		i = big
	}
}

// swap exchanges two entries and their channels' indexes. Lock should be
// held.
func (b *budget) swap(i, j int) {
	b.heap[i], b.heap[j] = b.heap[j], b.heap[i]
	b.heap[i].ch.past.heapIdx = int32(i + 1)
	b.heap[j].ch.past.heapIdx = int32(j + 1)
}

// evict trims the largest channels' history until the total is back within
// Config.MaxHistoryBytes. One goroutine evicts at a time; others return at
// once, and the evicting one checks again after letting go, so what they
// stored meanwhile is not left over the cap.
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
// when it found nothing to evict although over the cap.
func (h *Hub) evictLocked() (progress bool) {
	for h.histBytes.Load() > h.cfg.MaxHistoryBytes {
		c := h.budget.largest()
		if c == nil {
			return false
		}
		c.mu.Lock()
		var bytes int64
		var n int
		if c.histLen() > 0 {
			first := c.past.msgs.front().Offset
			bytes, n = c.trimThrough(first)
		}
		h.freed(bytes, n)
		h.rebudget(c)
		c.mu.Unlock()
		if n == 0 {
			return false // nothing left to evict
		}
		h.evictedNode.Add(uint64(n))
	}
	return true
}

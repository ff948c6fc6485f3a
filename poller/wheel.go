package poller

import "time"

// wheelSlots is the number of buckets of a timing wheel; a deadline further
// than wheelSlots ticks away is looked at once per turn and put back.
const wheelSlots = 512

// maxTimerTicks bounds a timer's distance, so that deadlines compare with
// wrapping uint32 arithmetic (see after).
const maxTimerTicks = 1 << 30

// wheel is a lazy hashed timing wheel, one per loop, touched only on the
// loop goroutine. Time is counted in ticks of interval since epoch, as
// uint32 that may wrap (compared with after); tick 0 is never a deadline
// or a slot, so 0 means "none" in Conn.deadline and Conn.slot.
//
// A connection sits in the bucket of the tick at which it is next looked at
// (Conn.slot). Moving a deadline later costs nothing: when its bucket comes
// up, the connection is put into the bucket of its new deadline. Moving it
// earlier adds an entry to an earlier bucket and leaves the old entry
// stale; an entry is stale when the connection's slot is no longer that
// bucket's tick, and stale entries are dropped when their bucket comes up.
type wheel struct {
	interval time.Duration
	epoch    time.Time
	now      uint32    // last tick processed
	buckets  [][]*Conn // nil until the first timer is set
}

func (w *wheel) init(interval time.Duration) {
	w.interval = interval
	w.epoch = time.Now()
}

// after reports whether tick a comes after tick b.
func after(a, b uint32) bool { return int32(a-b) > 0 }

// set arms c to fire after d.
func (w *wheel) set(c *Conn, d time.Duration) {
	// One tick more than d rounds up to: the current tick has partly
	// passed already, so this keeps the timer from firing early.
	ticks := int64((d+w.interval-1)/w.interval) + 1
	ticks = min(max(ticks, 1), maxTimerTicks)
	dl := w.now + uint32(ticks)
	if dl == 0 {
		dl = 1
	}
	c.deadline = dl
	if c.slot != 0 && !after(c.slot, dl) {
		return // looked at no later than dl: it will be moved on then
	}
	w.insert(c, dl)
}

// insert puts c into the bucket of tick dl, or of the last tick of the
// current turn if dl is further away.
func (w *wheel) insert(c *Conn, dl uint32) {
	if w.buckets == nil {
		w.buckets = make([][]*Conn, wheelSlots)
	}
	at := dl
	if at-w.now >= wheelSlots {
		at = w.now + wheelSlots - 1
	}
	if at == 0 {
		// Tick 0 means "none": use tick 1, which shares tick 0's bucket
		// turn or is the next tick; either way it is still ahead.
		at = 1
	}
	c.slot = at
	i := at % wheelSlots
	w.buckets[i] = append(w.buckets[i], c)
}

// advance processes every tick up to now, calling OnTimer for the
// connections whose deadline has come.
func (w *wheel) advance(l *Loop, now time.Time) {
	target := uint32(now.Sub(w.epoch) / w.interval)
	if w.buckets == nil {
		w.now = target
		return
	}
	for w.now != target {
		w.now++
		w.expire(l, w.now)
	}
}

// expire processes the bucket of tick t.
func (w *wheel) expire(l *Loop, t uint32) {
	i := t % wheelSlots
	list := w.buckets[i]
	if len(list) == 0 {
		return
	}
	w.buckets[i] = nil // entries added while firing go to a fresh list
	for _, c := range list {
		if c.slot != t {
			continue // stale entry
		}
		c.slot = 0
		if c.deadline == 0 || c.fd < 0 {
			continue // stopped or closed
		}
		if after(c.deadline, t) {
			w.insert(c, c.deadline)
			continue
		}
		c.deadline = 0
		l.k.h.OnTimer(c)
	}
	n := len(list)
	clear(list)
	// Keep the list's memory for the next turn unless it was an outlier.
	if w.buckets[i] == nil && cap(list) <= 4*n+64 {
		w.buckets[i] = list[:0]
	}
}

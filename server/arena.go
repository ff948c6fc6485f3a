package server

// arena hands out scratch memory for frames written during one event-loop
// callback. The poller sends everything a callback queued with one writev when
// the callback returns, and gnet copies whatever the kernel did not take into
// its own outbound buffer, so the arena can be reset at the start of the next
// callback on the same loop. Chunks never move once handed out, so slices
// queued earlier in a callback stay valid while later ones are carved.
//
// Hand-written rather than a sync.Pool because it is on the hot path of every
// reply and costs nothing per frame once its chunks exist. One arena per loop;
// only that loop's goroutine touches it.
type arena struct {
	chunks [][]byte // chunks[i][:len] is in use during the current callback
	cur    int      // index of the chunk being carved
	big    [][]byte // one-off buffers larger than a chunk, dropped at reset
}

const arenaChunk = 64 << 10

// alloc returns a zero-length slice with capacity n that stays valid until
// the next reset.
func (a *arena) alloc(n int) []byte {
	if n > arenaChunk/2 {
		b := make([]byte, 0, n)
		a.big = append(a.big, b)
		return b
	}
	for a.cur < len(a.chunks) {
		c := a.chunks[a.cur]
		if cap(c)-len(c) >= n {
			a.chunks[a.cur] = c[:len(c)+n]
			return c[len(c) : len(c) : len(c)+n]
		}
		a.cur++
	}
	c := make([]byte, n, arenaChunk)
	a.chunks = append(a.chunks, c)
	return c[:0:n]
}

// reset makes every chunk reusable. Call it only when nothing handed out is
// still queued for writing.
func (a *arena) reset() {
	for i := range a.chunks {
		if i > a.cur {
			break
		}
		a.chunks[i] = a.chunks[i][:0]
	}
	a.cur = 0
	// Keep at most two chunks between callbacks so a burst does not pin
	// memory forever.
	if len(a.chunks) > 2 {
		clear(a.chunks[2:])
		a.chunks = a.chunks[:2]
	}
	if len(a.big) > 0 {
		clear(a.big)
		a.big = a.big[:0]
	}
}

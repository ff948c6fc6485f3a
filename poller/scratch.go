package poller

// scratch hands out memory for bytes built during one entry point and
// queued with Conn.Write: frames, handshake answers, control frames. The
// loop resets it right after the entry point's writes have been flushed,
// when every byte handed out has either gone to the kernel or been copied
// to an outbound buffer (both backends copy what the kernel refuses), so
// nothing queued can still point into it. Chunks never move once handed
// out, so slices taken earlier in an entry point stay valid while later
// ones are carved: one tick that fires many connections' timers gives each
// its own bytes.
//
// It is hand-written rather than a sync.Pool because it is on the path of
// every reply and costs nothing per frame once its chunks exist. One per
// loop; only the loop goroutine touches it.
type scratch struct {
	chunks [][]byte // chunks[i][:len] is in use during the current entry point
	cur    int      // index of the chunk being carved
	big    [][]byte // one-off buffers larger than half a chunk, dropped at reset
	used   bool     // anything handed out since the last reset
}

// scratchChunk is the size of one chunk. 64 KiB holds a tick's worth of
// control frames for thousands of connections; larger requests get a
// buffer of their own.
const scratchChunk = 64 << 10

// scratchKeep is how many chunks a reset keeps, so that a burst does not
// pin memory forever.
const scratchKeep = 2

// alloc returns a zero-length slice with capacity n that stays valid
// until the next reset.
func (a *scratch) alloc(n int) []byte {
	a.used = true
	if n > scratchChunk/2 {
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
	c := make([]byte, n, scratchChunk)
	a.chunks = append(a.chunks, c)
	a.cur = len(a.chunks) - 1
	return c[:0:n]
}

// reset makes every chunk reusable. Call it only when nothing handed out
// is still queued for writing.
func (a *scratch) reset() {
	if !a.used {
		return
	}
	a.used = false
	for i := range a.chunks {
		if i > a.cur {
			break
		}
		a.chunks[i] = a.chunks[i][:0]
	}
	a.cur = 0
	if len(a.chunks) > scratchKeep {
		clear(a.chunks[scratchKeep:])
		a.chunks = a.chunks[:scratchKeep]
	}
	if len(a.big) > 0 {
		clear(a.big)
		a.big = a.big[:0]
	}
}

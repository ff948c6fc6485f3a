package hub

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/herald-push/herald/poller"
)

// The server hands the hub its poller loops.
var _ Loop = (*poller.Loop)(nil)

// inlineLoop is a Loop that runs each func at once on the caller's
// goroutine: the simplest fake, for tests that need no concurrency and for
// benchmarks.
type inlineLoop struct{ idx int }

func (l *inlineLoop) Index() int          { return l.idx }
func (l *inlineLoop) Run(fn func()) error { fn(); return nil }

// deadLoop refuses every func, as a stopping poller loop does.
type deadLoop struct{ idx int }

var errStopped = errors.New("loop stopped")

func (l *deadLoop) Index() int       { return l.idx }
func (l *deadLoop) Run(func()) error { return errStopped }

// goLoop is a Loop with a goroutine of its own running queued funcs in
// order, one at a time, like a poller loop. Its queue is unbounded, so Run
// never blocks.
type goLoop struct {
	idx  int
	mu   sync.Mutex
	q    []func()
	wake chan struct{}
	done chan struct{}
}

// newGoLoop starts a goLoop and stops it when the test ends.
func newGoLoop(t testing.TB, idx int) *goLoop {
	t.Helper()
	l := &goLoop{idx: idx, wake: make(chan struct{}, 1), done: make(chan struct{})}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-l.done:
				return
			case <-l.wake:
			}
			for {
				l.mu.Lock()
				q := l.q
				l.q = nil
				l.mu.Unlock()
				if len(q) == 0 {
					break
				}
				for _, fn := range q {
					fn()
				}
			}
		}
	}()
	t.Cleanup(func() { close(l.done); <-stopped })
	return l
}

func (l *goLoop) Index() int { return l.idx }

func (l *goLoop) Run(fn func()) error {
	l.mu.Lock()
	l.q = append(l.q, fn)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return nil
}

// do runs fn on the loop and waits for it, failing the test after a while.
func (l *goLoop) do(t testing.TB, fn func()) {
	t.Helper()
	done := make(chan struct{})
	_ = l.Run(func() { fn(); close(done) })
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("loop %d: func did not run within 10s", l.idx)
	}
}

// recorder is a Subscriber that keeps what it is delivered. It is touched
// only on its loop's goroutine (tests read it through goLoop.do or after
// inline delivery).
type recorder struct {
	msgs []*Message
	// onDeliver, when set, runs after each delivery, on the loop.
	onDeliver func(m *Message)
}

func (r *recorder) Deliver(m *Message) {
	r.msgs = append(r.msgs, m)
	if r.onDeliver != nil {
		r.onDeliver(m)
	}
}

// offsets returns the offsets delivered, in order.
func (r *recorder) offsets() []uint64 {
	out := make([]uint64, len(r.msgs))
	for i, m := range r.msgs {
		out[i] = m.Offset
	}
	return out
}

// counter is a Subscriber that only counts, for benchmarks.
type counter struct{ n, bytes int }

func (c *counter) Deliver(m *Message) { c.n++; c.bytes += len(m.Data) }

// clock is a settable time source for Config.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// mustPublish publishes or fails the test.
func mustPublish(t testing.TB, h *Hub, channel string, data string) *Message {
	t.Helper()
	m, err := h.Publish(channel, []byte(data))
	if err != nil {
		t.Fatalf("Publish(%q): %v", channel, err)
	}
	return m
}

// seq returns the offsets from..to inclusive (nil when from > to).
func seq(from, to uint64) []uint64 {
	var out []uint64
	for o := from; o <= to; o++ {
		out = append(out, o)
	}
	return out
}

// backlogOffsets returns the offsets of a backlog.
func backlogOffsets(ms []*Message) []uint64 {
	var out []uint64
	for _, m := range ms {
		out = append(out, m.Offset)
	}
	return out
}

// manualLoop queues funcs until the test calls flush, so a test can pile
// several messages into one drain deterministically.
type manualLoop struct {
	idx int
	q   []func()
}

func (l *manualLoop) Index() int          { return l.idx }
func (l *manualLoop) Run(fn func()) error { l.q = append(l.q, fn); return nil }

// flush runs the queued funcs, including those queued meanwhile.
func (l *manualLoop) flush() {
	for len(l.q) > 0 {
		fn := l.q[0]
		l.q = l.q[1:]
		fn()
	}
}

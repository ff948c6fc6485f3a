package pool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/panjf2000/ants/v2"
)

// Defaults applied by WorkersConfig's zero fields.
const (
	// DefaultWorkers is the default number of tasks run at once. The
	// tasks are expected to wait on I/O (auth and RPC calls), not to burn
	// CPU, so the default is generous; goroutines of an idle pool exit
	// after a second.
	DefaultWorkers = 256
	// DefaultQueueLimit is the default bound on tasks waiting to start.
	DefaultQueueLimit = 64 << 10
)

var (
	// ErrQueueFull is returned by Submit when QueueLimit tasks are waiting.
	ErrQueueFull = errors.New("pool: worker queue full")
	// ErrClosed is returned by Submit after Close.
	ErrClosed = errors.New("pool: workers closed")
)

// WorkersConfig configures Workers. The zero value is valid.
type WorkersConfig struct {
	// Size is the most tasks that run at once; 0 means DefaultWorkers.
	Size int
	// QueueLimit bounds the tasks submitted and not yet started; Submit
	// fails with ErrQueueFull beyond it. 0 means DefaultQueueLimit.
	QueueLimit int
	// PanicHandler is called (on the worker goroutine) with the key and
	// the value of a task's panic; the worker then goes on with the next
	// task. nil logs the panic with slog.Default.
	PanicHandler func(key uint64, v any)
}

// Workers runs tasks that may block, on a bounded set of goroutines, in
// order per key: tasks submitted with the same key (a connection's id) run
// one at a time, in the order of their Submit calls, while tasks of
// different keys run in parallel, up to Size at once. When more keys have
// work than there are workers, the workers take turns between them, one
// task at a time, so a busy key cannot starve the others.
//
// State is kept for a key only while it has tasks queued or running. The
// goroutines come from an ants pool. Workers is safe for concurrent use.
type Workers struct {
	pool    *ants.PoolWithFuncGeneric[*keyQueue]
	size    int
	limit   int
	onPanic func(key uint64, v any)

	mu      sync.Mutex
	keys    map[uint64]*keyQueue // keys with tasks queued or running
	ready   fifo                 // keys with tasks and no worker, in turn order
	running int                  // workers busy with a key
	depth   int                  // tasks submitted and not yet started
	closed  bool
	idle    chan struct{} // closed when closed, running == 0 and depth == 0
	free    []*keyQueue   // recycled queues
}

// keyQueue holds the pending tasks of one key. Guarded by Workers.mu.
type keyQueue struct {
	key   uint64
	tasks []func()
	head  int
}

func (q *keyQueue) len() int { return len(q.tasks) - q.head }

func (q *keyQueue) pop() func() {
	t := q.tasks[q.head]
	q.tasks[q.head] = nil
	q.head++
	if q.head == len(q.tasks) {
		q.tasks, q.head = q.tasks[:0], 0
	}
	return t
}

// fifo is a queue of keys waiting for a worker.
type fifo struct {
	items []*keyQueue
	head  int
}

func (f *fifo) len() int { return len(f.items) - f.head }

func (f *fifo) push(q *keyQueue) {
	if f.head > 0 && f.head == len(f.items) {
		f.items, f.head = f.items[:0], 0
	}
	f.items = append(f.items, q)
}

func (f *fifo) pop() *keyQueue {
	if f.len() == 0 {
		return nil
	}
	q := f.items[f.head]
	f.items[f.head] = nil
	f.head++
	return q
}

// maxFree bounds the recycled queues kept for reuse.
const maxFree = 1024

// NewWorkers returns a pool of workers; Close releases it.
func NewWorkers(cfg WorkersConfig) (*Workers, error) {
	if cfg.Size <= 0 {
		cfg.Size = DefaultWorkers
	}
	if cfg.QueueLimit <= 0 {
		cfg.QueueLimit = DefaultQueueLimit
	}
	w := &Workers{
		size:    cfg.Size,
		limit:   cfg.QueueLimit,
		onPanic: cfg.PanicHandler,
		keys:    make(map[uint64]*keyQueue),
		idle:    make(chan struct{}),
	}
	if w.onPanic == nil {
		w.onPanic = func(key uint64, v any) {
			slog.Error("pool: task panicked", "key", key, "panic", v)
		}
	}
	// A worker that has finished with us may not be back in ants' idle
	// list yet when the next key starts, so ants may hold twice as many
	// goroutines as we use; Nonblocking makes sure Submit never waits.
	p, err := ants.NewPoolWithFuncGeneric(2*cfg.Size, w.run, ants.WithNonblocking(true))
	if err != nil {
		return nil, fmt.Errorf("pool: new workers: %w", err)
	}
	w.pool = p
	return w, nil
}

// Submit queues task to run after the tasks submitted before with the same
// key. It never blocks on running tasks: it returns ErrQueueFull when
// QueueLimit tasks are waiting to start, and ErrClosed after Close.
func (w *Workers) Submit(key uint64, task func()) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	if w.depth >= w.limit {
		w.mu.Unlock()
		return ErrQueueFull
	}
	w.depth++
	if q := w.keys[key]; q != nil {
		q.tasks = append(q.tasks, task) // its worker (or turn) will come
		w.mu.Unlock()
		return nil
	}
	q := w.newQueue(key)
	q.tasks = append(q.tasks, task)
	w.keys[key] = q
	if w.running >= w.size {
		w.ready.push(q)
		w.mu.Unlock()
		return nil
	}
	w.running++
	w.mu.Unlock()
	if err := w.pool.Invoke(q); err != nil {
		// Cannot happen while the pool has twice the goroutines we use;
		// a plain goroutine keeps the accounting right if it does.
		go w.run(q)
	}
	return nil
}

// newQueue returns an empty queue for key. w.mu must be held.
func (w *Workers) newQueue(key uint64) *keyQueue {
	if n := len(w.free); n > 0 {
		q := w.free[n-1]
		w.free[n-1] = nil
		w.free = w.free[:n-1]
		q.key = key
		return q
	}
	return &keyQueue{key: key}
}

// run is a worker's life: it runs q's tasks, taking turns with other
// waiting keys, until no key needs a worker.
func (w *Workers) run(q *keyQueue) {
	for q != nil {
		w.mu.Lock()
		task := q.pop()
		w.depth--
		w.mu.Unlock()
		w.call(q.key, task)
		w.mu.Lock()
		q = w.next(q)
		w.mu.Unlock()
	}
}

// next decides what a worker does after a task of q: go on with q, take
// the next waiting key, or stop. w.mu must be held.
func (w *Workers) next(q *keyQueue) *keyQueue {
	switch {
	case q.len() == 0:
		delete(w.keys, q.key)
		if len(w.free) < maxFree && cap(q.tasks) <= 64 {
			w.free = append(w.free, q)
		}
	case w.ready.len() == 0:
		return q
	default:
		w.ready.push(q) // others are waiting: take turns
	}
	if n := w.ready.pop(); n != nil {
		return n
	}
	w.running--
	if w.closed && w.running == 0 && w.depth == 0 {
		close(w.idle)
	}
	return nil
}

// call runs task, reporting a panic instead of losing the worker.
func (w *Workers) call(key uint64, task func()) {
	defer func() {
		if v := recover(); v != nil {
			w.onPanic(key, v)
		}
	}()
	task()
}

// QueueDepth is the number of tasks submitted and not yet started.
func (w *Workers) QueueDepth() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.depth
}

// Close refuses new tasks and waits until every submitted task has run, or
// until ctx ends (then the tasks not yet started may never run). It
// releases the pool's goroutines in either case. Calling it again waits
// again.
func (w *Workers) Close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		if w.running == 0 && w.depth == 0 {
			close(w.idle)
		}
	}
	w.mu.Unlock()
	defer w.pool.Release()
	select {
	case <-w.idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("pool: close workers: %w", ctx.Err())
	}
}

package broker

import (
	"crypto/sha256"
	"encoding/base64"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-push/herald/hub"
)

// Defaults of the idempotent publish (Dedup).
const (
	// DefaultIdempotencyWindow is how long a node remembers an
	// idempotency key.
	DefaultIdempotencyWindow = 5 * time.Minute
	// DefaultIdempotencyKeys is how many keys a node remembers at most;
	// past it the oldest is forgotten first.
	DefaultIdempotencyKeys = 100_000
	// MaxIdempotencyKey is the longest idempotency key, in bytes.
	MaxIdempotencyKey = 128
)

// Dedup remembers the results of idempotent publishes on one node: a key
// seen within the window returns the first publish's position instead of
// publishing again. Keys are per channel (the caller's key names the
// channel too). A second publish with a key whose first is still in
// flight waits for it; a first that fails is forgotten, so a retry
// publishes. Memory is bounded: at most max keys, the oldest forgotten
// first. Safe for concurrent use.
type Dedup struct {
	window time.Duration
	max    int
	now    func() time.Time

	mu    sync.Mutex
	keys  map[string]*dedupEntry
	order []*dedupEntry // oldest first, from head
	head  int

	duplicates atomic.Uint64
}

// dedupEntry is one remembered publish; pos and err are set before done
// closes.
type dedupEntry struct {
	key  string
	at   time.Time
	done chan struct{}
	pos  hub.Position
	err  error
}

// NewDedup returns a Dedup remembering keys for window (0:
// DefaultIdempotencyWindow) up to max keys (0: DefaultIdempotencyKeys).
// now tells the time (nil: time.Now).
func NewDedup(window time.Duration, max int, now func() time.Time) *Dedup {
	if window <= 0 {
		window = DefaultIdempotencyWindow
	}
	if max <= 0 {
		max = DefaultIdempotencyKeys
	}
	if now == nil {
		now = time.Now
	}
	return &Dedup{window: window, max: max, now: now, keys: map[string]*dedupEntry{}}
}

// Window is how long a key is remembered.
func (d *Dedup) Window() time.Duration { return d.window }

// Duplicates counts the publishes answered as duplicates (cumulative),
// those the node remembered and those JetStream recognised (Counted).
func (d *Dedup) Duplicates() uint64 { return d.duplicates.Load() }

// Counted counts a duplicate found elsewhere (JetStream's de-duplication
// of a retry that reached another node).
func (d *Dedup) Counted() { d.duplicates.Add(1) }

// Len is how many keys are remembered now.
func (d *Dedup) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.keys)
}

// Do runs publish once per key within the window. A key seen before
// returns the first publish's position and duplicate=true without running
// publish (after waiting for the first, if it is in flight). publish's own
// duplicate result (JetStream recognised the key) is passed on.
func (d *Dedup) Do(key string, publish func() (hub.Position, bool, error)) (pos hub.Position, duplicate bool, err error) {
	for {
		d.mu.Lock()
		now := d.now()
		d.expireLocked(now)
		if e := d.keys[key]; e != nil {
			d.mu.Unlock()
			<-e.done
			if e.err != nil {
				continue // the first failed and was forgotten: publish now
			}
			d.duplicates.Add(1)
			return e.pos, true, nil
		}
		for len(d.order)-d.head >= d.max {
			d.popLocked()
		}
		e := &dedupEntry{key: key, at: now, done: make(chan struct{})}
		d.keys[key] = e
		d.order = append(d.order, e)
		d.mu.Unlock()

		e.pos, duplicate, e.err = publish()
		if e.err != nil {
			d.mu.Lock()
			if d.keys[key] == e {
				delete(d.keys, key)
			}
			d.mu.Unlock()
		}
		close(e.done)
		if duplicate {
			d.duplicates.Add(1)
		}
		return e.pos, duplicate, e.err
	}
}

// expireLocked forgets the keys older than the window. Lock held.
func (d *Dedup) expireLocked(now time.Time) {
	for d.head < len(d.order) && now.Sub(d.order[d.head].at) > d.window {
		d.popLocked()
	}
}

// popLocked forgets the oldest entry, compacting the queue now and then.
// Lock held; the queue must not be empty.
func (d *Dedup) popLocked() {
	e := d.order[d.head]
	d.order[d.head] = nil
	d.head++
	if d.keys[e.key] == e {
		delete(d.keys, e.key)
	}
	if d.head > 1024 && d.head > len(d.order)/2 {
		n := copy(d.order, d.order[d.head:])
		clear(d.order[n:])
		d.order, d.head = d.order[:n], 0
	}
}

// DedupKey is the key under which a publish of key to channel is
// remembered, and its message ID in JetStream (Nats-Msg-Id): the same on
// every node, so a retry that reaches another node is recognised there.
func DedupKey(channel, key string) string {
	sum := sha256.Sum256([]byte(channel + "\x00" + key))
	return "herald-" + base64.RawURLEncoding.EncodeToString(sum[:18])
}

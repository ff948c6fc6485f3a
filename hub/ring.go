package hub

// ring is a FIFO queue over a slice that grows by doubling, up to a limit
// when one is set, and keeps its storage between pushes and pops, so a
// queue in steady state allocates nothing. Its zero value is an empty queue
// with no storage, which matters for the many channels (personal ones) that
// keep a message or two. Not safe for concurrent use: its owner's lock
// guards it.
type ring[T any] struct {
	buf []T
	// head is the index of the oldest element, n the number of elements:
	// 32 bits, as a channel's history never holds 2^31 messages, so that
	// a channel's history stays small (see history).
	head, n int32
}

// Len returns the number of queued elements.
func (r *ring[T]) Len() int { return int(r.n) }

// at returns the i-th oldest element (0 is the oldest); i must be < Len.
func (r *ring[T]) at(i int) T {
	return r.buf[(int(r.head)+i)%len(r.buf)]
}

// front returns the oldest element; the queue must not be empty.
func (r *ring[T]) front() T { return r.buf[r.head] }

// push appends v as the newest element, growing the storage when full;
// limit > 0 caps the storage at limit elements, and the caller must pop
// before pushing onto a ring holding limit elements.
func (r *ring[T]) push(v T, limit int) {
	if r.Len() == len(r.buf) {
		r.grow(limit)
	}
	r.buf[(int(r.head)+int(r.n))%len(r.buf)] = v
	r.n++
}

// grow reallocates the storage, doubling it (from 4), capped at limit when
// limit > 0, and lays the elements out from index 0.
func (r *ring[T]) grow(limit int) {
	size := max(4, 2*len(r.buf))
	if limit > 0 {
		size = min(size, limit)
	}
	buf := make([]T, size)
	for i := range r.Len() {
		buf[i] = r.at(i)
	}
	r.buf, r.head = buf, 0
}

// pop removes and returns the oldest element, zeroing its slot so the
// storage keeps no reference to it; the queue must not be empty.
func (r *ring[T]) pop() T {
	var zero T
	v := r.buf[r.head]
	r.buf[r.head] = zero
	r.head = (r.head + 1) % int32(len(r.buf))
	r.n--
	return v
}

// reset empties the queue and releases its storage.
func (r *ring[T]) reset() { *r = ring[T]{} }

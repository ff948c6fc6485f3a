package pool

import (
	"math/bits"
	"sync"
)

// Size classes of Bytes: powers of two from 1<<minShift (512 B) to
// 1<<maxShift (16 MiB).
const (
	minShift   = 9
	maxShift   = 24
	numClasses = maxShift - minShift + 1

	// MinBufferSize is the capacity of the smallest pooled buffer.
	MinBufferSize = 1 << minShift
	// MaxBufferSize is the capacity of the largest pooled buffer. Get for
	// more allocates an exact-size buffer that Put drops.
	MaxBufferSize = 1 << maxShift
)

// Bytes is a set of byte-buffer pools by size class: powers of two from
// MinBufferSize to MaxBufferSize, one sync.Pool per class.
//
// The pools hold *[]byte rather than []byte so that Put stores a pointer and
// does not allocate a slice header on the heap; a buffer borrowed and returned
// in steady state costs no allocation.
//
// The zero value is not usable; use NewBytes. Safe for concurrent use.
type Bytes struct {
	classes [numClasses]sync.Pool
}

// NewBytes returns an empty set of pools. Buffers are allocated on demand by
// Get and kept by Put until the garbage collector drains the pools.
func NewBytes() *Bytes {
	return &Bytes{}
}

// Get returns a buffer of length 0 and capacity at least n, taken from the
// smallest class that fits n, or newly allocated when that class is empty.
// For n > MaxBufferSize it allocates a buffer of capacity n that Put will
// drop. The caller owns the buffer until it hands it to Put, exactly once.
func (p *Bytes) Get(n int) *[]byte {
	c := classOf(n)
	if c >= numClasses {
		b := make([]byte, 0, n)
		return &b
	}
	if v := p.classes[c].Get(); v != nil {
		b := v.(*[]byte)
		*b = (*b)[:0]
		return b
	}
	b := make([]byte, 0, 1<<(c+minShift))
	return &b
}

// Put returns b to the pool of the largest class its capacity covers, so a
// later Get of that class gets at least the capacity it asks for. Buffers
// smaller than MinBufferSize or larger than MaxBufferSize, and nil, are
// dropped. The caller must not use b, or any slice of it, after Put.
func (p *Bytes) Put(b *[]byte) {
	if b == nil {
		return
	}
	c := cap(*b)
	if c < MinBufferSize || c > MaxBufferSize {
		return
	}
	// floor(log2(c)) - minShift: a capacity that is not a power of two
	// (appended to by a caller) goes to the class below it.
	idx := bits.Len(uint(c)) - 1 - minShift
	*b = (*b)[:0]
	p.classes[idx].Put(b)
}

// classOf returns the index of the smallest class whose buffers hold n
// bytes; numClasses or more means no class does.
func classOf(n int) int {
	if n <= MinBufferSize {
		return 0
	}
	// ceil(log2(n)) - minShift.
	return bits.Len(uint(n-1)) - minShift
}

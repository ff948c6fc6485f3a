package loadgen

import (
	"bytes"
	"math/bits"
	"strconv"
)

// appendPayload appends the JSON payload {"t":t,"seq":seq}, padded with a
// "pad" field to at least size bytes.
func appendPayload(dst []byte, t int64, seq uint64, size int) []byte {
	start := len(dst)
	dst = append(dst, `{"t":`...)
	dst = strconv.AppendInt(dst, t, 10)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	if pad := size - (len(dst) - start) - len(`,"pad":""}`); pad > 0 {
		dst = append(dst, `,"pad":"`...)
		for range pad {
			dst = append(dst, 'x')
		}
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

var (
	keyT   = []byte(`"t":`)
	keySeq = []byte(`"seq":`)
)

// parseStamp finds the "t" and "seq" fields of a payload made by
// appendPayload anywhere in msg (so an envelope around it does not matter).
// It allocates nothing; the message is scanned twice at most.
func parseStamp(msg []byte) (t int64, seq uint64, ok bool) {
	i := bytes.Index(msg, keyT)
	if i < 0 {
		return 0, 0, false
	}
	tv, ok := parseUint(msg[i+len(keyT):])
	if !ok {
		return 0, 0, false
	}
	j := bytes.Index(msg[i:], keySeq)
	if j < 0 {
		return 0, 0, false
	}
	sv, ok := parseUint(msg[i+j+len(keySeq):])
	if !ok {
		return 0, 0, false
	}
	return int64(tv), sv, true
}

// parseUint parses the decimal digits at the head of p (after optional
// spaces).
func parseUint(p []byte) (uint64, bool) {
	for len(p) > 0 && p[0] == ' ' {
		p = p[1:]
	}
	var v uint64
	n := 0
	for ; n < len(p) && n < 19 && p[n] >= '0' && p[n] <= '9'; n++ {
		v = v*10 + uint64(p[n]-'0')
	}
	return v, n > 0
}

// windowSize is how far out of order a message may arrive and still be
// told apart from a duplicate.
const windowSize = 128

// window records which sequence numbers one connection has received, to
// tell duplicates from first deliveries. Numbers below base have all been
// received (or given up on, when a message arrives more than windowSize
// ahead of the oldest missing one); bit i of bits stands for base+i. It is
// 24 bytes and owned by the connection's loop.
type window struct {
	base uint64
	bits [2]uint64
}

// add marks seq as received and reports whether it had been before (a
// duplicate, or a message more than windowSize late).
func (w *window) add(seq uint64) (dup bool) {
	if seq < w.base {
		return true
	}
	off := seq - w.base
	if off >= windowSize {
		w.slide(off - windowSize + 1)
		off = windowSize - 1
	}
	word, bit := off/64, off%64
	if w.bits[word]&(1<<bit) != 0 {
		return true
	}
	w.bits[word] |= 1 << bit
	for w.bits[0]&1 != 0 {
		w.slide(uint64(bits.TrailingZeros64(^w.bits[0])))
	}
	return false
}

// slide moves the window n numbers forward.
func (w *window) slide(n uint64) {
	w.base += n
	switch {
	case n >= windowSize:
		w.bits = [2]uint64{}
	case n >= 64:
		w.bits[0], w.bits[1] = w.bits[1]>>(n-64), 0
	case n > 0:
		w.bits[0] = w.bits[0]>>n | w.bits[1]<<(64-n)
		w.bits[1] >>= n
	}
}

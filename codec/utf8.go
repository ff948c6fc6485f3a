package codec

import "unicode/utf8"

// This file holds a hand-written UTF-8 validator: unicode/utf8 only judges
// complete byte slices, while text messages arrive in fragments (and frames
// in pieces) that may split a code point anywhere. The validator is Bjoern
// Hoehrmann's DFA ("Flexible and Economical UTF-8 Decoder"): one table
// lookup per byte and a one-byte state carried across calls.

// DFA states. The non-final states (24..96) encode how many continuation
// bytes are still due and which range the next one must fall in.
const (
	utf8Accept uint8 = 0  // on a code-point boundary, everything so far valid
	utf8Reject uint8 = 12 // invalid; absorbing
)

// utf8Class maps each byte to one of 12 character classes, chosen so that
// bytes which behave alike in every state share a class.
var utf8Class = func() (t [256]uint8) {
	fill := func(lo, hi int, class uint8) {
		for b := lo; b <= hi; b++ {
			t[b] = class
		}
	}
	// 0x00..0x7F: class 0 (ASCII), the zero value.
	fill(0x80, 0x8F, 1)  // continuation, low
	fill(0x90, 0x9F, 9)  // continuation, middle
	fill(0xA0, 0xBF, 7)  // continuation, high
	fill(0xC0, 0xC1, 8)  // overlong 2-byte lead: never valid
	fill(0xC2, 0xDF, 2)  // 2-byte lead
	fill(0xE0, 0xE0, 10) // 3-byte lead, next must be A0..BF (no overlong)
	fill(0xE1, 0xEC, 3)  // 3-byte lead
	fill(0xED, 0xED, 4)  // 3-byte lead, next must be 80..9F (no surrogates)
	fill(0xEE, 0xEF, 3)  // 3-byte lead
	fill(0xF0, 0xF0, 11) // 4-byte lead, next must be 90..BF (no overlong)
	fill(0xF1, 0xF3, 6)  // 4-byte lead
	fill(0xF4, 0xF4, 5)  // 4-byte lead, next must be 80..8F (<= U+10FFFF)
	fill(0xF5, 0xFF, 8)  // beyond U+10FFFF: never valid
	return t
}()

// utf8Trans is the transition table: utf8Trans[state+class] is the next
// state. States are multiples of 12 so that the sum indexes a flat table.
var utf8Trans = [9 * 12]uint8{
	// class: 0   1   2   3   4   5   6   7   8   9  10  11
	/*  0 */ 0, 12, 24, 36, 60, 96, 84, 12, 12, 12, 48, 72, // accept
	/* 12 */ 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, // reject
	/* 24 */ 12, 0, 12, 12, 12, 12, 12, 0, 12, 0, 12, 12, // 1 more, any 80..BF
	/* 36 */ 12, 24, 12, 12, 12, 12, 12, 24, 12, 24, 12, 12, // 2 more, any
	/* 48 */ 12, 12, 12, 12, 12, 12, 12, 24, 12, 12, 12, 12, // after E0: A0..BF
	/* 60 */ 12, 24, 12, 12, 12, 12, 12, 12, 12, 24, 12, 12, // after ED: 80..9F
	/* 72 */ 12, 12, 12, 12, 12, 12, 12, 36, 12, 36, 12, 12, // after F0: 90..BF
	/* 84 */ 12, 36, 12, 12, 12, 12, 12, 36, 12, 36, 12, 12, // 3 more, any
	/* 96 */ 12, 36, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, // after F4: 80..8F
}

// utf8Step returns the DFA state after p, starting from state; it stops
// early at utf8Reject.
//
// The DFA runs only where a piece boundary may split a code point: to
// finish one begun in an earlier piece, and over the unfinished one at the
// end of p. The run between them starts and ends on code-point boundaries,
// so unicode/utf8.Valid, which is faster on non-ASCII text, judges it.
func utf8Step(state uint8, p []byte) uint8 {
	i := 0
	for ; i < len(p) && state != utf8Accept && state != utf8Reject; i++ {
		state = utf8Trans[state+utf8Class[p[i]]]
	}
	if state != utf8Accept {
		return state
	}
	p = p[i:]
	k := lastBoundary(p)
	if !utf8.Valid(p[:k]) {
		return utf8Reject
	}
	return utf8DFA(utf8Accept, p[k:])
}

// utf8DFA runs the DFA from state over p, stopping early at utf8Reject.
func utf8DFA(state uint8, p []byte) uint8 {
	for _, c := range p {
		state = utf8Trans[state+utf8Class[c]]
		if state == utf8Reject {
			break
		}
	}
	return state
}

// lastBoundary returns len(p) when p ends with a complete sequence, or the
// index of the lead byte of the sequence p ends in the middle of. Whatever
// it returns for invalid input, the caller's verdict is the same.
func lastBoundary(p []byte) int {
	for j := len(p) - 1; j >= 0 && j >= len(p)-4; j-- {
		c := p[j]
		if c&0xC0 == 0x80 {
			continue // continuation byte
		}
		need := 1
		switch {
		case c >= 0xF0 && c <= 0xF7:
			need = 4
		case c >= 0xE0 && c <= 0xEF:
			need = 3
		case c >= 0xC0 && c <= 0xDF:
			need = 2
		}
		if j+need > len(p) {
			return j
		}
		return len(p)
	}
	return len(p)
}

// ValidUTF8 reports whether p is entirely valid UTF-8 (RFC 3629: no
// overlong forms, no surrogates, nothing above U+10FFFF).
func ValidUTF8(p []byte) bool {
	return utf8Step(utf8Accept, p) == utf8Accept
}

// UTF8Validator checks UTF-8 that arrives in pieces split at any byte, such
// as the fragments of a text message or the output of an inflater working
// through a compressed one. The zero value is ready to use and is one byte.
//
// Not safe for concurrent use; the caller synchronises.
type UTF8Validator struct {
	state uint8
}

// Write feeds the next piece of input. It returns false as soon as the input
// seen so far cannot be the beginning of valid UTF-8, and keeps returning
// false until Reset.
func (v *UTF8Validator) Write(p []byte) bool {
	v.state = utf8Step(v.state, p)
	return v.state != utf8Reject
}

// Complete reports whether the input seen so far is valid UTF-8 that ends on
// a code-point boundary, which is what the end of a text message requires.
func (v *UTF8Validator) Complete() bool {
	return v.state == utf8Accept
}

// Reset prepares v for a new input.
func (v *UTF8Validator) Reset() {
	v.state = utf8Accept
}

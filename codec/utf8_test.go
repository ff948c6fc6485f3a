package codec

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// utf8Samples are valid and invalid inputs, mostly from the Autobahn
// TestSuite's UTF-8 cases and Markus Kuhn's decoder stress test.
var utf8Samples = []struct {
	name string
	s    string
}{
	{name: "empty", s: ""},
	{name: "ascii", s: "Hello-\u00b5@\u00df\u00f6\u00e4\u00fc\u00e0\u00e1-UTF-8!!"},
	{name: "greek", s: "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"},
	{name: "greek then surrogate", s: "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"},
	{name: "first of each length", s: "\x00\xc2\x80\xe0\xa0\x80\xf0\x90\x80\x80"},
	{name: "last of each length", s: "\x7f\xdf\xbf\xef\xbf\xbf\xf4\x8f\xbf\xbf"},
	{name: "above U+10FFFF", s: "\xf4\x90\x80\x80"},
	{name: "5-byte form", s: "\xf8\x88\x80\x80\x80"},
	{name: "lone continuation", s: "a\x80b"},
	{name: "lone lead", s: "a\xc2"},
	{name: "truncated 4-byte", s: "\xf0\x9f\x98"},
	{name: "overlong slash 2", s: "\xc0\xaf"},
	{name: "overlong slash 3", s: "\xe0\x80\xaf"},
	{name: "overlong slash 4", s: "\xf0\x80\x80\xaf"},
	{name: "max overlong 3", s: "\xe0\x9f\xbf"},
	{name: "high surrogate", s: "\xed\xa0\x80"},
	{name: "low surrogate", s: "\xed\xbf\xbf"},
	{name: "surrogate pair", s: "\xed\xa0\x80\xed\xb0\x80"},
	{name: "noncharacter FFFF is valid", s: "\xef\xbf\xbf"},
	{name: "fe ff", s: "\xfe\xff"},
	{name: "long ascii", s: strings.Repeat("abcdefgh", 9) + "\u20ac" + strings.Repeat("z", 17)},
	{name: "long ascii then bad", s: strings.Repeat("abcdefgh", 9) + "\xe2\x28\xa1"},
}

func TestValidUTF8MatchesStdlib(t *testing.T) {
	t.Parallel()
	for _, tc := range utf8Samples {
		if got, want := ValidUTF8([]byte(tc.s)), utf8.ValidString(tc.s); got != want {
			t.Errorf(
				"%s: ValidUTF8 = %v, want %v",
				tc.name, got, want)
		}
	}
}

func TestValidUTF8ExhaustiveShort(t *testing.T) {
	t.Parallel()
	// Every sequence of up to three bytes whose first byte is not ASCII
	// (ASCII-led ones reduce to shorter cases), against unicode/utf8: both
	// ValidUTF8 and the bare DFA, whose table the split paths rely on.
	check := func(p []byte) {
		want := utf8.Valid(p)
		if ValidUTF8(p) != want || (utf8DFA(utf8Accept, p) == utf8Accept) != want {
			t.Fatalf(
				"% x: ValidUTF8 = %v, DFA state %d, utf8.Valid = %v",
				p, ValidUTF8(p), utf8DFA(utf8Accept, p), want)
		}
	}
	var b [4]byte
	for b0 := 0x80; b0 < 0x100; b0++ {
		b[0] = byte(b0)
		check(b[:1])
		for b1 := range 0x100 {
			b[1] = byte(b1)
			check(b[:2])
			for b2 := range 0x100 {
				b[2] = byte(b2)
				check(b[:3])
			}
		}
	}
	// Four-byte sequences: every lead byte from F0 with every pair of
	// continuation-range bytes, and a fourth byte at the range edges.
	for b0 := 0xF0; b0 < 0x100; b0++ {
		for b1 := 0x70; b1 < 0xD0; b1++ {
			for b2 := 0x70; b2 < 0xD0; b2++ {
				for _, b3 := range []byte{0x7f, 0x80, 0xbf, 0xc0} {
					b = [4]byte{byte(b0), byte(b1), byte(b2), b3}
					check(b[:])
				}
			}
		}
	}
}

func TestValidUTF8Random(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(7, 7))
	alphabet := []byte{0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xe1, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf4, 0xf5, 0xff}
	buf := make([]byte, 0, 64)
	for range 200000 {
		buf = buf[:0]
		for range 1 + r.IntN(12) {
			buf = append(buf, alphabet[r.IntN(len(alphabet))])
		}
		if ValidUTF8(buf) != utf8.Valid(buf) || (utf8DFA(utf8Accept, buf) == utf8Accept) != utf8.Valid(buf) {
			t.Fatalf(
				"% x: ValidUTF8 = %v, utf8.Valid = %v",
				buf, ValidUTF8(buf), utf8.Valid(buf))
		}
	}
}

func TestUTF8ValidatorSplitAtEveryByte(t *testing.T) {
	t.Parallel()
	for _, tc := range utf8Samples {
		want := utf8.ValidString(tc.s)
		for i := 0; i <= len(tc.s); i++ {
			for j := i; j <= len(tc.s); j++ {
				var v UTF8Validator
				ok := v.Write([]byte(tc.s[:i])) && v.Write([]byte(tc.s[i:j])) && v.Write([]byte(tc.s[j:]))
				if got := ok && v.Complete(); got != want {
					t.Fatalf(
						"%s split at %d and %d: valid = %v, want %v",
						tc.name, i, j, got, want)
				}
			}
		}
	}
}

func TestUTF8ValidatorFailsFast(t *testing.T) {
	t.Parallel()
	testCases := []struct {
		name   string
		prefix string // fed first, must be rejected on its own
		rest   string
	}{
		{name: "surrogate", prefix: "ok \xed\xa0", rest: "\x80 more"},
		{name: "bad lead", prefix: "\xff", rest: "abc"},
		{name: "overlong", prefix: "\xc0", rest: "\xaf"},
		{name: "too high", prefix: "\xf4\x90", rest: "\x80\x80"},
		{name: "continuation missing", prefix: "\xe2\x82A", rest: ""},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var v UTF8Validator
			if v.Write([]byte(tc.prefix)) {
				t.Fatalf(
					"prefix %q accepted",
					tc.prefix)
			}
			if v.Write([]byte(tc.rest)) || v.Complete() {
				t.Fatal("validator recovered after rejecting")
			}
			v.Reset()
			if !v.Write([]byte("fine")) || !v.Complete() {
				t.Fatal("Reset did not clear the rejection")
			}
		})
	}
}

func TestUTF8ValidatorIncompleteIsNotComplete(t *testing.T) {
	t.Parallel()
	var v UTF8Validator
	if !v.Write([]byte("\xf0\x9f\x98")) {
		t.Fatal("a valid prefix was rejected")
	}
	if v.Complete() {
		t.Fatal("input ending inside a code point reported complete")
	}
	if !v.Write([]byte("\x80")) || !v.Complete() {
		t.Fatal("completed code point not accepted")
	}
}

// TestDecoderTextSplitAtEveryByte sends each sample as a text message of
// two fragments split at every byte, and as one frame delivered in two
// pieces split at every byte.
func TestDecoderTextSplitAtEveryByte(t *testing.T) {
	t.Parallel()
	for _, tc := range utf8Samples {
		valid := utf8.ValidString(tc.s)
		for i := 0; i <= len(tc.s); i++ {
			fragmented := concat(frame(OpText, false, tc.s[:i]), frame(OpContinuation, true, tc.s[i:]))
			one := frame(OpText, true, tc.s)
			for _, in := range []struct {
				name   string
				stream []byte
				chunks []int
			}{
				{name: "fragments", stream: fragmented, chunks: []int{len(fragmented)}},
				{name: "pieces", stream: one, chunks: []int{FrameHeaderLen(len(tc.s), true) + i, len(one)}},
			} {
				chunks := in.chunks
				next := func() int {
					k := chunks[0]
					chunks = chunks[1:]
					return k
				}
				got, err := decodeWith(nil, in.stream, next)
				code := closeCode(t, err)
				switch {
				case valid && (code != 0 || len(got) != 1 || got[0].payload != tc.s):
					t.Fatalf(
						"%s, %s split at %d: got %v, %v",
						tc.name, in.name, i, got, err)
				case !valid && code != CloseInvalidPayload:
					t.Fatalf(
						"%s, %s split at %d: error %v, want 1007",
						tc.name, in.name, i, err)
				}
			}
		}
	}
}

package codec

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestAppendFrameHeaders(t *testing.T) {
	t.Parallel()
	testCases := []struct {
		name       string
		op         OpCode
		fin        bool
		n          int
		wantHeader []byte
	}{
		{name: "empty final text", op: OpText, fin: true, n: 0, wantHeader: []byte{0x81, 0x00}},
		{name: "125 bytes", op: OpBinary, fin: true, n: 125, wantHeader: []byte{0x82, 125}},
		{name: "126 bytes", op: OpBinary, fin: true, n: 126, wantHeader: []byte{0x82, 126, 0x00, 126}},
		{name: "65535 bytes", op: OpText, fin: false, n: 65535, wantHeader: []byte{0x01, 126, 0xff, 0xff}},
		{name: "65536 bytes", op: OpContinuation, fin: true, n: 65536, wantHeader: []byte{0x80, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
		{name: "ping", op: OpPing, fin: true, n: 3, wantHeader: []byte{0x89, 3}},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			payload := bytes.Repeat([]byte{'z'}, tc.n)
			got := AppendFrame([]byte("dst"), tc.op, tc.fin, payload)
			if !bytes.HasPrefix(got, []byte("dst")) {
				t.Fatal("dst prefix overwritten")
			}
			got = got[3:]
			if !bytes.Equal(got[:len(tc.wantHeader)], tc.wantHeader) {
				t.Fatalf(
					"header % x, want % x",
					got[:len(tc.wantHeader)], tc.wantHeader)
			}
			if hl := FrameHeaderLen(tc.n, false); hl != len(tc.wantHeader) {
				t.Errorf(
					"FrameHeaderLen(%d, false) = %d, want %d",
					tc.n, hl, len(tc.wantHeader))
			}
			if hl := FrameHeaderLen(tc.n, true); hl != len(tc.wantHeader)+4 {
				t.Errorf(
					"FrameHeaderLen(%d, true) = %d, want %d",
					tc.n, hl, len(tc.wantHeader)+4)
			}
			if !bytes.Equal(got[len(tc.wantHeader):], payload) {
				t.Fatal("payload not appended as is")
			}

			masked := AppendMaskedFrame(nil, tc.op, tc.fin, payload, testKey)
			if masked[0] != tc.wantHeader[0] || masked[1] != tc.wantHeader[1]|bitMask ||
				!bytes.Equal(masked[2:len(tc.wantHeader)], tc.wantHeader[2:]) {
				t.Fatalf(
					"masked header % x, want % x with the mask bit",
					masked[:len(tc.wantHeader)], tc.wantHeader)
			}
			if !bytes.Equal(payload, bytes.Repeat([]byte{'z'}, tc.n)) {
				t.Fatal("AppendMaskedFrame modified the payload")
			}
		})
	}
}

func TestAppendHeaderCompressed(t *testing.T) {
	t.Parallel()
	h := AppendHeader(nil, OpText, true, true, 5)
	if h[0] != 0xC1 || h[1] != 5 {
		t.Fatalf(
			"header % x, want c1 05",
			h)
	}
	got, err := decodeWith(&DecoderConfig{Role: RoleClient, AllowRSV1: true}, append(h, "\xff\xff\xff\xff\xff"...), whole)
	if err != nil || len(got) != 1 || !got[0].compressed {
		t.Fatalf(
			"decode compressed frame: %v, %v",
			got, err)
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 15, 16, 17, 125, 126, 127, 1000, 65535, 65536, 70001} {
		payload := []byte(strings.Repeat("\u00e9x", n/3+1)[:n])
		if n%3 == 1 {
			payload[n-1] = 'y' // the cut split a code point: keep the text valid
		}
		for _, masked := range []bool{false, true} {
			var wire []byte
			cfg := &DecoderConfig{Role: RoleClient}
			if masked {
				wire = AppendMaskedFrame(nil, OpText, true, payload, [4]byte{1, 2, 3, byte(n)})
				cfg = &DecoderConfig{Role: RoleServer}
			} else {
				wire = AppendFrame(nil, OpText, true, payload)
			}
			got, err := decodeWith(cfg, wire, randomChunks(uint64(n), 300))
			if err != nil || len(got) != 1 || got[0].payload != string(payload) {
				t.Fatalf(
					"n=%d masked=%v: %v, %v",
					n, masked, got, err)
			}
		}
	}
}

// naiveMask is the RFC 6455 section 5.3 definition, byte by byte.
func naiveMask(b []byte, key [4]byte, offset int) {
	for i := range b {
		b[i] ^= key[(offset+i)%4]
	}
}

func TestMaskMatchesNaive(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(11, 12))
	for range 2000 {
		n := r.IntN(300)
		offset := r.IntN(9)
		var key [4]byte
		for i := range key {
			key[i] = byte(r.Uint32())
		}
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		want := bytes.Clone(data)
		naiveMask(want, key, offset)
		// Mask a sub-slice at an odd address too, to cover unaligned heads.
		start := r.IntN(4)
		got := append(make([]byte, start), data...)
		Mask(got[start:], key, offset)
		if !bytes.Equal(got[start:], want) {
			t.Fatalf(
				"n=%d offset=%d key=% x: Mask differs from the definition",
				n, offset, key)
		}
	}
}

func TestOpCodeString(t *testing.T) {
	t.Parallel()
	testCases := []struct {
		op   OpCode
		want string
	}{
		{op: OpText, want: "text"},
		{op: OpClose, want: "close"},
		{op: 0xB, want: "reserved(0xb)"},
	}
	for _, tc := range testCases {
		if got := tc.op.String(); got != tc.want {
			t.Errorf(
				"OpCode(%d).String() = %q, want %q",
				byte(tc.op), got, tc.want)
		}
	}
}

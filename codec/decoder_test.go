package codec

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/herald-push/herald/pool"
)

type decoderCase struct {
	name   string
	cfg    DecoderConfig
	stream []byte
	want   []result // messages expected before the end or the error
	code   uint16   // expected CloseError code; 0 for none
}

// decoderCases lists one case per validation rule of the Decoder, plus the
// valid shapes next to them.
func decoderCases() []decoderCase {
	client := DecoderConfig{Role: RoleClient}
	deflate := DecoderConfig{AllowRSV1: true}
	small := DecoderConfig{MaxFrameSize: 10, MaxMessageSize: 25}
	cases := []decoderCase{
		{
			name:   "masked text",
			stream: frame(OpText, true, "hello"),
			want:   []result{{op: OpText, payload: "hello"}},
		},
		{
			name:   "empty text",
			stream: frame(OpText, true, ""),
			want:   []result{{op: OpText, payload: ""}},
		},
		{
			name:   "unmasked binary to client",
			cfg:    client,
			stream: AppendFrame(nil, OpBinary, true, []byte{0, 1, 2}),
			want:   []result{{op: OpBinary, payload: "\x00\x01\x02"}},
		},
		{
			name:   "unmasked frame to server",
			stream: AppendFrame(nil, OpText, true, []byte("hi")),
			code:   CloseProtocolError,
		},
		{
			name:   "masked frame to client",
			cfg:    client,
			stream: frame(OpText, true, "hi"),
			code:   CloseProtocolError,
		},
		{
			name:   "RSV1 without extension",
			stream: concat(rawHeader(bitFin|bitRsv1|byte(OpText), true, 0)),
			code:   CloseProtocolError,
		},
		{
			name:   "RSV2",
			stream: concat(rawHeader(bitFin|bitRsv2|byte(OpBinary), true, 0)),
			code:   CloseProtocolError,
		},
		{
			name:   "RSV3",
			stream: concat(rawHeader(bitFin|bitRsv3|byte(OpBinary), true, 0)),
			code:   CloseProtocolError,
		},
		{
			name:   "RSV2 with deflate",
			cfg:    deflate,
			stream: concat(rawHeader(bitFin|bitRsv2|byte(OpBinary), true, 0)),
			code:   CloseProtocolError,
		},
		{
			name: "RSV1 with deflate is reported and text is not checked",
			cfg:  deflate,
			stream: concat(
				rawHeader(bitFin|bitRsv1|byte(OpText), true, 2), maskBytes("\xff\xfe")),
			want: []result{{op: OpText, payload: "\xff\xfe", compressed: true}},
		},
		{
			name: "RSV1 on first fragment only, with deflate",
			cfg:  deflate,
			stream: concat(
				rawHeader(bitRsv1|byte(OpText), true, 2), maskBytes("ab"),
				frame(OpContinuation, true, "\xc3")),
			want: []result{{op: OpText, payload: "ab\xc3", compressed: true}},
		},
		{
			name: "RSV1 on continuation",
			cfg:  deflate,
			stream: concat(
				frame(OpText, false, "a"),
				rawHeader(bitFin|bitRsv1|byte(OpContinuation), true, 0)),
			code: CloseProtocolError,
		},
		{
			name:   "RSV1 on ping",
			cfg:    deflate,
			stream: rawHeader(bitFin|bitRsv1|byte(OpPing), true, 0),
			code:   CloseProtocolError,
		},
		{
			name:   "fragmented ping",
			stream: frame(OpPing, false, "x"),
			code:   CloseProtocolError,
		},
		{
			name:   "fragmented pong",
			stream: frame(OpPong, false, ""),
			code:   CloseProtocolError,
		},
		{
			name:   "fragmented close",
			stream: frame(OpClose, false, ""),
			code:   CloseProtocolError,
		},
		{
			name:   "ping of 125 bytes",
			stream: frame(OpPing, true, strings.Repeat("p", 125)),
			want:   []result{{op: OpPing, payload: strings.Repeat("p", 125)}},
		},
		{
			name:   "ping of 126 bytes",
			stream: rawHeader(bitFin|byte(OpPing), true, 126),
			code:   CloseProtocolError,
		},
		{
			name:   "pong",
			stream: frame(OpPong, true, "ok"),
			want:   []result{{op: OpPong, payload: "ok"}},
		},
		{
			name:   "continuation without message",
			stream: frame(OpContinuation, true, "x"),
			code:   CloseProtocolError,
		},
		{
			name:   "text while fragmented message in progress",
			stream: concat(frame(OpText, false, "a"), frame(OpText, true, "b")),
			code:   CloseProtocolError,
		},
		{
			name:   "binary while fragmented message in progress",
			stream: concat(frame(OpBinary, false, "a"), frame(OpBinary, false, "b")),
			code:   CloseProtocolError,
		},
		{
			name:   "64-bit length with top bit set",
			stream: rawHeader(bitFin|byte(OpBinary), true, 1<<63),
			code:   CloseProtocolError,
		},
		{
			name:   "64-bit length all ones",
			stream: rawHeader(bitFin|byte(OpBinary), true, 1<<64-1),
			code:   CloseProtocolError,
		},
		{
			name:   "huge frame fails on its header alone",
			stream: rawHeader(bitFin|byte(OpBinary), true, 1<<40),
			code:   CloseMessageTooBig,
		},
		{
			name:   "frame at the size limit",
			cfg:    small,
			stream: frame(OpBinary, true, "0123456789"),
			want:   []result{{op: OpBinary, payload: "0123456789"}},
		},
		{
			name:   "frame over the size limit",
			cfg:    small,
			stream: rawHeader(bitFin|byte(OpBinary), true, 11),
			code:   CloseMessageTooBig,
		},
		{
			name: "message at the size limit",
			cfg:  small,
			stream: concat(
				frame(OpBinary, false, "0123456789"),
				frame(OpContinuation, false, "0123456789"),
				frame(OpContinuation, true, "01234")),
			want: []result{{op: OpBinary, payload: "012345678901234567890123" + "4"}},
		},
		{
			name: "message over the size limit",
			cfg:  small,
			stream: concat(
				frame(OpBinary, false, "0123456789"),
				frame(OpContinuation, false, "0123456789"),
				rawHeader(byte(OpContinuation), true, 6)),
			code: CloseMessageTooBig,
		},
		{
			name:   "empty close",
			stream: frame(OpClose, true, ""),
			want:   []result{{op: OpClose, closeCode: CloseNoStatus}},
		},
		{
			name:   "close with code and reason",
			stream: frame(OpClose, true, closePayload(1000, "bye")),
			want: []result{{
				op: OpClose, payload: closePayload(1000, "bye"),
				closeCode: 1000, closeReason: "bye",
			}},
		},
		{
			name:   "close payload of 1 byte",
			stream: frame(OpClose, true, "\x03"),
			code:   CloseProtocolError,
		},
		{
			name:   "close reason not UTF-8",
			stream: frame(OpClose, true, closePayload(1000, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80")),
			code:   CloseInvalidPayload,
		},
		{
			name:   "text not UTF-8",
			stream: frame(OpText, true, "a\xffb"),
			code:   CloseInvalidPayload,
		},
		{
			name:   "text ending inside a code point",
			stream: frame(OpText, true, "a\xe2\x82"),
			code:   CloseInvalidPayload,
		},
		{
			name:   "binary need not be UTF-8",
			stream: frame(OpBinary, true, "a\xffb"),
			want:   []result{{op: OpBinary, payload: "a\xffb"}},
		},
		{
			name: "code point split across fragments",
			stream: concat(
				frame(OpText, false, "\xe2"),
				frame(OpContinuation, false, "\x82"),
				frame(OpContinuation, true, "\xac!")),
			want: []result{{op: OpText, payload: "\u20ac!"}},
		},
		{
			name: "text fragments ending inside a code point",
			stream: concat(
				frame(OpText, false, "ok"),
				frame(OpContinuation, true, "\xf0\x9f")),
			code: CloseInvalidPayload,
		},
		{
			name: "invalid first fragment fails before the rest arrives",
			stream: concat(
				frame(OpText, false, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80")),
			code: CloseInvalidPayload,
		},
		{
			name: "invalid text fails before its frame is complete",
			stream: concat(
				rawHeader(bitFin|byte(OpText), true, 1000), maskBytes("hello \xc0 and 988 bytes to come")),
			code: CloseInvalidPayload,
		},
		{
			name: "control frames between fragments, in order",
			stream: concat(
				frame(OpText, false, "fra"),
				frame(OpPing, true, "1"),
				frame(OpContinuation, false, "gm"),
				frame(OpPong, true, "2"),
				frame(OpContinuation, true, "ents"),
				frame(OpBinary, true, "next")),
			want: []result{
				{op: OpPing, payload: "1"},
				{op: OpPong, payload: "2"},
				{op: OpText, payload: "fragments"},
				{op: OpBinary, payload: "next"},
			},
		},
		{
			name: "empty fragments",
			stream: concat(
				frame(OpBinary, false, ""),
				frame(OpContinuation, false, ""),
				frame(OpContinuation, true, "")),
			want: []result{{op: OpBinary, payload: ""}},
		},
	}
	for _, code := range []uint16{0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535} {
		cases = append(cases, decoderCase{
			name:   fmt.Sprintf("close code %d is invalid", code),
			stream: frame(OpClose, true, closePayload(code, "")),
			code:   CloseProtocolError,
		})
	}
	for _, code := range []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999} {
		cases = append(cases, decoderCase{
			name:   fmt.Sprintf("close code %d is valid", code),
			stream: frame(OpClose, true, closePayload(code, "r")),
			want: []result{{
				op: OpClose, payload: closePayload(code, "r"), closeCode: code, closeReason: "r",
			}},
		})
	}
	for _, op := range []OpCode{3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF} {
		cases = append(cases, decoderCase{
			name:   fmt.Sprintf("reserved opcode %#x", byte(op)),
			stream: concat(frame(OpText, true, "before"), rawHeader(bitFin|byte(op), true, 0)),
			want:   []result{{op: OpText, payload: "before"}},
			code:   CloseProtocolError,
		})
	}
	return cases
}

// maskBytes masks s with testKey from offset 0, as a payload that follows
// a rawHeader.
func maskBytes(s string) []byte {
	b := []byte(s)
	Mask(b, testKey, 0)
	return b
}

func TestDecoderRules(t *testing.T) {
	t.Parallel()
	// Each case makes its own strategies: the random one holds a
	// generator, which parallel cases must not share.
	strategies := func() []struct {
		name string
		next func() int
	} {
		return []struct {
			name string
			next func() int
		}{
			{name: "whole", next: whole},
			{name: "byte by byte", next: byteByByte},
			{name: "random chunks", next: randomChunks(1, 7)},
		}
	}
	for _, tc := range decoderCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, s := range strategies() {
				cfg := tc.cfg
				got, err := decodeWith(&cfg, tc.stream, s.next)
				if code := closeCode(t, err); code != tc.code {
					t.Errorf(
						"%s: error %v, want code %d",
						s.name, err, tc.code)
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf(
						"%s: messages\n got %v\nwant %v",
						s.name, got, tc.want)
				}
			}
		})
	}
}

// splitStream is a stream with every kind of frame and every length
// encoding, for the split tests.
func splitStream() ([]byte, []result) {
	long := strings.Repeat("0123456789abcdef", 20)        // 320 B, 16-bit length
	huge := strings.Repeat("\u20ac-\U0001F600+", 70000/9) // > 64 KiB, 64-bit length
	stream := concat(
		frame(OpText, true, "hello"),
		frame(OpBinary, true, long),
		frame(OpText, false, "\xe2\x82"),
		frame(OpPing, true, "ping"),
		frame(OpContinuation, false, "\xac"),
		frame(OpContinuation, true, " done"),
		frame(OpText, true, huge),
		frame(OpBinary, false, long),
		frame(OpContinuation, true, long),
		frame(OpPong, true, ""),
		frame(OpClose, true, closePayload(1001, "going \u00e9")),
	)
	want := []result{
		{op: OpText, payload: "hello"},
		{op: OpBinary, payload: long},
		{op: OpPing, payload: "ping"},
		{op: OpText, payload: "\u20ac done"},
		{op: OpText, payload: huge},
		{op: OpBinary, payload: long + long},
		{op: OpPong, payload: ""},
		{
			op: OpClose, payload: closePayload(1001, "going \u00e9"),
			closeCode: 1001, closeReason: "going \u00e9",
		},
	}
	return stream, want
}

func TestDecoderSplitsGiveTheSameResult(t *testing.T) {
	t.Parallel()
	stream, want := splitStream()
	cfg := &DecoderConfig{Buffers: pool.NewBytes()}
	strategies := []struct {
		name string
		next func() int
	}{
		{name: "whole", next: whole},
		{name: "byte by byte", next: byteByByte},
		{name: "random up to 3", next: randomChunks(2, 3)},
		{name: "random up to 100", next: randomChunks(3, 100)},
		{name: "random up to 5000", next: randomChunks(4, 5000)},
	}
	for _, s := range strategies {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			got, err := decodeWith(cfg, stream, s.next)
			if err != nil {
				t.Fatalf(
					"decode: %v",
					err)
			}
			if !slices.Equal(got, want) {
				t.Fatalf(
					"messages\n got %v\nwant %v",
					got, want)
			}
		})
	}
}

func TestDecoderEverySplitPoint(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 200)
	stream := concat(
		frame(OpText, false, "\xf0\x9f"),
		frame(OpPing, true, "p"),
		frame(OpContinuation, true, "\x98\x80"),
		frame(OpBinary, true, long),
		frame(OpClose, true, closePayload(1000, "")),
	)
	want := []result{
		{op: OpPing, payload: "p"},
		{op: OpText, payload: "\U0001F600"},
		{op: OpBinary, payload: long},
		{op: OpClose, payload: closePayload(1000, ""), closeCode: 1000},
	}
	for i := 0; i <= len(stream); i++ {
		chunks := []int{i, len(stream)}
		next := func() int {
			k := chunks[0]
			chunks = chunks[1:]
			return k
		}
		got, err := decodeWith(nil, stream, next)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf(
				"split at %d: %v, %v",
				i, got, err)
		}
	}
}

func TestDecoderSize(t *testing.T) {
	t.Parallel()
	size := unsafe.Sizeof(Decoder{})
	if size > 48 {
		t.Fatalf(
			"Decoder is %d bytes, want at most 48",
			size)
	}
	t.Logf("unsafe.Sizeof(Decoder{}) = %d", size)
}

func TestDecoderHoldsNoBufferWhenIdle(t *testing.T) {
	t.Parallel()
	cfg := &DecoderConfig{Buffers: pool.NewBytes()}
	var d Decoder
	d.Init(cfg)
	in := concat(frame(OpText, false, "a"), frame(OpContinuation, true, "b"))
	msg, n, err := d.Next(in)
	if err != nil || msg.Op != OpText || string(msg.Payload) != "ab" || n != len(in) {
		t.Fatalf(
			"Next = %v, %d, %v",
			toResult(msg), n, err)
	}
	if d.buf == nil {
		t.Fatal("payload of a reassembled message must stay valid until the next call")
	}
	if msg, n, err := d.Next(in[n:]); msg.Op != 0 || n != 0 || err != nil {
		t.Fatalf(
			"Next on empty input = %v, %d, %v",
			toResult(msg), n, err)
	}
	if d.buf != nil {
		t.Fatal("decoder still holds a buffer after the message was drained")
	}

	// A message in progress holds a buffer until Reset.
	in = frame(OpBinary, false, "partial")
	if _, n, err := d.Next(in); n != len(in) || err != nil {
		t.Fatalf(
			"Next = %d, %v",
			n, err)
	}
	if d.buf == nil {
		t.Fatal("no reassembly buffer while a fragmented message is in progress")
	}
	d.Reset()
	if d.buf != nil || d.op != 0 {
		t.Fatal("Reset kept state")
	}
}

func TestDecoderLeavesIncompleteFramesAlone(t *testing.T) {
	t.Parallel()
	// A masked text frame presented in two calls: the first sees part of
	// it, checks that part as UTF-8 and must not change it, since the
	// second call may present the bytes from another copy.
	payload := strings.Repeat("abcdefghi\u00e9", 100)
	in := frame(OpText, true, payload)
	orig := bytes.Clone(in)
	var d Decoder
	msg, n, err := d.Next(in[:700])
	if msg.Op != 0 || n != 0 || err != nil {
		t.Fatalf(
			"Next(partial) = %v, %d, %v",
			toResult(msg), n, err)
	}
	if d.done == 0 {
		t.Fatal("the partial frame was not checked")
	}
	if !bytes.Equal(in, orig) {
		t.Fatal("Next modified an incomplete frame")
	}
	msg, n, err = d.Next(bytes.Clone(orig))
	if err != nil || n != len(in) || string(msg.Payload) != payload {
		t.Fatalf(
			"Next(whole) = %v, %d, %v",
			toResult(msg), n, err)
	}
	// A complete frame is unmasked in place.
	msg, _, _ = d.Next(in)
	if &msg.Payload[0] != &in[len(in)-len(payload)] || string(in[len(in)-len(payload):]) != payload {
		t.Fatal("complete frame not unmasked in place")
	}
}

func TestDecoderWithoutPool(t *testing.T) {
	t.Parallel()
	stream, want := splitStream()
	got, err := decodeWith(&DecoderConfig{}, stream, randomChunks(5, 64))
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf(
			"decode without a pool: %v, %v",
			got, err)
	}
}

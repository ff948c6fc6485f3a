package codec

import (
	"bytes"
	stdflate "compress/flate"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/gobwas/httphead"

	"github.com/herald-push/herald/internal/wstest"
	"github.com/herald-push/herald/pool"
)

func TestNegotiateDeflate(t *testing.T) {
	t.Parallel()
	const both = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
	tests := []struct {
		name   string
		header string // Sec-WebSocket-Extensions
		ok     bool
		resp   string
		bits   uint8
	}{
		{"none", "", false, "", 0},
		{"other extension", "x-webkit-deflate-frame", false, "", 0},
		{"plain offer", "permessage-deflate", true, both, 15},
		{"chromium offer", "permessage-deflate; client_max_window_bits", true, both, 15},
		{"client bits value", "permessage-deflate; client_max_window_bits=10", true, both, 15},
		{"client no context", "permessage-deflate; client_no_context_takeover", true, both, 15},
		{"server no context", "permessage-deflate; server_no_context_takeover", true, both, 15},
		{"all four", "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=9", true, both + "; server_max_window_bits=12", 12},
		{"server bits 15 echoed", "permessage-deflate; server_max_window_bits=15", true, both + "; server_max_window_bits=15", 15},
		{"server bits 8", "permessage-deflate; server_max_window_bits=8", true, both + "; server_max_window_bits=8", 8},
		{"quoted value", `permessage-deflate; server_max_window_bits="10"`, true, both + "; server_max_window_bits=10", 10},
		{"case of name", "Permessage-Deflate", true, both, 15},
		{"server bits 7 declined", "permessage-deflate; server_max_window_bits=7", false, "", 0},
		{"server bits 16 declined", "permessage-deflate; server_max_window_bits=16", false, "", 0},
		{"server bits without value declined", "permessage-deflate; server_max_window_bits", false, "", 0},
		{"client bits 99 declined", "permessage-deflate; client_max_window_bits=99", false, "", 0},
		{"value on no context declined", "permessage-deflate; client_no_context_takeover=1", false, "", 0},
		{"unknown parameter declined", "permessage-deflate; foo=1", false, "", 0},
		{"duplicate parameter declined", "permessage-deflate; server_no_context_takeover; server_no_context_takeover", false, "", 0},
		{"duplicate bare client bits declined", "permessage-deflate; client_max_window_bits; client_max_window_bits", false, "", 0},
		{"first acceptable offer wins", "permessage-deflate; foo, permessage-deflate; server_max_window_bits=10, permessage-deflate", true, both + "; server_max_window_bits=10", 10},
		{"fallback after declined", "permessage-deflate; server_max_window_bits=4, permessage-deflate; client_max_window_bits", true, both, 15},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			offers, ok := httphead.ParseOptions([]byte(tc.header), nil)
			if !ok && tc.header != "" {
				t.Fatalf("test header %q does not parse", tc.header)
			}
			p, ok := NegotiateDeflate(offers)
			if ok != tc.ok {
				t.Fatalf("accepted = %v, want %v", ok, tc.ok)
			}
			if !ok {
				if p.Enabled() {
					t.Fatalf("declined negotiation is enabled: %+v", p)
				}
				return
			}
			if got := p.Response(); got != tc.resp {
				t.Errorf("response %q, want %q", got, tc.resp)
			}
			if p.ServerWindowBits != tc.bits {
				t.Errorf("window bits %d, want %d", p.ServerWindowBits, tc.bits)
			}
		})
	}
}

// testPayloads returns payloads of many sizes and kinds.
func testPayloads() map[string][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 70_000)
	for i := range random {
		random[i] = byte(rng.UintN(256))
	}
	json := []byte(strings.Repeat(`{"channel":"news","offset":42,"data":{"headline":"markets up","price":101.25}}`, 2000))
	return map[string][]byte{
		"empty":         {},
		"tiny":          []byte("hi"),
		"json-127":      json[:127],
		"json-128":      json[:128],
		"json-1k":       json[:1024],
		"json-64k":      json[:65536],
		"json-150k":     json,
		"random-70k":    random,
		"zeros-300k":    make([]byte, 300_000),
		"utf8-text-20k": []byte(strings.Repeat("héllo wörld ✓ ", 1000)),
	}
}

// parseServerFrame splits an unmasked final frame into RSV1, opcode and
// payload.
func parseServerFrame(t *testing.T, f []byte) (bool, OpCode, []byte) {
	t.Helper()
	var d Decoder
	d.Init(&DecoderConfig{Role: RoleClient, AllowRSV1: true})
	msg, n, err := d.Next(bytes.Clone(f))
	if err != nil || n != len(f) || msg.Op == 0 {
		t.Fatalf("frame does not decode: n=%d/%d op=%v err=%v", n, len(f), msg.Op, err)
	}
	return msg.Compressed, msg.Op, msg.Payload
}

// stdInflate inflates a permessage-deflate payload with the standard
// library, an implementation independent of the one under test.
func stdInflate(t *testing.T, p []byte) []byte {
	t.Helper()
	r := stdflate.NewReader(io.MultiReader(bytes.NewReader(p), bytes.NewReader(inflateTail)))
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("standard library cannot inflate: %v", err)
	}
	return out
}

// stdDeflate compresses one message the way a client without context
// takeover does, with the standard library.
func stdDeflate(t testing.TB, p []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, _ := stdflate.NewWriter(&b, stdflate.BestSpeed)
	w.Write(p)
	w.Flush()
	return bytes.TrimSuffix(b.Bytes(), syncTail)
}

func TestDeflateAppendFrameRoundTrip(t *testing.T) {
	t.Parallel()
	z, err := NewDeflate(DeflateConfig{Buffers: pool.NewBytes()})
	if err != nil {
		t.Fatal(err)
	}
	for name, payload := range testPayloads() {
		for _, bits := range []uint8{8, 9, 12, 15} {
			t.Run(name+"/"+sizeName(1<<bits), func(t *testing.T) {
				f := z.AppendFrame(nil, OpBinary, payload, bits)
				plain := FrameHeaderLen(len(payload), false) + len(payload)
				if len(f) > plain {
					t.Fatalf("frame of %d bytes is longer than the plain %d", len(f), plain)
				}
				rsv1, op, body := parseServerFrame(t, f)
				if op != OpBinary {
					t.Fatalf("op %v", op)
				}
				wantCompressed := len(payload) >= DefaultDeflateMinSize && !strings.HasPrefix(name, "random")
				if rsv1 != wantCompressed {
					t.Fatalf("RSV1 = %v, want %v (frame %d bytes of %d)", rsv1, wantCompressed, len(f), len(payload))
				}
				got := body
				if rsv1 {
					got = stdInflate(t, body)
					mine, err := z.Inflate(body, false)
					if err != nil {
						t.Fatalf("own inflate: %v", err)
					}
					if !bytes.Equal(*mine, payload) {
						t.Fatal("own inflate differs from the payload")
					}
					z.Release(mine)
				}
				if !bytes.Equal(got, payload) {
					t.Fatalf("round trip differs: %d bytes, want %d", len(got), len(payload))
				}
			})
		}
	}
}

func TestDeflateMinSize(t *testing.T) {
	t.Parallel()
	payload := bytes.Repeat([]byte("a"), 100)
	tests := []struct {
		name     string
		minSize  int
		wantRSV1 bool
	}{
		{"default skips 100 bytes", 0, false},
		{"negative compresses all", -1, true},
		{"exactly the minimum", 100, true},
		{"above the payload", 101, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			z, _ := NewDeflate(DeflateConfig{MinSize: tc.minSize})
			rsv1, _, _ := parseServerFrame(t, z.AppendFrame(nil, OpText, payload, 15))
			if rsv1 != tc.wantRSV1 {
				t.Fatalf("RSV1 = %v, want %v", rsv1, tc.wantRSV1)
			}
		})
	}
}

func TestNewDeflateLevel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		level int
		ok    bool
	}{{0, true}, {1, true}, {9, true}, {-1, false}, {10, false}} {
		_, err := NewDeflate(DeflateConfig{Level: tc.level})
		if (err == nil) != tc.ok {
			t.Errorf("level %d: err = %v, want ok=%v", tc.level, err, tc.ok)
		}
	}
}

func TestInflate(t *testing.T) {
	t.Parallel()
	text := []byte(strings.Repeat("the quick brown fox ", 500))
	// A second message compressed with the first one's context: without
	// that context it refers to bytes before the message.
	var ctx bytes.Buffer
	w, _ := stdflate.NewWriter(&ctx, stdflate.BestSpeed)
	w.Write(text)
	w.Flush()
	first := ctx.Len()
	w.Write(text)
	w.Flush()
	takeover := bytes.TrimSuffix(ctx.Bytes()[first:], syncTail)

	tests := []struct {
		name     string
		max      int64
		payload  []byte
		text     bool
		wantCode uint16 // 0: success, inflating to want
		want     []byte
	}{
		{"text", 0, stdDeflate(t, text), true, 0, text},
		{"binary", 0, stdDeflate(t, []byte{0xff, 0xfe, 0}), false, 0, []byte{0xff, 0xfe, 0}},
		{"empty message", 0, []byte{0x00}, true, 0, []byte{}},
		{"at the cap", int64(len(text)), stdDeflate(t, text), true, 0, text},
		{"one over the cap", int64(len(text) - 1), stdDeflate(t, text), true, CloseMessageTooBig, nil},
		{"bomb", 1 << 20, wstest.ZeroBomb(64), false, CloseMessageTooBig, nil},
		{"invalid utf-8 text", 0, stdDeflate(t, []byte("ab\xffcd")), true, CloseInvalidPayload, nil},
		{"invalid utf-8 binary is fine", 0, stdDeflate(t, []byte("ab\xffcd")), false, 0, []byte("ab\xffcd")},
		{"garbage", 0, []byte{0xff, 0xff, 0xff, 0xff, 0x12}, false, CloseInvalidPayload, nil},
		{"context takeover refused", 0, takeover, true, CloseInvalidPayload, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			z, _ := NewDeflate(DeflateConfig{MaxInflated: tc.max, Buffers: pool.NewBytes()})
			out, err := z.Inflate(tc.payload, tc.text)
			if tc.wantCode != 0 {
				if got := closeCode(t, err); got != tc.wantCode {
					t.Fatalf("close code %d, want %d", got, tc.wantCode)
				}
				if z.Stats().Inflated.Load() != 0 {
					t.Fatal("failed inflate counted as inflated")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(*out, tc.want) {
				t.Fatalf("inflated %d bytes, want %d", len(*out), len(tc.want))
			}
			z.Release(out)
		})
	}
}

// TestInflateBombMemory checks that a message inflating to 256 MiB costs
// about the cap in memory, not the inflated size.
func TestInflateBombMemory(t *testing.T) {
	if got := stdInflate(t, wstest.ZeroBomb(3)); len(got) != 3<<20 || bytes.ContainsFunc(got, func(r rune) bool { return r != 0 }) {
		t.Fatalf("ZeroBomb(3) inflates to %d bytes, want 3 MiB of zeros", len(got))
	}
	bomb := wstest.ZeroBomb(256)
	z, _ := NewDeflate(DeflateConfig{MaxInflated: 1 << 20})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := z.Inflate(bomb, false)
	runtime.ReadMemStats(&after)
	if code := closeCode(t, err); code != CloseMessageTooBig {
		t.Fatalf("close code %d, want %d", code, CloseMessageTooBig)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
		t.Fatalf("a bomb of %d compressed bytes allocated %d bytes", len(bomb), alloc)
	}
}

func TestAppendCompressedOf(t *testing.T) {
	t.Parallel()
	z, _ := NewDeflate(DeflateConfig{})
	long := bytes.Repeat([]byte("compress me please "), 5000) // 64-bit length form
	mid := long[:1000]                                        // 16-bit length form
	tests := []struct {
		name  string
		frame []byte
		ok    bool
		want  []byte
	}{
		{"text 16-bit length", AppendFrame(nil, OpText, true, mid), true, mid},
		{"binary 64-bit length", AppendFrame(nil, OpBinary, true, long), true, long},
		{"too small", AppendFrame(nil, OpText, true, []byte("hi")), false, nil},
		{"control frame", AppendFrame(nil, OpPing, true, mid[:100]), false, nil},
		{"not final", AppendFrame(nil, OpText, false, mid), false, nil},
		{"already compressed", AppendHeader(nil, OpText, true, true, 3), false, nil},
		{"masked", AppendMaskedFrame(nil, OpText, true, mid, testKey), false, nil},
		{"truncated", []byte{0x81}, false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, ok := z.AppendCompressedOf(nil, tc.frame, 15)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				if len(f) != 0 {
					t.Fatal("dst changed although nothing was compressed")
				}
				return
			}
			rsv1, op, body := parseServerFrame(t, f)
			if !rsv1 || op != OpCode(tc.frame[0]&0xF) || !bytes.Equal(stdInflate(t, body), tc.want) {
				t.Fatalf("RSV1 %v op %v: does not inflate to the payload", rsv1, op)
			}
		})
	}
}

package codec

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/httphead"

	"github.com/herald-push/herald/pool"
)

// fuzzMaxInflated is small enough for the fuzzer to reach.
const fuzzMaxInflated = 4 << 10

// deflateRaw compresses p the way a client sends a message: a sync-flushed
// raw deflate stream without its 4-byte tail (RFC 7692 7.2.1).
func deflateRaw(p []byte, level int) []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, level)
	_, _ = w.Write(p)
	_ = w.Flush()
	return bytes.TrimSuffix(b.Bytes(), []byte{0, 0, 0xff, 0xff})
}

// FuzzInflate feeds arbitrary payloads to Inflate. It must never return
// more than MaxInflated bytes, nor invalid UTF-8 for text; what it returns
// must be what an independent inflater (compress/flate) makes of the same
// bytes; every error must be a CloseError with 1007 or 1009, and 1009 only
// when the data does inflate past the cap.
func FuzzInflate(f *testing.F) {
	f.Add(deflateRaw([]byte("hello"), flate.BestSpeed), true)
	f.Add(deflateRaw(bytes.Repeat([]byte("a"), 3000), flate.BestCompression), true)
	f.Add(deflateRaw(make([]byte, 64<<10), flate.BestCompression), false)  // a bomb: 64 KiB from a few hundred bytes
	f.Add(deflateRaw([]byte{0xff, 0xfe, 0xfd}, flate.NoCompression), true) // invalid UTF-8
	f.Add([]byte{0x00}, false)
	f.Add([]byte("not deflate at all"), false)
	f.Add([]byte{}, true)
	z, err := NewDeflate(DeflateConfig{MaxInflated: fuzzMaxInflated, Buffers: pool.NewBytes()})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, payload []byte, text bool) {
		out, err := z.Inflate(payload, text)
		ref, refErr := io.ReadAll(io.LimitReader(flate.NewReader(io.MultiReader(bytes.NewReader(payload), bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff}))), fuzzMaxInflated+1))
		if err != nil {
			var ce *CloseError
			if !errors.As(err, &ce) || (ce.Code != CloseInvalidPayload && ce.Code != CloseMessageTooBig) {
				t.Fatalf("error %v, want a CloseError 1007 or 1009", err)
			}
			if ce.Code == CloseMessageTooBig && len(ref) <= fuzzMaxInflated {
				t.Fatalf("1009 for data that inflates to %d bytes (cap %d)", len(ref), fuzzMaxInflated)
			}
			return
		}
		defer z.Release(out)
		if len(*out) > fuzzMaxInflated {
			t.Fatalf("inflated %d bytes past the cap %d", len(*out), fuzzMaxInflated)
		}
		if text && !utf8.Valid(*out) {
			t.Fatal("invalid UTF-8 text accepted")
		}
		if !bytes.HasPrefix(ref, *out) || (refErr == nil && !bytes.Equal(ref, *out)) {
			t.Fatalf("inflated %q, the reference inflater %q (%v)", *out, ref, refErr)
		}
	})
}

// FuzzNegotiateDeflate feeds arbitrary Sec-WebSocket-Extensions values to
// the negotiation. An accepted offer must give a window of 8 to 15 bits
// and a response that is one well-formed permessage-deflate extension.
func FuzzNegotiateDeflate(f *testing.F) {
	for _, s := range []string{
		"permessage-deflate",
		"permessage-deflate; client_max_window_bits",
		"permessage-deflate; server_max_window_bits=10; client_no_context_takeover",
		"permessage-deflate; server_max_window_bits=7, permessage-deflate",
		"permessage-deflate; server_max_window_bits=16",
		"permessage-deflate; client_max_window_bits; client_max_window_bits",
		"permessage-deflate; server_no_context_takeover=1",
		"x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=\"12\"",
		"permessage-deflate; unknown=1",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		offers, ok := httphead.ParseOptions([]byte(header), nil)
		if !ok {
			return
		}
		p, ok := NegotiateDeflate(offers)
		if !ok {
			if p.Enabled() {
				t.Fatal("declined, yet enabled")
			}
			return
		}
		if p.ServerWindowBits < 8 || p.ServerWindowBits > 15 {
			t.Fatalf("window %d bits", p.ServerWindowBits)
		}
		resp := p.Response()
		if strings.ContainsAny(resp, "\r\n,") || !strings.HasPrefix(resp, "permessage-deflate") {
			t.Fatalf("response %q", resp)
		}
		again, ok := httphead.ParseOptions([]byte(resp), nil)
		if !ok || len(again) != 1 {
			t.Fatalf("response %q does not parse as one extension", resp)
		}
	})
}

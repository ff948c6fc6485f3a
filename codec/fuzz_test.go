package codec

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/herald-push/herald/pool"
)

// Limits small enough for the fuzzer to reach them.
const (
	fuzzMaxFrame   = 300
	fuzzMaxMessage = 700
)

// FuzzDecoder feeds arbitrary streams to the Decoder whole and in chunks.
// The two must agree, no message may break a limit or carry invalid
// UTF-8 text, and every error must be a CloseError with a close code the
// Decoder documents.
func FuzzDecoder(f *testing.F) {
	for _, tc := range decoderCases() {
		flags := uint8(0)
		if tc.cfg.Role == RoleClient {
			flags |= 1
		}
		if tc.cfg.AllowRSV1 {
			flags |= 2
		}
		f.Add(tc.stream, uint8(3), flags)
	}
	stream, _ := splitStream()
	f.Add(stream[:2000], uint8(17), uint8(0))
	f.Add(benchStream(RoleServer, 1000, 4), uint8(1), uint8(0))
	f.Add(benchStream(RoleClient, 500, 3), uint8(64), uint8(1))

	f.Fuzz(func(t *testing.T, data []byte, chunk uint8, flags uint8) {
		cfg := &DecoderConfig{
			MaxFrameSize:   fuzzMaxFrame,
			MaxMessageSize: fuzzMaxMessage,
			AllowRSV1:      flags&2 != 0,
			Buffers:        pool.NewBytes(),
		}
		if flags&1 != 0 {
			cfg.Role = RoleClient
		}
		all, errAll := decodeWith(cfg, data, whole)
		size := int(chunk%64) + 1
		parts, errParts := decodeWith(cfg, data, func() int { return size })

		if !slices.Equal(all, parts) {
			t.Fatalf(
				"whole and in chunks of %d disagree:\n%v\n%v",
				size, all, parts)
		}
		codeAll, codeParts := fuzzCode(t, errAll), fuzzCode(t, errParts)
		if codeAll != codeParts {
			t.Fatalf(
				"whole: %v; in chunks of %d: %v",
				errAll, size, errParts)
		}
		for _, m := range all {
			switch m.op {
			case OpText, OpBinary:
				if len(m.payload) > fuzzMaxMessage {
					t.Fatalf(
						"message of %d bytes over the limit",
						len(m.payload))
				}
				if m.op == OpText && !m.compressed && !utf8.ValidString(m.payload) {
					t.Fatalf(
						"invalid UTF-8 text returned: %q",
						m.payload)
				}
				if m.compressed && !cfg.AllowRSV1 {
					t.Fatal("compressed message without AllowRSV1")
				}
			case OpPing, OpPong:
				if len(m.payload) > MaxControlPayload {
					t.Fatalf(
						"control payload of %d bytes",
						len(m.payload))
				}
			case OpClose:
				if m.closeCode != CloseNoStatus && !ValidCloseCode(m.closeCode) {
					t.Fatalf(
						"close code %d returned",
						m.closeCode)
				}
				if !utf8.ValidString(m.closeReason) {
					t.Fatalf(
						"invalid close reason %q returned",
						m.closeReason)
				}
			default:
				t.Fatalf(
					"message with opcode %v",
					m.op)
			}
		}
	})
}

// fuzzCode returns err's close code, failing for errors the Decoder must not
// return.
func fuzzCode(t *testing.T, err error) uint16 {
	t.Helper()
	if err == nil {
		return 0
	}
	var ce *CloseError
	if !errors.As(err, &ce) {
		t.Fatalf(
			"error %v is not a CloseError",
			err)
	}
	switch ce.Code {
	case CloseProtocolError, CloseInvalidPayload, CloseMessageTooBig:
		return ce.Code
	}
	t.Fatalf(
		"unexpected close code %d (%s)",
		ce.Code, ce.Reason)
	return 0
}

// FuzzParseRequest feeds arbitrary bytes to ParseRequest. It must not modify
// its input, must respect the header limit, must only refuse with the
// documented statuses, and a request it accepts must make a response that
// the client side accepts in turn.
func FuzzParseRequest(f *testing.F) {
	const limit = 1024
	get := "GET /ws HTTP/1.1"
	seeds := []string{
		upgradeRequest(get),
		upgradeRequest("GET http://h/a%20b?q=1 HTTP/1.1", "Sec-WebSocket-Protocol: a, b", "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=10"),
		upgradeRequest("POST /ws HTTP/1.1"),
		upgradeRequest("GET /ws HTTP/1.0"),
		upgradeRequest(get, "Host:"),
		upgradeRequest(get, "Sec-WebSocket-Version: 8"),
		upgradeRequest(get, "Sec-WebSocket-Key: short"),
		upgradeRequest(get, "+host: other"),
		upgradeRequest(get)[:40],
		"GET / HTTP/1.1\n\n",
		"\r\n\r\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		// The in-place parse agrees with the copying one.
		lim := HandshakeLimits{MaxHeaderBytes: limit}
		hreq, hn, herr := ParseHTTPRequest(bytes.Clone(orig), lim)
		var view Request
		vn, verr := ParseHTTPRequestView(&view, bytes.Clone(orig), lim)
		if hn != vn || (herr == nil) != (verr == nil) || (herr != nil && herr.Error() != verr.Error()) {
			t.Fatalf("view: n=%d err=%v; copy: n=%d err=%v", vn, verr, hn, herr)
		}
		if herr == nil && (!equalRequests(view, *hreq) || view.Plain != hreq.Plain ||
			view.LastEventID != hreq.LastEventID || len(view.Extensions) != len(hreq.Extensions)) {
			t.Fatalf("view %+v, copy %+v", view, *hreq)
		}
		req, n, err := ParseRequest(data, lim)
		if !bytes.Equal(data, orig) {
			t.Fatal("ParseRequest modified its input")
		}
		var he *HandshakeError
		switch {
		case errors.Is(err, ErrIncomplete):
			if len(data) >= limit || n != 0 || req != nil {
				t.Fatalf(
					"ErrIncomplete with %d bytes, n=%d",
					len(data), n)
			}
		case errors.As(err, &he):
			switch he.Status {
			case 400, 405, 426, 431, 505:
			default:
				t.Fatalf(
					"status %d",
					he.Status)
			}
			if req != nil || n > limit || n > len(data) {
				t.Fatalf(
					"refusal with request %v, n=%d",
					req, n)
			}
		case err != nil:
			t.Fatalf(
				"unexpected error %v",
				err)
		default:
			if n <= 0 || n > limit || n > len(data) {
				t.Fatalf(
					"n=%d for %d bytes",
					n, len(data))
			}
			if !validKey([]byte(req.Key)) || req.Host == "" || req.Path == "" {
				t.Fatalf(
					"accepted request %+v",
					req)
			}
			resp := AppendAccept(nil, req, "", "")
			if m, err := ParseResponse(resp, req.Key); err != nil || m != len(resp) {
				t.Fatalf(
					"own response refused: %v",
					err)
			}
		}
		// The client side must not panic on the same bytes either.
		_, _ = ParseResponse(data, rfcKey)
	})
}

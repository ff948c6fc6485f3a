package server

import (
	"bytes"
	stdflate "compress/flate"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/herald-push/herald/codec"
	"github.com/herald-push/herald/internal/wstest"
)

// TestCloseCodes: each way a connection ends, from the client or the app,
// gets its close code (and reason, where the server writes one).
func TestCloseCodes(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.MaxMessageSize = 1 << 10
	app := newRecorder()
	s := startServer(t, cfg, app)
	closePayload := func(code uint16, reason string) []byte {
		return append(binary.BigEndian.AppendUint16(nil, code), reason...)
	}
	cases := []struct {
		name   string
		send   []wstest.Frame
		byApp  func(c *Conn) // run on the loop instead of sending
		code   uint16        // 0: an empty close frame
		reason string        // "" accepts any
	}{
		{name: "client close is echoed", send: []wstest.Frame{{Fin: true, Op: wstest.OpClose, Payload: closePayload(1000, "bye")}}, code: 1000},
		{name: "client close without status", send: []wstest.Frame{{Fin: true, Op: wstest.OpClose}}, code: 0},
		{name: "unmasked frame", send: []wstest.Frame{{Fin: true, Op: wstest.OpText, Payload: []byte("x"), NoMask: true}}, code: codec.CloseProtocolError},
		{name: "reserved opcode", send: []wstest.Frame{{Fin: true, Op: 0x3}}, code: codec.CloseProtocolError},
		{name: "RSV1 without deflate", send: []wstest.Frame{{Fin: true, RSV: wstest.RSV1, Op: wstest.OpText, Payload: []byte("x")}}, code: codec.CloseProtocolError},
		{name: "invalid UTF-8", send: []wstest.Frame{{Fin: true, Op: wstest.OpText, Payload: []byte{0xff}}}, code: codec.CloseInvalidPayload},
		{name: "message too big", send: []wstest.Frame{{Fin: true, Op: wstest.OpBinary, Payload: make([]byte, 2<<10)}}, code: codec.CloseMessageTooBig},
		{name: "app close", byApp: func(c *Conn) { c.Close(4321, "app says so") }, code: 4321, reason: "app says so"},
		{name: "token expiry", byApp: func(c *Conn) { c.expiresAt = 1; c.pc.SetTimer(1) }, code: CloseTokenExpired, reason: "token expired"},
	}
	// The subtests run in parallel on one server: dialling and taking the
	// opened connection are paired under a lock, so that each subtest acts
	// on its own connection.
	var dialing sync.Mutex
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dialing.Lock()
			wc := wstest.Dial(t, s.Addr().String(), wstest.Options{})
			c := <-app.opened
			dialing.Unlock()
			if tc.byApp != nil {
				onLoop(t, c, func() { tc.byApp(c) })
			}
			wc.Send(tc.send...)
			for {
				f := readFrame(t, wc)
				if f.Op != wstest.OpClose {
					continue
				}
				if tc.code == 0 {
					if len(f.Payload) != 0 {
						t.Fatalf("close %q, want an empty close frame", f.Payload)
					}
					return
				}
				if len(f.Payload) < 2 {
					t.Fatalf("close frame without a code: %q", f.Payload)
				}
				got := binary.BigEndian.Uint16(f.Payload)
				if got != tc.code || (tc.reason != "" && string(f.Payload[2:]) != tc.reason) {
					t.Fatalf("close %d %q, want %d %q", got, f.Payload[2:], tc.code, tc.reason)
				}
				return
			}
		})
	}
}

// inflate undoes permessage-deflate on a message's payload with the
// standard library (independent of the code under test).
func inflate(t *testing.T, p []byte) []byte {
	t.Helper()
	tail := []byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff}
	out, err := io.ReadAll(stdflate.NewReader(io.MultiReader(bytes.NewReader(p), bytes.NewReader(tail))))
	if err != nil {
		t.Fatalf("inflate: %v", err)
	}
	return out
}

// TestWriteFrame: a shared Frame reaches each connection in the variant
// it negotiated (plain, the shared compression, or one of its own for a
// smaller window), is counted as a message, and one that does not fit the
// output budget is refused without closing the connection.
func TestWriteFrame(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.Compression = true
	cfg.WriteBufferLimit = 8 << 10
	app := newRecorder()
	s := startServer(t, cfg, app)
	small := strings.Repeat("compress me ", 100) // about 1.2 KB, compresses well
	noise := make([]byte, 16<<10)                // incompressible: past the budget in any variant
	_, _ = rand.NewChaCha8([32]byte{1}).Read(noise)
	big := NewFrame(codec.AppendFrame(nil, codec.OpBinary, true, noise))
	cases := []struct {
		name    string
		ext     string
		rsv1    bool
		payload string
	}{
		{name: "plain", payload: small},
		{name: "deflate, full window", ext: "permessage-deflate", rsv1: true, payload: small},
		{name: "deflate, small window", ext: "permessage-deflate; server_max_window_bits=10", rsv1: true, payload: small},
		{name: "deflate, not worth it", ext: "permessage-deflate", payload: "tiny"},
	}
	var dialing sync.Mutex // pairs each subtest's dial with its opened connection
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dialing.Lock()
			wc := wstest.Dial(t, s.Addr().String(), wstest.Options{Extensions: tc.ext})
			c := <-app.opened
			dialing.Unlock()
			if tc.ext != "" && wc.Extensions == "" {
				t.Fatal("permessage-deflate not negotiated")
			}
			f := NewFrame(codec.AppendFrame(nil, codec.OpText, true, []byte(tc.payload)))
			var ok, tooBig, open bool
			onLoop(t, c, func() {
				ok = c.WriteFrame(f)
				tooBig = c.WriteFrame(big)
				open = c.Open()
			})
			if !ok || tooBig || !open {
				t.Fatalf("WriteFrame: %v for the small frame, %v for the one past the budget, open %v; want true, false, true", ok, tooBig, open)
			}
			got := readFrame(t, wc)
			payload := got.Payload
			if rsv1 := got.RSV&wstest.RSV1 != 0; rsv1 != tc.rsv1 {
				t.Fatalf("RSV1 %v, want %v", rsv1, tc.rsv1)
			} else if rsv1 {
				payload = inflate(t, payload)
			}
			if got.Op != wstest.OpText || string(payload) != tc.payload {
				t.Fatalf("op %#x, %d bytes: want the text message back", got.Op, len(payload))
			}
			// Still open: the echo answers.
			wc.Send(wstest.Frame{Fin: true, Op: wstest.OpText, Payload: []byte("still there")})
			if e := readFrame(t, wc); e.Op != wstest.OpText {
				t.Fatalf("after the refused frame: op %#x, want the echo", e.Op)
			}
		})
	}
	t.Cleanup(func() { // after the parallel subtests
		if n := s.Stats().MessagesOut; n != uint64(2*len(cases)) {
			t.Errorf("MessagesOut = %d, want %d: the frames and the echoes, not the refused frames", n, 2*len(cases))
		}
	})
}

package codec

import (
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/herald-push/herald/pool"
)

// TestInteropGobwasWriter decodes frames written by gobwas/ws, in both
// roles, whole and fragmented by its wsutil.Writer.
func TestInteropGobwasWriter(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("interop \u00e9\u20ac ", 2000)
	for _, role := range []Role{RoleServer, RoleClient} {
		state := ws.StateClientSide // what the peer of a server is
		if role == RoleClient {
			state = ws.StateServerSide
		}
		var wire bytes.Buffer
		if err := wsutil.WriteMessage(&wire, state, ws.OpText, []byte("hello")); err != nil {
			t.Fatal(err)
		}
		if err := wsutil.WriteMessage(&wire, state, ws.OpBinary, []byte(long)); err != nil {
			t.Fatal(err)
		}
		// Fragments of at most 64 bytes, with a ping between two messages.
		w := wsutil.NewWriterSize(&wire, state, ws.OpText, 64)
		if _, err := w.Write([]byte(long)); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := wsutil.WriteMessage(&wire, state, ws.OpPing, []byte("p")); err != nil {
			t.Fatal(err)
		}
		frame := ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusGoingAway, "bye"))
		if state.ClientSide() {
			frame = ws.MaskFrameWith(frame, testKey)
		}
		if err := ws.WriteFrame(&wire, frame); err != nil {
			t.Fatal(err)
		}

		cfg := &DecoderConfig{Role: role, Buffers: pool.NewBytes()}
		got, err := decodeWith(cfg, wire.Bytes(), randomChunks(9, 500))
		if err != nil {
			t.Fatalf(
				"role %d: decode: %v",
				role, err)
		}
		want := []result{
			{op: OpText, payload: "hello"},
			{op: OpBinary, payload: long},
			{op: OpText, payload: long},
			{op: OpPing, payload: "p"},
			{op: OpClose, payload: closePayload(1001, "bye"), closeCode: 1001, closeReason: "bye"},
		}
		if !slices.Equal(got, want) {
			t.Fatalf(
				"role %d: messages\n got %v\nwant %v",
				role, got, want)
		}
	}
}

// TestInteropGobwasReader reads frames written here with gobwas/ws.
func TestInteropGobwasReader(t *testing.T) {
	t.Parallel()
	payload := []byte(strings.Repeat("abc", 30000))
	testCases := []struct {
		name   string
		wire   []byte
		state  ws.State
		op     ws.OpCode
		wantPl []byte
	}{
		{name: "server text", wire: AppendFrame(nil, OpText, true, []byte("hi")), state: ws.StateClientSide, op: ws.OpText, wantPl: []byte("hi")},
		{name: "server binary 90000", wire: AppendFrame(nil, OpBinary, true, payload), state: ws.StateClientSide, op: ws.OpBinary, wantPl: payload},
		{name: "client text", wire: AppendMaskedFrame(nil, OpText, true, []byte("hi"), testKey), state: ws.StateServerSide, op: ws.OpText, wantPl: []byte("hi")},
		{name: "client binary 90000", wire: AppendMaskedFrame(nil, OpBinary, true, payload, testKey), state: ws.StateServerSide, op: ws.OpBinary, wantPl: payload},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, op, err := wsutil.ReadData(struct {
				io.Reader
				io.Writer
			}{bytes.NewReader(tc.wire), io.Discard}, tc.state)
			if err != nil || op != tc.op || !bytes.Equal(got, tc.wantPl) {
				t.Fatalf(
					"gobwas read op %v, %d bytes, %v",
					op, len(got), err)
			}
		})
	}
	// A close frame as gobwas parses it.
	//lint:ignore SA1019 the frame comes from our own encoder, in memory: its length is trusted
	f, err := ws.ReadFrame(bytes.NewReader(AppendClose(nil, CloseTryAgainLater, "later")))
	if err != nil {
		t.Fatal(err)
	}
	code, reason := ws.ParseCloseFrameData(f.Payload)
	if f.Header.OpCode != ws.OpClose || code != ws.StatusCode(CloseTryAgainLater) || reason != "later" {
		t.Fatalf(
			"close frame read by gobwas: %v %d %q",
			f.Header.OpCode, code, reason)
	}
}

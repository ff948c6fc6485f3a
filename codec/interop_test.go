package codec

import (
	"bytes"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/gorilla/websocket"

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

// TestInteropGorillaClient runs a small echo server built from this package
// on a loopback socket and talks to it with gorilla/websocket's client,
// which checks the handshake and fragments its large messages itself.
func TestInteropGorillaClient(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	serverErr := make(chan error, 1)
	go func() { serverErr <- echoOnce(ln) }()

	dialer := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: []string{"herald.v1"}}
	conn, _, err := dialer.Dial("ws://"+ln.Addr().String()+"/ws?channel=x", nil)
	if err != nil {
		t.Fatalf(
			"gorilla dial: %v",
			err)
	}
	defer conn.Close()
	if conn.Subprotocol() != "herald.v1" {
		t.Errorf(
			"subprotocol %q",
			conn.Subprotocol())
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	pong := make(chan string, 1)
	conn.SetPongHandler(func(s string) error { pong <- s; return nil })

	messages := []struct {
		typ  int
		data string
	}{
		{typ: websocket.TextMessage, data: "hello"},
		{typ: websocket.BinaryMessage, data: strings.Repeat("\x00\xff", 50000)},
		{typ: websocket.TextMessage, data: strings.Repeat("\u00e9t\u00e9 ", 3000)},
		{typ: websocket.TextMessage, data: ""},
	}
	if err := conn.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, m := range messages {
		if err := conn.WriteMessage(m.typ, []byte(m.data)); err != nil {
			t.Fatal(err)
		}
		typ, data, err := conn.ReadMessage()
		if err != nil || typ != m.typ || string(data) != m.data {
			t.Fatalf(
				"echo: type %d, %d bytes, %v; want type %d, %d bytes",
				typ, len(data), err, m.typ, len(m.data))
		}
	}
	select {
	case s := <-pong:
		if s != "are you there" {
			t.Errorf(
				"pong %q",
				s)
		}
	default:
		t.Error("no pong before the echoes")
	}
	err = conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "done"))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = conn.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure || ce.Text != "done" {
		t.Fatalf(
			"closing: %v",
			err)
	}
	if err := <-serverErr; err != nil {
		t.Fatalf(
			"server: %v",
			err)
	}
}

// echoOnce accepts one connection on ln and serves it as an echo server
// built only from this package's handshake, decoder and encoder.
func echoOnce(ln net.Listener) error {
	c, err := ln.Accept()
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))

	in := make([]byte, 0, 256<<10)
	read := func() error {
		if len(in) == cap(in) {
			return errors.New("input buffer full")
		}
		n, err := c.Read(in[len(in):cap(in)])
		in = in[:len(in)+n]
		return err
	}
	var req *Request
	var n int
	for {
		if err := read(); err != nil {
			return err
		}
		req, n, err = ParseRequest(in, HandshakeLimits{})
		if !errors.Is(err, ErrIncomplete) {
			break
		}
	}
	if err != nil {
		return err
	}
	if req.Path != "/ws" || req.RawQuery != "channel=x" {
		return errors.New("unexpected target " + req.Path + "?" + req.RawQuery)
	}
	if _, err := c.Write(AppendAccept(nil, req, "herald.v1", "")); err != nil {
		return err
	}
	in = in[:copy(in, in[n:])]

	var d Decoder
	d.Init(&DecoderConfig{Buffers: pool.NewBytes()})
	defer d.Reset()
	var out []byte
	for {
		pending := in
		for {
			msg, n, err := d.Next(pending)
			if err != nil {
				var ce *CloseError
				errors.As(err, &ce)
				_, _ = c.Write(AppendClose(nil, ce.Code, ce.Reason))
				return err
			}
			pending = pending[n:]
			switch msg.Op {
			case OpText, OpBinary:
				out = AppendFrame(out, msg.Op, true, msg.Payload)
			case OpPing:
				out = AppendFrame(out, OpPong, true, msg.Payload)
			case OpClose:
				out = AppendClose(out, msg.CloseCode, string(msg.CloseReason))
				_, err := c.Write(out)
				return err
			}
			if msg.Op == 0 {
				break
			}
		}
		if len(out) > 0 {
			if _, err := c.Write(out); err != nil {
				return err
			}
			out = out[:0]
		}
		in = in[:copy(in, pending)]
		if err := read(); err != nil {
			return err
		}
	}
}

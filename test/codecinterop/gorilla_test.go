// Package codecinterop checks codec's handshake, decoder and encoder
// against another implementation in the same process: a small echo server
// built only from codec's exported API, and gorilla/websocket's client,
// which checks the handshake and fragments its large messages itself. It
// lives in the test module, which keeps gorilla out of the root module;
// codec's interop with gobwas/ws (which the root module links) is tested
// in codec.
package codecinterop

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-push/herald/codec"
	"github.com/herald-push/herald/pool"
)

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
	var req *codec.Request
	var n int
	for {
		if err := read(); err != nil {
			return err
		}
		req, n, err = codec.ParseRequest(in, codec.HandshakeLimits{})
		if !errors.Is(err, codec.ErrIncomplete) {
			break
		}
	}
	if err != nil {
		return err
	}
	if req.Path != "/ws" || req.RawQuery != "channel=x" {
		return errors.New("unexpected target " + req.Path + "?" + req.RawQuery)
	}
	if _, err := c.Write(codec.AppendAccept(nil, req, "herald.v1", "")); err != nil {
		return err
	}
	in = in[:copy(in, in[n:])]

	var d codec.Decoder
	d.Init(&codec.DecoderConfig{Buffers: pool.NewBytes()})
	defer d.Reset()
	var out []byte
	for {
		pending := in
		for {
			msg, n, err := d.Next(pending)
			if err != nil {
				var ce *codec.CloseError
				errors.As(err, &ce)
				_, _ = c.Write(codec.AppendClose(nil, ce.Code, ce.Reason))
				return err
			}
			pending = pending[n:]
			switch msg.Op {
			case codec.OpText, codec.OpBinary:
				out = codec.AppendFrame(out, msg.Op, true, msg.Payload)
			case codec.OpPing:
				out = codec.AppendFrame(out, codec.OpPong, true, msg.Payload)
			case codec.OpClose:
				out = codec.AppendClose(out, msg.CloseCode, string(msg.CloseReason))
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

package codec_test

import (
	"errors"
	"fmt"

	"github.com/herald-push/herald/codec"
	"github.com/herald-push/herald/pool"
)

// The server side of a connection: parse the upgrade request from the bytes
// received so far, accept it, then decode frames and answer them.
func Example() {
	// Bytes as a client sends them: the request, then a masked text frame
	// and a masked ping, here built with the client-side helpers.
	key := "dGhlIHNhbXBsZSBub25jZQ=="
	in := codec.AppendClientRequest(nil, "example.com", "/ws?channel=news", key)
	in = codec.AppendMaskedFrame(in, codec.OpText, true, []byte("hello"), [4]byte{1, 2, 3, 4})
	in = codec.AppendMaskedFrame(in, codec.OpPing, true, []byte("p"), [4]byte{5, 6, 7, 8})

	req, n, err := codec.ParseRequest(in, codec.HandshakeLimits{})
	var refused *codec.HandshakeError
	switch {
	case errors.Is(err, codec.ErrIncomplete):
		return // wait for more bytes
	case errors.As(err, &refused):
		out := codec.AppendHTTPError(nil, refused.Status, refused.Reason)
		_ = out // write, then close
		return
	}
	out := codec.AppendAccept(nil, req, "", "")
	fmt.Printf("%s %s -> %q\n", req.Path, req.RawQuery, out[:32])
	in = in[n:]

	// One config for every connection; one Decoder per connection.
	cfg := &codec.DecoderConfig{Role: codec.RoleServer, Buffers: pool.NewBytes()}
	var d codec.Decoder
	d.Init(cfg)
	defer d.Reset()
	for {
		msg, n, err := d.Next(in)
		var ce *codec.CloseError
		if errors.As(err, &ce) {
			out = codec.AppendClose(out, ce.Code, ce.Reason)
			return // write, then close
		}
		in = in[n:]
		if msg.Op == 0 {
			break // keep in (the unconsumed bytes) for the next read
		}
		switch msg.Op {
		case codec.OpText, codec.OpBinary:
			fmt.Printf("%v %q\n", msg.Op, msg.Payload)
		case codec.OpPing:
			out = codec.AppendFrame(out, codec.OpPong, true, msg.Payload)
			fmt.Printf("ping %q\n", msg.Payload)
		}
	}
	// Output:
	// /ws channel=news -> "HTTP/1.1 101 Switching Protocols"
	// text "hello"
	// ping "p"
}

package compression

import (
	"bytes"
	stdflate "compress/flate"
	"crypto/tls"
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/herald-push/herald/internal/wstest"
)

// client is wstest's independent client plus RFC 7692: compression uses
// the standard library's compress/flate (herald uses klauspost/compress).
type client struct {
	t testing.TB
	*wstest.Conn
	ext string // the server's Sec-WebSocket-Extensions
}

// wireFrame is one frame as read or written.
type wireFrame = wstest.Frame

const (
	opCont   = wstest.OpCont
	opText   = wstest.OpText
	opBinary = wstest.OpBinary
	opClose  = wstest.OpClose
	opPing   = wstest.OpPing
	opPong   = wstest.OpPong
)

// rsv1 reports whether a frame has RSV1 (compressed) set.
func rsv1(f wireFrame) bool { return f.RSV&wstest.RSV1 != 0 }

// dialWS upgrades a connection to addr at path, offering extensions ("" for
// none); tlsConf non-nil dials TLS.
func dialWS(t testing.TB, addr, path, extensions string, tlsConf *tls.Config) *client {
	t.Helper()
	c := wstest.Dial(t, addr, wstest.Options{Path: path, Extensions: extensions, TLS: tlsConf})
	return &client{t: t, Conn: c, ext: c.Extensions}
}

func (c *client) send(fs ...wireFrame)                    { c.Send(fs...) }
func (c *client) read(d time.Duration) (wireFrame, error) { return c.Read(d) }

// message reads one whole data message (skipping pongs), inflating it when
// compressed; it reports whether it was compressed.
func (c *client) message(timeout time.Duration) (op byte, payload []byte, compressed bool) {
	c.t.Helper()
	var data []byte
	first := true
	for {
		f, err := c.read(timeout)
		if err != nil {
			c.t.Fatalf("reading message: %v", err)
		}
		if f.Op == opPong {
			continue
		}
		if f.Op >= opClose {
			c.t.Fatalf("control frame %#x (payload %q) while reading a message", f.Op, f.Payload)
		}
		if first {
			op, compressed, first = f.Op, rsv1(f), false
		} else if rsv1(f) {
			c.t.Fatal("RSV1 on a continuation frame from the server")
		}
		data = append(data, f.Payload...)
		if f.Fin {
			break
		}
	}
	if compressed {
		data = inflate(c.t, data)
	}
	return op, data, compressed
}

// expectClose reads until a close frame and checks its code.
func (c *client) expectClose(code uint16) {
	c.t.Helper()
	for {
		f, err := c.read(5 * time.Second)
		if err != nil {
			c.t.Fatalf("waiting for close %d: %v", code, err)
		}
		if f.Op != opClose {
			continue
		}
		if rsv1(f) {
			c.t.Fatal("compressed close frame")
		}
		if len(f.Payload) < 2 || binary.BigEndian.Uint16(f.Payload) != code {
			c.t.Fatalf("close payload %q, want code %d", f.Payload, code)
		}
		return
	}
}

// deflate compresses p as one message without context takeover, the sync
// tail removed (RFC 7692 section 7.2.1).
func deflate(t testing.TB, p []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := stdflate.NewWriter(&b, stdflate.DefaultCompression)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(p)
	w.Flush()
	return bytes.TrimSuffix(b.Bytes(), []byte{0, 0, 0xff, 0xff})
}

// inflate reverses deflate.
func inflate(t testing.TB, p []byte) []byte {
	t.Helper()
	tail := []byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff}
	out, err := io.ReadAll(stdflate.NewReader(io.MultiReader(bytes.NewReader(p), bytes.NewReader(tail))))
	if err != nil {
		t.Fatalf("inflate %d bytes: %v", len(p), err)
	}
	return out
}

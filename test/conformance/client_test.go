package conformance

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/herald-push/herald/internal/wstest"
)

// frame is one frame as read from or written to the wire.
type frame = wstest.Frame

const (
	opCont   = wstest.OpCont
	opText   = wstest.OpText
	opBinary = wstest.OpBinary
	opClose  = wstest.OpClose
	opPing   = wstest.OpPing
	opPong   = wstest.OpPong
)

// client is wstest's independent client with the suite's expectations.
type client struct {
	t testing.TB
	*wstest.Conn
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	return &client{t: t, Conn: wstest.Dial(t, addr, wstest.Options{Path: "/conformance"})}
}

func encode(f frame) []byte { return wstest.Encode(f) }

func (c *client) writeRaw(b []byte)                   { c.WriteRaw(b) }
func (c *client) send(fs ...frame)                    { c.Send(fs...) }
func (c *client) sendChunked(n int, fs ...frame)      { c.SendChunked(n, fs...) }
func (c *client) read(d time.Duration) (frame, error) { return c.Read(d) }

// expect reads the next non-ping frame and checks it is op with payload
// (server pings are answered and skipped).
func (c *client) expect(op byte, payload []byte) {
	c.t.Helper()
	f := c.next()
	if f.Op != op || !f.Fin {
		c.t.Fatalf("got frame op=%#x fin=%v len=%d (%s), want op=%#x fin", f.Op, f.Fin, len(f.Payload), preview(f.Payload), op)
	}
	if !bytes.Equal(f.Payload, payload) {
		c.t.Fatalf("op %#x payload mismatch: got %d bytes %s, want %d bytes %s", op, len(f.Payload), preview(f.Payload), len(payload), preview(payload))
	}
}

func (c *client) next() frame {
	c.t.Helper()
	for {
		f, err := c.read(5 * time.Second)
		if err != nil {
			c.t.Fatalf("read frame: %v", err)
		}
		if f.Op == opPing {
			c.send(frame{Fin: true, Op: opPong, Payload: f.Payload})
			continue
		}
		return f
	}
}

func preview(b []byte) string {
	if len(b) > 40 {
		return fmt.Sprintf("%q…", b[:40])
	}
	return fmt.Sprintf("%q", b)
}

// expectClose checks that the next frame is a close with one of codes
// (none given: a close with an empty payload) and that the server then
// closes the TCP connection.
func (c *client) expectClose(codes ...uint16) {
	c.t.Helper()
	f := c.next()
	if f.Op != opClose {
		c.t.Fatalf("got frame op=%#x (%s), want close %v", f.Op, preview(f.Payload), codes)
	}
	if len(codes) == 0 {
		if len(f.Payload) != 0 {
			c.t.Fatalf("close payload %q, want empty", f.Payload)
		}
	} else {
		if len(f.Payload) < 2 {
			c.t.Fatalf("close payload %q, want a code in %v", f.Payload, codes)
		}
		got := binary.BigEndian.Uint16(f.Payload)
		ok := false
		for _, w := range codes {
			ok = ok || got == w
		}
		if !ok {
			c.t.Fatalf("close code %d (%q), want one of %v", got, f.Payload[2:], codes)
		}
		if !validUTF8(f.Payload[2:]) {
			c.t.Fatalf("server close reason is not UTF-8: %q", f.Payload[2:])
		}
	}
	c.expectTCPClose()
}

// expectTCPClose checks that the server closes the connection.
func (c *client) expectTCPClose() {
	c.t.Helper()
	c.NC.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1024)
	for {
		_, err := c.BR.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			c.t.Fatalf("server did not close the TCP connection")
		}
		return
	}
}

// closeCleanly performs the client-initiated close handshake.
func (c *client) closeCleanly() {
	c.t.Helper()
	c.send(frame{Fin: true, Op: opClose, Payload: closePayload(1000, "")})
	c.expectClose(1000)
}

func closePayload(code uint16, reason string) []byte {
	b := binary.BigEndian.AppendUint16(nil, code)
	return append(b, reason...)
}

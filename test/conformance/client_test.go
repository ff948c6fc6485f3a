package conformance

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// client is a deliberately independent, minimal RFC 6455 client: it writes
// frames byte by byte as the test dictates (including invalid ones) and
// reads the server's frames without sharing any code with herald's codec.
type client struct {
	t    testing.TB
	conn net.Conn
	br   *bufio.Reader
}

// frame is one frame as read from or written to the wire.
type frame struct {
	fin              bool
	rsv              byte // bits 0x4 RSV1, 0x2 RSV2, 0x1 RSV3
	op               byte
	payload          []byte
	noMask           bool   // send unmasked (a protocol violation from a client)
	lenOverride      uint64 // declare this length instead of len(payload) (uses 64-bit form)
	forceExtended64  bool
	declaredTooLarge bool
}

const (
	opCont   = 0x0
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xA
)

func dial(t testing.TB, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	cl := &client{t: t, conn: c, br: bufio.NewReaderSize(c, 1<<16)}
	key := make([]byte, 16)
	rand.Read(key)
	req := "GET /conformance HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + b64(key) + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	cl.writeRaw([]byte(req))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(cl.br, nil)
	if err != nil {
		t.Fatalf("handshake response: %v", err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("handshake status %d", resp.StatusCode)
	}
	return cl
}

func b64(b []byte) string {
	const enc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	var sb strings.Builder
	for i := 0; i < len(b); i += 3 {
		var n uint32
		k := min(3, len(b)-i)
		for j := 0; j < 3; j++ {
			n <<= 8
			if j < k {
				n |= uint32(b[i+j])
			}
		}
		for j := 0; j < 4; j++ {
			if j <= k {
				sb.WriteByte(enc[(n>>(18-6*j))&63])
			} else {
				sb.WriteByte('=')
			}
		}
	}
	return sb.String()
}

func (c *client) writeRaw(b []byte) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.conn.Write(b); err != nil && !errors.Is(err, net.ErrClosed) {
		// The server may already have closed on an earlier violation;
		// what counts is what we read back.
		c.t.Logf("write: %v", err)
	}
}

// encode renders f as a client frame.
func encode(f frame) []byte {
	var b bytes.Buffer
	h0 := f.op | f.rsv<<4
	if f.fin {
		h0 |= 0x80
	}
	b.WriteByte(h0)
	var maskBit byte = 0x80
	if f.noMask {
		maskBit = 0
	}
	n := uint64(len(f.payload))
	if f.lenOverride != 0 {
		n = f.lenOverride
	}
	switch {
	case f.forceExtended64 || n > 0xFFFF:
		b.WriteByte(maskBit | 127)
		binary.Write(&b, binary.BigEndian, n)
	case n > 125:
		b.WriteByte(maskBit | 126)
		binary.Write(&b, binary.BigEndian, uint16(n))
	default:
		b.WriteByte(maskBit | byte(n))
	}
	if f.noMask {
		b.Write(f.payload)
		return b.Bytes()
	}
	var key [4]byte
	rand.Read(key[:])
	b.Write(key[:])
	for i, x := range f.payload {
		b.WriteByte(x ^ key[i&3])
	}
	return b.Bytes()
}

func (c *client) send(fs ...frame) {
	c.t.Helper()
	var all []byte
	for _, f := range fs {
		all = append(all, encode(f)...)
	}
	c.writeRaw(all)
}

// sendChunked writes the encoded frames in pieces of n bytes with a pause,
// so the server sees partial frames.
func (c *client) sendChunked(n int, fs ...frame) {
	c.t.Helper()
	var all []byte
	for _, f := range fs {
		all = append(all, encode(f)...)
	}
	for len(all) > 0 {
		k := min(n, len(all))
		c.writeRaw(all[:k])
		all = all[k:]
		time.Sleep(time.Millisecond)
	}
}

// read reads one server frame; the server must never mask.
func (c *client) read(timeout time.Duration) (frame, error) {
	c.conn.SetReadDeadline(time.Now().Add(timeout))
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return frame{}, err
	}
	f := frame{fin: h[0]&0x80 != 0, rsv: (h[0] >> 4) & 7, op: h[0] & 0xF}
	if h[1]&0x80 != 0 {
		return f, errors.New("server frame is masked")
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var x [2]byte
		if _, err := io.ReadFull(c.br, x[:]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(x[:]))
	case 127:
		var x [8]byte
		if _, err := io.ReadFull(c.br, x[:]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(x[:])
	}
	if n > 64<<20 {
		return f, fmt.Errorf("server frame of %d bytes", n)
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(c.br, f.payload); err != nil {
		return f, err
	}
	return f, nil
}

// expect reads the next non-ping frame and checks it is op with payload
// (server pings are answered and skipped).
func (c *client) expect(op byte, payload []byte) {
	c.t.Helper()
	f := c.next()
	if f.op != op || !f.fin {
		c.t.Fatalf("got frame op=%#x fin=%v len=%d (%s), want op=%#x fin", f.op, f.fin, len(f.payload), preview(f.payload), op)
	}
	if !bytes.Equal(f.payload, payload) {
		c.t.Fatalf("op %#x payload mismatch: got %d bytes %s, want %d bytes %s", op, len(f.payload), preview(f.payload), len(payload), preview(payload))
	}
}

func (c *client) next() frame {
	c.t.Helper()
	for {
		f, err := c.read(5 * time.Second)
		if err != nil {
			c.t.Fatalf("read frame: %v", err)
		}
		if f.op == opPing {
			c.send(frame{fin: true, op: opPong, payload: f.payload})
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
	if f.op != opClose {
		c.t.Fatalf("got frame op=%#x (%s), want close %v", f.op, preview(f.payload), codes)
	}
	if len(codes) == 0 {
		if len(f.payload) != 0 {
			c.t.Fatalf("close payload %q, want empty", f.payload)
		}
	} else {
		if len(f.payload) < 2 {
			c.t.Fatalf("close payload %q, want a code in %v", f.payload, codes)
		}
		got := binary.BigEndian.Uint16(f.payload)
		ok := false
		for _, w := range codes {
			ok = ok || got == w
		}
		if !ok {
			c.t.Fatalf("close code %d (%q), want one of %v", got, f.payload[2:], codes)
		}
		if !validUTF8(f.payload[2:]) {
			c.t.Fatalf("server close reason is not UTF-8: %q", f.payload[2:])
		}
	}
	c.expectTCPClose()
}

// expectTCPClose checks that the server closes the connection.
func (c *client) expectTCPClose() {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1024)
	for {
		_, err := c.br.Read(buf)
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
	c.send(frame{fin: true, op: opClose, payload: closePayload(1000, "")})
	c.expectClose(1000)
}

func closePayload(code uint16, reason string) []byte {
	b := binary.BigEndian.AppendUint16(nil, code)
	return append(b, reason...)
}

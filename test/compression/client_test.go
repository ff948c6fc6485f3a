package compression

import (
	"bufio"
	"bytes"
	stdflate "compress/flate"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// client is a minimal RFC 6455 + RFC 7692 client that shares no code with
// herald: frames are built by hand and compression uses the standard
// library's compress/flate (herald uses klauspost/compress).
type client struct {
	t    testing.TB
	conn net.Conn
	br   *bufio.Reader
	ext  string // the server's Sec-WebSocket-Extensions
}

// wireFrame is one frame as read or written.
type wireFrame struct {
	fin     bool
	rsv1    bool
	op      byte
	payload []byte
}

const (
	opCont   = 0x0
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xA
)

// dialWS upgrades a connection to addr at path, offering extensions ("" for
// none); tlsConf non-nil dials TLS.
func dialWS(t testing.TB, addr, path, extensions string, tlsConf *tls.Config) *client {
	t.Helper()
	var c net.Conn
	var err error
	d := &net.Dialer{Timeout: 5 * time.Second}
	if tlsConf != nil {
		c, err = tls.DialWithDialer(d, "tcp", addr, tlsConf)
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	cl := &client{t: t, conn: c, br: bufio.NewReaderSize(c, 1<<16)}
	key := make([]byte, 16)
	rand.Read(key)
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key) + "\r\nSec-WebSocket-Version: 13\r\n"
	if extensions != "" {
		req += "Sec-WebSocket-Extensions: " + extensions + "\r\n"
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(req + "\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(cl.br, nil)
	if err != nil {
		t.Fatalf("handshake response: %v", err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("handshake status %d", resp.StatusCode)
	}
	cl.ext = resp.Header.Get("Sec-WebSocket-Extensions")
	c.SetDeadline(time.Time{})
	return cl
}

// encode builds a masked client frame.
func encode(f wireFrame) []byte {
	var b []byte
	b0 := f.op
	if f.fin {
		b0 |= 0x80
	}
	if f.rsv1 {
		b0 |= 0x40
	}
	n := len(f.payload)
	switch {
	case n <= 125:
		b = append(b, b0, 0x80|byte(n))
	case n <= 0xFFFF:
		b = append(b, b0, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, b0, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var key [4]byte
	rand.Read(key[:])
	b = append(b, key[:]...)
	for i, c := range f.payload {
		b = append(b, c^key[i%4])
	}
	return b
}

func (c *client) send(fs ...wireFrame) {
	c.t.Helper()
	var b []byte
	for _, f := range fs {
		b = append(b, encode(f)...)
	}
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read reads one frame from the server.
func (c *client) read(timeout time.Duration) (wireFrame, error) {
	c.conn.SetReadDeadline(time.Now().Add(timeout))
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return wireFrame{}, err
	}
	f := wireFrame{fin: h[0]&0x80 != 0, rsv1: h[0]&0x40 != 0, op: h[0] & 0xF}
	if h[0]&0x30 != 0 || h[1]&0x80 != 0 {
		return f, fmt.Errorf("server frame with RSV2/RSV3 or mask: % x", h)
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var e [2]byte
		if _, err := io.ReadFull(c.br, e[:]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(e[:]))
	case 127:
		var e [8]byte
		if _, err := io.ReadFull(c.br, e[:]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(e[:])
	}
	f.payload = make([]byte, n)
	_, err := io.ReadFull(c.br, f.payload)
	return f, err
}

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
		if f.op == opPong {
			continue
		}
		if f.op >= opClose {
			c.t.Fatalf("control frame %#x (payload %q) while reading a message", f.op, f.payload)
		}
		if first {
			op, compressed, first = f.op, f.rsv1, false
		} else if f.rsv1 {
			c.t.Fatal("RSV1 on a continuation frame from the server")
		}
		data = append(data, f.payload...)
		if f.fin {
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
		if f.op != opClose {
			continue
		}
		if f.rsv1 {
			c.t.Fatal("compressed close frame")
		}
		if len(f.payload) < 2 || binary.BigEndian.Uint16(f.payload) != code {
			c.t.Fatalf("close payload %q, want code %d", f.payload, code)
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

// Package wstest is a deliberately independent, minimal RFC 6455 client
// for herald's end-to-end suites: it writes frames byte by byte as a test
// dictates (invalid ones included) and reads the server's frames, sharing
// no code with herald's codec, so a bug there cannot hide itself. A Conn
// belongs to one test goroutine.
package wstest

import (
	"bufio"
	"bytes"
	"compress/flate"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// Opcodes.
const (
	OpCont   = 0x0
	OpText   = 0x1
	OpBinary = 0x2
	OpClose  = 0x8
	OpPing   = 0x9
	OpPong   = 0xA
)

// RSV1 is the RSV bit permessage-deflate uses (Frame.RSV).
const RSV1 = 0x4

// Frame is one frame as written or read.
type Frame struct {
	Fin     bool
	RSV     byte // bits: 0x4 RSV1, 0x2 RSV2, 0x1 RSV3
	Op      byte
	Payload []byte
	// NoMask sends the frame unmasked (a protocol violation from a client).
	NoMask bool
	// LenOverride declares this payload length instead of len(Payload),
	// in the 64-bit form.
	LenOverride uint64
	// ForceExtended64 uses the 64-bit length form whatever the length.
	ForceExtended64 bool
}

// Encode renders f as a client frame (masked with a random key unless
// NoMask).
func Encode(f Frame) []byte {
	h0 := f.Op | f.RSV<<4
	if f.Fin {
		h0 |= 0x80
	}
	var maskBit byte = 0x80
	if f.NoMask {
		maskBit = 0
	}
	n := uint64(len(f.Payload))
	if f.LenOverride != 0 {
		n = f.LenOverride
	}
	b := []byte{h0}
	switch {
	case f.ForceExtended64 || f.LenOverride != 0 || n > 0xFFFF:
		b = append(b, maskBit|127)
		b = binary.BigEndian.AppendUint64(b, n)
	case n > 125:
		b = append(b, maskBit|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, maskBit|byte(n))
	}
	if f.NoMask {
		return append(b, f.Payload...)
	}
	var key [4]byte
	rand.Read(key[:])
	b = append(b, key[:]...)
	for i, x := range f.Payload {
		b = append(b, x^key[i&3])
	}
	return b
}

// Options shape the opening handshake.
type Options struct {
	// Path is the request target (default "/").
	Path string
	// Extensions is offered as Sec-WebSocket-Extensions when set.
	Extensions string
	// TLS dials with TLS when set.
	TLS *tls.Config
	// Header holds more header lines for the request, each ending in
	// "\r\n" ("Cookie: sid=1\r\n").
	Header string
}

// Conn is an upgraded connection.
type Conn struct {
	T  testing.TB
	NC net.Conn
	BR *bufio.Reader
	// Extensions is the server's Sec-WebSocket-Extensions answer.
	Extensions string
}

// Dial connects to addr and performs the opening handshake; the test
// fails unless the server answers 101. The connection is closed when the
// test ends.
func Dial(t testing.TB, addr string, o Options) *Conn {
	t.Helper()
	if o.Path == "" {
		o.Path = "/"
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	var nc net.Conn
	var err error
	if o.TLS != nil {
		nc, err = tls.DialWithDialer(d, "tcp", addr, o.TLS)
	} else {
		nc, err = d.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &Conn{T: t, NC: nc, BR: bufio.NewReaderSize(nc, 1<<16)}
	key := make([]byte, 16)
	rand.Read(key)
	req := "GET " + o.Path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key) + "\r\nSec-WebSocket-Version: 13\r\n"
	if o.Extensions != "" {
		req += "Sec-WebSocket-Extensions: " + o.Extensions + "\r\n"
	}
	req += o.Header
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	c.WriteRaw([]byte(req + "\r\n"))
	resp, err := http.ReadResponse(c.BR, nil)
	if err != nil {
		t.Fatalf("handshake response: %v", err)
	}
	if resp.StatusCode != 101 {
		t.Fatalf("handshake status %d", resp.StatusCode)
	}
	c.Extensions = resp.Header.Get("Sec-WebSocket-Extensions")
	nc.SetDeadline(time.Time{})
	return c
}

// WriteRaw writes b as it is. A write error is only logged: the server may
// already have closed on an earlier violation, and what counts is what is
// read back.
func (c *Conn) WriteRaw(b []byte) {
	c.T.Helper()
	c.NC.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.NC.Write(b); err != nil && !errors.Is(err, net.ErrClosed) {
		c.T.Logf("write: %v", err)
	}
}

// Send writes the frames in one write.
func (c *Conn) Send(fs ...Frame) {
	c.T.Helper()
	var all []byte
	for _, f := range fs {
		all = append(all, Encode(f)...)
	}
	c.WriteRaw(all)
}

// SendChunked writes the encoded frames n bytes at a time with a pause, so
// the server sees partial frames.
func (c *Conn) SendChunked(n int, fs ...Frame) {
	c.T.Helper()
	var all []byte
	for _, f := range fs {
		all = append(all, Encode(f)...)
	}
	for len(all) > 0 {
		k := min(n, len(all))
		c.WriteRaw(all[:k])
		all = all[k:]
		time.Sleep(time.Millisecond)
	}
}

// Read reads one server frame; a masked server frame is an error.
func (c *Conn) Read(timeout time.Duration) (Frame, error) {
	c.NC.SetReadDeadline(time.Now().Add(timeout))
	var h [2]byte
	if _, err := io.ReadFull(c.BR, h[:]); err != nil {
		return Frame{}, err
	}
	f := Frame{Fin: h[0]&0x80 != 0, RSV: (h[0] >> 4) & 7, Op: h[0] & 0xF}
	if h[1]&0x80 != 0 {
		return f, errors.New("server frame is masked")
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var x [2]byte
		if _, err := io.ReadFull(c.BR, x[:]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(x[:]))
	case 127:
		var x [8]byte
		if _, err := io.ReadFull(c.BR, x[:]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(x[:])
	}
	if n > 64<<20 {
		return f, fmt.Errorf("server frame of %d bytes", n)
	}
	f.Payload = make([]byte, n)
	if _, err := io.ReadFull(c.BR, f.Payload); err != nil {
		return f, err
	}
	return f, nil
}

// ZeroBomb returns a permessage-deflate payload (raw DEFLATE without the
// final sync tail, as a compressed frame carries it) that inflates to mib
// MiB of zeros: one MiB compressed once, its blocks (not final, ending in
// the sync marker, referring to nothing before them) repeated mib times,
// which spares compressing the whole of it.
func ZeroBomb(mib int) []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestSpeed) // fails only on a bad level
	w.Write(make([]byte, 1<<20))
	w.Flush()
	syncTail := []byte{0, 0, 0xff, 0xff}
	return bytes.TrimSuffix(bytes.Repeat(b.Bytes(), mib), syncTail)
}

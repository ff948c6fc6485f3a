package codec

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/klauspost/compress/flate"

	"github.com/herald-push/herald/pool"
)

// permessage-deflate (RFC 7692) uses github.com/klauspost/compress/flate
// rather than compress/flate: it is a drop-in with the same stream format,
// compresses and inflates faster (BenchmarkDeflate in deflate_test.go
// compares the two), and it offers NewWriterWindow, which honours a
// client's server_max_window_bits below 15 without a hand-written encoder.
//
// Herald never keeps a compression context between messages, on either
// side: it always answers with server_no_context_takeover and
// client_no_context_takeover. That is what lets one compressed frame serve
// every subscriber of a channel (compress once per publish), and it means a
// connection holds no deflate or inflate state while idle: flate writers
// and readers (tens of kilobytes each) are borrowed from pools for the span
// of one message.

// Defaults of a DeflateConfig whose fields are zero.
const (
	// DefaultDeflateLevel is the compression level: a frame shared by a
	// whole fan-out is compressed once, so a middle level's better ratio
	// costs little CPU per delivery.
	DefaultDeflateLevel = 6
	// DefaultDeflateMinSize is the smallest payload worth compressing:
	// below it the deflate framing eats most of the gain.
	DefaultDeflateMinSize = 128
)

// DeflateConfig configures a Deflate. The zero value is valid: level 6,
// payloads from 128 bytes compressed, inflated messages capped at
// DefaultMaxMessageSize, plain allocations for inflate buffers.
type DeflateConfig struct {
	// Level is the flate level, from 1 (fastest) to 9 (smallest); 0 means
	// DefaultDeflateLevel.
	Level int
	// MinSize is the smallest payload that is compressed; smaller ones go
	// out as plain frames, which RFC 7692 allows at any time. 0 means
	// DefaultDeflateMinSize; a negative value compresses every payload.
	MinSize int
	// MaxInflated caps the size of an inflated message: a message that
	// inflates to more fails with CloseMessageTooBig (1009) as soon as the
	// cap is passed, so a compression bomb costs at most this much memory.
	// 0 or less means DefaultMaxMessageSize.
	MaxInflated int64
	// Buffers supplies the buffers inflated messages are written to; nil
	// means plain allocations.
	Buffers *pool.Bytes
}

// DeflateStats are the counters of a Deflate, safe to read from any
// goroutine.
type DeflateStats struct {
	// Compressed counts payloads compressed, BytesIn their size and
	// BytesOut the size of what was sent for them.
	Compressed, BytesIn, BytesOut atomic.Uint64
	// Skipped counts payloads sent plain because they were under MinSize
	// or did not shrink.
	Skipped atomic.Uint64
	// Inflated counts messages inflated; InflateErrors those that were not
	// valid deflate data or inflated past MaxInflated.
	Inflated, InflateErrors atomic.Uint64
}

// Deflate compresses and inflates permessage-deflate messages without
// context takeover, for many connections. It pools flate writers (one pool
// per window size) and readers, so memory grows with the number of
// messages being processed at once, never with the number of connections.
// Create it with NewDeflate. Safe for concurrent use.
type Deflate struct {
	cfg     DeflateConfig
	writers [16 - minWindowBits]sync.Pool // of *deflater, by window bits - 8
	readers sync.Pool                     // of *inflater
	stats   DeflateStats
}

// Window sizes of RFC 7692 section 7.1.2: 2^8 to 2^15 bytes.
const (
	minWindowBits = 8
	maxWindowBits = 15
)

// NewDeflate returns a Deflate with cfg, or an error for a level out of
// range.
func NewDeflate(cfg DeflateConfig) (*Deflate, error) {
	if cfg.Level == 0 {
		cfg.Level = DefaultDeflateLevel
	}
	if cfg.Level < flate.BestSpeed || cfg.Level > flate.BestCompression {
		return nil, fmt.Errorf("codec: deflate level %d: want 1 to 9", cfg.Level)
	}
	if cfg.MinSize == 0 {
		cfg.MinSize = DefaultDeflateMinSize
	}
	if cfg.MaxInflated <= 0 {
		cfg.MaxInflated = DefaultMaxMessageSize
	}
	return &Deflate{cfg: cfg}, nil
}

// Stats returns the live counters.
func (z *Deflate) Stats() *DeflateStats { return &z.stats }

// deflater is a pooled flate writer and the buffer it writes to.
type deflater struct {
	w   *flate.Writer
	out []byte
}

// Write appends p to the output; it is the flate writer's sink.
func (d *deflater) Write(p []byte) (int, error) {
	d.out = append(d.out, p...)
	return len(p), nil
}

// AppendFrame appends one final frame carrying payload with opcode op (text
// or binary; never a control opcode, which RFC 7692 does not compress): a
// compressed frame with RSV1 set, sized for a peer whose window is
// 2^windowBits bytes (8 to 15; see DeflateParams.ServerWindowBits), or the
// plain frame when payload is under MinSize or does not shrink. The frame
// is never longer than the plain one, so a caller may size dst for
// FrameHeaderLen(len(payload), false) + len(payload).
func (z *Deflate) AppendFrame(dst []byte, op OpCode, payload []byte, windowBits uint8) []byte {
	if f, ok := z.AppendCompressed(dst, op, payload, windowBits); ok {
		return f
	}
	return AppendFrame(dst, op, true, payload)
}

// AppendCompressed is AppendFrame without the fallback: when payload is
// under MinSize or does not shrink it returns dst unchanged and false, for
// callers that already hold the plain frame.
func (z *Deflate) AppendCompressed(dst []byte, op OpCode, payload []byte, windowBits uint8) ([]byte, bool) {
	if len(payload) < z.cfg.MinSize {
		z.stats.Skipped.Add(1)
		return dst, false
	}
	d := z.getDeflater(windowBits)
	defer z.putDeflater(d, windowBits)
	d.compress(payload)
	if len(d.out) >= len(payload) {
		z.stats.Skipped.Add(1)
		return dst, false
	}
	z.stats.Compressed.Add(1)
	z.stats.BytesIn.Add(uint64(len(payload)))
	z.stats.BytesOut.Add(uint64(len(d.out)))
	dst = slices.Grow(dst, FrameHeaderLen(len(d.out), false)+len(d.out))
	dst = AppendHeader(dst, op, true, true, len(d.out))
	return append(dst, d.out...), true
}

// AppendCompressedOf is AppendCompressed for the payload of frame, a final
// unmasked uncompressed data frame already encoded (as a hub encodes a
// message once for a whole fan-out). It returns dst unchanged and false
// when compression does not pay, or when frame is not such a frame.
func (z *Deflate) AppendCompressedOf(dst, frame []byte, windowBits uint8) ([]byte, bool) {
	if len(frame) < 2 || frame[0]&(bitFin|bitRsv1|bitRsv2|bitRsv3) != bitFin || frame[1]&bitMask != 0 {
		return dst, false
	}
	op := OpCode(frame[0] & 0xF)
	hl := 2
	switch frame[1] & 0x7F {
	case 126:
		hl += 2
	case 127:
		hl += 8
	}
	if op != OpText && op != OpBinary || len(frame) < hl {
		return dst, false
	}
	return z.AppendCompressed(dst, op, frame[hl:], windowBits)
}

// syncTail is the empty stored block that ends a flushed deflate stream;
// RFC 7692 section 7.2.1 removes it from the message and section 7.2.2
// adds it back before inflating.
var syncTail = []byte{0x00, 0x00, 0xff, 0xff}

// compress sets d.out to payload compressed as one message without context
// takeover: a fresh stream, flushed, with the sync tail removed.
func (d *deflater) compress(payload []byte) {
	d.out = d.out[:0]
	d.w.Reset(d)
	// Writes to d cannot fail, so neither can the flate writer.
	_, _ = d.w.Write(payload)
	_ = d.w.Flush()
	d.out = d.out[:len(d.out)-len(syncTail)]
}

func (z *Deflate) getDeflater(windowBits uint8) *deflater {
	windowBits = clampWindow(windowBits)
	if v := z.writers[windowBits-minWindowBits].Get(); v != nil {
		return v.(*deflater)
	}
	d := &deflater{}
	var err error
	if windowBits == maxWindowBits {
		d.w, err = flate.NewWriter(d, z.cfg.Level)
	} else {
		d.w, err = flate.NewWriterWindow(d, 1<<windowBits)
	}
	if err != nil {
		// The level and window are checked above; only a bug gets here.
		panic("codec: flate writer: " + err.Error())
	}
	return d
}

// maxPooledOut bounds the output buffer a pooled deflater keeps.
const maxPooledOut = 256 << 10

func (z *Deflate) putDeflater(d *deflater, windowBits uint8) {
	if cap(d.out) > maxPooledOut {
		d.out = nil
	}
	d.w.Reset(nil)
	z.writers[clampWindow(windowBits)-minWindowBits].Put(d)
}

// clampWindow maps window bits outside 8..15 (0: not negotiated) to 15.
func clampWindow(bits uint8) uint8 {
	if bits < minWindowBits || bits > maxWindowBits {
		return maxWindowBits
	}
	return bits
}

// inflater is a pooled flate reader and the source it reads from.
type inflater struct {
	r   io.ReadCloser // also a flate.Resetter
	src messageReader
}

// messageReader serves a compressed message followed by the tail that
// makes it a complete deflate stream: the sync block the sender removed
// and an empty final block, so the flate reader ends with io.EOF rather
// than io.ErrUnexpectedEOF. It implements io.ByteReader, so the flate
// reader reads it directly instead of wrapping it in a bufio.Reader.
type messageReader struct {
	msg  []byte
	tail int // bytes of inflateTail served
}

var inflateTail = []byte{0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff}

func (m *messageReader) Read(p []byte) (int, error) {
	if len(m.msg) > 0 {
		n := copy(p, m.msg)
		m.msg = m.msg[n:]
		return n, nil
	}
	if m.tail == len(inflateTail) {
		return 0, io.EOF
	}
	n := copy(p, inflateTail[m.tail:])
	m.tail += n
	return n, nil
}

func (m *messageReader) ReadByte() (byte, error) {
	if len(m.msg) > 0 {
		b := m.msg[0]
		m.msg = m.msg[1:]
		return b, nil
	}
	if m.tail == len(inflateTail) {
		return 0, io.EOF
	}
	m.tail++
	return inflateTail[m.tail-1], nil
}

// Inflate decompresses the payload of a message received with RSV1 set and
// returns a buffer holding the message; give it back with Release once the
// message is handled. text says whether the message is text, whose inflated
// bytes must then be valid UTF-8.
//
// It returns a *CloseError with CloseMessageTooBig when the message
// inflates past MaxInflated (it stops reading there), or with
// CloseInvalidPayload for data that is not a valid deflate stream, that
// refers to bytes before the message (context takeover, which herald never
// allows the client), or that is invalid UTF-8 text.
func (z *Deflate) Inflate(payload []byte, text bool) (*[]byte, error) {
	in := z.getInflater(payload)
	defer z.putInflater(in)
	limit := z.cfg.MaxInflated
	out := z.borrow(min(int64(2*len(payload)+64), limit+1))
	for {
		b := *out
		if len(b) == cap(b) {
			if int64(len(b)) > limit {
				z.Release(out)
				z.stats.InflateErrors.Add(1)
				return nil, tooBig("inflated message over the size limit")
			}
			bigger := z.borrow(min(int64(2*cap(b)), limit+1))
			*bigger = append(*bigger, b...)
			z.Release(out)
			out = bigger
			b = *out
		}
		n, err := in.r.Read(b[len(b):cap(b)])
		*out = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			z.Release(out)
			z.stats.InflateErrors.Add(1)
			return nil, &CloseError{Code: CloseInvalidPayload, Reason: "invalid compressed data"}
		}
	}
	if int64(len(*out)) > limit {
		z.Release(out)
		z.stats.InflateErrors.Add(1)
		return nil, tooBig("inflated message over the size limit")
	}
	if text && !utf8.Valid(*out) {
		z.Release(out)
		return nil, invalidUTF8()
	}
	z.stats.Inflated.Add(1)
	return out, nil
}

// Release gives back a buffer returned by Inflate. The caller must not use
// it afterwards.
func (z *Deflate) Release(b *[]byte) {
	if z.cfg.Buffers != nil {
		z.cfg.Buffers.Put(b)
	}
}

func (z *Deflate) borrow(n int64) *[]byte {
	if z.cfg.Buffers != nil {
		return z.cfg.Buffers.Get(int(n))
	}
	b := make([]byte, 0, n)
	return &b
}

func (z *Deflate) getInflater(payload []byte) *inflater {
	in, _ := z.readers.Get().(*inflater)
	if in == nil {
		in = &inflater{}
		in.src = messageReader{msg: payload}
		in.r = flate.NewReader(&in.src)
		return in
	}
	in.src = messageReader{msg: payload}
	// Reset of a flate reader on a fresh source cannot fail.
	_ = in.r.(flate.Resetter).Reset(&in.src, nil)
	return in
}

func (z *Deflate) putInflater(in *inflater) {
	in.src = messageReader{} // do not keep the caller's payload alive
	z.readers.Put(in)
}

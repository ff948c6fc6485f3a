package codec

import (
	"encoding/binary"

	"github.com/herald-push/herald/pool"
)

// Default limits of a DecoderConfig whose fields are zero.
const (
	DefaultMaxFrameSize   = 16 << 20
	DefaultMaxMessageSize = 16 << 20
)

// DecoderConfig configures Decoders. The zero value is valid: server role,
// 16 MiB frames and messages, no extension, no pooling. One config is shared
// by many decoders, which keep a pointer to it: it must not be modified once
// a Decoder uses it, and may then be read from any goroutine.
type DecoderConfig struct {
	// Role is the side decoded for; RoleServer (the zero value) requires
	// masked frames, RoleClient unmasked ones.
	Role Role
	// MaxFrameSize bounds the payload of one frame; a larger frame fails
	// with CloseMessageTooBig as soon as its header is read. 0 or less means
	// DefaultMaxFrameSize. The caller's input buffer must be able to hold a
	// whole frame: the Decoder consumes frames only when complete.
	MaxFrameSize int64
	// MaxMessageSize bounds a reassembled message (the sum of its
	// fragments' payloads, before any decompression). 0 or less means
	// DefaultMaxMessageSize.
	MaxMessageSize int64
	// AllowRSV1 accepts RSV1 on the first frame of a data message, which
	// permessage-deflate (RFC 7692) uses to mark compression; set it only
	// when that extension was negotiated. The Decoder does not inflate: it
	// reports the bit in Message.Compressed and skips UTF-8 validation of
	// compressed text, which the caller must inflate (with its own size cap)
	// and then check with a UTF8Validator.
	AllowRSV1 bool
	// Buffers supplies reassembly buffers for fragmented messages. nil means
	// plain allocations left to the garbage collector, which is correct but
	// not allocation-free.
	Buffers *pool.Bytes
}

// zeroConfig stands in for a nil *DecoderConfig. It is never written.
var zeroConfig DecoderConfig

func (c *DecoderConfig) maxFrame() int64 {
	if c.MaxFrameSize > 0 {
		return c.MaxFrameSize
	}
	return DefaultMaxFrameSize
}

func (c *DecoderConfig) maxMessage() int64 {
	if c.MaxMessageSize > 0 {
		return c.MaxMessageSize
	}
	return DefaultMaxMessageSize
}

// Message is one complete data message (after reassembly) or one control
// frame, as returned by Decoder.Next.
type Message struct {
	// Op is OpText or OpBinary for a data message, OpPing, OpPong or
	// OpClose for a control frame, and 0 when nothing complete is available.
	Op OpCode
	// Payload is the unmasked payload. It is valid until the next call of
	// Next or Reset on the same Decoder, and for as long as the caller keeps
	// its input buffer: it aliases either that buffer or a pooled
	// reassembly buffer.
	Payload []byte
	// Compressed reports that RSV1 was set on the message's first frame
	// (possible only with DecoderConfig.AllowRSV1).
	Compressed bool
	// CloseCode is, for OpClose, the status code, or CloseNoStatus when the
	// payload was empty.
	CloseCode uint16
	// CloseReason is, for OpClose, the reason, already checked to be valid
	// UTF-8; it aliases Payload.
	CloseReason []byte
}

// frameHeader is one parsed frame header; it lives on the stack only.
type frameHeader struct {
	op     OpCode
	fin    bool
	rsv1   bool
	masked bool
	key    [4]byte
	size   int   // header bytes
	length int64 // payload bytes
}

// Decoder is the per-connection incremental frame decoder: a resumable state
// machine fed with byte slices that never waits, never does I/O and does not
// allocate in steady state. It is 32 bytes on 64-bit platforms and holds no
// buffer while idle: a reassembly buffer is borrowed from
// DecoderConfig.Buffers only while a fragmented message is in progress, and
// given back when the call after the one that returned the message begins,
// or on Reset.
//
// A Decoder is owned by its connection's event-loop goroutine; it is not
// safe for concurrent use. The zero value behaves as one initialised with a
// zero DecoderConfig.
type Decoder struct {
	cfg *DecoderConfig
	// buf is the reassembly buffer of the fragmented message in progress,
	// or of the message returned by the last call; nil otherwise.
	buf *[]byte
	// done counts the payload bytes of the incomplete text frame at the head
	// of the input that are already checked as UTF-8 (in a scratch copy:
	// unconsumed input is never modified).
	done int64
	// op is the opcode of the fragmented message in progress, 0 if none.
	op OpCode
	// compressed is RSV1 of the fragmented message in progress.
	compressed bool
	// utf8 is the UTF-8 DFA state after the text checked so far of the
	// current message, across fragments and pieces of frames.
	utf8 uint8
}

// Init prepares d for a new connection with cfg, which d keeps a pointer to
// (nil means a zero DecoderConfig). Any buffer d held is given back first.
func (d *Decoder) Init(cfg *DecoderConfig) {
	d.Reset()
	d.cfg = cfg
}

// Reset returns any borrowed buffer and forgets any message in progress,
// keeping the config. Call it when the connection ends, on every path,
// including after Next returned an error.
func (d *Decoder) Reset() {
	d.release()
	d.done = 0
	d.op = 0
	d.compressed = false
	d.utf8 = utf8Accept
}

// Buffered is the number of bytes d holds for the fragmented message in
// progress (0 when none is): the reassembly memory it costs.
func (d *Decoder) Buffered() int {
	if d.op == 0 || d.buf == nil {
		return 0
	}
	return len(*d.buf)
}

// InMessage reports whether a fragmented message is in progress: its first
// frame has been consumed, its last has not.
func (d *Decoder) InMessage() bool { return d.op != 0 }

// Next decodes from buf, which must hold every byte of the stream that
// earlier calls did not consume, followed by any new bytes. The unconsumed
// bytes may be presented from a different copy: Next modifies only bytes it
// consumes (it unmasks complete frames in place, so buf must be writable).
//
// It returns at most one Message and the number of bytes of buf it
// consumed. Frames are consumed only when complete; non-final fragments are
// absorbed into the reassembly buffer without being returned, and decoding
// goes on past them. msg.Op == 0 therefore means that buf holds nothing more
// that is complete (n may still be > 0). The usual loop is:
//
//	for {
//		msg, n, err := d.Next(buf)
//		if err != nil { /* send close with err's Code, then close */ }
//		buf = buf[n:]
//		if msg.Op == 0 { break }
//		/* handle msg */
//	}
//
// Text is checked to be UTF-8 as it arrives, also within an incomplete
// frame, so invalid text fails at the first bad byte received rather than at
// the end of the message.
//
// A *CloseError reports a protocol violation; after one, the caller must
// fail the connection and call Reset instead of Next.
func (d *Decoder) Next(buf []byte) (Message, int, error) {
	if d.op == 0 && d.buf != nil {
		// The last call returned a reassembled message; it is now stale.
		d.release()
	}
	n := 0
	for {
		p := buf[n:]
		h, ok, err := d.parseHeader(p)
		if err != nil || !ok {
			return Message{}, n, err
		}
		avail := int64(len(p) - h.size)
		if avail < h.length {
			return Message{}, n, d.partial(p[h.size:], &h)
		}
		end := h.size + int(h.length)
		msg, err := d.complete(p[h.size:end], &h)
		if err != nil {
			return Message{}, n, err
		}
		n += end
		if msg.Op != 0 {
			return msg, n, nil
		}
	}
}

// parseHeader parses and validates the frame header at the head of p. It
// checks every rule it can with the bytes present, so a bad frame fails as
// soon as its first offending byte arrives; ok is false when the header is
// incomplete.
func (d *Decoder) parseHeader(p []byte) (h frameHeader, ok bool, err error) {
	if len(p) < 1 {
		return h, false, nil
	}
	cfg := d.config()
	b0 := p[0]
	h.fin = b0&bitFin != 0
	h.rsv1 = b0&bitRsv1 != 0
	h.op = OpCode(b0 & 0xF)
	switch {
	case b0&(bitRsv2|bitRsv3) != 0:
		return h, false, protocolError("RSV2 or RSV3 set")
	case h.rsv1 && !cfg.AllowRSV1:
		return h, false, protocolError("RSV1 set without a negotiated extension")
	}
	switch h.op {
	case OpClose, OpPing, OpPong:
		switch {
		case !h.fin:
			return h, false, protocolError("fragmented control frame")
		case h.rsv1:
			return h, false, protocolError("RSV1 set on a control frame")
		}
	case OpContinuation:
		switch {
		case d.op == 0:
			return h, false, protocolError("continuation frame without a message in progress")
		case h.rsv1:
			return h, false, protocolError("RSV1 set on a continuation frame")
		}
	case OpText, OpBinary:
		if d.op != 0 {
			return h, false, protocolError("new data message while a fragmented one is in progress")
		}
	default:
		return h, false, protocolError("reserved opcode " + h.op.String())
	}

	if len(p) < 2 {
		return h, false, nil
	}
	b1 := p[1]
	h.masked = b1&bitMask != 0
	switch {
	case cfg.Role == RoleServer && !h.masked:
		return h, false, protocolError("unmasked frame from a client")
	case cfg.Role == RoleClient && h.masked:
		return h, false, protocolError("masked frame from a server")
	}
	h.size = 2
	switch l7 := b1 & 0x7F; {
	case h.op.IsControl() && l7 > MaxControlPayload:
		return h, false, protocolError("control frame payload over 125 bytes")
	case l7 == 126:
		if len(p) < 4 {
			return h, false, nil
		}
		h.length = int64(binary.BigEndian.Uint16(p[2:]))
		h.size += 2
	case l7 == 127:
		if len(p) < 10 {
			return h, false, nil
		}
		l := binary.BigEndian.Uint64(p[2:])
		if l>>63 != 0 {
			return h, false, protocolError("64-bit payload length with the most significant bit set")
		}
		h.length = int64(l)
		h.size += 8
	default:
		h.length = int64(l7)
	}
	if h.length > cfg.maxFrame() {
		return h, false, tooBig("frame over the size limit")
	}
	if !h.op.IsControl() {
		total := h.length
		if h.op == OpContinuation {
			total += int64(len(*d.buf))
		}
		if total > cfg.maxMessage() {
			return h, false, tooBig("message over the size limit")
		}
	}
	if h.masked {
		if len(p) < h.size+4 {
			return h, false, nil
		}
		copy(h.key[:], p[h.size:h.size+4])
		h.size += 4
	}
	if d.done > h.length {
		// Only a caller that broke Next's input contract gets here.
		return h, false, &CloseError{Code: CloseInternalError, Reason: "decoder input does not continue the previous call's"}
	}
	return h, true, nil
}

// partial checks the bytes present of a text frame whose payload is
// incomplete as UTF-8, so that invalid text fails fast. It leaves buf as it
// is (it unmasks into a scratch array), because callers may present the
// unconsumed bytes again from a different copy: a ring buffer that wraps is
// typically flattened into a temporary one. Other frames wait until whole;
// control frames are at most 125 bytes anyway.
func (d *Decoder) partial(payload []byte, h *frameHeader) error {
	if !d.isText(h) || int64(len(payload)) <= d.done {
		return nil
	}
	chunk := payload[d.done:]
	offset := int(d.done)
	d.done = int64(len(payload))
	if !h.masked {
		d.utf8 = utf8Step(d.utf8, chunk)
	}
	var scratch [512]byte
	for len(chunk) > 0 && h.masked && d.utf8 != utf8Reject {
		k := copy(scratch[:], chunk)
		Mask(scratch[:k], h.key, offset)
		d.utf8 = utf8Step(d.utf8, scratch[:k])
		chunk, offset = chunk[k:], offset+k
	}
	if d.utf8 == utf8Reject {
		return invalidUTF8()
	}
	return nil
}

// complete processes one whole frame whose payload is payload. It returns a
// Message with Op 0 when the frame was a non-final fragment.
func (d *Decoder) complete(payload []byte, h *frameHeader) (Message, error) {
	if h.masked {
		Mask(payload, h.key, 0)
	}
	// Text that partial already checked is not checked again.
	rest := payload[d.done:]
	d.done = 0

	switch h.op {
	case OpPing, OpPong:
		return Message{Op: h.op, Payload: payload}, nil
	case OpClose:
		code, reason, err := parseClose(payload)
		if err != nil {
			return Message{}, err
		}
		return Message{Op: OpClose, Payload: payload, CloseCode: code, CloseReason: reason}, nil
	}

	text := d.isText(h)
	if text {
		d.utf8 = utf8Step(d.utf8, rest)
		if d.utf8 == utf8Reject || (h.fin && d.utf8 != utf8Accept) {
			return Message{}, invalidUTF8()
		}
	}

	if h.op != OpContinuation {
		if h.fin {
			// An unfragmented message: hand out the caller's bytes as they
			// are, with no copy.
			return Message{Op: h.op, Payload: payload, Compressed: h.rsv1}, nil
		}
		d.op = h.op
		d.compressed = h.rsv1
		d.buf = d.borrow(len(payload))
		*d.buf = append(*d.buf, payload...)
		return Message{}, nil
	}

	d.appendFragment(payload)
	if !h.fin {
		return Message{}, nil
	}
	msg := Message{Op: d.op, Payload: *d.buf, Compressed: d.compressed}
	d.op = 0
	d.compressed = false
	d.utf8 = utf8Accept
	// d.buf stays borrowed until the next call, since msg.Payload uses it.
	return msg, nil
}

// isText reports whether the frame with header h carries text that the
// Decoder must check as UTF-8: uncompressed text, or a continuation of it.
func (d *Decoder) isText(h *frameHeader) bool {
	if h.op == OpContinuation {
		return d.op == OpText && !d.compressed
	}
	return h.op == OpText && !h.rsv1
}

// appendFragment appends p to the reassembly buffer, trading it for a
// larger one when it is full. Growth at least doubles the capacity, so a
// message of many small fragments costs amortised constant copying.
func (d *Decoder) appendFragment(p []byte) {
	b := *d.buf
	if need := len(b) + len(p); need > cap(b) {
		nb := d.borrow(max(need, 2*cap(b)))
		*nb = append(*nb, b...)
		d.release()
		d.buf = nb
	}
	*d.buf = append(*d.buf, p...)
}

// borrow takes a buffer of capacity at least n, sized by bytes that have
// arrived, never by a length the peer merely declared.
func (d *Decoder) borrow(n int) *[]byte {
	if p := d.config().Buffers; p != nil {
		return p.Get(n)
	}
	b := make([]byte, 0, max(n, pool.MinBufferSize))
	return &b
}

// release gives the reassembly buffer back, if d holds one.
func (d *Decoder) release() {
	if d.buf == nil {
		return
	}
	if p := d.config().Buffers; p != nil {
		p.Put(d.buf)
	}
	d.buf = nil
}

// config returns d's config, or the zero config when d has none.
func (d *Decoder) config() *DecoderConfig {
	if d.cfg == nil {
		return &zeroConfig
	}
	return d.cfg
}

package push

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/herald-push/herald/codec"
	"github.com/herald-push/herald/hub"
	"github.com/herald-push/herald/server"
)

// Frames are the wire frames of one published message, built once per
// publish by Encoder and shared, read-only, by every subscriber on every
// loop (hub.Message.Frames holds them). Each server.Frame owns its
// permessage-deflate variant, built on first use.
type Frames struct {
	// Envelope is the text frame of the JSON envelope
	//
	//	{"channel":"news","offset":42,"data":...}
	//
	// whose data is the payload itself when it is valid JSON, otherwise
	// the payload as a JSON string.
	Envelope server.Frame
	// Raw carries the bare payload, for `?format=raw` subscribers: a text
	// frame when the payload is valid UTF-8, else a binary frame.
	Raw server.Frame
	// sse is the event-stream text of the envelope, for event-stream
	// subscribers, built on first use (streamEvent); like the deflated
	// variants it is not charged to history.
	sseOnce sync.Once
	sse     server.Frame
}

// Encoder is the hub.Encoder of herald's client protocol: it builds each
// message's Frames once per publish and refuses payloads whose frames would
// not fit a subscriber's output budget, so that every accepted message can
// be delivered. The zero value sets no such limit. Safe for concurrent use.
type Encoder struct {
	// MaxFrame, when positive, is the largest frame a message may have:
	// the connections' output budget (server.Config.WriteBufferLimit).
	// Larger ones are refused with an error wrapping hub.ErrTooLarge.
	MaxFrame int
}

var _ hub.Encoder = Encoder{}

// Encoder notes, from Check to Encode.
const (
	// noteJSON: the payload is valid JSON, inlined in the envelope.
	noteJSON uint32 = 1 << iota
	// noteUTF8: the payload is valid UTF-8, sent raw as a text frame.
	noteUTF8
)

// Check validates the payload (outside the hub's locks: the slowest part of
// encoding) and checks its frames against MaxFrame.
func (e Encoder) Check(channel string, data []byte) (uint32, error) {
	var note uint32
	if json.Valid(data) {
		note |= noteJSON | noteUTF8 // valid JSON is valid UTF-8
	} else if utf8.Valid(data) {
		note |= noteUTF8
	}
	if limit := e.MaxFrame; limit > 0 {
		if n := frameLen(channel, data, note&noteJSON != 0); n > limit {
			return 0, fmt.Errorf("publish %d bytes to %q: its frame of up to %d bytes exceeds the write buffer limit of %d: %w", len(data), channel, n, limit, hub.ErrTooLarge)
		}
	}
	return note, nil
}

// Encode builds m's two frames in one allocation, points m.Data at the raw
// frame's payload (so the payload is stored once) and returns their size,
// which history charges. The deflated variants are not charged: each is
// at most the size of its plain frame.
func (e Encoder) Encode(m *hub.Message, note uint32) int {
	data := m.Data
	op := codec.OpBinary
	if note&noteUTF8 != 0 {
		op = codec.OpText
	}
	inline := note&noteJSON != 0
	rawLen := codec.FrameHeaderLen(len(data), false) + len(data)
	buf := make([]byte, 0, rawLen+envelopeEstimate(m.Channel, data, inline))
	raw := codec.AppendFrame(buf[:0:rawLen], op, true, data)
	env := encodeEnvelope(buf[rawLen:rawLen], m.Channel, m.Offset, data, inline)
	f := &Frames{}
	f.Raw.Set(raw)
	f.Envelope.Set(env)
	m.Data = raw[len(raw)-len(data):]
	m.Frames = f
	return len(raw) + len(env)
}

// framesOf returns m's frames, encoding them on the spot for a message of
// a hub built without Encoder (slow: once per delivery).
func framesOf(m *hub.Message) *Frames {
	if f, ok := m.Frames.(*Frames); ok {
		return f
	}
	cp := *m
	note, _ := Encoder{}.Check(m.Channel, m.Data)
	Encoder{}.Encode(&cp, note)
	return cp.Frames.(*Frames)
}

// envelopeFixed is the envelope's JSON without the channel, offset and
// data: {"channel":"","offset":,"data":}.
const envelopeFixed = len(`{"channel":"","offset":,"data":}`)

// maxOffsetDigits is the longest decimal offset (a uint64).
const maxOffsetDigits = 20

// maxFrameHeader is the longest header of an unmasked frame (RFC 6455
// section 5.2: 2 bytes, 8 of extended length).
const maxFrameHeader = 10

// MaxEnvelopeFrame returns the largest envelope frame (Frames.Envelope) of
// a payload of size bytes that is valid JSON, on any channel at any offset:
// what a subscriber's output budget must hold for such a payload to be
// deliverable. A payload that is not JSON travels as a JSON string and may
// grow up to six times by escaping; Encoder.Check checks the actual frame.
func MaxEnvelopeFrame(size int) int {
	n := envelopeFixed + 2*hub.MaxChannelLen + maxOffsetDigits + size
	return codec.FrameHeaderLen(n, false) + n
}

// envelopeEstimate is the capacity encodeEnvelope starts from.
func envelopeEstimate(channel string, data []byte, inline bool) int {
	est := maxFrameHeader + envelopeFixed + len(channel) + maxOffsetDigits + len(data)
	if !inline {
		est += len(data)/8 + 2 // quotes and some escapes
	}
	return est
}

// encodeEnvelope appends to dst (empty, with the capacity of
// envelopeEstimate) the text frame of the JSON envelope, with data inlined
// when inline (data is valid JSON) or as a string. The payload is built
// after a gap the size of the longest frame header, and the header is then
// written right-aligned in the gap, so the whole frame takes no allocation
// when the estimate holds, without measuring the payload first.
func encodeEnvelope(dst []byte, channel string, offset uint64, data []byte, inline bool) []byte {
	buf := append(dst[:0], make([]byte, maxFrameHeader)...)
	buf = append(buf, `{"channel":`...)
	buf = appendJSONName(buf, channel)
	buf = append(buf, `,"offset":`...)
	buf = strconv.AppendUint(buf, offset, 10)
	buf = append(buf, `,"data":`...)
	if inline {
		buf = append(buf, data...)
	} else {
		buf = appendJSONString(buf, data)
	}
	buf = append(buf, '}')
	n := len(buf) - maxFrameHeader
	hl := codec.FrameHeaderLen(n, false)
	codec.AppendHeader(buf[maxFrameHeader-hl:maxFrameHeader-hl], codec.OpText, true, false, n)
	return buf[maxFrameHeader-hl:]
}

// appendMsgFrame encodes {"op":"msg","data":DATA} as a text frame; data
// that is not JSON is sent as a JSON string.
func appendMsgFrame(dst []byte, data []byte) []byte {
	body := make([]byte, 0, len(data)+24)
	body = append(body, `{"op":"msg","data":`...)
	if json.Valid(data) {
		body = append(body, data...)
	} else {
		q, _ := json.Marshal(string(data))
		body = append(body, q...)
	}
	body = append(body, '}')
	return codec.AppendFrame(dst, codec.OpText, true, body)
}

// frameLen bounds the larger of a message's two frames: the raw frame and
// the envelope (with the longest offset).
func frameLen(name string, data []byte, inline bool) int {
	body := len(data)
	if !inline {
		body = jsonStringLen(data)
	}
	n := envelopeFixed + len(name) + escapes(name) + maxOffsetDigits + body
	env := codec.FrameHeaderLen(n, false) + n
	raw := codec.FrameHeaderLen(len(data), false) + len(data)
	return max(env, raw)
}

// escapes counts the backslashes appendJSONName adds to name.
func escapes(name string) int {
	n := 0
	for i := 0; i < len(name); i++ {
		if name[i] == '"' || name[i] == '\\' {
			n++
		}
	}
	return n
}

// jsonStringLen is len(appendJSONString(nil, s)), without building it.
func jsonStringLen(s []byte) int {
	n := 2
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			switch {
			case b >= 0x20 && b != '"' && b != '\\':
				n++
			case b == '"' || b == '\\' || b == '\n' || b == '\r' || b == '\t':
				n += 2
			default:
				n += 6
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			n += 6
			i++
			continue
		}
		n += size
		i += size
	}
	return n
}

const hexDigits = "0123456789abcdef"

// appendJSONName appends a channel name as a JSON string. Valid names are
// printable ASCII, so only quote and backslash need escaping.
func appendJSONName(dst []byte, name string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(name); i++ {
		if b := name[i]; b == '"' || b == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, name[i])
	}
	return append(dst, '"')
}

// appendJSONString appends s as a JSON string. Control characters, quote
// and backslash are escaped, and each byte of invalid UTF-8 becomes U+FFFD,
// as encoding/json does, so the result is always valid JSON and valid UTF-8.
// Hand-written because encoding/json cannot append to a caller's buffer.
func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

package hub

import (
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/herald-push/herald/codec"
)

// Message is one published message. The hub builds it once per publish and
// shares it, read-only, with every subscriber and with the channel's
// history: it is immutable once Publish returns it, and safe for concurrent
// use. Nobody may modify its fields or the bytes its slices hold.
type Message struct {
	// Channel is the channel the message was published to.
	Channel string
	// Offset is the message's position in the channel: 1 for the first
	// message of an epoch, then one more for each message.
	Offset uint64
	// Epoch names the channel's history the offset belongs to.
	Epoch string
	// Data is the payload as published (a copy of the caller's bytes).
	Data []byte
	// Time is when the hub accepted the message (Config.Now).
	Time time.Time

	envelope []byte // complete text frame of the JSON envelope
	raw      []byte // complete frame of the bare payload; Data aliases its tail
	// deflated holds the permessage-deflate variants of the two frames,
	// built on first use (see EnvelopeDeflate); nil until then.
	deflated atomic.Pointer[deflatedFrames]

	ch   *channel // the channel's instance, so loops find their subscribers
	seq  uint64   // the channel's delivery sequence (see channel.seq)
	size int64    // bytes charged to the history budget
}

// messageOverhead approximates what a stored message costs beyond its two
// frames: the Message itself, the slice headers and a history slot.
const messageOverhead = 160

// maxFrameHeader is the longest header of an unmasked frame (RFC 6455
// section 5.2: 2 bytes, 8 of extended length).
const maxFrameHeader = 10

// Envelope returns the complete WebSocket text frame (final, unmasked, as a
// server sends it) whose payload is the JSON envelope
//
//	{"channel":"news","offset":42,"data":...}
//
// data is the payload itself when it is valid JSON, otherwise the payload as
// a JSON string. The frame is encoded once, at publish; write it as is and
// never modify it.
func (m *Message) Envelope() []byte { return m.envelope }

// Raw returns the complete WebSocket frame (final, unmasked) that carries
// the bare payload, for `?format=raw` subscribers: a text frame when the
// payload is valid UTF-8, else a binary frame. The frame is encoded once, at
// publish; write it as is and never modify it.
func (m *Message) Raw() []byte { return m.raw }

// newMessage builds a message and encodes both of its frames: the
// publish-once work that every subscriber then shares. It copies data;
// inline tells whether data is valid JSON.
func newMessage(ch *channel, name string, offset uint64, epoch string, data []byte, inline bool, now time.Time) *Message {
	m := &Message{Channel: name, Offset: offset, Epoch: epoch, Time: now, ch: ch}
	m.raw, m.Data = encodeRaw(data)
	m.envelope = encodeEnvelope(name, offset, data, inline)
	m.size = int64(len(m.raw)+len(m.envelope)) + messageOverhead
	return m
}

// encodeRaw returns the frame carrying data as is, and the payload as a
// slice of that frame (so the copy of data costs no extra allocation).
func encodeRaw(data []byte) (frame, payload []byte) {
	op := codec.OpBinary
	if utf8.Valid(data) {
		op = codec.OpText
	}
	frame = codec.AppendFrame(make([]byte, 0, codec.FrameHeaderLen(len(data), false)+len(data)), op, true, data)
	return frame, frame[len(frame)-len(data):]
}

// encodeEnvelope returns the text frame of the JSON envelope, with data
// inlined when inline (data is valid JSON) or as a string. The payload is
// built after a gap the size of the longest frame header, and the header is
// then written right-aligned in the gap, so the whole frame takes one
// allocation without measuring the payload first.
func encodeEnvelope(channel string, offset uint64, data []byte, inline bool) []byte {
	est := maxFrameHeader + len(`{"channel":"","offset":,"data":}`) + len(channel) + 20 + len(data)
	if !inline {
		est += len(data)/8 + 2 // quotes and some escapes
	}
	buf := make([]byte, maxFrameHeader, est)
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

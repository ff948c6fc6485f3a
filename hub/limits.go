package hub

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/herald-push/herald/codec"
)

// envelopeFixed is the envelope's JSON without the channel, offset and
// data: {"channel":"","offset":,"data":}.
const envelopeFixed = len(`{"channel":"","offset":,"data":}`)

// maxOffsetDigits is the longest decimal offset (a uint64).
const maxOffsetDigits = 20

// MaxEnvelopeFrame returns the largest envelope frame (Message.Envelope) of
// a payload of size bytes that is valid JSON, on any channel at any offset:
// what a subscriber's output budget must hold for such a payload to be
// deliverable. A payload that is not JSON travels as a JSON string and may
// grow up to six times by escaping; Publish checks the actual frame.
func MaxEnvelopeFrame(size int) int {
	n := envelopeFixed + 2*MaxChannelLen + maxOffsetDigits + size
	return codec.FrameHeaderLen(n, false) + n
}

// MaxPayload is the largest payload Publish accepts (Config.MaxPayload
// after defaults). Safe for concurrent use.
func (h *Hub) MaxPayload() int { return h.cfg.MaxPayload }

// MaxChannels is the cap on channels (Config.MaxChannels after defaults;
// negative: none). Safe for concurrent use.
func (h *Hub) MaxChannels() int { return h.cfg.MaxChannels }

// Check reports whether Publish would accept data for channel as far as
// the name and sizes go (not the channel cap), with the error Publish
// would return. A broker calls it before storing a message elsewhere, so
// that nothing is stored that a node then refuses. Safe for concurrent use.
func (h *Hub) Check(channel string, data []byte) error {
	_, err := h.check(channel, data)
	return err
}

// check implements Check and reports whether data is valid JSON (inlined
// in the envelope). It counts size refusals.
func (h *Hub) check(name string, data []byte) (inline bool, err error) {
	if !ValidChannel(name) {
		return false, fmt.Errorf("hub: publish to %.300q: %w", name, ErrInvalidChannel)
	}
	if len(data) > h.cfg.MaxPayload {
		h.tooLarge.Add(1)
		return false, fmt.Errorf("hub: publish %d bytes to %q (limit %d): %w", len(data), name, h.cfg.MaxPayload, ErrTooLarge)
	}
	inline = json.Valid(data) // outside any lock: the slowest part of encoding
	if limit := h.cfg.MaxFrameBytes; limit > 0 {
		if n := frameLen(name, data, inline); n > limit {
			h.tooLarge.Add(1)
			return false, fmt.Errorf("hub: publish %d bytes to %q: its frame of up to %d bytes exceeds the write buffer limit of %d: %w", len(data), name, n, limit, ErrTooLarge)
		}
	}
	return inline, nil
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

// Reserve makes sure the hub knows channel, creating it when it is new, and
// fails with an error wrapping ErrChannelLimit when it is new and the hub
// holds Config.MaxChannels already. A caller that must spend something on a
// channel before subscribing (a broker's watch) reserves it first; an
// unused reserved channel is forgotten by Sweep like any other. Safe for
// concurrent use.
func (h *Hub) Reserve(channel string) error {
	if !ValidChannel(channel) {
		return fmt.Errorf("hub: reserve %.300q: %w", channel, ErrInvalidChannel)
	}
	if _, err := h.channel(channel); err != nil {
		return fmt.Errorf("hub: reserve %q: %w", channel, err)
	}
	return nil
}

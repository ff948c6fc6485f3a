package hub

import (
	"errors"
	"fmt"
)

// MaxPayload is the largest payload Publish accepts (Config.MaxPayload
// after defaults). Safe for concurrent use.
func (h *Hub) MaxPayload() int { return h.cfg.MaxPayload }

// MaxChannels is the cap on channels (Config.MaxChannels after defaults;
// negative: none). Safe for concurrent use.
func (h *Hub) MaxChannels() int { return h.cfg.MaxChannels }

// Check reports whether Publish would accept data for channel as far as
// the name, the payload size and the Encoder go (not the channel cap),
// with the error Publish would return. A broker calls it before storing a message elsewhere, so
// that nothing is stored that a node then refuses. Safe for concurrent use.
func (h *Hub) Check(channel string, data []byte) error {
	_, err := h.check(channel, data)
	return err
}

// check implements Check: the name, Config.MaxPayload and the Encoder's
// verdict, whose note it returns for Encode. It counts size refusals.
func (h *Hub) check(name string, data []byte) (note uint32, err error) {
	if !ValidChannel(name) {
		return 0, fmt.Errorf("hub: publish to %.300q: %w", name, ErrInvalidChannel)
	}
	if len(data) > h.cfg.MaxPayload {
		h.tooLarge.Add(1)
		return 0, fmt.Errorf("hub: publish %d bytes to %q (limit %d): %w", len(data), name, h.cfg.MaxPayload, ErrTooLarge)
	}
	if enc := h.cfg.Encoder; enc != nil {
		note, err = enc.Check(name, data)
		if err != nil {
			if errors.Is(err, ErrTooLarge) {
				h.tooLarge.Add(1)
			}
			return 0, err
		}
	}
	return note, nil
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

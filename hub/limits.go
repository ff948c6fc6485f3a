package hub

import (
	"errors"
)

// MaxPayload is the largest payload Publish accepts on a channel without
// options of its own (Config.MaxPayload after defaults). Safe for
// concurrent use.
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

// check implements Check: the name, the channel's payload limit
// (Config.Options or Config.MaxPayload) and the Encoder's
// verdict, whose note it returns for Encode. It counts size refusals.
func (h *Hub) check(name string, data []byte) (note uint32, err error) {
	if !ValidChannel(name) {
		return 0, invalidChannel("publish to", name)
	}
	limit, err := h.payloadLimit(name)
	if err != nil {
		return 0, err // Config.Options's refusal, which names the channel
	}
	if len(data) > limit {
		h.tooLarge.Add(1)
		return 0, &ChannelError{Op: "publish to", Channel: name, Size: len(data), Limit: limit, Err: ErrTooLarge}
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

// Reserve makes sure the hub knows channel, creating it when it is new,
// and holds it there until Unreserve: a held channel is not forgotten,
// even with no subscriber and no history. It is a client's: it fails,
// holding nothing, with an error wrapping ErrChannelLimit when the channel
// is new and clients already created Config.MaxChannels channels. A caller
// that must spend something on a channel before subscribing (a broker's
// watch) reserves it first, and calls Unreserve once the subscription is
// made or abandoned. Safe for concurrent use.
func (h *Hub) Reserve(channel string) error {
	return h.reserve(channel, true)
}

// ReserveTrusted is Reserve for the backend (a broker's watch, a user's
// personal channel): a channel it creates is not counted against
// Config.MaxChannels, and it is never refused for the cap.
func (h *Hub) ReserveTrusted(channel string) error {
	return h.reserve(channel, false)
}

// reserve implements Reserve (client) and ReserveTrusted.
func (h *Hub) reserve(channel string, client bool) error {
	if !ValidChannel(channel) {
		return invalidChannel("reserve", channel)
	}
	for {
		c, err := h.channel(channel, client)
		if err != nil {
			return inContext(err, "reserve", channel)
		}
		c.mu.Lock()
		if c.gone {
			c.mu.Unlock()
			continue
		}
		c.holds++
		c.mu.Unlock()
		return nil
	}
}

// Unreserve gives back one Reserve or ReserveTrusted of channel. The last
// one leaves the channel to be forgotten, at once when it has no
// subscriber and no history. Unreserving a channel that holds no
// reservation is a no-op. Safe for concurrent use.
func (h *Hub) Unreserve(channel string) {
	h.mu.RLock()
	c := h.chans[channel]
	h.mu.RUnlock()
	if c == nil {
		return
	}
	c.mu.Lock()
	if c.gone || c.holds == 0 {
		c.mu.Unlock()
		return
	}
	c.holds--
	idle := c.idle()
	c.mu.Unlock()
	if idle {
		h.forgetIdle(c)
	}
}

package hub

import (
	"fmt"
	"time"
)

// ChannelOptions are one channel's own history and size settings, which
// Config.Options gives for a channel name (a namespace's settings). A zero
// field means the hub's Config value; a negative one what the negative
// value means there (no history, no age limit, no byte cap).
type ChannelOptions struct {
	// HistorySize is how many messages the channel keeps (see
	// Config.HistorySize).
	HistorySize int
	// HistoryTTL is the age past which a message leaves the channel's
	// history (see Config.HistoryTTL).
	HistoryTTL time.Duration
	// HistoryChannelBytes caps the channel's history (see
	// Config.HistoryChannelBytes). Config.MaxHistoryBytes still caps all
	// channels together.
	HistoryChannelBytes int64
	// MaxPayload is the largest payload a publish to the channel may carry
	// (see Config.MaxPayload).
	MaxPayload int
	// NoRecovery turns recovery off: a Subscribe with since gets no
	// backlog and recovered=false, whatever history holds (History, the
	// API's read, still reads it).
	NoRecovery bool
}

// chanOpts is a channel's ChannelOptions with the hub's defaults applied.
// The hub keeps one per distinct value (Hub.opts), shared by its channels.
type chanOpts struct {
	size     int
	ttl      time.Duration
	bytes    int64
	payload  int
	recovery bool
}

// resolve applies cfg's values to o's zero fields. cfg has its defaults.
func (cfg Config) resolve(o ChannelOptions) chanOpts {
	r := chanOpts{size: o.HistorySize, ttl: o.HistoryTTL, bytes: o.HistoryChannelBytes, payload: o.MaxPayload, recovery: !o.NoRecovery}
	if r.size == 0 {
		r.size = cfg.HistorySize
	}
	if r.ttl == 0 {
		r.ttl = cfg.HistoryTTL
	}
	if r.bytes == 0 {
		r.bytes = cfg.HistoryChannelBytes
	}
	if r.payload <= 0 {
		r.payload = cfg.MaxPayload
	}
	return r
}

// options returns the shared options of the channel called name, or the
// error Config.Options refuses it with (a refusal). It takes h.mu for a value the hub
// has not seen yet; the caller must not hold it.
func (h *Hub) options(name string) (*chanOpts, error) {
	if h.cfg.Options == nil {
		return h.defOpts, nil
	}
	o, err := h.cfg.Options(name)
	if err != nil {
		return nil, refusal{err}
	}
	if o == (ChannelOptions{}) {
		return h.defOpts, nil
	}
	r := h.cfg.resolve(o)
	h.mu.RLock()
	p := h.opts[r]
	h.mu.RUnlock()
	if p != nil {
		return p, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if p = h.opts[r]; p == nil {
		if len(h.opts) >= maxOptions {
			return nil, fmt.Errorf("hub: channel %q: more than %d distinct channel options", name, maxOptions)
		}
		p = &r
		h.opts[r] = p
	}
	return p, nil
}

// maxOptions bounds the distinct ChannelOptions values a hub keeps: they
// come from configuration (one per namespace), never from clients.
const maxOptions = 4096

// payloadLimit is the largest payload a publish to name may carry, and
// the error Config.Options refuses the channel with. It does not allocate
// unless it fails.
func (h *Hub) payloadLimit(name string) (int, error) {
	if h.cfg.Options == nil {
		return h.cfg.MaxPayload, nil
	}
	o, err := h.cfg.Options(name)
	if err != nil {
		return 0, err
	}
	if o.MaxPayload > 0 {
		return o.MaxPayload, nil
	}
	return h.cfg.MaxPayload, nil
}

// HistoryTTL is the age past which a message leaves channel's history
// (its ChannelOptions or Config.HistoryTTL; negative: no age limit). A
// broker replaying stored messages skips those older than it. Safe for
// concurrent use.
func (h *Hub) HistoryTTL(channel string) time.Duration {
	h.mu.RLock()
	c := h.chans[channel]
	h.mu.RUnlock()
	if c != nil {
		return c.opts.ttl
	}
	o, err := h.options(channel)
	if err != nil {
		return h.cfg.HistoryTTL
	}
	return o.ttl
}

// refusal is Config.Options's refusal of a channel, as h.channel and
// h.options return it: the calls that meet it return it as it is, since
// it names the channel itself (a namespace's refusal would otherwise say
// the channel twice), where the hub's own errors get the call's context.
type refusal struct{ err error }

func (r refusal) Error() string { return r.err.Error() }
func (r refusal) Unwrap() error { return r.err }

// inContext is err, an error of h.channel or h.options, as the call
// (what, e.g. "subscribe to") on channel returns it: a refusal as it
// is, else wrapped with the call and the channel's name.
func inContext(err error, what, channel string) error {
	if r, ok := err.(refusal); ok {
		return r.err
	}
	return fmt.Errorf("hub: %s %q: %w", what, channel, err)
}

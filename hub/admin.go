package hub

import (
	"slices"
	"strings"
	"time"
)

// ChannelInfo describes one channel, for the HTTP API and metrics.
type ChannelInfo struct {
	Name         string `json:"name"`
	Subscribers  int    `json:"subscribers"`   // on this node, all loops together
	Offset       uint64 `json:"offset"`        // last offset published; 0 before the first
	Epoch        string `json:"epoch"`         // names the history Offset belongs to
	HistoryLen   int    `json:"history_len"`   // messages kept for recovery
	HistoryBytes int64  `json:"history_bytes"` // what they cost the history budget
}

// info describes c. Lock should be held.
func (c *channel) info() ChannelInfo {
	return ChannelInfo{
		Name:         c.name,
		Subscribers:  int(c.subs),
		Offset:       c.offset,
		Epoch:        c.epoch,
		HistoryLen:   c.histLen(),
		HistoryBytes: c.histBytes(),
	}
}

// Channels lists the channels the hub knows (those with subscribers,
// history or a reservation, and until Sweep those whose history expired),
// sorted by name. Safe for
// concurrent use; each entry is a consistent snapshot of its channel.
func (h *Hub) Channels() []ChannelInfo {
	h.mu.RLock()
	out := make([]ChannelInfo, 0, len(h.chans))
	for _, c := range h.chans {
		c.mu.Lock()
		out = append(out, c.info())
		c.mu.Unlock()
	}
	h.mu.RUnlock()
	slices.SortFunc(out, func(a, b ChannelInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Info describes the channel called name, and reports whether the hub
// knows it. Safe for concurrent use.
func (h *Hub) Info(name string) (ChannelInfo, bool) {
	h.mu.RLock()
	c := h.chans[name]
	h.mu.RUnlock()
	if c == nil {
		return ChannelInfo{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone {
		return ChannelInfo{}, false
	}
	return c.info(), true
}

// Stats is a snapshot of the hub's counters. Counters marked cumulative
// only grow; the others are current values.
type Stats struct {
	Channels        int           `json:"channels"`
	Subscriptions   int64         `json:"subscriptions"`
	Published       uint64        `json:"published"`  // cumulative
	Deliveries      uint64        `json:"deliveries"` // cumulative: Deliver calls
	Dropped         uint64        `json:"dropped"`    // cumulative: messages a stopping loop refused
	HistoryMessages int64         `json:"history_messages"`
	HistoryBytes    int64         `json:"history_bytes"`
	LastFanout      time.Duration `json:"last_fanout_ns"` // time one loop last took to walk a batch of messages
	// ClientChannels is how many of Channels clients created: those
	// Config.MaxChannels caps.
	ClientChannels int `json:"client_channels"`
	// ChannelLimited counts the channels clients tried to create (by
	// Subscribe, PublishClient or Reserve) refused because they had
	// created Config.MaxChannels already (cumulative).
	ChannelLimited uint64 `json:"channel_limited"`
	// TooLarge counts publishes refused by Config.MaxPayload or by the
	// Encoder with ErrTooLarge (cumulative).
	TooLarge uint64 `json:"too_large"`
	// EvictedChannelBytes counts messages a channel's own publishes
	// trimmed from its history by Config.HistoryChannelBytes (cumulative).
	EvictedChannelBytes uint64 `json:"evicted_channel_bytes"`
	// EvictedNodeBytes counts messages evicted by Config.MaxHistoryBytes
	// (cumulative).
	EvictedNodeBytes uint64 `json:"evicted_node_bytes"`
}

// Stats returns the hub's counters. Safe for concurrent use; each field is
// read atomically, the whole is not a single instant.
func (h *Hub) Stats() Stats {
	h.mu.RLock()
	n, clients := len(h.chans), h.clients
	h.mu.RUnlock()
	return Stats{
		Channels:        n,
		ClientChannels:  clients,
		Subscriptions:   h.subscriptions(),
		Published:       h.published.Load(),
		Deliveries:      h.deliveries.Load(),
		Dropped:         h.dropped.Load(),
		HistoryMessages: h.histMsgs.Load(),
		HistoryBytes:    h.histBytes.Load(),
		LastFanout:      time.Duration(h.lastFanout.Load()),

		ChannelLimited:      h.channelLimited.Load(),
		TooLarge:            h.tooLarge.Load(),
		EvictedChannelBytes: h.evictedChannel.Load(),
		EvictedNodeBytes:    h.evictedNode.Load(),
	}
}

// sweepBatch is how many channels Sweep looks at per hold of the
// registry lock: with a million channels it lets go thousands of times,
// so a publish or subscribe waits for one batch at most, never for the
// whole sweep.
const sweepBatch = 256

// Sweep drops history older than each channel's TTL (Config.HistoryTTL,
// or its ChannelOptions') and forgets the
// channels left with no subscribers, no history and no reservation: a
// channel published to again later starts a new epoch at offset 1.
// (Unsubscribe and Unreserve forget a channel at once when they leave it
// so; Sweep finds those whose history expired.) The hub runs no janitor
// of its own; the server calls Sweep periodically (every few seconds is
// plenty: publishes and subscribes expire their own channel's history as
// they go). It walks the channels in batches of sweepBatch, letting go of
// the registry lock between them, so a channel created or forgotten
// meanwhile may be missed or looked at twice until the next Sweep. Safe
// for concurrent use. It returns how many channels it forgot.
func (h *Hub) Sweep() int {
	now := h.cfg.Now()
	forgot := 0
	h.mu.Lock()
	i := len(h.all)
	h.mu.Unlock()
	for i > 0 {
		h.mu.Lock()
		// Walk from the end: removing swaps the last channel into the
		// hole, which is one already looked at, so nobody is skipped.
		i = min(i, len(h.all))
		for stop := max(i-sweepBatch, 0); i > stop; {
			i--
			c := h.all[i]
			c.mu.Lock()
			h.freed(c.expire(now, c.opts.ttl))
			h.rebudget(c)
			if c.idle() {
				h.remove(c)
				forgot++
			}
			c.mu.Unlock()
		}
		h.mu.Unlock()
		if f := h.sweepPaused; f != nil && i > 0 {
			f()
		}
	}
	return forgot
}

// subscriptions sums the loops' subscriptions.
func (h *Hub) subscriptions() int64 {
	var n int64
	for _, ls := range *h.loops.Load() {
		if ls != nil {
			n += ls.subscriptions.Load()
		}
	}
	return n
}

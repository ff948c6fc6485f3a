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
		Subscribers:  c.subs,
		Offset:       c.offset,
		Epoch:        c.epoch,
		HistoryLen:   c.hist.Len(),
		HistoryBytes: c.bytes,
	}
}

// Channels lists the channels the hub knows (those with subscribers or
// history, until Sweep forgets the others), sorted by name. Safe for
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
	// ChannelLimited counts publishes and subscriptions refused because
	// the hub held Config.MaxChannels (cumulative).
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
	n := len(h.chans)
	h.mu.RUnlock()
	return Stats{
		Channels:        n,
		Subscriptions:   h.subscriptions.Load(),
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

// Sweep drops history older than Config.HistoryTTL and forgets the
// channels left with no subscribers and no history: a channel published to
// again later starts a new epoch at offset 1. The hub runs no janitor of
// its own; the server calls Sweep periodically (every few seconds is
// plenty: publishes and subscribes expire their own channel's history as
// they go). Safe for concurrent use. It returns how many channels it
// forgot.
func (h *Hub) Sweep() int {
	now := h.cfg.Now()
	var idle []*channel
	h.mu.RLock()
	for _, c := range h.chans {
		c.mu.Lock()
		h.freed(c.expire(now, h.cfg.HistoryTTL))
		h.rebudget(c)
		if c.subs == 0 && c.hist.Len() == 0 {
			idle = append(idle, c)
		}
		c.mu.Unlock()
	}
	h.mu.RUnlock()

	forgot := 0
	if len(idle) > 0 {
		h.mu.Lock()
		for _, c := range idle {
			c.mu.Lock()
			if !c.gone && c.subs == 0 && c.hist.Len() == 0 {
				c.forget()
				delete(h.chans, c.name)
				forgot++
			}
			c.mu.Unlock()
		}
		h.mu.Unlock()
	}
	return forgot
}

package hub

// HistoryPage is one page of a channel's history, as History returns it.
type HistoryPage struct {
	// Epoch is the channel's epoch ("" when the hub does not know the
	// channel).
	Epoch string
	// Offset is the channel's last offset (0 before its first message).
	Offset uint64
	// Messages are the retained messages of the page, oldest first.
	Messages []*Message
	// More reports that history holds messages after the page's last:
	// ask again with since at that message's offset.
	More bool
	// Recovered reports that the page continues exactly from since: the
	// epoch asked for is the channel's (or none was given), and history
	// still holds every message after since.Offset. Otherwise the page
	// starts at the oldest message kept, and the caller has missed
	// messages (the same rule as Subscribe's recovered).
	Recovered bool
}

// History returns up to limit (at least 1) of channel's retained messages
// after since, oldest first, without creating the channel or subscribing.
// since nil means from the oldest message kept; since.Epoch "" means
// "whatever the channel's epoch is". When since cannot be continued (its
// epoch is not the channel's, its offset is ahead of the channel's, or
// history no longer holds the message after it), the page starts at the
// oldest message kept and Recovered is false. History expires messages
// older than the channel's TTL first. Safe for concurrent use.
func (h *Hub) History(channel string, since *Position, limit int) (HistoryPage, error) {
	if !ValidChannel(channel) {
		return HistoryPage{}, invalidChannel("history of", channel)
	}
	limit = max(limit, 1)
	h.mu.RLock()
	c := h.chans[channel]
	h.mu.RUnlock()
	if c == nil {
		// Nothing retained, no epoch: continuing is possible only from
		// the very start.
		return HistoryPage{Recovered: since == nil || (since.Offset == 0 && since.Epoch == "")}, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone {
		return HistoryPage{Recovered: since == nil || (since.Offset == 0 && since.Epoch == "")}, nil
	}
	h.freed(c.expire(h.cfg.Now(), c.opts.ttl))
	h.rebudget(c)
	page := HistoryPage{Epoch: c.epoch, Offset: c.offset, Recovered: true}
	skip := 0 // index in hist of the page's first message
	if since != nil {
		switch first := c.first.Load(); {
		case since.Epoch != "" && since.Epoch != c.epoch, since.Offset > c.offset, since.Offset+1 < first:
			page.Recovered = false
		default:
			skip = int(since.Offset + 1 - first)
		}
	}
	n := min(c.histLen()-skip, limit)
	if n > 0 {
		page.Messages = make([]*Message, n)
		for i := range page.Messages {
			page.Messages[i] = c.past.msgs.at(skip + i)
		}
	}
	page.More = skip+n < c.histLen()
	return page, nil
}

// Removed is what RemoveHistory did.
type Removed struct {
	// Messages is how many messages left history.
	Messages int
	// Epoch is the channel's new epoch ("" when the hub did not know the
	// channel).
	Epoch string
}

// RemoveHistory drops channel's history and gives it a new epoch at
// offset 0, keeping its subscribers: they receive the next message (offset
// 1 of the new epoch), and a client recovering with a position of the old
// epoch is told recovered=false. A channel the hub does not know is left
// unknown. A channel left with no subscribers is forgotten by the next
// Sweep, like any idle channel (it then starts yet another epoch). Safe
// for concurrent use.
func (h *Hub) RemoveHistory(channel string) (Removed, error) {
	if !ValidChannel(channel) {
		return Removed{}, invalidChannel("remove history of", channel)
	}
	h.mu.RLock()
	c := h.chans[channel]
	h.mu.RUnlock()
	if c == nil {
		return Removed{}, nil
	}
	c.mu.Lock()
	if c.gone {
		c.mu.Unlock()
		return Removed{}, nil
	}
	bytes, n := c.clear()
	h.freed(bytes, n)
	c.epoch = newEpoch()
	c.offset = 0
	c.setFirst()
	h.rebudget(c)
	c.shrink()
	out := Removed{Messages: n, Epoch: c.epoch}
	c.mu.Unlock()
	return out, nil
}

package hub

import "fmt"

// Align moves channel to pos without a message: afterwards the channel's
// last offset is pos.Offset in epoch pos.Epoch, as if the message at pos had
// just been published. A multi-node broker calls it so that every node
// reports the same position for a channel, also before its first message
// (pos.Offset 0 names an epoch with no message yet) and for messages it
// skips because they are past the history's age. Like PublishAt:
//   - an epoch other than the channel's replaces it and drops history;
//   - a position the channel has already reached in that epoch changes
//     nothing and returns an error wrapping ErrStale;
//   - a position beyond the channel's drops history, since nobody can
//     recover across the gap.
//
// Subscribers are not told; they see the next message's offset. Safe for
// concurrent use; calls for one channel must come in the broker's order,
// interleaved with PublishAt.
func (h *Hub) Align(channel string, pos Position) error {
	if !ValidChannel(channel) {
		return invalidChannel("align", channel)
	}
	if pos.Epoch == "" {
		return fmt.Errorf("hub: align %q at %d/%q: %w", channel, pos.Offset, pos.Epoch, ErrBadPosition)
	}
	for {
		c, err := h.channel(channel, false)
		if err != nil {
			return inContext(err, "align", channel)
		}
		c.mu.Lock()
		if c.gone {
			c.mu.Unlock()
			continue
		}
		defer c.mu.Unlock()
		if pos.Epoch == c.epoch && pos.Offset <= c.offset {
			return fmt.Errorf("hub: align %q at %d/%q (channel at %d): %w", channel, pos.Offset, pos.Epoch, c.offset, ErrStale)
		}
		if err := h.position(c, Position{Offset: pos.Offset + 1, Epoch: pos.Epoch}); err != nil {
			return err
		}
		c.offset = pos.Offset
		c.setFirst()
		return nil
	}
}

package hub

import "time"

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
	// Frames is what Config.Encoder attached to the message: its wire
	// frames, opaque to the hub, for the subscribers to write (nil
	// without an Encoder). Like the rest of the message it is shared by
	// every subscriber on every loop.
	Frames any

	ch   *channel // the channel's instance, so loops find their subscribers
	seq  uint64   // the channel's delivery sequence (see channel.seq)
	size int64    // bytes charged to the history budget
}

// Encoder builds the wire frames of each published message, once per
// publish, for every subscriber to share: the hub routes and stores
// messages and knows nothing of how they look on the wire. Both methods
// are called from publishing goroutines and must be safe for concurrent
// use.
type Encoder interface {
	// Check reports whether data, published to channel, can be encoded
	// and delivered: an error (wrapping ErrTooLarge when its frames would
	// not fit a subscriber's output budget) refuses the publish, and
	// Publish, PublishAt and Check return it. It runs outside any lock,
	// before the message is sequenced, so the expensive part of encoding
	// (validating the payload) belongs here: note is handed to Encode for
	// the same message.
	Check(channel string, data []byte) (note uint32, err error)
	// Encode attaches m's frames to m.Frames and returns how many bytes
	// they hold, which the history's byte caps charge (plus a fixed
	// overhead per message). It runs under the channel's lock, once per
	// message, after Check accepted it, with every field but Frames set.
	// During the call m.Data is the publisher's slice: Encode may point
	// it at a copy of its own (e.g. the tail of a frame that carries the
	// payload, so the payload is stored once); otherwise the hub copies
	// it afterwards. It must not block.
	Encode(m *Message, note uint32) int
}

// messageOverhead approximates what a stored message costs beyond its
// payload or frames: the Message itself, the slice headers and a history
// slot.
const messageOverhead = 160

// newMessage builds a message of data, encoding its frames with enc (nil:
// none), and charges it: the bytes enc reports, or the payload without one.
// It copies data unless enc stored its own copy. Channel lock held.
func newMessage(ch *channel, name string, offset uint64, epoch string, data []byte, enc Encoder, note uint32, now time.Time) *Message {
	m := &Message{Channel: name, Offset: offset, Epoch: epoch, Time: now, ch: ch, Data: data}
	charged := len(data)
	if enc != nil {
		charged = enc.Encode(m, note)
	}
	if sameBytes(m.Data, data) {
		m.Data = append([]byte(nil), data...)
		if enc == nil {
			charged = len(m.Data)
		}
	}
	m.size = int64(charged) + messageOverhead
	return m
}

// sameBytes reports whether a and b are the same memory (or both empty),
// i.e. whether Encode left the publisher's slice in Message.Data.
func sameBytes(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	return len(a) == len(b) && &a[0] == &b[0]
}

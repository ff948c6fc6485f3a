package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/herald-push/herald/hub"
)

// ErrUnavailable reports a publish the broker could not store now (the
// NATS server is unreachable, or did not answer in time): the caller gets
// an error (HTTP 503) and may retry; the message was not delivered.
var ErrUnavailable = errors.New("broker: unavailable")

// Broker is how a publish reaches every node. Its methods are safe for
// concurrent use.
type Broker interface {
	// Publish gives data channel's next position, stores it where every
	// node finds it and returns the position. On success the message is
	// in history and reaches every subscriber of channel, on any node;
	// on error it reached nobody. Errors wrap hub.ErrInvalidChannel or
	// hub.ErrTooLarge (the caller's fault) or ErrUnavailable.
	Publish(ctx context.Context, channel string, data []byte) (hub.Position, error)
	// PublishOnce is Publish with a message ID (DedupKey) that the
	// broker may use to store a retried publish once across nodes; it
	// reports duplicate=true, with the first message's position, when it
	// recognised one. Memory does not (the node's Dedup does).
	PublishOnce(ctx context.Context, channel string, data []byte, id string) (pos hub.Position, duplicate bool, err error)
	// RemoveHistory drops channel's history on every node and starts a
	// new epoch (hub.Hub.RemoveHistory).
	RemoveHistory(ctx context.Context, channel string) (hub.Removed, error)
	// Acquire and Release implement push.Interest: the push app counts
	// a node's subscribers per channel with them, and Acquire holds a
	// subscription back until the node's copy of the channel is current.
	Acquire(channel string, since *hub.Position, ready func()) bool
	Release(channel string)
	// Ready reports whether the broker can publish now and, when not, why.
	Ready() (ok bool, reason string)
	// Close stops the broker; Publish fails afterwards.
	Close() error
}

// Memory is the broker of a single node: the hub sequences and delivers
// its own messages.
type Memory struct{ h *hub.Hub }

// NewMemory returns the single-node broker of h.
func NewMemory(h *hub.Hub) *Memory { return &Memory{h: h} }

// Publish publishes to the hub.
func (b *Memory) Publish(_ context.Context, channel string, data []byte) (hub.Position, error) {
	m, err := b.h.Publish(channel, data)
	if err != nil {
		return hub.Position{}, err
	}
	return hub.Position{Offset: m.Offset, Epoch: m.Epoch}, nil
}

// PublishOnce publishes to the hub: one node needs no broker-side
// de-duplication (the node's Dedup remembers the keys).
func (b *Memory) PublishOnce(ctx context.Context, channel string, data []byte, _ string) (hub.Position, bool, error) {
	pos, err := b.Publish(ctx, channel, data)
	return pos, false, err
}

// RemoveHistory removes the hub's history of channel.
func (b *Memory) RemoveHistory(_ context.Context, channel string) (hub.Removed, error) {
	return b.h.RemoveHistory(channel)
}

// Acquire lets every subscription proceed at once: the hub is the truth.
func (*Memory) Acquire(string, *hub.Position, func()) bool { return true }

// Release does nothing.
func (*Memory) Release(string) {}

// Ready is always true.
func (*Memory) Ready() (bool, string) { return true, "" }

// Close does nothing.
func (*Memory) Close() error { return nil }

// New returns the broker named by url: "" or "memory" for Memory, a
// nats:// (or tls://) URL, or several separated by commas, for NATS with
// cfg (whose URL it sets). It connects before returning.
func New(ctx context.Context, url string, h *hub.Hub, cfg NATSConfig) (Broker, error) {
	switch {
	case url == "" || url == "memory":
		return NewMemory(h), nil
	case strings.HasPrefix(url, "nats://") || strings.HasPrefix(url, "tls://"):
		cfg.URL = url
		return NewNATS(ctx, h, cfg)
	}
	return nil, fmt.Errorf("broker %q: want memory or nats://HOST:PORT", url)
}

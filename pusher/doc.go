// The package doc is in types.go; this file holds the App's options.

package pusher

import (
	"context"
	"time"

	"github.com/herald-push/herald/auth"
	"github.com/herald-push/herald/hub"
	"github.com/herald-push/herald/pool"
)

// Broker carries a multi-node deployment's events between the Pusher hubs
// of its nodes (the broker package's NATS broker has these methods).
// Acquire and Release run on event loops and must not block; Publish may.
type Broker interface {
	// Publish stores data as channel's next message and has it delivered
	// to the channel's subscribers on every node, this one included.
	Publish(ctx context.Context, channel string, data []byte) (hub.Position, error)
	// Acquire counts a local subscriber of channel; it returns true when
	// the hub's copy of the channel is current, else false and calls
	// ready once, from any goroutine, when the subscription may proceed.
	Acquire(channel string, since *hub.Position, ready func()) bool
	// Release counts a local subscriber fewer.
	Release(channel string)
}

// SlowPolicy is what happens to a subscriber whose output budget cannot
// take an event: "close" (4200, reconnect at once), "close-policy" (4100,
// reconnect with backoff) or "drop" (counted, skipped).
type SlowPolicy string

// Options configure a Protocol. Hub and Apps are required; every other
// zero field means its default.
type Options struct {
	// Apps are the applications clients may connect to, by key.
	Apps []App
	// Hub routes the Pusher channels; build it with Encoder as its
	// hub.Config.Encoder, apart from herald's own hub (its channel names
	// are "{app id}:{channel}"). Cache channels read their last event from
	// its history.
	Hub *hub.Hub
	// Origins, when set, refuses browsers from other origins (403).
	Origins *auth.OriginPolicy
	// Slow is the slow-consumer policy (default "close").
	Slow SlowPolicy
	// MaxSubscriptions caps one connection's subscriptions (0: 128,
	// negative: no cap).
	MaxSubscriptions int
	// CommandRate is how many messages per second one connection may
	// send, bursts of twice as many; past it the connection is closed with
	// 4301 (0: 50, negative: no limit).
	CommandRate float64
	// ActivityTimeout is the activity_timeout told to clients, in seconds:
	// how long a client stays silent before it pings (0: 120).
	ActivityTimeout int
	// Webhooks tune the webhooks of the apps that list URLs.
	Webhooks WebhookOptions

	// Broker, when set, carries every event to the Pusher hub of every
	// node (a NATS broker bound to Hub): triggered and client events are
	// published through it, never to Hub directly, and each subscription
	// acquires its channel from it first. Nil: one node, Hub is the truth.
	Broker Broker
	// Workers run the Broker publishes of client events, in order per
	// connection (nil: a goroutine each).
	Workers *pool.Workers
	// Roster, when set, shares presence with the other nodes: this node's
	// members are written to it, and theirs come back through
	// Protocol.RemoteChange. Nil: presence is this node's.
	Roster Roster
	// LeaveDelay is how long a member whose last connection (in the
	// cluster) left stays in its channels before member_removed, so that
	// a reload is no leave (0: DefaultLeaveDelay; negative: none).
	LeaveDelay time.Duration
	// Node is this process's number in socket ids, 1 to 2^23-1, unique
	// among the nodes of a cluster; 0 draws one at random.
	Node uint32
}

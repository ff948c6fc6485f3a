// The package doc is in types.go; this file holds the App's options.

package pusher

import (
	"github.com/herald-push/herald/auth"
	"github.com/herald-push/herald/hub"
)

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
}

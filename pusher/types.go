// Package pusher speaks the Pusher Channels protocol (v7) ...
package pusher

import "errors"

// App is one Pusher application: clients connect to /app/{Key}; the HTTP
// API signs with Key and Secret under /apps/{ID}.
type App struct {
	ID     string `json:"id"`
	Key    string `json:"key"`
	Secret string `json:"secret"`
	// Webhooks are the http(s) URLs the app's webhooks are posted to
	// (docs/pusher.md); empty: none.
	Webhooks []string `json:"webhooks,omitempty"`
	// MaxPresenceMembers caps the members (distinct user ids) of one
	// presence channel; a join past it is refused with
	// pusher:subscription_error LimitReached (0: 100, Pusher's limit).
	MaxPresenceMembers int `json:"max_presence_members,omitempty"`
}

// presenceCap is a's member cap.
func (a *App) presenceCap() int {
	if a.MaxPresenceMembers > 0 {
		return a.MaxPresenceMembers
	}
	return DefaultMaxPresenceMembers
}

// Event is one triggered event (HTTP API `POST /apps/{id}/events` and
// `batch_events`).
type Event struct {
	Name     string   // event name
	Channels []string // 1 to 100 channels
	Data     string   // the payload, a string (usually JSON text), as Pusher sends it
	SocketID string   // excluded from delivery when set
}

// ChannelInfo is what the API reports of a channel; the fields asked for
// with `info=` are set, the others left zero and omitted.
type ChannelInfo struct {
	Occupied          bool `json:"occupied,omitempty"`
	UserCount         int  `json:"user_count,omitempty"`
	SubscriptionCount int  `json:"subscription_count,omitempty"`
}

// Service is what the HTTP API needs from the node. Safe for concurrent use.
type Service interface {
	// App finds an application by its ID (for the API's signature check).
	App(id string) (App, bool)
	// Trigger delivers ev to every subscriber of its channels on every
	// node, except the connection SocketID. Errors wrapping ErrBadRequest
	// are 400, ErrTooLarge 413, ErrUnavailable 503.
	Trigger(app string, ev Event) error
	// Channels lists the occupied channels whose names start with prefix.
	Channels(app, prefix string) (map[string]ChannelInfo, error)
	// Channel describes one channel (occupied or not).
	Channel(app, name string) (ChannelInfo, error)
	// Users lists the user ids present in a presence channel.
	Users(app, channel string) ([]string, error)
	// TerminateUser closes every connection signed in as user.
	TerminateUser(app, user string) error
}

// Errors a Service wraps to choose the HTTP status.
var (
	ErrBadRequest  = errors.New("pusher: bad request")
	ErrTooLarge    = errors.New("pusher: too large")
	ErrUnavailable = errors.New("pusher: unavailable")
	ErrNotFound    = errors.New("pusher: not found")
)

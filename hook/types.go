package hook

import (
	"encoding/json"
	"errors"
	"strconv"
)

// Event names what a hook is asked about; it is the request's "event".
type Event string

// The events, one URL each (Config).
const (
	// EventConnect: a client opens a WebSocket or an event stream.
	EventConnect Event = "connect"
	// EventSubscribe: a client subscribes to a channel its credentials do
	// not already grant.
	EventSubscribe Event = "subscribe"
	// EventPublish: a client publishes (`{"op":"pub"}`).
	EventPublish Event = "publish"
	// EventRefresh: a hook-authenticated connection's expire_at is near.
	EventRefresh Event = "refresh"
)

// events lists every Event, in the order of the per-event tables.
var events = [...]Event{EventConnect, EventSubscribe, EventPublish, EventRefresh}

// index is e's position in events, or -1.
func (e Event) index() int {
	for i, have := range events {
		if have == e {
			return i
		}
	}
	return -1
}

// Request is the JSON body herald POSTs to a hook's URL.
type Request struct {
	// Event is what the backend is asked about.
	Event Event `json:"event"`
	// Client is the connection's id, unique within the herald process.
	Client string `json:"client"`
	// Transport is "websocket" or "sse".
	Transport string `json:"transport"`
	// RemoteAddr is the client's address as herald sees it.
	RemoteAddr string `json:"remote_addr"`
	// User is the connection's user, once known (empty on connect and
	// for anonymous clients).
	User string `json:"user,omitempty"`
	// Channel is the channel subscribed or published to.
	Channel string `json:"channel,omitempty"`
	// Data is the payload of a publish, as the client sent it (JSON).
	Data json.RawMessage `json:"data,omitempty"`
	// Headers holds the upgrade request's header fields named in
	// Config.Headers (canonical names), those the client sent.
	Headers map[string]string `json:"headers,omitempty"`
	// Cookies holds the upgrade request's cookies named in
	// Config.Cookies, those the client sent.
	Cookies map[string]string `json:"cookies,omitempty"`
}

// Result is an accepting answer: `{"result":{...}}`.
type Result struct {
	// User is who the client is (connect, refresh). Empty on connect:
	// an anonymous client.
	User string `json:"user,omitempty"`
	// ExpireAt is when the connection's authorization ends (unix
	// seconds; 0: never). Before it, herald asks the refresh hook, which
	// may extend it; without a refresh hook the connection is closed with
	// 4001 then.
	ExpireAt int64 `json:"expire_at,omitempty"`
	// Channels are channel patterns the client may subscribe to without
	// asking the subscribe hook (connect); auth's pattern grammar,
	// "#{sub}" included.
	Channels []string `json:"channels,omitempty"`
	// Publish are channel patterns the client may publish to (connect).
	Publish []string `json:"publish,omitempty"`
	// Data, when set, replaces the data of a publish (JSON).
	Data json.RawMessage `json:"data,omitempty"`
}

// Rejection is a refusing answer: `{"error":{"code":403,"message":"..."}}`.
// It is the error Client.Call returns for it.
type Rejection struct {
	// Code is the backend's code: for connect an HTTP status (400-499,
	// else 403 is sent), for refresh a close code (4000-4999, else
	// 4001); subscribe and publish answer with the protocol's
	// "forbidden" error and carry Code as "hook_code".
	Code int `json:"code"`
	// Message is shown to the client (a close reason is cut to fit).
	Message string `json:"message"`
}

func (r *Rejection) Error() string {
	if r.Message == "" {
		return "hook: rejected (" + strconv.Itoa(r.Code) + ")"
	}
	return "hook: rejected (" + strconv.Itoa(r.Code) + "): " + r.Message
}

// answer is the JSON body of a hook's reply.
type answer struct {
	Result *Result    `json:"result"`
	Error  *Rejection `json:"error"`
}

// Errors of Client.Call besides *Rejection.
var (
	// ErrUnavailable: the backend gave no usable answer (down, slow, a
	// non-2xx status, a malformed body, too many calls in flight, the
	// breaker open). The client may retry.
	ErrUnavailable = errors.New("hook: backend unavailable")
	// ErrTimeout is an ErrUnavailable: no answer within Config.Timeout.
	ErrTimeout = &timeoutError{}
	// ErrDisabled: no URL is configured for the event.
	ErrDisabled = errors.New("hook: no hook for this event")
)

type timeoutError struct{}

func (*timeoutError) Error() string        { return "hook: backend timed out" }
func (*timeoutError) Is(target error) bool { return target == ErrUnavailable }

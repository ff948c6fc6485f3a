package namespace

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/herald-push/herald/hub"
	"github.com/herald-push/herald/server"
)

// ErrUnknown reports a channel whose prefix names no configured namespace,
// while at least one is configured. Lookup's error is an *UnknownError,
// which matches it (errors.Is) and names the namespace and the channel.
var ErrUnknown = errors.New("unknown namespace")

// UnknownError is Lookup's refusal of a channel whose prefix names no
// configured namespace. Its message says so once, for clients and logs
// alike: unknown namespace "foo" (channel "foo:bar"). It matches
// ErrUnknown.
type UnknownError struct {
	Namespace, Channel string
}

// Error names the namespace and the channel (each cut to a length a
// reply or a log line can carry).
func (e *UnknownError) Error() string {
	return fmt.Sprintf("unknown namespace %.100q (channel %.300q)", e.Namespace, e.Channel)
}

// Is reports whether target is ErrUnknown.
func (e *UnknownError) Is(target error) bool { return target == ErrUnknown }

// Limits of a namespace's settings.
const (
	// MaxNameLen is the longest namespace name, in bytes.
	MaxNameLen = 64
	// MaxHistorySize is the most messages a namespace's channels may keep
	// each.
	MaxHistorySize = 1_000_000
	// MaxNamespaces is the most namespaces one configuration may list.
	MaxNamespaces = 1024
)

// Personal is the prefix of the personal channels ("user:<sub>"), which
// keep the top-level settings; no namespace may take its name.
const Personal = "user"

// Config is one namespace as the config file writes it (one entry of the
// "namespaces" list). A setting left out takes the node's top-level value.
type Config struct {
	// Name is the namespace: channels "Name:..." belong to it. 1 to 64
	// letters, digits, '_', '-' or '.'; "user" is reserved.
	Name string `json:"name"`
	// HistorySize is how many messages each channel keeps for recovery;
	// 0 (or negative) keeps none. Unset: history_size.
	HistorySize *int `json:"history_size,omitempty"`
	// HistoryTTL is the age past which a message leaves a channel's
	// history; negative: no age limit (with NATS, the stream's age limit
	// still applies). Unset: history_ttl. Zero is refused.
	HistoryTTL *server.Duration `json:"history_ttl,omitempty"`
	// HistoryBytes caps one channel's history, bytes; negative: no cap
	// (the node's cap on all history still applies). 0: the top-level
	// history_channel_bytes.
	HistoryBytes int64 `json:"history_bytes,omitempty"`
	// Recovery lets a client resubscribing with since receive what it
	// missed; false answers recovered:false with no backlog. Unset: true.
	Recovery *bool `json:"recovery,omitempty"`
	// AnonymousSubscribe lets anonymous clients subscribe where the
	// anonymous_subscribe patterns allow it; false refuses them in this
	// namespace. Unset: true.
	AnonymousSubscribe *bool `json:"anonymous_subscribe,omitempty"`
	// AnonymousPublish lets anonymous clients publish where the
	// anonymous_publish patterns allow it; unset or false refuses them in
	// this namespace.
	AnonymousPublish bool `json:"anonymous_publish,omitempty"`
	// ClientPublish lets clients publish with pub where their token (or
	// the anonymous patterns) allow it; false refuses every client's pub
	// in this namespace (the API still publishes). Unset: true.
	ClientPublish *bool `json:"client_publish,omitempty"`
	// MaxMessageSize is the largest payload published to the
	// namespace's channels (API and pub), bytes; its envelope frame must
	// fit write_buffer_limit. 0: max_publish_size.
	MaxMessageSize int `json:"max_message_size,omitempty"`
	// Presence gives the namespace's channels presence: who is
	// subscribed, one member per user, with join and leave events and a
	// member list (docs/protocol.md, "Presence"). Unset: false.
	Presence bool `json:"presence,omitempty"`
}

// Defaults are the node's top-level settings (defaults applied), which
// channels outside any namespace take and which a namespace's unset
// settings mean; Table.Retention reads them.
type Defaults struct {
	HistorySize         int
	HistoryTTL          time.Duration
	HistoryChannelBytes int64
	MaxMessageSize      int
}

// Namespace is one namespace's settings, or the top-level ones (Name ""),
// resolved. Immutable; safe for concurrent use.
type Namespace struct {
	// Name is the namespace's name; "" for the top level.
	Name string
	// Hub is what the hub keeps per channel (its zero fields: the hub's
	// own values).
	Hub hub.ChannelOptions

	anonSub, anonPub, clientPub, presence bool
}

// top is the Namespace of channels outside any namespace: the top-level
// settings, whatever the patterns and tokens allow.
var top = &Namespace{anonSub: true, anonPub: true, clientPub: true}

// Top returns the top-level Namespace (Name ""): the hub's own settings
// and no restriction.
func Top() *Namespace { return top }

// AnonymousSubscribe reports whether anonymous clients may subscribe in
// the namespace (where the anonymous patterns allow it).
func (n *Namespace) AnonymousSubscribe() bool { return n.anonSub }

// AnonymousPublish reports whether anonymous clients may publish in the
// namespace (where the anonymous patterns allow it).
func (n *Namespace) AnonymousPublish() bool { return n.anonPub }

// ClientPublish reports whether clients may publish with pub in the
// namespace (where their claims allow it).
func (n *Namespace) ClientPublish() bool { return n.clientPub }

// Presence reports whether the namespace's channels have presence. The
// top level has none: channels outside namespaces get it from the
// presence_channels patterns instead.
func (n *Namespace) Presence() bool { return n.presence }

// MaxMessageSize is the largest payload published to the namespace; 0
// means the top-level max_publish_size.
func (n *Namespace) MaxMessageSize() int { return n.Hub.MaxPayload }

// Table maps channel names to their Namespace. The nil *Table has no
// namespaces: every channel takes the top-level settings.
type Table struct {
	byName map[string]*Namespace
	list   []*Namespace // in configuration order

	unknown atomic.Uint64 // Lookup failures
}

// New validates list and builds the Table. An empty list gives a Table
// with no namespaces, under which every channel is allowed with the
// top-level settings. (Whether a namespace's largest message fits a
// connection's output budget is the caller's check: it knows the frames.)
func New(list []Config) (*Table, error) {
	if len(list) > MaxNamespaces {
		return nil, fmt.Errorf("namespaces: %d listed, at most %d", len(list), MaxNamespaces)
	}
	t := &Table{byName: make(map[string]*Namespace, len(list))}
	for i, c := range list {
		ns, err := build(c)
		if err != nil {
			return nil, fmt.Errorf("namespaces[%d]: %w", i, err)
		}
		if _, dup := t.byName[ns.Name]; dup {
			return nil, fmt.Errorf("namespaces[%d]: namespace %q listed twice", i, ns.Name)
		}
		t.byName[ns.Name] = ns
		t.list = append(t.list, ns)
	}
	return t, nil
}

// build validates one namespace and resolves its settings.
func build(c Config) (*Namespace, error) {
	if err := validName(c.Name); err != nil {
		return nil, err
	}
	ns := &Namespace{Name: c.Name, anonSub: true, clientPub: true, anonPub: c.AnonymousPublish, presence: c.Presence}
	if c.AnonymousSubscribe != nil {
		ns.anonSub = *c.AnonymousSubscribe
	}
	if c.ClientPublish != nil {
		ns.clientPub = *c.ClientPublish
	}
	if c.Recovery != nil {
		ns.Hub.NoRecovery = !*c.Recovery
	}
	if c.HistorySize != nil {
		switch n := *c.HistorySize; {
		case n > MaxHistorySize:
			return nil, fmt.Errorf("namespace %q: history_size %d: at most %d", c.Name, n, MaxHistorySize)
		case n <= 0:
			ns.Hub.HistorySize = -1 // none
		default:
			ns.Hub.HistorySize = n
		}
	}
	if c.HistoryTTL != nil {
		if *c.HistoryTTL == 0 {
			return nil, fmt.Errorf("namespace %q: history_ttl 0: give a duration (e.g. \"1h\"), a negative one for no age limit, or leave it out for the top-level history_ttl", c.Name)
		}
		ns.Hub.HistoryTTL = max(c.HistoryTTL.D(), -1)
	}
	ns.Hub.HistoryChannelBytes = max(c.HistoryBytes, -1)
	if c.MaxMessageSize < 0 {
		return nil, fmt.Errorf("namespace %q: max_message_size %d: want a size in bytes, or 0 for the top-level max_publish_size", c.Name, c.MaxMessageSize)
	}
	ns.Hub.MaxPayload = c.MaxMessageSize
	return ns, nil
}

// validName refuses a namespace name channels could not carry.
func validName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("namespace name %.100q: want 1 to %d characters", name, MaxNameLen)
	}
	if name == Personal {
		return fmt.Errorf("namespace name %q is reserved for the personal user: channels, which keep the top-level settings", name)
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == '.':
		default:
			return fmt.Errorf("namespace name %q: %q is not allowed (letters, digits, '_', '-' and '.')", name, c)
		}
	}
	return nil
}

// Lookup returns the Namespace of channel: the one its prefix (before the
// first ':') names, or Top for a channel without a ':' and for the
// personal "user:" channels. Once any namespace is configured, a prefix
// that names none fails with an error wrapping ErrUnknown. It does not
// allocate unless it fails.
func (t *Table) Lookup(channel string) (*Namespace, error) {
	if t == nil || len(t.byName) == 0 {
		return top, nil
	}
	i := strings.IndexByte(channel, ':')
	if i < 0 {
		return top, nil
	}
	prefix := channel[:i]
	if prefix == Personal {
		return top, nil
	}
	if ns := t.byName[prefix]; ns != nil {
		return ns, nil
	}
	t.unknown.Add(1)
	return nil, t.unknownError(prefix, channel)
}

// Unknown counts the lookups refused with ErrUnknown (cumulative): one
// per refused subscribe, publish or history read, or close to it.
func (t *Table) Unknown() uint64 {
	if t == nil {
		return 0
	}
	return t.unknown.Load()
}

// unknownError is the error of a channel in no configured namespace.
func (t *Table) unknownError(prefix, channel string) error {
	// The configured names are not listed: the error goes to clients.
	return &UnknownError{Namespace: prefix, Channel: channel}
}

// HubOptions is the hub's hook (hub.Config.Options): the channel's
// history and payload settings, or the Lookup error.
func (t *Table) HubOptions(channel string) (hub.ChannelOptions, error) {
	ns, err := t.Lookup(channel)
	if err != nil {
		return hub.ChannelOptions{}, err
	}
	return ns.Hub, nil
}

// Names lists the configured namespaces, sorted.
func (t *Table) Names() []string {
	if t == nil {
		return nil
	}
	out := make([]string, 0, len(t.list))
	for _, ns := range t.list {
		out = append(out, ns.Name)
	}
	slices.Sort(out)
	return out
}

// Namespaces returns the configured namespaces, in configuration order.
func (t *Table) Namespaces() []*Namespace {
	if t == nil {
		return nil
	}
	return slices.Clone(t.list)
}

// Len is how many namespaces are configured.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return len(t.list)
}

// Retention is what a broker that stores history for every node must keep
// per channel to serve every namespace: the most messages (size) and the
// longest positive age (ttl) over the top level d and the namespaces,
// and the largest payload.
func (t *Table) Retention(d Defaults) (size int, ttl time.Duration, payload int) {
	size, ttl, payload = d.HistorySize, d.HistoryTTL, d.MaxMessageSize
	for _, ns := range t.Namespaces() {
		size = max(size, ns.Hub.HistorySize)
		ttl = max(ttl, ns.Hub.HistoryTTL)
		payload = max(payload, ns.Hub.MaxPayload)
	}
	return size, ttl, payload
}

package herald

import (
	"fmt"
	"slices"
	"time"

	"github.com/herald-push/herald/auth"
	"github.com/herald-push/herald/hub"
	"github.com/herald-push/herald/namespace"
	"github.com/herald-push/herald/push"
	"github.com/herald-push/herald/pusher"
	"github.com/herald-push/herald/server"
)

// newNamespaces validates Config.Namespaces and builds their table: each
// namespace's largest message must fit write_buffer_limit, as
// MaxPublishSize must.
func newNamespaces(cfg Config) (*namespace.Table, error) {
	t, err := namespace.New(cfg.Namespaces)
	if err != nil {
		return nil, err
	}
	if cfg.Demo && !cfg.Echo && t.Len() > 0 && !slices.Contains(t.Names(), "demo") {
		return nil, fmt.Errorf("namespaces: the demo publishes on demo: channels: add a namespace \"demo\" (with \"anonymous_publish\": true for its chat), or turn the demo off")
	}
	limit := cfg.WriteBufferLimit
	if limit <= 0 {
		limit = server.DefaultWriteBufferLimit
	}
	for _, ns := range t.Namespaces() {
		size := ns.MaxMessageSize()
		if size == 0 {
			continue // max_publish_size, which checkSizes checks
		}
		if frame := push.MaxEnvelopeFrame(size); frame > limit {
			return nil, fmt.Errorf("namespaces: namespace %q: max_message_size %d cannot be delivered within write_buffer_limit %d: its envelope frame takes up to %d bytes; raise write_buffer_limit or lower max_message_size", ns.Name, size, limit, frame)
		}
	}
	return t, nil
}

// hubOptions is the hub's per-channel hook for t: nil without namespaces,
// so a node without them pays nothing per publish.
func hubOptions(t *namespace.Table) func(string) (hub.ChannelOptions, error) {
	if t.Len() == 0 {
		return nil
	}
	return t.HubOptions
}

// retention is what the top level and the namespaces need the broker to
// keep per channel.
func (c Config) retention(t *namespace.Table) (size int, ttl time.Duration, payload int) {
	d := namespace.Defaults{
		HistorySize:    c.HistorySize,
		HistoryTTL:     c.HistoryTTL.D(),
		MaxMessageSize: c.MaxPublishSize,
	}
	if d.HistorySize == 0 {
		d.HistorySize = hub.DefaultHistorySize
	}
	if d.HistoryTTL == 0 {
		d.HistoryTTL = hub.DefaultHistoryTTL
	}
	if d.MaxMessageSize <= 0 {
		d.MaxMessageSize = hub.DefaultMaxPayload
	}
	return t.Retention(d)
}

// Check runs the checks New runs on cfg without building a node: nothing
// listens and no broker is contacted (whether NATS is reachable is not
// checked), but key files are read. `herald checkconfig` is this.
func Check(cfg Config) error {
	if err := cfg.Config.Validate(); err != nil {
		return fmt.Errorf("server config: %w", err)
	}
	if err := checkAPI(cfg); err != nil {
		return err
	}
	if err := checkBackend(cfg.PollerBackend); err != nil {
		return err
	}
	if _, ok := push.ParseSlowPolicy(cfg.SlowPolicy); !ok {
		return fmt.Errorf("slow_policy %q: want close, close-policy or drop", cfg.SlowPolicy)
	}
	if !cfg.Echo {
		if _, err := newVerifier(cfg); err != nil {
			return err
		}
	}
	if _, err := auth.NewOriginPolicy(cfg.AllowedOrigins); err != nil {
		return fmt.Errorf("allowed_origins: %w", err)
	}
	if err := checkSizes(cfg); err != nil {
		return err
	}
	t, err := newNamespaces(cfg)
	if err != nil {
		return err
	}
	if _, err := presenceChannels(cfg, t); err != nil {
		return err
	}
	if len(cfg.Pusher) > 0 && !cfg.Echo {
		if err := pusher.Validate(cfg.Pusher); err != nil {
			return fmt.Errorf("pusher_apps: %w", err)
		}
		budget := cfg.WriteBufferLimit
		if budget == 0 {
			budget = server.DefaultWriteBufferLimit
		}
		if err := pusher.CheckBudget(cfg.Pusher, budget); err != nil {
			return fmt.Errorf("pusher_apps: %w", err)
		}
	}
	if cfg.Hooks.Enabled() && !cfg.Echo {
		if _, err := newHooks(cfg); err != nil {
			return err
		}
	}
	if cfg.BrokerMaxBytes < 0 {
		return fmt.Errorf("broker_max_bytes %d: want a size in bytes, or 0 for no bound", cfg.BrokerMaxBytes)
	}
	return nil
}

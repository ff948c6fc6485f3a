// Package herald embeds a herald push node in a Go program (library mode):
// the WebSocket listener on event loops, the hub with history and
// recovery, authentication, the HTTP API and metrics, and optional
// handlers for application messages that run on a worker pool in
// per-connection order. `herald serve` is this package behind flags.
//
// A node is built from one [Config]: the settings (also the JSON config
// file of `herald serve`) and, in fields the JSON leaves out, the hooks
// (message handler, logger, extra pages). Start from [DefaultConfig]:
//
//	cfg := herald.DefaultConfig()
//	cfg.Handler = myHandler
//	node, err := herald.New(cfg)
//	go node.Run(ctx)
//	<-node.Ready()
//	node.Publish("news", []byte(`{"headline":"..."}`))
//
// A zero field means its package's default, except where its comment says
// otherwise (the listeners, the anonymous patterns, booleans and the JWT
// leeway).
//
// A Node's methods are safe for concurrent use.
package herald

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/netutil"

	"github.com/herald-push/herald/api"
	"github.com/herald-push/herald/auth"
	"github.com/herald-push/herald/broker"
	"github.com/herald-push/herald/hook"
	"github.com/herald-push/herald/hub"
	"github.com/herald-push/herald/namespace"
	"github.com/herald-push/herald/poller"
	"github.com/herald-push/herald/pool"
	"github.com/herald-push/herald/push"
	"github.com/herald-push/herald/pusher"
	"github.com/herald-push/herald/pusher/webhook"
	"github.com/herald-push/herald/pusherapi"
	"github.com/herald-push/herald/server"
)

// Config is a node's whole configuration; it is also the JSON config file
// of `herald serve`, which leaves out the hooks (the fields tagged
// `json:"-"`). A zero field means the default of the package it configures
// (the constants named in its comment), except where its comment says
// otherwise; DefaultConfig sets those.
type Config struct {
	server.Config

	// Handler receives clients' application messages
	// (`{"op":"msg","data":...}`) on the worker pool, in order per
	// connection. Nil: such messages are answered with a not_supported
	// error.
	Handler Handler `json:"-"`
	// Logger receives the node's logs; nil means slog.Default().
	Logger *slog.Logger `json:"-"`
	// DemoPage serves / on the API listener while Demo is set (the demo
	// package provides one); nil: no page.
	DemoPage http.Handler `json:"-"`
	// ClientScript serves /herald.js, the browser client, on the API
	// listener (client/js provides it); nil: not served.
	ClientScript http.Handler `json:"-"`

	// APIListen is the HTTP API listener. Empty means none (not the
	// default, DefaultAPIListen, which DefaultConfig sets); New refuses a non-loopback address without APIKey unless
	// APIInsecure is set.
	APIListen string `json:"api_listen"`
	// APIKey, when set, is required on /api/ and /debug/pprof/ requests.
	APIKey string `json:"api_key"`
	// APIInsecure allows a non-loopback APIListen without APIKey: anyone
	// who reaches it may then publish and disconnect users.
	APIInsecure bool `json:"api_insecure"`
	// APIMaxConns caps the API listener's open connections (0:
	// api.DefaultMaxConns); further clients wait in the kernel's accept
	// queue.
	APIMaxConns int `json:"api_max_conns"`
	// MaxBodyBytes caps API request bodies (0: api.DefaultMaxBodyBytes).
	MaxBodyBytes int64 `json:"max_body_bytes"`
	// Pprof mounts /debug/pprof/ on the API listener, behind APIKey
	// (/debug/pprof/cmdline is never served). New refuses it on a
	// non-loopback API listener without APIKey.
	Pprof bool `json:"pprof"`
	// Demo runs the demo: the page at / on the API listener (and, in
	// `herald serve`, the shared counter's message handler). With Demo,
	// an unset AnonymousPublish means "demo:*".
	Demo bool `json:"demo"`

	// AllowAnonymous lets clients connect without a token; they may
	// subscribe to AnonymousSubscribe and publish to AnonymousPublish.
	AllowAnonymous bool `json:"allow_anonymous"`
	// AnonymousSubscribe lists the channel patterns anonymous clients may
	// subscribe to; an empty or nil list means none (DefaultConfig says
	// "*").
	AnonymousSubscribe []string `json:"anonymous_subscribe"`
	// AnonymousPublish lists the channel patterns anonymous clients may
	// publish to. Unset (nil): "demo:*" when Demo is on, none otherwise;
	// an empty list means none.
	AnonymousPublish []string `json:"anonymous_publish"`
	// JWTSecret verifies HS256 tokens; JWTPublicKeys (PEM files) verify
	// RS256/ES256 tokens.
	JWTSecret     string   `json:"jwt_secret"`
	JWTPublicKeys []string `json:"jwt_public_keys"`
	JWTIssuer     string   `json:"jwt_issuer"`
	// JWTLeeway is the clock skew allowed on exp/nbf/iat. 0 means none,
	// not auth.DefaultLeeway, which DefaultConfig sets.
	JWTLeeway   server.Duration `json:"jwt_leeway"`
	JWTAudience string          `json:"jwt_audience"`
	// JWTCacheSize is how many verified tokens the node remembers, so that
	// a token presented again (a reconnection, another tab) costs no
	// signature check (auth.Config.TokenCache). 0 means
	// auth.DefaultTokenCache, which DefaultConfig sets; negative, none.
	JWTCacheSize int `json:"jwt_cache_size"`
	// AllowedOrigins lists the browser origins allowed to connect (besides
	// same-host pages and clients that send no Origin).
	AllowedOrigins []string `json:"allowed_origins"`

	// HistorySize and HistoryTTL bound each channel's history (0:
	// hub.DefaultHistorySize and hub.DefaultHistoryTTL; negative: no
	// history, no age limit).
	HistorySize int             `json:"history_size"`
	HistoryTTL  server.Duration `json:"history_ttl"`
	// MaxPublishSize is the largest payload the API and clients' pub may
	// publish (0: hub.DefaultMaxPayload). Its envelope frame must fit
	// write_buffer_limit, or New refuses the configuration.
	MaxPublishSize int `json:"max_publish_size"`
	// MaxSubscriptions caps one connection's subscriptions, its personal
	// user: channel aside (0: push.DefaultMaxSubscriptions; negative: no
	// cap).
	MaxSubscriptions int `json:"max_subscriptions"`
	// MaxChannels caps the channels of this node (0:
	// hub.DefaultMaxChannels; negative: no cap).
	MaxChannels int `json:"max_channels"`
	// CommandRate is how many commands per second a connection may send,
	// bursts of twice that (0: push.DefaultCommandRate; negative: no
	// limit).
	CommandRate float64 `json:"command_rate"`
	// HistoryChannelBytes caps one channel's history (0:
	// hub.DefaultHistoryChannelBytes; negative: no cap), so one channel
	// cannot evict the others'.
	HistoryChannelBytes int64 `json:"history_channel_bytes"`
	// IdempotencyWindow is how long a publish's idempotency_key is
	// remembered (0: broker.DefaultIdempotencyWindow, 5 minutes): a
	// publish with a key seen within it returns the first result and
	// publishes nothing. Each node remembers at most
	// broker.DefaultIdempotencyKeys keys; with NATS it is also the
	// duplicate window of the stream a node creates, so a retry reaching
	// another node is stored once.
	IdempotencyWindow server.Duration `json:"idempotency_window"`

	// SlowPolicy is close (1013), close-policy (1008) or drop; empty
	// means close.
	SlowPolicy string `json:"slow_policy"`
	// Workers bounds the goroutines running message handlers (0:
	// pool.DefaultWorkers).
	Workers int `json:"workers"`

	// Broker carries publishes between nodes: "memory" (or empty) for a
	// single node, nats://HOST:PORT (comma-separated for a NATS cluster)
	// for many nodes sharing a NATS server with JetStream.
	Broker string `json:"broker"`
	// BrokerOptional starts the node even when NATS is unreachable, not
	// ready and refusing publishes until it connects; otherwise New fails.
	BrokerOptional bool `json:"broker_optional"`
	// BrokerReplicas is the replication factor of the JetStream stream
	// the first node creates (a NATS cluster of 3 wants 3); 0 means 1.
	BrokerReplicas int `json:"broker_replicas"`

	// Pusher lists the Pusher Channels applications this node serves:
	// pusher-js and the other Pusher clients connect to /app/{key} on the
	// WebSocket listener, beside herald's own protocol on /ws
	// (docs/pusher.md); each app's "webhooks" lists the http(s) URLs its
	// webhooks are posted to. Empty: none. With a NATS broker the apps
	// run on every node sharing it (their events travel on a stream of
	// their own, HERALD_PUSHER).
	Pusher []pusher.App `json:"pusher_apps"`

	// Namespaces (docs/namespaces.md).

	// Namespaces lists the channel namespaces: a channel "ns:rest" takes
	// the settings of namespace "ns" (history, recovery, who may
	// subscribe and publish, the largest message). Once any is listed, a
	// channel whose prefix names none is refused; channels without a ':'
	// and the personal user: channels keep the top-level settings. Empty:
	// no namespaces, every channel takes the top-level settings.
	Namespaces []namespace.Config `json:"namespaces"`
	// BrokerMaxBytes bounds the bytes of the JetStream stream a node
	// creates (0: no bound): with long history TTLs it is what keeps the
	// stream's disk bounded, the oldest messages going first.
	BrokerMaxBytes int64 `json:"broker_max_bytes"`

	// Backend hooks (docs/hooks.md).

	// Hooks asks the application's backend, over HTTP, whether a client
	// may connect (without a token: for apps with cookie sessions),
	// subscribe, publish, or stay connected past its expiry. Every URL
	// empty (the default): no hooks. With a connect hook, AllowAnonymous
	// and a JWT key are not needed.
	Hooks hook.Config `json:"hooks"`

	// Pusher apps on several nodes (docs/pusher.md, "Several nodes").
	//
	// PusherLeaveDelay is how long a presence member whose last
	// connection (on any node) left stays before member_removed, so a
	// reload, or a reconnection to another node, is no leave (0:
	// pusher.DefaultLeaveDelay, 1 s; negative: none).
	PusherLeaveDelay server.Duration `json:"pusher_leave_delay"`
	// PusherNodeTimeout is how long a node's presence heartbeat (one a
	// second) may stay silent before the other nodes take its members for
	// gone (0: broker.DefaultNodeTimeout, 5 s); herald's own presence
	// channels share the heartbeat and the timeout. NATS broker only.
	PusherNodeTimeout server.Duration `json:"pusher_node_timeout"`

	// Presence on herald's own protocol (docs/protocol.md, "Presence").
	//
	// PresenceChannels lists the channel patterns (the syntax of
	// anonymous_subscribe) of the channels outside namespaces that have
	// presence; a namespace's channels have it with its "presence"
	// option. Empty: none.
	PresenceChannels []string `json:"presence_channels"`
	// PresenceLeaveDelay is how long a member whose last connection (on
	// any node) left stays before its leave event, so a reload, or a
	// reconnection to another node, is no leave (0:
	// push.DefaultPresenceLeaveDelay, 1 s; negative: none).
	PresenceLeaveDelay server.Duration `json:"presence_leave_delay"`

	// Presence member cap (docs/security.md).
	//
	// PresenceMaxMembers caps the members (distinct users) of one of
	// herald's presence channels, as max_presence_members does a Pusher
	// app's: a subscribe of a new member past it is answered with the
	// error code "limit" (0: push.DefaultPresenceMaxMembers, 100;
	// negative: no cap).
	PresenceMaxMembers int `json:"presence_max_members"`
}

// DefaultAPIListen is the API listener's default address: loopback only.
const DefaultAPIListen = "127.0.0.1:8081"

// demoPublish is what anonymous clients may publish to while the demo runs,
// unless Config.AnonymousPublish says otherwise.
const demoPublish = "demo:*"

// DefaultConfig returns the settings `herald serve` starts from: each
// package's defaults, the API listener on DefaultAPIListen, anonymous
// clients (when allowed) subscribing to any channel, and the JWT leeway of
// auth.DefaultLeeway. It sets no hooks.
func DefaultConfig() Config {
	return Config{
		Config:              server.DefaultConfig(),
		APIListen:           DefaultAPIListen,
		APIMaxConns:         api.DefaultMaxConns,
		MaxBodyBytes:        api.DefaultMaxBodyBytes,
		AnonymousSubscribe:  []string{"*"},
		JWTLeeway:           server.Duration(auth.DefaultLeeway),
		JWTCacheSize:        auth.DefaultTokenCache,
		HistorySize:         hub.DefaultHistorySize,
		HistoryTTL:          server.Duration(hub.DefaultHistoryTTL),
		MaxPublishSize:      hub.DefaultMaxPayload,
		MaxSubscriptions:    push.DefaultMaxSubscriptions,
		MaxChannels:         hub.DefaultMaxChannels,
		CommandRate:         push.DefaultCommandRate,
		HistoryChannelBytes: hub.DefaultHistoryChannelBytes,
		IdempotencyWindow:   server.Duration(broker.DefaultIdempotencyWindow),
		SlowPolicy:          string(push.SlowClose),
		Workers:             pool.DefaultWorkers,
	}
}

// Handler receives application messages (`{"op":"msg","data":...}`) from
// clients (Config.Handler). It runs on the worker pool: it may block, and
// calls for one connection never overlap and arrive in order.
type Handler func(s *push.Session, data []byte)

// Node is one running herald node.
type Node struct {
	cfg  Config
	log  *slog.Logger
	hub  *hub.Hub
	push *push.App
	// verifier checks connection tokens; nil in echo mode.
	verifier *auth.Verifier
	// pusher speaks the Pusher protocol over pusherHub, nil without
	// Config.Pusher.
	pusher    *pusher.Protocol
	pusherHub *hub.Hub
	// pusherBroker carries the Pusher hub's events between nodes: the
	// memory broker on one node, a NATS broker of its own (stream
	// HERALD_PUSHER) beside the main one with NATS.
	pusherBroker broker.Broker
	// roster shares presence between the nodes (NATS only, with Pusher
	// apps or presence channels), under rosterNode.
	roster     *broker.Roster
	rosterNode uint32
	srv        *server.Server
	workers    *pool.Workers
	broker     broker.Broker
	dedup      *broker.Dedup
	ns         *namespace.Table
	reg        *prometheus.Registry
	fanout     prometheus.Histogram
	handler    Handler

	apiAddr  net.Addr
	apiStats api.Stats
	apiReady chan struct{}

	// hooks calls the backend hooks, nil without any.
	hooks *hook.Client
}

// New assembles a node from cfg; Run starts it. It refuses a
// configuration that could not work or would be unsafe (see Config).
func New(cfg Config) (*Node, error) {
	if err := checkAPI(cfg); err != nil {
		return nil, err
	}
	if err := checkBackend(cfg.PollerBackend); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: cfg.Logger, handler: cfg.Handler, apiReady: make(chan struct{})}
	if n.log == nil {
		n.log = slog.Default()
	}
	slow, ok := push.ParseSlowPolicy(cfg.SlowPolicy)
	if !ok {
		return nil, fmt.Errorf("slow_policy %q: want close, close-policy or drop", cfg.SlowPolicy)
	}
	var verifier *auth.Verifier
	if !cfg.Echo {
		v, err := newVerifier(cfg)
		if err != nil {
			return nil, err
		}
		verifier = v
	}
	n.verifier = verifier
	origins, err := auth.NewOriginPolicy(cfg.AllowedOrigins)
	if err != nil {
		return nil, fmt.Errorf("allowed_origins: %w", err)
	}
	if err := checkSizes(cfg); err != nil {
		return nil, err
	}
	if n.ns, err = newNamespaces(cfg); err != nil {
		return nil, err
	}
	n.fanout = newFanoutHistogram()
	n.hub = hub.New(hub.Config{
		HistorySize:         cfg.HistorySize,
		HistoryTTL:          cfg.HistoryTTL.D(),
		HistoryChannelBytes: cfg.HistoryChannelBytes,
		MaxPayload:          cfg.MaxPublishSize, // the broker reads it from the hub
		MaxChannels:         cfg.MaxChannels,
		// The client protocol encodes each message once per publish and
		// refuses those no subscriber's output budget could take.
		Encoder:       push.Encoder{MaxFrame: cfg.WriteBufferLimit},
		ObserveFanout: n.observeFanout,
		Options:       hubOptions(n.ns),
	})
	n.workers, err = pool.NewWorkers(pool.WorkersConfig{Size: cfg.Workers})
	if err != nil {
		return nil, fmt.Errorf("worker pool: %w", err)
	}
	if cfg.Hooks.Enabled() && !cfg.Echo {
		cfg.Hooks.Logger = n.log
		if n.hooks, err = newHooks(cfg); err != nil {
			return nil, err
		}
	}
	n.dedup = broker.NewDedup(cfg.IdempotencyWindow.D(), broker.DefaultIdempotencyKeys, nil)
	if err := n.openBroker(); err != nil {
		return nil, err
	}
	presenceOn, err := presenceChannels(cfg, n.ns)
	if err != nil {
		n.closeBrokers()
		return nil, err
	}
	if _, single := n.broker.(*broker.Memory); !single && !cfg.Echo && (presenceOn != nil || len(cfg.Pusher) > 0) {
		if err := n.openRoster(cfg); err != nil {
			n.closeBrokers()
			return nil, err
		}
	}
	if err := n.newPusher(cfg, origins, slow); err != nil {
		n.closeBrokers()
		return nil, err
	}
	po := push.Options{
		Hub:      n.hub,
		Verifier: verifier,
		Origins:  origins,
		Slow:     slow,
		Workers:  n.workers,
		Interest: interestOf(n.broker),
		Hooks:    n.hooks,

		MaxSubscriptions: cfg.MaxSubscriptions,
		CommandRate:      cfg.CommandRate,
		Namespaces:       n.ns,
	}
	if n.handler != nil {
		po.Handlers = handlerFunc(n.handler)
	}
	if _, single := n.broker.(*broker.Memory); !single {
		po.Publish = func(channel string, data []byte) (hub.Position, error) {
			return n.broker.Publish(context.Background(), channel, data)
		}
	}
	po.Presence = presenceOn
	po.PresenceLeaveDelay = cfg.PresenceLeaveDelay.D()
	po.PresenceMaxMembers = cfg.PresenceMaxMembers
	if n.roster != nil && presenceOn != nil {
		po.PresenceRoster = pushRoster{n.roster}
	}
	n.push = push.New(po)
	if n.roster != nil {
		n.startRoster()
	}
	var app server.App = n.push
	if n.pusher != nil {
		app = server.NewMux(n.push, server.Route{Prefix: "/app/", App: n.pusher})
	}
	if cfg.Echo {
		app = nil
	}
	n.srv, err = server.New(cfg.Config, app, n.log) // attaches the app
	if err != nil {
		n.closeBrokers()
		return nil, err
	}
	n.reg = prometheus.NewRegistry()
	if err := registerMetrics(n.reg, n); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return n, nil
}

// newPusher builds the Pusher protocol and its hub when Config.Pusher
// lists applications.
func (n *Node) newPusher(cfg Config, origins *auth.OriginPolicy, slow push.SlowPolicy) error {
	if len(cfg.Pusher) == 0 || cfg.Echo {
		return nil
	}
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
	n.pusherHub = hub.New(hub.Config{
		// Cache channels read their last event from history, for
		// Pusher's 30 minutes; nothing else is recovered.
		HistorySize:         pusherHistory,
		HistoryTTL:          pusherHistoryTTL,
		HistoryChannelBytes: cfg.HistoryChannelBytes,
		MaxPayload:          cfg.MaxPublishSize,
		MaxChannels:         cfg.MaxChannels,
		Encoder:             pusher.Encoder{MaxFrame: cfg.WriteBufferLimit},
		ObserveFanout:       n.observeFanout,
	})
	var pb pusher.Broker
	var node uint32 // 0: pusher draws one
	if _, single := n.broker.(*broker.Memory); !single {
		b, err := broker.New(context.Background(), cfg.Broker, n.pusherHub, broker.NATSConfig{
			Name:          "herald pusher " + cfg.Listen,
			Optional:      cfg.BrokerOptional,
			Stream:        pusherStream,
			SubjectPrefix: pusherSubjects,
			HistorySize:   pusherHistory,
			HistoryTTL:    pusherHistoryTTL,
			Replicas:      cfg.BrokerReplicas,
			Log:           n.log,
		})
		if err != nil {
			return fmt.Errorf("pusher_apps: %w", err)
		}
		n.pusherBroker = b
		pb = pusherBroker{b}
		node = n.rosterNode
	}
	var roster pusher.Roster
	if n.roster != nil {
		roster = n.roster
	}
	n.pusher = pusher.New(pusher.Options{
		Apps:             cfg.Pusher,
		Hub:              n.pusherHub,
		Origins:          origins,
		Slow:             pusher.SlowPolicy(slow),
		MaxSubscriptions: cfg.MaxSubscriptions,
		CommandRate:      cfg.CommandRate,
		// Webhooks (an app's "webhooks" URLs) are posted by a sender
		// goroutine per URL, never from a loop.
		Webhooks:   pusher.WebhookOptions{Sender: webhook.Config{Logger: n.log}},
		Broker:     pb,
		Workers:    n.workers,
		Roster:     roster,
		Node:       node,
		LeaveDelay: cfg.PusherLeaveDelay.D(),
	})
	if n.roster != nil {
		p := n.pusher
		if err := n.roster.OnTerminate(func(app, user string) { _ = p.TerminateUser(app, user) }); err != nil {
			return fmt.Errorf("pusher_apps: %w", err)
		}
	}
	return nil
}

// clusterPusher is the Pusher HTTP API's Service on several nodes:
// terminate_connections reaches every node.
type clusterPusher struct {
	*pusher.Protocol
	roster *broker.Roster
}

// TerminateUser asks every node to close the user's connections.
func (c clusterPusher) TerminateUser(app, user string) error {
	if _, ok := c.App(app); !ok {
		return fmt.Errorf("app %q: %w", app, pusher.ErrNotFound)
	}
	if err := c.roster.Terminate(app, user); err != nil {
		return fmt.Errorf("%w: %w", pusher.ErrUnavailable, err)
	}
	return nil
}

// openRoster opens the presence roster under a node number of its own:
// drawn at random, and drawn again while a live node holds it.
func (n *Node) openRoster(cfg Config) error {
	for try := 0; ; try++ {
		node := 1 + rand.Uint32N(1<<23-1)
		r, err := broker.NewRoster(context.Background(), broker.RosterConfig{
			URL:         cfg.Broker,
			Name:        "herald presence " + cfg.Listen,
			Optional:    cfg.BrokerOptional,
			Replicas:    cfg.BrokerReplicas,
			Node:        node,
			NodeTimeout: cfg.PusherNodeTimeout.D(),
			Log:         n.log,
		})
		if errors.Is(err, broker.ErrNodeTaken) && try < 8 {
			continue
		}
		if err != nil {
			return fmt.Errorf("presence roster: %w", err)
		}
		n.roster, n.rosterNode = r, node
		return nil
	}
}

// The Pusher hub's stream on NATS: its own, beside the main one, with the
// Pusher hub's history (a cache channel's last event among its latest 16,
// for 30 minutes).
const (
	pusherStream     = "HERALD_PUSHER"
	pusherSubjects   = "herald.pusher"
	pusherHistory    = 16
	pusherHistoryTTL = 30 * time.Minute
)

// pusherBroker adapts a broker to pusher.Broker: a refusal for now
// (NATS unreachable) is the Pusher API's 503.
type pusherBroker struct{ broker.Broker }

func (b pusherBroker) Publish(ctx context.Context, channel string, data []byte) (hub.Position, error) {
	pos, err := b.Broker.Publish(ctx, channel, data)
	if errors.Is(err, broker.ErrUnavailable) {
		err = fmt.Errorf("%w: %w", pusher.ErrUnavailable, err)
	}
	return pos, err
}

// closeBrokers closes the brokers opened so far.
func (n *Node) closeBrokers() {
	if n.roster != nil {
		_ = n.roster.Close()
	}
	if n.pusherBroker != nil {
		_ = n.pusherBroker.Close()
	}
	if n.broker != nil {
		_ = n.broker.Close()
	}
}

// Pusher is the node's side of the Pusher HTTP API (nil without
// Config.Pusher).
func (n *Node) Pusher() pusher.Service {
	if n.pusher == nil {
		return nil
	}
	return n.pusher
}

// openBroker connects the broker Config.Broker names.
func (n *Node) openBroker() error {
	// The one stream serves every namespace: it keeps as many messages
	// per channel, as long and as large as the most demanding needs.
	size, ttl, payload := n.cfg.retention(n.ns)
	b, err := broker.New(context.Background(), n.cfg.Broker, n.hub, broker.NATSConfig{
		Name:        "herald " + n.cfg.Listen,
		Optional:    n.cfg.BrokerOptional,
		HistorySize: size,
		HistoryTTL:  n.cfg.HistoryTTL.D(),
		MaxAge:      max(ttl, broker.DefaultMaxAge),
		MaxBytes:    n.cfg.BrokerMaxBytes,
		MaxPayload:  payload,
		Replicas:    n.cfg.BrokerReplicas,
		Log:         n.log,
		// JetStream de-duplicates idempotent publishes across nodes.
		DuplicateWindow: n.dedup.Window(),
	})
	if err != nil {
		return err
	}
	n.broker = b
	return nil
}

// checkBackend refuses a poller backend that does not exist.
func checkBackend(name string) error {
	switch name {
	case "", poller.BackendEpoll, poller.BackendGnet:
		return nil
	}
	return fmt.Errorf("poller_backend %q: want %s or %s (empty: the platform's default)", name, poller.BackendEpoll, poller.BackendGnet)
}

// checkSizes refuses a publish size that could not be delivered: the
// envelope frame of the largest payload must fit one connection's output
// budget.
func checkSizes(cfg Config) error {
	size := cfg.MaxPublishSize
	if size <= 0 {
		size = hub.DefaultMaxPayload
	}
	limit := cfg.WriteBufferLimit
	if limit <= 0 {
		limit = server.DefaultWriteBufferLimit
	}
	if frame := push.MaxEnvelopeFrame(size); frame > limit {
		return fmt.Errorf("max_publish_size %d cannot be delivered within write_buffer_limit %d: its envelope frame takes up to %d bytes; raise write_buffer_limit or lower max_publish_size", size, limit, frame)
	}
	return nil
}

type handlerFunc Handler

func (h handlerFunc) OnMessage(s *push.Session, data []byte) { h(s, data) }

func newVerifier(cfg Config) (*auth.Verifier, error) {
	ac := auth.Config{
		Issuer:             cfg.JWTIssuer,
		Leeway:             cfg.JWTLeeway.D(),
		Audience:           cfg.JWTAudience,
		TokenCache:         cfg.JWTCacheSize,
		AllowAnonymous:     cfg.AllowAnonymous,
		AnonymousSubscribe: cfg.AnonymousSubscribe,
		AnonymousPublish:   cfg.AnonymousPublishPatterns(),
	}
	if ac.Leeway == 0 {
		ac.Leeway = -1 // auth reads 0 as its default; here 0 means none
	}
	if cfg.JWTSecret != "" {
		ac.HMACSecret = []byte(cfg.JWTSecret)
	}
	if cfg.Hooks.ConnectURL != "" && !cfg.AllowAnonymous {
		// A request without a token goes to the connect hook, never to
		// the verifier's anonymous claims: a node with a connect hook
		// and no key verifies no token, and needs none.
		ac.AllowAnonymous = true
		ac.AnonymousSubscribe, ac.AnonymousPublish = nil, nil
	}
	for _, path := range cfg.JWTPublicKeys {
		if err := ac.AddPublicKeyFile(path); err != nil {
			return nil, fmt.Errorf("jwt public key %s: %w", path, err)
		}
	}
	v, err := auth.NewVerifier(ac)
	if err != nil {
		return nil, fmt.Errorf("%w (set --jwt-secret or --jwt-public-key for tokens, or --allow-anonymous)", err)
	}
	return v, nil
}

// Hub is the node's hub (channels, history).
func (n *Node) Hub() *hub.Hub { return n.hub }

// Server is the node's WebSocket server.
func (n *Node) Server() *server.Server { return n.srv }

// Publish sends data to every subscriber of channel, on every node. With
// a NATS broker it blocks until JetStream stored the message, and fails
// with an error wrapping broker.ErrUnavailable while NATS is away.
func (n *Node) Publish(channel string, data []byte) (hub.Position, error) {
	return n.broker.Publish(context.Background(), channel, data)
}

// DisconnectUser closes every connection of user with 4003.
func (n *Node) DisconnectUser(user, reason string) int { return n.push.DisconnectUser(user, reason) }

// Ready is closed once both listeners are bound.
func (n *Node) Ready() <-chan struct{} { return n.apiReady }

// Addr is the WebSocket listener's address (after Ready).
func (n *Node) Addr() net.Addr { return n.srv.Addr() }

// APIAddr is the API listener's address (after Ready; nil without one).
func (n *Node) APIAddr() net.Addr { return n.apiAddr }

// Run serves until ctx ends, then shuts down gracefully: /readyz turns
// 503 at once, the node serves on for the shutdown delay, then drains
// within the drain timeout. It returns the first error that stopped it.
func (n *Node) Run(ctx context.Context) error {
	errc := make(chan error, 2)
	go func() { errc <- n.srv.Serve() }()
	select {
	case <-n.srv.Ready():
	case err := <-errc:
		return err
	}
	if n.srv.Addr() == nil {
		// Ready also closes when the listener failed to come up; Serve
		// then returns the reason.
		if err := <-errc; err != nil {
			return err
		}
		return fmt.Errorf("listen %s: not listening", n.cfg.Listen)
	}
	var apiSrv *http.Server
	if n.cfg.APIListen != "" {
		ln, err := net.Listen("tcp", n.cfg.APIListen)
		if err != nil {
			_ = n.srv.Shutdown(context.Background())
			return fmt.Errorf("api listener %s: %w", n.cfg.APIListen, err)
		}
		n.apiAddr = ln.Addr()
		ln = netutil.LimitListener(ln, n.apiMaxConns())
		apiSrv = api.NewServer(n.APIHandler())
		go func() {
			if err := apiSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("api listener: %w", err)
			}
		}()
	}
	close(n.apiReady)
	sweep := time.NewTicker(10 * time.Second)
	defer sweep.Stop()
	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-errc:
			runErr = err
			break loop
		case <-sweep.C:
			n.hub.Sweep()
			if n.pusherHub != nil {
				n.pusherHub.Sweep()
			}
		}
	}
	dctx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownDelay.D()+n.cfg.DrainTimeout.D())
	defer cancel()
	if err := n.srv.Shutdown(dctx); err != nil && runErr == nil {
		runErr = err
	}
	if apiSrv != nil {
		_ = apiSrv.Close()
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	_ = n.workers.Close(wctx)
	if n.pusher != nil {
		_ = n.pusher.Close(wctx) // posts the webhooks still queued
	}
	n.closeBrokers()
	return runErr
}

// APIHandler is the HTTP API (also usable on a listener of your own).
func (n *Node) APIHandler() http.Handler {
	return api.NewHandler(apiBackend{n}, api.Options{
		APIKey:       n.cfg.APIKey,
		MaxBodyBytes: n.cfg.MaxBodyBytes,
		EnablePprof:  n.cfg.Pprof,
		Stats:        &n.apiStats,
		Metrics:      promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{}),
		Demo:         n.demoHandler(),
		Client:       n.cfg.ClientScript,
		// Without a key, an API on loopback trusts whoever reaches it: only
		// loopback names in Host, so DNS rebinding cannot bring a web page in.
		LoopbackHostsOnly: n.cfg.APIKey == "" && IsLoopback(n.cfg.APIListen),
		Pusher:            n.pusherAPI(),
	})
}

// pusherAPI is the Pusher HTTP API over the node's Pusher apps (requests
// signed with each app's secret), nil without apps.
func (n *Node) pusherAPI() http.Handler {
	if n.pusher == nil {
		return nil
	}
	var svc pusher.Service = n.pusher
	if n.roster != nil {
		svc = clusterPusher{Protocol: n.pusher, roster: n.roster}
	}
	return pusherapi.NewHandler(svc, pusherapi.Options{})
}

func (n *Node) demoHandler() http.Handler {
	if !n.cfg.Demo {
		return nil
	}
	return n.cfg.DemoPage
}

// apiBackend adapts Node to api.Backend.
type apiBackend struct{ n *Node }

func (b apiBackend) Ready() (bool, string) {
	if b.n.srv.Stopping() {
		return false, "draining"
	}
	if ok, why := b.n.broker.Ready(); !ok {
		return ok, why
	}
	if pb := b.n.pusherBroker; pb != nil {
		if ok, why := pb.Ready(); !ok {
			return ok, "pusher " + why
		}
	}
	if r := b.n.roster; r != nil {
		if ok, why := r.Ready(); !ok {
			return ok, "pusher " + why
		}
	}
	return true, ""
}

func (b apiBackend) Publish(channel string, data []byte) (api.Published, error) {
	pos, err := b.n.broker.Publish(context.Background(), channel, data)
	if err != nil {
		return api.Published{}, apiError(err)
	}
	return api.Published{Channel: channel, Offset: pos.Offset, Epoch: pos.Epoch}, nil
}

// apiError wraps a hub or broker error in the API error that chooses its
// status.
func apiError(err error) error {
	switch {
	case errors.Is(err, namespace.ErrUnknown):
		// The namespace's refusal alone: it names the namespace and the
		// channel, which the layers between would only repeat.
		var unknown *namespace.UnknownError
		if errors.As(err, &unknown) {
			err = unknown
		}
		return api.Refused(api.ErrUnknownNamespace, err)
	case errors.Is(err, hub.ErrInvalidChannel):
		return api.Refused(api.ErrBadRequest, clientReason(err))
	case errors.Is(err, hub.ErrTooLarge):
		return api.Refused(api.ErrTooLarge, clientReason(err))
	case errors.Is(err, hub.ErrChannelLimit):
		return fmt.Errorf("%w: %w", api.ErrUnavailable, err)
	case errors.Is(err, broker.ErrUnavailable):
		return fmt.Errorf("%w: %w", api.ErrUnavailable, err)
	}
	return err
}

// interestOf is the push.Interest of b: none for Memory, whose hub is
// the only copy of every channel (its Acquire lets every subscription
// proceed at once), so a subscription on one node costs no reservation
// in the hub and no deferred join; b itself for a broker that watches
// channels on other nodes' behalf.
func interestOf(b broker.Broker) push.Interest {
	if _, local := b.(*broker.Memory); local {
		return nil
	}
	return b
}

// clientReason is err said once, as a client reads it: a hub's
// ChannelError by its Reason (the layers a broker adds only repeat it),
// else err as it is. errors.Is still holds for what err wraps.
func clientReason(err error) error {
	var ce *hub.ChannelError
	if errors.As(err, &ce) {
		return reason{ce}
	}
	return err
}

// reason is a ChannelError that reads as its Reason.
type reason struct{ *hub.ChannelError }

func (r reason) Error() string { return r.Reason() }
func (r reason) Unwrap() error { return r.ChannelError }

var _ api.HistoryBackend = apiBackend{}

// PublishOnce publishes once per (channel, key) within the idempotency
// window: the node remembers its keys (Dedup), and the broker's message
// ID lets JetStream recognise a retry that reached another node.
func (b apiBackend) PublishOnce(channel string, data []byte, key string) (api.Published, error) {
	id := broker.DedupKey(channel, key)
	pos, dup, err := b.n.dedup.Do(id, func() (hub.Position, bool, error) {
		return b.n.broker.PublishOnce(context.Background(), channel, data, id)
	})
	if err != nil {
		return api.Published{}, apiError(err)
	}
	return api.Published{Channel: channel, Offset: pos.Offset, Epoch: pos.Epoch, Duplicate: dup}, nil
}

// History reads a page from the node's copy of the channel. With NATS,
// the read holds the channel's watch like a subscriber does: a channel the
// node was not watching is first replayed from JetStream (up to the warm
// timeout), then kept current for the watch's linger.
func (b apiBackend) History(q api.HistoryQuery) (api.HistoryPage, error) {
	if !hub.ValidChannel(q.Channel) {
		return api.HistoryPage{}, apiError(&hub.ChannelError{Op: "history of", Channel: q.Channel, Err: hub.ErrInvalidChannel})
	}
	if _, err := b.n.ns.Lookup(q.Channel); err != nil {
		return api.HistoryPage{}, apiError(err)
	}
	ready := make(chan struct{})
	if !b.n.broker.Acquire(q.Channel, nil, func() { close(ready) }) {
		<-ready
	}
	defer b.n.broker.Release(q.Channel)
	var since *hub.Position
	if q.Since != nil {
		since = &hub.Position{Offset: *q.Since, Epoch: q.Epoch}
	}
	page, err := b.n.hub.History(q.Channel, since, q.Limit)
	if err != nil {
		return api.HistoryPage{}, apiError(err)
	}
	out := api.HistoryPage{Epoch: page.Epoch, More: page.More, Recovered: page.Recovered}
	if since == nil && q.Epoch != "" && q.Epoch != page.Epoch {
		out.Recovered = false
	}
	out.Messages = make([]api.HistoryMessage, len(page.Messages))
	for i, m := range page.Messages {
		out.Messages[i] = api.HistoryMessage{Offset: m.Offset, Data: m.Data, Time: m.Time}
	}
	return out, nil
}

// RemoveHistory drops the channel's history on every node (with NATS, a
// purge of its subject) and starts a new epoch.
func (b apiBackend) RemoveHistory(channel string) (api.RemovedHistory, error) {
	if _, err := b.n.ns.Lookup(channel); err != nil {
		return api.RemovedHistory{}, apiError(err)
	}
	rm, err := b.n.broker.RemoveHistory(context.Background(), channel)
	if err != nil {
		return api.RemovedHistory{}, apiError(err)
	}
	return api.RemovedHistory{Channel: channel, Removed: rm.Messages, Epoch: rm.Epoch}, nil
}

func (b apiBackend) DisconnectUser(user, reason string) (int, error) {
	return b.n.push.DisconnectUser(user, reason), nil
}

// Channels lists one page of the hub's channels, leaving out the personal
// user: channels (who is online) unless q.Users.
func (b apiBackend) Channels(q api.ChannelQuery) (any, string) {
	o := hub.ListOptions{Prefix: q.Prefix, After: q.After, Limit: q.Limit}
	if !q.Users {
		o.Skip = func(name string) bool { return strings.HasPrefix(name, "user:") }
	}
	page, more := b.n.hub.List(o)
	if more && len(page) > 0 {
		return page, page[len(page)-1].Name
	}
	return page, ""
}

func (b apiBackend) Stats() any { return b.n.Stats() }

// AnonymousPublishPatterns returns AnonymousPublish with its default
// applied: unset means "demo:*" while the demo runs and none otherwise; an
// empty list means none.
func (c Config) AnonymousPublishPatterns() []string {
	if c.AnonymousPublish == nil && c.Demo {
		return []string{demoPublish}
	}
	return c.AnonymousPublish
}

// apiMaxConns is APIMaxConns with its default.
func (n *Node) apiMaxConns() int {
	if n.cfg.APIMaxConns > 0 {
		return n.cfg.APIMaxConns
	}
	return api.DefaultMaxConns
}

// checkAPI refuses an API listener anyone could use: a non-loopback address
// without an API key (unless APIInsecure), and pprof there in any case.
func checkAPI(cfg Config) error {
	if cfg.APIListen == "" || cfg.APIKey != "" || IsLoopback(cfg.APIListen) {
		return nil
	}
	if cfg.Pprof {
		return fmt.Errorf("api_listen %q is not a loopback address and pprof is on without an API key: "+
			"set an API key (--api-key-file or HERALD_API_KEY), or turn pprof off", cfg.APIListen)
	}
	if !cfg.APIInsecure {
		return fmt.Errorf("api_listen %q is not a loopback address and no API key is set, so anyone who reaches it "+
			"could publish and disconnect users: set an API key (--api-key-file or HERALD_API_KEY), listen on "+
			"127.0.0.1, or pass --api-insecure to run it open anyway", cfg.APIListen)
	}
	return nil
}

// IsLoopback reports whether the listen address addr ("host:port") binds
// only loopback interfaces: localhost or a loopback IP. An empty host
// (":8081") means every interface, hence false.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && api.IsLoopbackHost(host)
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/server"
)

// serveOptions is the whole configuration of `herald serve`; it is also the
// shape of the JSON config file.
type serveOptions struct {
	herald.Config
	// GCPercent is the Go collector's target heap growth (GOGC); a push
	// tier's heap is mostly long-lived connection state, so collecting
	// at +50 % instead of Go's +100 % trims resident memory per idle
	// connection for little CPU. The GOGC environment variable wins.
	GCPercent int    `json:"gc_percent"`
	LogLevel  string `json:"log_level"`
	LogFormat string `json:"log_format"`
	// APIKeyFile and JWTSecretFile name files holding the API key and the
	// JWT secret (one line), so the secrets stay out of `ps` and of
	// the config file.
	APIKeyFile    string `json:"api_key_file"`
	JWTSecretFile string `json:"jwt_secret_file"`
	// PusherAppID, PusherKey and PusherSecret (or PusherSecretFile) add
	// one Pusher application to Config.Pusher (several: pusher_apps in
	// the JSON file).
	PusherAppID      string `json:"-"`
	PusherKey        string `json:"-"`
	PusherSecret     string `json:"-"`
	PusherSecretFile string `json:"-"`
	// PusherWebhooks are that app's webhook URLs.
	PusherWebhooks []string `json:"-"`
}

func newServeCmd() *cobra.Command {
	opts := defaultServeOptions()
	var configPath string
	var printConfig bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "run a herald node",
		Long: `Run a herald node. Settings come from defaults, then the JSON file given
with --config, then HERALD_* environment variables (--max-conns is
HERALD_MAX_CONNS), then flags. --print-config shows the result.`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			secretFlags := givenSecretFlags(cmd.Flags())
			if err := loadLayered(cmd.Flags(), configPath, &opts); err != nil {
				return err
			}
			if err := readSecretFiles(&opts); err != nil {
				return err
			}
			if printConfig {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(redacted(opts))
			}
			return runServe(cmd.Context(), opts, cmd.ErrOrStderr(), secretFlags)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&configPath, "config", "", "JSON config file")
	fs.BoolVar(&printConfig, "print-config", false, "print the effective configuration as JSON and exit")
	bindServerFlags(fs, &opts)
	return cmd
}

func bindServerFlags(fs *pflag.FlagSet, o *serveOptions) {
	c := &o.Config.Config
	fs.StringVar(&c.Listen, "listen", c.Listen, "WebSocket listen address")
	fs.BoolVar(&c.Echo, "echo", c.Echo, "echo mode: every message is sent back, on any path (for conformance suites)")
	fs.IntVar(&c.Loops, "loops", c.Loops, "event loops (0 = one per core)")
	fs.Int64Var(&c.MaxFrameSize, "max-frame-size", c.MaxFrameSize, "largest frame payload accepted from a client, bytes (0 = max-message-size)")
	fs.Int64Var(&c.MaxMessageSize, "max-message-size", c.MaxMessageSize, "largest client message accepted, after reassembly and inflation, bytes (0 = 64 KiB; 16 MiB with --echo)")
	fs.IntVar(&c.MaxHeaderBytes, "max-header-bytes", c.MaxHeaderBytes, "largest upgrade request header, bytes")
	fs.Var(&c.HandshakeTimeout, "handshake-timeout", "time allowed to complete the upgrade request, from its first byte (and the TLS handshake)")
	fs.Var(&c.FirstByteTimeout, "first-byte-timeout", "close a new connection that sends nothing for this long (TLS: the ClientHello deadline)")
	fs.Var(&c.DeferAccept, "defer-accept", "the kernel holds a new connection until its first bytes come, up to this long, before herald accepts it (TCP_DEFER_ACCEPT; negative = off)")
	fs.IntVar(&c.MaxConns, "max-conns", c.MaxConns, "most concurrent connections (0 = kernel limit)")
	fs.IntVar(&c.MaxConnsPerIP, "max-conns-per-ip", c.MaxConnsPerIP, "most connections from one IP (IPv6: one /64), counted at accept; 0 = no cap")
	fs.IntVar(&c.MaxHandshakes, "max-handshakes", c.MaxHandshakes, "most connections accepted and not yet upgraded, plain and TLS (negative = no cap)")
	fs.IntVar(&c.MaxHandshakesPerIP, "max-handshakes-per-ip", c.MaxHandshakesPerIP, "most connections in handshake from one IP (IPv6: one /64; negative = no cap, e.g. behind a proxy)")
	fs.Int64Var(&c.MaxInboundBuffered, "max-inbound-buffered", c.MaxInboundBuffered, "node-wide bytes held for incomplete client messages before such clients are closed with 1013 (negative = no cap)")
	fs.Var(&c.MessageTimeout, "message-timeout", "close (1008) a client whose message stays incomplete this long (negative = never)")
	fs.Var(&c.PingInterval, "ping-interval", "ping a connection silent this long (0 = never)")
	fs.Var(&c.PongTimeout, "pong-timeout", "close a pinged connection silent this long")
	fs.IntVar(&c.WriteBufferLimit, "write-buffer-limit", c.WriteBufferLimit, "output budget of one connection: most unsent bytes queued for it (deliveries past it: slow-consumer policy; pongs and replies: close 1008)")
	fs.Var(&c.CloseLinger, "close-linger", "how long a closed connection may keep sending what was queued before its close frame (negative = close at once)")
	fs.Var(&c.DrainTimeout, "drain-timeout", "graceful shutdown window: clients are closed with 1001 over its first half, the rest cut at its end")
	fs.Var(&c.ShutdownDelay, "shutdown-delay", "on SIGTERM, keep serving this long with /readyz already 503 (so a load balancer takes the node out) before the drain starts")
	fs.Var(&c.ReconnectSpread, "reconnect-spread", "window of the reconnect delays a drain's 1001 closes advise, each client its own (negative = no advice)")
	fs.IntVar(&c.SocketRecvBuffer, "socket-recv-buffer", c.SocketRecvBuffer, "SO_RCVBUF per connection, bytes (0 = kernel autotuning)")
	fs.IntVar(&c.SocketSendBuffer, "socket-send-buffer", c.SocketSendBuffer, "SO_SNDBUF per connection, bytes (0 = kernel autotuning)")
	fs.Var(&c.TCPKeepAlive, "tcp-keepalive", "TCP keep-alive idle time before probes (0 = off)")
	fs.BoolVar(&c.Compression, "compression", c.Compression, "accept permessage-deflate from clients that offer it (compressed once per publish)")
	fs.IntVar(&c.CompressionLevel, "compression-level", c.CompressionLevel, "deflate level, 1 (fastest) to 9 (smallest); 0 = 6")
	fs.IntVar(&c.CompressionMinSize, "compression-min-size", c.CompressionMinSize, "smallest payload compressed, bytes (0 = 128; negative = all)")
	fs.StringVar(&c.TLSListen, "tls-listen", c.TLSListen, "wss:// listen address (needs --tls-cert and --tls-key; empty = no TLS listener)")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "PEM certificate chain for --tls-listen (herald gencert makes one for development)")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "PEM private key for --tls-listen")
	fs.StringVar(&c.TLSEngine, "tls-engine", c.TLSEngine, "who carries TLS after the handshake: loop (TLS 1.3 on the event loops; TLS 1.2 bridged) or bridge (every connection bridged; empty = loop)")
	fs.IntVar(&c.TLSMaxHandshakes, "tls-max-handshakes", c.TLSMaxHandshakes, "TLS handshakes in progress at once (0 = 256 per core)")

	h := &o.Config
	fs.StringVar(&h.APIListen, "api-listen", h.APIListen, "HTTP API listen address (empty = no API listener); any non-loopback address needs an API key or --api-insecure")
	fs.StringVar(&h.APIKey, "api-key", h.APIKey, "require this key on /api/ and /debug/pprof/ (Authorization: Bearer KEY or X-API-Key); prefer --api-key-file or HERALD_API_KEY, a flag shows in ps")
	fs.StringVar(&o.APIKeyFile, "api-key-file", o.APIKeyFile, "file holding the API key (its first line)")
	fs.BoolVar(&h.APIInsecure, "api-insecure", h.APIInsecure, "allow a non-loopback --api-listen without an API key: anyone who reaches it may publish")
	fs.IntVar(&h.APIMaxConns, "api-max-conns", h.APIMaxConns, "most open connections on the API listener")
	fs.Int64Var(&h.MaxBodyBytes, "max-body-bytes", h.MaxBodyBytes, "largest API request body, bytes")
	fs.BoolVar(&h.Pprof, "pprof", h.Pprof, "serve /debug/pprof/ on the API listener, behind the API key")
	fs.BoolVar(&h.Demo, "demo", h.Demo, "run the demo: the shared counter, its page at / on the API listener, anonymous publishing to demo:*")
	fs.BoolVar(&h.AllowAnonymous, "allow-anonymous", h.AllowAnonymous, "let clients connect without a token")
	fs.StringSliceVar(&h.AnonymousSubscribe, "anonymous-subscribe", h.AnonymousSubscribe, "channel patterns anonymous clients may subscribe to (empty = none)")
	fs.StringSliceVar(&h.AnonymousPublish, "anonymous-publish", h.AnonymousPublish, "channel patterns anonymous clients may publish to (empty = none; unset = demo:* with --demo, else none)")
	fs.StringVar(&h.JWTSecret, "jwt-secret", h.JWTSecret, "HS256 secret for connection tokens (at least 32 bytes); prefer --jwt-secret-file or HERALD_JWT_SECRET, a flag shows in ps")
	fs.StringVar(&o.JWTSecretFile, "jwt-secret-file", o.JWTSecretFile, "file holding the HS256 secret (its first line)")
	fs.StringSliceVar(&h.JWTPublicKeys, "jwt-public-key", h.JWTPublicKeys, "PEM file with an RS256/ES256 public key (repeatable)")
	fs.StringVar(&h.JWTIssuer, "jwt-issuer", h.JWTIssuer, "required token issuer (iss)")
	fs.Var(&h.JWTLeeway, "jwt-leeway", "clock skew allowed on token times (exp, nbf, iat)")
	fs.StringVar(&h.JWTAudience, "jwt-audience", h.JWTAudience, "required token audience (aud)")
	fs.IntVar(&h.JWTCacheSize, "jwt-cache-size", h.JWTCacheSize, "verified tokens remembered (from their second check on), so a token presented again skips its signature check (negative = none)")
	fs.StringSliceVar(&h.AllowedOrigins, "allowed-origin", h.AllowedOrigins, "browser origin allowed to connect, e.g. https://app.example.com (repeatable)")
	fs.IntVar(&h.HistorySize, "history-size", h.HistorySize, "messages kept per channel for recovery")
	fs.Var(&h.HistoryTTL, "history-ttl", "age past which messages leave history")
	fs.Var(&h.IdempotencyWindow, "idempotency-window", "how long a publish's idempotency_key is remembered (with NATS, also the duplicate window of the stream a node creates)")
	fs.IntVar(&h.MaxPublishSize, "max-publish-size", h.MaxPublishSize, "largest published payload (API and client pub), bytes; its frame must fit --write-buffer-limit")
	fs.IntVar(&h.MaxSubscriptions, "max-subscriptions", h.MaxSubscriptions, "subscriptions per connection, the personal user: channel aside")
	fs.IntVar(&h.MaxChannels, "max-channels", h.MaxChannels, "channels per node")
	fs.Float64Var(&h.CommandRate, "command-rate", h.CommandRate, "client commands per second per connection (bursts of twice that); past it close 1008")
	fs.Int64Var(&h.HistoryChannelBytes, "history-channel-bytes", h.HistoryChannelBytes, "history bytes per channel")
	fs.StringVar(&h.SlowPolicy, "slow-policy", h.SlowPolicy, "slow consumers: close (1013), close-policy (1008) or drop")
	fs.IntVar(&h.Workers, "workers", h.Workers, "goroutines for message handlers")
	fs.StringVar(&h.PollerBackend, "poller-backend", h.PollerBackend, "event loops: epoll (Linux only) or gnet (empty = epoll on Linux, gnet elsewhere)")
	fs.StringVar(&h.Broker, "broker", h.Broker, "how publishes reach every node: memory (one node) or nats://HOST:PORT[,nats://...] (NATS with JetStream)")
	fs.BoolVar(&h.BrokerOptional, "broker-optional", h.BrokerOptional, "start even when NATS is unreachable (not ready, publishes refused, until it connects)")
	fs.IntVar(&h.BrokerReplicas, "broker-replicas", h.BrokerReplicas, "replicas of the JetStream stream, when this node creates it (3 for a 3-server NATS cluster)")
	fs.StringVar(&o.PusherAppID, "pusher-app-id", o.PusherAppID, "serve one Pusher Channels app: its id (the HTTP API's /apps/{id}); needs --pusher-key and a secret")
	fs.StringVar(&o.PusherKey, "pusher-key", o.PusherKey, "the Pusher app's key: pusher-js clients connect to /app/{key}")
	fs.StringVar(&o.PusherSecret, "pusher-secret", o.PusherSecret, "the Pusher app's secret (signs channel auth); prefer --pusher-secret-file or HERALD_PUSHER_SECRET, a flag shows in ps")
	fs.StringVar(&o.PusherSecretFile, "pusher-secret-file", o.PusherSecretFile, "file holding the Pusher app's secret (its first line)")
	fs.StringSliceVar(&o.PusherWebhooks, "pusher-webhook", o.PusherWebhooks, "http(s) URL the Pusher app's webhooks are posted to (repeatable)")
	fs.Int64Var(&h.BrokerMaxBytes, "broker-max-bytes", h.BrokerMaxBytes, "bound on the bytes of the JetStream stream, when this node creates it (0 = none); the oldest messages go first")
	// Backend hooks (docs/hooks.md).
	hk := &o.Config.Hooks
	fs.StringVar(&hk.ConnectURL, "hook-connect-url", hk.ConnectURL, "URL asked whether a client without a token may connect (cookie sessions; docs/hooks.md)")
	fs.StringVar(&hk.SubscribeURL, "hook-subscribe-url", hk.SubscribeURL, "URL asked about subscriptions the client's credentials do not grant")
	fs.BoolVar(&hk.SubscribeAll, "hook-subscribe-all", hk.SubscribeAll, "ask the subscribe hook about every channel, granted or not (the personal user: channel aside)")
	fs.StringVar(&hk.PublishURL, "hook-publish-url", hk.PublishURL, "URL asked about every client publish (it may rewrite the data)")
	fs.StringVar(&hk.RefreshURL, "hook-refresh-url", hk.RefreshURL, "URL asked to extend a hook-authorized connection before its expire_at")
	fs.Var(&hk.Timeout, "hook-timeout", "time allowed to one hook call (0 = 3s); keep it under --handshake-timeout")
	fs.IntVar(&hk.MaxConcurrent, "hook-max-concurrent", hk.MaxConcurrent, "hook calls in flight; more are refused as unavailable at once (0 = 256)")
	fs.StringSliceVar(&hk.Headers, "hook-header", hk.Headers, "upgrade request header forwarded to the hooks (repeatable)")
	fs.StringSliceVar(&hk.Cookies, "hook-cookie", hk.Cookies, "cookie forwarded to the hooks (repeatable)")
	fs.IntVar(&hk.BreakerFailures, "hook-breaker-failures", hk.BreakerFailures, "failed hook calls in a row that open its circuit breaker (0 = 5)")
	fs.Var(&hk.BreakerOpen, "hook-breaker-open", "how long an open hook breaker refuses before it probes the backend (0 = 5s)")
	fs.Var(&h.PusherLeaveDelay, "pusher-leave-delay", "how long a presence member whose last connection left stays before member_removed, so a reload is no leave (0 = 1s, negative = none)")
	fs.Var(&h.PusherNodeTimeout, "pusher-node-timeout", "with NATS, how long a node's presence heartbeat may be silent before the other nodes drop its members (0 = 5s)")
	// Accept pace.
	fs.Float64Var(&c.AcceptRate, "accept-rate", c.AcceptRate, "new connections per second the node takes, plain and TLS together; past it 503 with Retry-After (TLS: closed before the handshake); 0 = no pace")
	fs.IntVar(&c.AcceptBurst, "accept-burst", c.AcceptBurst, "new connections that may arrive at once above --accept-rate (0 = one second's worth)")
	fs.StringSliceVar(&h.PresenceChannels, "presence-channel", h.PresenceChannels, "channel pattern (outside namespaces) whose channels have presence: join/leave events and a member list (repeatable)")
	fs.Var(&h.PresenceLeaveDelay, "presence-leave-delay", "how long a presence member whose last connection left stays before its leave event, so a reload is no leave (0 = 1s, negative = none)")
	// Presence member cap.
	fs.IntVar(&h.PresenceMaxMembers, "presence-max-members", h.PresenceMaxMembers, "members (distinct users) of one presence channel; a new member past it gets error limit (0 = 100, negative = no cap)")
	fs.IntVar(&o.GCPercent, "gc-percent", o.GCPercent, "Go GC target heap growth in percent (GOGC; the GOGC environment variable wins)")
	fs.StringVar(&o.LogLevel, "log-level", o.LogLevel, "debug, info, warn or error")
	fs.StringVar(&o.LogFormat, "log-format", o.LogFormat, "text or json")
}

// newLogger logs to w at level, as text or JSON.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	ho := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, ho)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, ho)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is neither text nor json", format)
}

// runServe runs a node until ctx ends or a signal comes, logging to logOut;
// secretFlags are the secret-carrying flags given on the command line.
func runServe(ctx context.Context, o serveOptions, logOut io.Writer, secretFlags []string) error {
	log, err := newLogger(logOut, o.LogLevel, o.LogFormat)
	if err != nil {
		return err
	}
	warnExposure(log, o, secretFlags)
	raiseFileLimit(log, o.MaxConns, o.TLSListen != "", o.TLSEngine == server.TLSEngineBridge)
	if _, set := os.LookupEnv("GOGC"); !set && o.GCPercent > 0 {
		debug.SetGCPercent(o.GCPercent)
	}
	spareProc(log, o.Config.Loops)
	cfg, demo := withHooks(o.Config)
	cfg.Logger = log
	node, err := herald.New(cfg)
	if err != nil {
		return err
	}
	if demo != nil {
		demo.Attach(node)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	reloadOnHUP(ctx, log, node.Server())
	errc := make(chan error, 1)
	go func() { errc <- node.Run(ctx) }()
	select {
	case <-node.Ready():
	case err := <-errc:
		return err
	}
	if node.Addr() == nil {
		return <-errc // the listener failed; Run says why
	}
	ws := "ws://" + displayAddr(node.Addr().String())
	if ta := node.Server().TLSAddr(); ta != nil {
		log.Info("tls listening", "websocket", "wss://"+displayAddr(ta.String())+"/")
	}
	if o.Echo {
		log.Info("herald listening (echo mode)", "websocket", ws+"/", "version", version)
	} else {
		log.Info("herald listening", "websocket", ws+"/ws?channel=news", "version", version)
	}
	if a := node.APIAddr(); a != nil {
		api := "http://" + displayAddr(a.String())
		log.Info("api listening", "publish", "curl -d hello '"+api+"/api/publish?channel=news'", "metrics", api+"/metrics")
		if o.Demo && !o.Echo {
			log.Info("demo page", "open", api+"/")
		}
	}
	err = <-errc
	log.Info("stopped")
	return err
}

// reloadOnHUP re-reads the TLS certificate and key on each SIGHUP until
// ctx ends (Server.ReloadTLS logs the outcome); without a TLS listener a
// SIGHUP is logged and ignored.
func reloadOnHUP(ctx context.Context, log *slog.Logger, srv *server.Server) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := srv.ReloadTLS(); errors.Is(err, server.ErrNoTLS) {
					log.Info("SIGHUP ignored: no TLS listener")
				}
			}
		}
	}()
}

// displayAddr turns "[::]:8080" or ":8080" into "localhost:8080" for the
// "how to connect" lines.
func displayAddr(a string) string {
	for _, p := range []string{"[::]", "0.0.0.0"} {
		if strings.HasPrefix(a, p+":") {
			return "localhost" + a[len(p):]
		}
	}
	if strings.HasPrefix(a, ":") {
		return "localhost" + a
	}
	return a
}

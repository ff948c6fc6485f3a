package server

import (
	"errors"
	"fmt"
	"time"
)

// Config is everything a Server needs to know. Apart from Listen, a zero
// field means its default (DefaultConfig lists them), so a Config with
// only Listen set is valid; the limits a client could otherwise push
// without bound (every byte herald queues or buffers for it, handshakes in
// progress, time spent on an incomplete message) all have one. A Config is
// read-only once passed to New.
type Config struct {
	// Listen is the WebSocket listener address (host:port).
	Listen string `json:"listen"`
	// Echo turns the server into an RFC 6455 echo server on every path:
	// each text or binary message is sent back with the same opcode. It is
	// what conformance suites test against.
	Echo bool `json:"echo"`

	// Loops is the number of event loops; 0 means one per core.
	Loops int `json:"loops"`

	// MaxFrameSize caps the payload of one frame, in bytes (1009 beyond);
	// 0 means MaxMessageSize.
	MaxFrameSize int64 `json:"max_frame_size"`
	// MaxMessageSize caps a client's message after reassembly and after
	// permessage-deflate inflation, in bytes (1009 beyond). 0 means
	// DefaultMaxMessageSize for the push protocol, whose commands are
	// small, and DefaultEchoMaxMessageSize in echo mode (conformance
	// suites send large messages).
	MaxMessageSize int64 `json:"max_message_size"`
	// MaxInboundBuffered caps, node-wide, the bytes held for incomplete
	// client input: partial frames waiting for their end and fragments of
	// unfinished messages. A connection whose input would push the total
	// past it is closed with 1013 "server busy". 0 means
	// DefaultMaxInboundBuffered; negative, no cap.
	MaxInboundBuffered int64 `json:"max_inbound_buffered"`
	// MessageTimeout bounds how long a client's message may stay
	// incomplete (started, not finished); then the connection is closed
	// with 1008 "message timeout". 0 means DefaultMessageTimeout;
	// negative, no bound.
	MessageTimeout Duration `json:"message_timeout"`
	// MaxHeaderBytes caps the HTTP upgrade request (431 beyond); 0 means
	// 8 KiB.
	MaxHeaderBytes int `json:"max_header_bytes"`
	// FirstByteTimeout closes a new connection that sends nothing in this
	// time; on the TLS listener it is the deadline for the ClientHello.
	// 0 means DefaultFirstByteTimeout.
	FirstByteTimeout Duration `json:"first_byte_timeout"`
	// DeferAccept has the kernel hold a new connection until its first
	// bytes arrive, for up to this long, before the event loop accepts it
	// (TCP_DEFER_ACCEPT, whole seconds; Linux, both listeners, the plain
	// one only with the epoll backend): a client that connects and sends nothing holds no
	// descriptor and no handshake slot meanwhile, then is accepted and
	// FirstByteTimeout runs as usual, and a connection costs the loop one
	// wakeup instead of two (its first bytes are read as it is accepted).
	// 0 means DefaultDeferAccept; negative, none.
	DeferAccept Duration `json:"defer_accept"`
	// HandshakeTimeout closes connections that have not completed the
	// upgrade request in time, counted from their first byte; 0 means
	// 10s. On the TLS listener it also bounds the TLS handshake.
	HandshakeTimeout Duration `json:"handshake_timeout"`
	// MaxConns caps concurrent connections on this node (503 with
	// Retry-After beyond); 0 means no cap other than the kernel's.
	MaxConns int `json:"max_conns"`
	// MaxConnsPerIP caps the connections open at once from one client
	// address (IPv6: one /64), counted when the connection is accepted and
	// released when it closes (429 with Retry-After beyond); 0 means no
	// cap. Behind a proxy every client shares its address: leave it 0.
	MaxConnsPerIP int `json:"max_conns_per_ip"`
	// MaxHandshakes caps the connections accepted and not yet upgraded
	// (plain and TLS), node-wide, counted at accept (503 with Retry-After
	// beyond; a TLS connection is closed). 0 means DefaultMaxHandshakes;
	// negative, no cap.
	MaxHandshakes int `json:"max_handshakes"`
	// MaxHandshakesPerIP is MaxHandshakes per client address (IPv6: per
	// /64; 429 with Retry-After beyond). 0 means
	// DefaultMaxHandshakesPerIP; negative, no cap (behind a proxy).
	MaxHandshakesPerIP int `json:"max_handshakes_per_ip"`

	// PingInterval is how long a connection may stay silent before the
	// server pings it; 0 disables server pings.
	PingInterval Duration `json:"ping_interval"`
	// PongTimeout is how long the server waits for any frame after a ping
	// before it closes the connection as dead.
	PongTimeout Duration `json:"pong_timeout"`

	// WriteBufferLimit is the output budget of one connection: the bytes
	// queued for it and not yet taken by the kernel, whatever they are
	// (deliveries, history backlog, pongs, replies). Output the client
	// caused past it closes the connection with 1008 "output budget
	// exceeded"; deliveries past it follow the slow-consumer policy. A
	// close frame is always let through. 0 means 1 MiB; in echo mode it is
	// at least one largest message's frame (MaxMessageSize + 14 bytes).
	WriteBufferLimit int `json:"write_buffer_limit"`
	// CloseLinger is how long a closed connection may keep sending what
	// was queued before its close (the close frame last) to a peer that
	// reads slowly; it is not read from meanwhile. So a slow consumer sees
	// its 1013, not a reset. 0 means DefaultCloseLinger; negative closes
	// at once.
	CloseLinger Duration `json:"close_linger"`

	// DrainTimeout bounds a graceful shutdown: connections are closed with
	// 1001 spread over this window, and whatever is left at its end is cut.
	DrainTimeout Duration `json:"drain_timeout"`
	// ShutdownDelay is how long Shutdown keeps serving normally before the
	// drain begins: Stopping turns true at once (the API's /readyz answers
	// 503), upgrades are still accepted and messages delivered, so that a
	// load balancer takes the node out of rotation before its clients are
	// closed. 0: drain at once.
	ShutdownDelay Duration `json:"shutdown_delay"`
	// ReconnectSpread is the window over which a drain's 1001 closes tell
	// clients to come back: each connection's close reason carries a
	// delay of its own, uniform in [0, ReconnectSpread), as
	// "reconnect_after_ms=N" (docs/protocol.md). 0 means
	// DefaultReconnectSpread; negative sends no advice.
	ReconnectSpread Duration `json:"reconnect_spread"`

	// SocketRecvBuffer and SocketSendBuffer set SO_RCVBUF/SO_SNDBUF on
	// accepted sockets; 0 leaves the kernel's autotuning alone.
	SocketRecvBuffer int `json:"socket_recv_buffer"`
	SocketSendBuffer int `json:"socket_send_buffer"`
	// TCPKeepAlive turns on TCP keep-alive probes after this much idle time
	// (0: off). WebSocket pings already find dead peers; keep-alive helps
	// where a NAT or load balancer drops idle flows sooner than the ping
	// interval.
	TCPKeepAlive Duration `json:"tcp_keepalive"`

	// PollerBackend picks the event loops' implementation:
	// poller.BackendEpoll (Linux only, the default there) or
	// poller.BackendGnet (every OS, the default elsewhere); empty means the
	// platform's default. Nothing in the library reads the environment for
	// it: `herald serve` takes it from --poller-backend or
	// HERALD_POLLER_BACKEND.
	PollerBackend string `json:"poller_backend"`

	// Compression accepts permessage-deflate (RFC 7692) from clients that
	// offer it, always without context takeover on either side, so a
	// connection keeps no compression state while idle and one compressed
	// frame per publish serves every such subscriber. Default on.
	Compression bool `json:"compression"`
	// CompressionLevel is the flate level, 1 (fastest) to 9 (smallest);
	// 0 means 6.
	CompressionLevel int `json:"compression_level"`
	// CompressionMinSize is the smallest payload compressed; smaller ones
	// are sent plain. 0 means 128 bytes; negative compresses everything.
	CompressionMinSize int `json:"compression_min_size"`

	// TLSListen, when set, is a second listener that speaks wss:// (TLS
	// 1.2 or 1.3) with the certificate chain in TLSCert and the key in
	// TLSKey (PEM files). See TLSEngine for where TLS runs, and tuning.md
	// for its cost and for when to terminate TLS in front instead.
	TLSListen string `json:"tls_listen"`
	TLSCert   string `json:"tls_cert"`
	TLSKey    string `json:"tls_key"`
	// TLSMaxHandshakes bounds the TLS handshakes in progress at once;
	// connections beyond it wait in the kernel's accept queue. 0 means
	// 256 per core.
	TLSMaxHandshakes int `json:"tls_max_handshakes"`
	// TLSEngine chooses who carries TLS after the handshake (which
	// crypto/tls does, on a bounded pool of goroutines, in both): "loop"
	// (the default) moves TLS 1.3 connections onto the event loops with
	// their own record layer (package tlsrec): one descriptor, no
	// goroutine and no buffer per idle connection; TLS 1.2 clients stay
	// on the bridge, counted. "bridge" bridges every connection to the
	// loops through a socket pair and two goroutines.
	TLSEngine string `json:"tls_engine"`

	// Accept pace: a node-wide token bucket on new connections.

	// AcceptRate is the pace at which the node takes new connections,
	// plain and TLS together, in connections per second; a connection
	// past it is refused as it is accepted: on the WebSocket port with
	// HTTP 503 and a Retry-After of 1 to 3 seconds (jittered, so refused
	// clients do not come back together), on the TLS port closed before
	// its TLS handshake. 0 means no pace (the default: the right figure
	// depends on the node's cores and on what a handshake costs there,
	// see docs/security.md); it must not be negative.
	AcceptRate float64 `json:"accept_rate"`
	// AcceptBurst is how many connections may arrive at once above
	// AcceptRate (the bucket's size); 0 means one second's worth of
	// AcceptRate (at least 1).
	AcceptBurst int `json:"accept_burst"`
}

// TLS engines (Config.TLSEngine).
const (
	TLSEngineLoop   = "loop"
	TLSEngineBridge = "bridge"
)

// Defaults of the Config fields whose zero value means "the default".
const (
	DefaultMaxMessageSize     = 64 << 10
	DefaultEchoMaxMessageSize = 16 << 20
	DefaultMaxInboundBuffered = 256 << 20
	DefaultMessageTimeout     = 10 * time.Second
	DefaultFirstByteTimeout   = 3 * time.Second
	DefaultDeferAccept        = time.Second
	DefaultHandshakeTimeout   = 10 * time.Second
	DefaultMaxHandshakes      = 4096
	DefaultMaxHandshakesPerIP = 32
	DefaultWriteBufferLimit   = 1 << 20
	DefaultCloseLinger        = 3 * time.Second
	DefaultMaxHeaderBytes     = 8 << 10
	DefaultPongTimeout        = 10 * time.Second
	DefaultReconnectSpread    = 10 * time.Second
)

// maxMessageTimeout bounds MessageTimeout: connection deadlines are kept
// in 32-bit milliseconds.
const maxMessageTimeout = 24 * time.Hour

// DefaultConfig returns the settings herald runs with when nothing is set.
// MaxMessageSize and MaxFrameSize stay 0: their default depends on the
// mode (see MaxMessageSize).
func DefaultConfig() Config {
	return Config{
		Listen:             ":8080",
		MaxHeaderBytes:     DefaultMaxHeaderBytes,
		MaxInboundBuffered: DefaultMaxInboundBuffered,
		MessageTimeout:     Duration(DefaultMessageTimeout),
		FirstByteTimeout:   Duration(DefaultFirstByteTimeout),
		DeferAccept:        Duration(DefaultDeferAccept),
		HandshakeTimeout:   Duration(DefaultHandshakeTimeout),
		MaxHandshakes:      DefaultMaxHandshakes,
		MaxHandshakesPerIP: DefaultMaxHandshakesPerIP,
		PingInterval:       Duration(25 * time.Second),
		PongTimeout:        Duration(DefaultPongTimeout),
		WriteBufferLimit:   DefaultWriteBufferLimit,
		CloseLinger:        Duration(DefaultCloseLinger),
		DrainTimeout:       Duration(10 * time.Second),
		ReconnectSpread:    Duration(DefaultReconnectSpread),
		Compression:        true,
	}
}

// withDefaults returns c with its zero fields set to their defaults; echo
// picks the echo mode's message size.
func (c Config) withDefaults(echo bool) Config {
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
		if echo {
			c.MaxMessageSize = DefaultEchoMaxMessageSize
		}
	}
	if c.MaxFrameSize == 0 || c.MaxFrameSize > c.MaxMessageSize {
		c.MaxFrameSize = c.MaxMessageSize // no frame can carry more anyway
	}
	setDefault(&c.MaxInboundBuffered, DefaultMaxInboundBuffered)
	setDefault(&c.MessageTimeout, Duration(DefaultMessageTimeout))
	setDefault(&c.FirstByteTimeout, Duration(DefaultFirstByteTimeout))
	setDefault(&c.DeferAccept, Duration(DefaultDeferAccept))
	setDefault(&c.HandshakeTimeout, Duration(DefaultHandshakeTimeout))
	setDefault(&c.MaxHandshakes, DefaultMaxHandshakes)
	setDefault(&c.MaxHandshakesPerIP, DefaultMaxHandshakesPerIP)
	setDefault(&c.WriteBufferLimit, DefaultWriteBufferLimit)
	if echo {
		// An echo server's output is its input: one largest message must
		// fit the budget, or the echo would close what it accepted.
		c.WriteBufferLimit = max(c.WriteBufferLimit, int(c.MaxMessageSize)+maxFrameHeader)
	}
	setDefault(&c.CloseLinger, Duration(DefaultCloseLinger))
	setDefault(&c.ReconnectSpread, Duration(DefaultReconnectSpread))
	setDefault(&c.MaxHeaderBytes, DefaultMaxHeaderBytes)
	if c.PingInterval > 0 {
		setDefault(&c.PongTimeout, Duration(DefaultPongTimeout))
	}
	return c
}

// maxFrameHeader is the longest WebSocket frame header a server sends
// (2 + 8 bytes of length; server frames are unmasked) plus room for a
// mask, should a client role ever share the budget.
const maxFrameHeader = 14

// setDefault sets *v to def when it is zero.
func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if c.Listen == "" {
		errs = append(errs, errors.New("listen: address is required"))
	}
	if c.MaxFrameSize < 0 || c.MaxMessageSize < 0 {
		errs = append(errs, fmt.Errorf("max_frame_size (%d) and max_message_size (%d): must not be negative (0 for the default)", c.MaxFrameSize, c.MaxMessageSize))
	}
	if c.MaxFrameSize > 0 && c.MaxMessageSize > 0 && c.MaxMessageSize < c.MaxFrameSize {
		errs = append(errs, fmt.Errorf("max_message_size (%d) must be at least max_frame_size (%d)", c.MaxMessageSize, c.MaxFrameSize))
	}
	if c.MaxHeaderBytes != 0 && c.MaxHeaderBytes < 512 {
		errs = append(errs, fmt.Errorf("max_header_bytes: must be at least 512 (0 for the default), got %d", c.MaxHeaderBytes))
	}
	if c.HandshakeTimeout < 0 || c.FirstByteTimeout < 0 {
		errs = append(errs, errors.New("handshake_timeout and first_byte_timeout: must not be negative (0 for the default)"))
	}
	if c.MessageTimeout > Duration(maxMessageTimeout) {
		errs = append(errs, fmt.Errorf("message_timeout: at most %v, got %v", maxMessageTimeout, c.MessageTimeout))
	}
	if c.PingInterval > 0 && c.PongTimeout < 0 {
		errs = append(errs, errors.New("pong_timeout: must not be negative when ping_interval is set"))
	}
	if c.ShutdownDelay < 0 {
		errs = append(errs, errors.New("shutdown_delay: must not be negative"))
	}
	if c.WriteBufferLimit < 0 {
		errs = append(errs, errors.New("write_buffer_limit: must not be negative (0 for the default)"))
	}
	if c.MaxConnsPerIP < 0 {
		errs = append(errs, errors.New("max_conns_per_ip: must not be negative (0 for no cap)"))
	}
	if c.CompressionLevel < 0 || c.CompressionLevel > 9 {
		errs = append(errs, fmt.Errorf("compression_level: want 1 to 9 (0 for the default), got %d", c.CompressionLevel))
	}
	if c.TLSListen != "" && (c.TLSCert == "" || c.TLSKey == "") {
		errs = append(errs, errors.New("tls_listen: needs tls_cert and tls_key"))
	}
	switch c.TLSEngine {
	case "", TLSEngineLoop, TLSEngineBridge:
	default:
		errs = append(errs, fmt.Errorf("tls_engine: want %q or %q, got %q", TLSEngineLoop, TLSEngineBridge, c.TLSEngine))
	}
	if c.TLSMaxHandshakes < 0 {
		errs = append(errs, errors.New("tls_max_handshakes: must not be negative"))
	}
	if c.AcceptRate < 0 || c.AcceptBurst < 0 {
		errs = append(errs, fmt.Errorf("accept_rate (%v) and accept_burst (%d): must not be negative (0: no pace, and one second's worth)", c.AcceptRate, c.AcceptBurst))
	}
	if c.MaxConns < 0 || c.Loops < 0 {
		errs = append(errs, errors.New("max_conns and loops must not be negative"))
	}
	return errors.Join(errs...)
}

// Duration is a time.Duration that reads and writes as "10s" in JSON.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes the duration as "10s".
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads "10s", "1m30s" and the like.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: %w", b, err)
	}
	*d = Duration(v)
	return nil
}

// Set parses a flag value such as "10s" (pflag.Value).
func (d *Duration) Set(s string) error { return d.UnmarshalText([]byte(s)) }

// Type names the flag's value type (pflag.Value).
func (*Duration) Type() string { return "duration" }

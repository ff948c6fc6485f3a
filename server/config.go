package server

import (
	"errors"
	"fmt"
	"time"
)

// Config is everything a Server needs to know. The zero value is not
// meaningful; start from DefaultConfig and change what you need. A Config
// is read-only once passed to New.
type Config struct {
	// Listen is the WebSocket listener address (host:port).
	Listen string `json:"listen"`
	// Echo turns the server into an RFC 6455 echo server on every path:
	// each text or binary message is sent back with the same opcode. It is
	// what conformance suites test against.
	Echo bool `json:"echo"`

	// Loops is the number of event loops; 0 means one per core.
	Loops int `json:"loops"`

	// MaxFrameSize caps the payload of one frame, in bytes (1009 beyond).
	MaxFrameSize int64 `json:"max_frame_size"`
	// MaxMessageSize caps a reassembled message, in bytes (1009 beyond).
	MaxMessageSize int64 `json:"max_message_size"`
	// MaxHeaderBytes caps the HTTP upgrade request (431 beyond).
	MaxHeaderBytes int `json:"max_header_bytes"`
	// HandshakeTimeout closes connections that have not completed the
	// upgrade request in time.
	HandshakeTimeout Duration `json:"handshake_timeout"`
	// MaxConns caps concurrent connections on this node (503 beyond);
	// 0 means no cap other than the kernel's.
	MaxConns int `json:"max_conns"`

	// PingInterval is how long a connection may stay silent before the
	// server pings it; 0 disables server pings.
	PingInterval Duration `json:"ping_interval"`
	// PongTimeout is how long the server waits for any frame after a ping
	// before it closes the connection as dead.
	PongTimeout Duration `json:"pong_timeout"`

	// WriteBufferLimit caps the bytes queued and unsent to one connection.
	WriteBufferLimit int `json:"write_buffer_limit"`

	// DrainTimeout bounds a graceful shutdown: connections are closed with
	// 1001 spread over this window, and whatever is left at its end is cut.
	DrainTimeout Duration `json:"drain_timeout"`

	// SocketRecvBuffer and SocketSendBuffer set SO_RCVBUF/SO_SNDBUF on
	// accepted sockets; 0 leaves the kernel's autotuning alone.
	SocketRecvBuffer int `json:"socket_recv_buffer"`
	SocketSendBuffer int `json:"socket_send_buffer"`
	// TCPKeepAlive turns on TCP keep-alive probes after this much idle time
	// (0: off). WebSocket pings already find dead peers; keep-alive helps
	// where a NAT or load balancer drops idle flows sooner than the ping
	// interval.
	TCPKeepAlive Duration `json:"tcp_keepalive"`

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
	// TLSKey (PEM files). TLS runs off the event loops, one goroutine pair
	// per connection, and hands the plaintext to the loops; see tuning.md
	// for its cost and for when to terminate TLS in front instead.
	TLSListen string `json:"tls_listen"`
	TLSCert   string `json:"tls_cert"`
	TLSKey    string `json:"tls_key"`
	// TLSMaxHandshakes bounds the TLS handshakes in progress at once;
	// connections beyond it wait in the kernel's accept queue. 0 means
	// 256 per core.
	TLSMaxHandshakes int `json:"tls_max_handshakes"`
}

// DefaultConfig returns the settings herald runs with when nothing is set.
func DefaultConfig() Config {
	return Config{
		Listen:           ":8080",
		MaxFrameSize:     1 << 20,
		MaxMessageSize:   4 << 20,
		MaxHeaderBytes:   8 << 10,
		HandshakeTimeout: Duration(10 * time.Second),
		PingInterval:     Duration(25 * time.Second),
		PongTimeout:      Duration(10 * time.Second),
		WriteBufferLimit: 1 << 20,
		DrainTimeout:     Duration(10 * time.Second),
		Compression:      true,
	}
}

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if c.Listen == "" {
		errs = append(errs, errors.New("listen: address is required"))
	}
	if c.MaxFrameSize <= 0 {
		errs = append(errs, fmt.Errorf("max_frame_size: must be positive, got %d", c.MaxFrameSize))
	}
	if c.MaxMessageSize < c.MaxFrameSize {
		errs = append(errs, fmt.Errorf("max_message_size (%d) must be at least max_frame_size (%d)", c.MaxMessageSize, c.MaxFrameSize))
	}
	if c.MaxHeaderBytes < 512 {
		errs = append(errs, fmt.Errorf("max_header_bytes: must be at least 512, got %d", c.MaxHeaderBytes))
	}
	if c.HandshakeTimeout <= 0 {
		errs = append(errs, errors.New("handshake_timeout: must be positive"))
	}
	if c.PingInterval > 0 && c.PongTimeout <= 0 {
		errs = append(errs, errors.New("pong_timeout: must be positive when ping_interval is set"))
	}
	if c.WriteBufferLimit <= 0 {
		errs = append(errs, errors.New("write_buffer_limit: must be positive"))
	}
	if c.CompressionLevel < 0 || c.CompressionLevel > 9 {
		errs = append(errs, fmt.Errorf("compression_level: want 1 to 9 (0 for the default), got %d", c.CompressionLevel))
	}
	if c.TLSListen != "" && (c.TLSCert == "" || c.TLSKey == "") {
		errs = append(errs, errors.New("tls_listen: needs tls_cert and tls_key"))
	}
	if c.TLSMaxHandshakes < 0 {
		errs = append(errs, errors.New("tls_max_handshakes: must not be negative"))
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

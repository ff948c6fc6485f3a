package poller

import (
	"fmt"
	"log/slog"
	"math/bits"
	"runtime"
	"time"
)

// DefaultHoldWait is the usual Config.HoldWait (a zero HoldWait means
// none): far longer than the gaps between events in a storm, far shorter
// than the runtime's 10 ms preemption bound.
const DefaultHoldWait = 2 * time.Millisecond

// Defaults applied by Config's zero fields.
const (
	// DefaultTickInterval is the resolution of the per-loop timing wheel.
	// Connection deadlines in a push server (handshake, heartbeat, idle) are
	// seconds long, so a tenth of a second is precise enough and costs each
	// loop only ten wakeups a second.
	DefaultTickInterval = 100 * time.Millisecond
	// DefaultReadBufferCap is the size of each loop's read buffer.
	DefaultReadBufferCap = 64 << 10
	// DefaultCloseLinger is how long a closed connection may keep draining
	// its outbound bytes (see Conn.Close).
	DefaultCloseLinger = 3 * time.Second

	minTickInterval = time.Millisecond
)

// defaultBackend is the backend an empty Config.Backend means: the
// platform's. It is a variable so that this package's tests can run on the
// other backend; nothing else changes it.
var defaultBackend = platformBackend

// Config configures a Server or a Client. The zero value is valid: the
// platform's default backend, one loop per CPU, one listener, 100 ms timer resolution, 64 KiB read buffer per
// loop, kernel socket buffers, Nagle's algorithm as the kernel sets it, and
// logs to slog.Default.
type Config struct {
	// Backend picks the event-loop implementation: BackendEpoll (Linux
	// only; the default there), which keeps nothing per idle connection
	// beyond its Conn, or BackendGnet (every OS; the default elsewhere).
	// Empty means the platform's default; the package reads no
	// environment (commands built on it choose, e.g. herald's
	// --poller-backend). An unknown or unavailable backend makes Serve and
	// NewClient fail.
	Backend string
	// Loops is the number of event loops; 0 means runtime.NumCPU(). It is
	// capped at 256.
	Loops int
	// FirstIndex is the Index of the first loop: the loops are numbered
	// FirstIndex to FirstIndex+Loops-1, so that the loops of several
	// servers and clients in one process can index one per-loop table.
	FirstIndex int
	// ReusePort gives each loop its own SO_REUSEPORT listener, so the
	// kernel spreads accepts over the loops. Where the OS does not balance
	// SO_REUSEPORT (macOS, OpenBSD, NetBSD) it is ignored and one acceptor
	// hands connections to the loops in turn. Client ignores it.
	ReusePort bool
	// HoldWait is how long an idle loop of the epoll backend waits for
	// its next event while keeping its Go scheduler slot (P), in whole
	// milliseconds, before it sleeps in a wait that gives the slot up; 0
	// means it sleeps at once. A wait that gives the slot up costs a
	// handoff and a scheduler round each time the loop wakes, and keeps
	// the runtime's sysmon polling at its fastest: in a storm of
	// handshakes, which wakes a loop for nearly every connection, that is
	// a sizeable share of the CPU per handshake (bench/HANDSHAKE.md). Set
	// it only when GOMAXPROCS leaves Ps beyond the process's event loops
	// (server.Server does): a slot held so runs no other goroutine, until
	// the runtime preempts the loop (after 10 ms). DefaultHoldWait is the
	// usual value.
	HoldWait time.Duration
	// DeferAccept, when positive, has the kernel keep a new connection
	// out of the accept queue until its first bytes arrive, for up to
	// this long (TCP_DEFER_ACCEPT, whole seconds; after it the connection
	// is accepted anyway), and the loop reads them as soon as it has
	// opened the connection, without waiting for the next readiness
	// event. For protocols whose client speaks first (HTTP, TLS): a
	// connection costs the loop one wakeup instead of two, and a client
	// that connects and sends nothing holds no descriptor meanwhile. Only
	// the epoll backend uses it.
	DeferAccept time.Duration

	// TickInterval is the resolution of each loop's timing wheel (see
	// Conn.SetTimer); 0 means DefaultTickInterval, values under 1 ms are
	// raised to 1 ms. Every loop that owns a connection wakes once per tick.
	TickInterval time.Duration
	// ReadBufferCap is the size of the buffer each loop reads sockets into
	// (one per loop, not per connection); 0 means DefaultReadBufferCap.
	// It is rounded up to a power of two.
	ReadBufferCap int
	// SocketRecvBuffer and SocketSendBuffer set SO_RCVBUF and SO_SNDBUF
	// on every connection; 0 keeps the kernel's default (and its
	// autotuning, which a fixed value turns off).
	SocketRecvBuffer, SocketSendBuffer int
	// TCPNoDelay sets TCP_NODELAY, sending small writes at once. Push
	// traffic wants it on. False leaves the kernel default (Nagle on).
	TCPNoDelay bool
	// TCPKeepAlive turns on TCP keep-alive probes after this much idle
	// time (0: off, the kernel default). WebSocket pings already detect
	// dead peers; keep-alive matters when something in between (a NAT, a
	// load balancer) drops idle flows sooner than the ping interval, and
	// for connections that never finish their handshake.
	TCPKeepAlive time.Duration
	// CloseLinger bounds how long a closed connection keeps draining the
	// bytes queued before its Close (see Conn.Close); 0 means
	// DefaultCloseLinger, a negative value closes at once and drops what
	// the kernel did not take.
	CloseLinger time.Duration
	// Overload, when set, is what a connection the epoll backend cannot
	// serve for want of file descriptors (EMFILE, ENFILE at accept) is
	// sent before it is closed: an HTTP 503 with Retry-After, say. The
	// backend keeps one descriptor in reserve per listening loop, so that
	// it can accept such a connection and answer it rather than leave it
	// waiting in the backlog; nil closes it without a word. The poller
	// knows no protocol: these bytes go out as they are, once, without
	// waiting for the peer to send anything.
	Overload []byte
	// Logger receives the poller's messages and, with the gnet backend,
	// gnet's own (its informational ones at debug level); nil means
	// slog.Default(). gnet keeps one process-wide logger, so with several
	// gnet servers or clients in one process the last one started receives
	// gnet's messages.
	Logger *slog.Logger
}

// withDefaults returns cfg with its zero fields filled in.
func (cfg Config) withDefaults() Config {
	if cfg.Loops <= 0 {
		cfg.Loops = runtime.NumCPU()
	}
	if cfg.Loops > maxLoops {
		cfg.Loops = maxLoops
	}
	if cfg.TickInterval <= 0 {
		cfg.TickInterval = DefaultTickInterval
	}
	if cfg.TickInterval < minTickInterval {
		cfg.TickInterval = minTickInterval
	}
	if cfg.ReadBufferCap <= 0 {
		cfg.ReadBufferCap = DefaultReadBufferCap
	}
	if n := 1 << bits.Len(uint(cfg.ReadBufferCap-1)); n != cfg.ReadBufferCap {
		cfg.ReadBufferCap = n
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.CloseLinger == 0 {
		cfg.CloseLinger = DefaultCloseLinger
	}
	if cfg.Backend == "" {
		cfg.Backend = defaultBackend
	}
	return cfg
}

// maxLoops bounds Config.Loops (gnet's limit on event loops per engine).
const maxLoops = 256

// errBackend reports an unknown Config.Backend.
func errBackend(name string) error {
	return fmt.Errorf("poller: unknown backend %q (want %q or %q)", name, BackendEpoll, BackendGnet)
}

// Package server is herald's WebSocket transport: the connection state
// machine (handshake → open → closing) that runs on the poller's event
// loops, frames, liveness (pings, pongs, credential expiry), the caps
// counted at accept, the inbound bounds, each connection's output budget,
// the lingering close, the graceful drain and the wss:// side. What an
// upgraded connection does is an App's business: EchoApp (RFC 6455 echo,
// what conformance suites test) lives here, herald's client protocol in
// package push. The server calls into its App only through the App
// interface (and the optional WritableApp); the App reaches the transport
// only through Conn's and Server's exported methods.
//
// Concurrency: every connection is owned by one event loop and its state is
// touched only from that loop's goroutine (poller callbacks, App methods,
// and funcs run with Loop.Run); Conn's methods are for that goroutine
// only. Server's methods are safe from any goroutine; its counters are
// atomics. Plain connections own no goroutine; connections on the TLS
// listener (Config.TLSListen) have two in tlsbridge, which terminates TLS
// and hands the plaintext to a loop.
//
// Writes: Conn.WriteMessage encodes a frame of its own (replies, echoes);
// Conn.WriteFrame writes a Frame shared by many connections (a published
// message), choosing its plain or permessage-deflate variant by what the
// connection negotiated. Bytes written during a callback are flushed when
// it returns; frames built here live in the loop's scratch memory until
// then.
//
// permessage-deflate (Config.Compression) is negotiated at the upgrade,
// always without context takeover: inflating borrows pooled state for one
// message, and a shared Frame is compressed once for every connection with
// a full window.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/herald-push/herald/auth"
	"github.com/herald-push/herald/codec"
	"github.com/herald-push/herald/poller"
	"github.com/herald-push/herald/pool"
)

// Server is a herald node's WebSocket side. Create it with New, run it with
// Serve, stop it with Shutdown.
type Server struct {
	cfg    Config
	log    *slog.Logger
	poller *poller.Server
	app    App

	decCfg  codec.DecoderConfig
	hsLimit codec.HandshakeLimits
	loops   []loopState // indexed by Conn.li: the plain loops, then the TLS loops

	// deflate compresses and inflates for connections that negotiated
	// permessage-deflate (nil when Config.Compression is off), and
	// decCfgDeflate is their decoder config (RSV1 allowed).
	deflate       *codec.Deflate
	decCfgDeflate codec.DecoderConfig

	// tls is the wss:// side, nil without Config.TLSListen.
	tls *tlsSide

	conns atomic.Int64
	// stopping turns true when Shutdown begins (readiness goes), draining
	// after Config.ShutdownDelay (upgrades refused, connections closed).
	stopping, draining atomic.Bool
	// adm counts what is held at accept: handshakes in progress, per
	// address.
	adm admission
	// pace is the accept pace's bucket (Config.AcceptRate), nil without
	// one.
	pace *rate.Limiter
	// inbound is the reassembly memory of the fragmented messages in
	// progress; the poller counts the partial frames it holds.
	inbound atomic.Int64
	// refusalLog and errorLog rate-limit the logs a client can trigger.
	refusalLog, errorLog logLimit
	stats                counters

	shutdownOnce sync.Once
	serveErr     chan error
}

// loopState is what the server keeps per event loop; only that loop's
// goroutine touches it.
type loopState struct {
	// counted are the per-message counters, kept per loop so that the
	// loops never write to a shared cache line per message; Server sums
	// them when read.
	counted loopCounters
	// tlsPeers holds the TLS session of each connection of a TLS loop.
	tlsPeers map[*Conn]*tlsPeer
	// sealed holds what a TLS connection's Seal returns (one slice).
	sealed [1][]byte
	// recordRest is, while a loop-engine TLS connection's OnData runs,
	// the bytes of its partial TLS record, not yet decrypted, that stay
	// held behind the plaintext the handler is given; 0 otherwise.
	recordRest int
	// ips holds the per-address slots of the connections that have some
	// (flagIPHeld).
	ips map[*Conn]ipHold
	// partial holds when each incomplete message began, unix nanoseconds
	// (flagPartial).
	partial map[*Conn]int64
	// reassembly holds, for each connection whose decoder holds fragments
	// of an unfinished message, how many bytes of them Server.inbound
	// counts.
	reassembly map[*Conn]int64
	// deferred holds the upgrade requests whose answer the App deferred
	// (ErrDeferred), until Conn.Complete or Conn.Refuse: copies of their
	// own.
	deferred map[*Conn]*codec.Request
	// req is the request being handled: each upgrade is parsed into it,
	// as a view of the connection's input (Server.handshake).
	req codec.Request
}

// loopCounters are one loop's counters of what happens per message or
// per connection. Only the loop writes them; atomics let metrics read
// them from other goroutines. The padding keeps two loops' counters off
// one cache line.
type loopCounters struct {
	messagesIn, messagesOut, bytesIn atomic.Uint64
	// handshakesOK counts the loop's upgrades (Stats.HandshakesOK).
	handshakesOK atomic.Uint64
	_            [32]byte
}

func (s *Server) sum(f func(*loopCounters) uint64) uint64 {
	var n uint64
	for i := range s.loops {
		n += f(&s.loops[i].counted)
	}
	return n
}

// counters are the server-wide counters; atomics, so that Stats can read
// them from any goroutine.
type counters struct {
	// HandshakesDeflate counts the upgrades that negotiated
	// permessage-deflate (the upgrades are loopCounters.handshakesOK).
	HandshakesDeflate atomic.Uint64
	Streams           atomic.Uint64
	// HandshakesDeferred counts the upgrades an App deferred.
	HandshakesDeferred atomic.Uint64
	HandshakesFailed   atomic.Uint64
	HandshakeTimeouts  atomic.Uint64
	ProtocolErrors     atomic.Uint64
	PingTimeouts       atomic.Uint64
	TokenExpired       atomic.Uint64
	SlowClosed         atomic.Uint64
	// OutputBudget counts connections closed with 1008 because output
	// they asked for (pongs, replies) would pass Config.WriteBufferLimit.
	OutputBudget atomic.Uint64
	// RefusedHandshakes, RefusedHandshakesPerIP, RefusedConnsPerIP and
	// RefusedMaxConns count connections refused at accept by
	// MaxHandshakes, MaxHandshakesPerIP, MaxConnsPerIP and MaxConns.
	RefusedHandshakes      atomic.Uint64
	RefusedHandshakesPerIP atomic.Uint64
	RefusedConnsPerIP      atomic.Uint64
	RefusedMaxConns        atomic.Uint64
	// RefusedAcceptRate counts connections refused at accept by the
	// accept pace (Config.AcceptRate).
	RefusedAcceptRate atomic.Uint64
	// FirstByteTimeouts counts the handshake timeouts of connections that
	// sent nothing (Config.FirstByteTimeout; also in HandshakeTimeouts).
	FirstByteTimeouts atomic.Uint64
	// InboundMemory counts connections closed with 1013 "server busy"
	// because Config.MaxInboundBuffered was reached.
	InboundMemory atomic.Uint64
	// MessageTimeouts counts connections closed with 1008 "message
	// timeout" (Config.MessageTimeout).
	MessageTimeouts atomic.Uint64
}

// New builds a Server from cfg. app decides what connections do once open;
// pass nil (or set cfg.Echo) for the RFC 6455 echo server.
func New(cfg Config, app App, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("server config: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	echo := app == nil || cfg.Echo
	if echo {
		app = EchoApp{}
	}
	cfg = cfg.withDefaults(echo)
	loops := cfg.Loops
	if loops == 0 {
		loops = runtime.NumCPU()
	}
	nloops := loops
	if cfg.TLSListen != "" {
		nloops = 2 * loops // the TLS loops' states follow the plain ones
	}
	s := &Server{
		cfg:      cfg,
		log:      log,
		app:      app,
		loops:    make([]loopState, nloops),
		serveErr: make(chan error, 1),
		decCfg: codec.DecoderConfig{
			Role:           codec.RoleServer,
			MaxFrameSize:   cfg.MaxFrameSize,
			MaxMessageSize: cfg.MaxMessageSize,
			Buffers:        pool.NewBytes(),
		},
		hsLimit: codec.HandshakeLimits{MaxHeaderBytes: cfg.MaxHeaderBytes},
	}
	s.adm.init(cfg)
	s.pace = newPace(cfg)
	if cfg.Compression {
		z, err := codec.NewDeflate(codec.DeflateConfig{
			Level:       cfg.CompressionLevel,
			MinSize:     cfg.CompressionMinSize,
			MaxInflated: cfg.MaxMessageSize,
			Buffers:     s.decCfg.Buffers,
		})
		if err != nil {
			return nil, fmt.Errorf("server config: compression: %w", err)
		}
		s.deflate = z
		s.decCfgDeflate = s.decCfg
		s.decCfgDeflate.AllowRSV1 = true
	}
	if cfg.TLSListen != "" {
		t, err := newTLSSide(s, loops)
		if err != nil {
			return nil, fmt.Errorf("server config: %w", err)
		}
		s.tls = t
	}
	s.poller = poller.NewServer(poller.Config{
		Backend:          cfg.PollerBackend,
		Loops:            loops,
		HoldWait:         holdWait(nloops),
		DeferAccept:      max(cfg.DeferAccept.D(), 0),
		ReusePort:        true,
		TCPNoDelay:       true,
		SocketRecvBuffer: cfg.SocketRecvBuffer,
		SocketSendBuffer: cfg.SocketSendBuffer,
		TCPKeepAlive:     cfg.TCPKeepAlive.D(),
		CloseLinger:      lingerOf(cfg.CloseLinger),
		Overload:         overloadResponse,
		Logger:           log,
	}, (*handler)(s))
	app.Attach(s)
	return s, nil
}

// holdWait is the poller's Config.HoldWait for a server of nloops event
// loops in all: DefaultHoldWait when GOMAXPROCS leaves a P beyond them
// (herald serve sees to it), so that a loop holding its P while it waits
// keeps no other goroutine from running; none otherwise.
func holdWait(nloops int) time.Duration {
	if runtime.GOMAXPROCS(0) > nloops {
		return poller.DefaultHoldWait
	}
	return 0
}

// overloadResponse is what a client gets when the process is out of file
// descriptors: the poller sends it to a connection it cannot serve (taken
// on its reserve descriptor), the TLS bridge to a handshaken connection
// it cannot bridge.
var overloadResponse = codec.AppendHTTPError(nil, 503, "server is out of file descriptors")

// Loops returns the event loops that run connections: the plain loops,
// then the TLS listener's. Each one's Index is unique and below NumLoops,
// so it indexes per-loop state; a loop is in the list once it runs (after
// Ready). Safe from any goroutine.
func (s *Server) Loops() []*poller.Loop { return s.allLoops() }

// NumLoops is the number of event loops, plain and TLS: an upper bound for
// Loop.Index, to size per-loop state. Safe from any goroutine.
func (s *Server) NumLoops() int { return len(s.loops) }

// lingerOf is the poller's CloseLinger for the server's (negative: off).
func lingerOf(d Duration) time.Duration {
	if d < 0 {
		return -1
	}
	return d.D()
}

// Serve listens and serves until Shutdown; it returns nil after a clean
// shutdown.
func (s *Server) Serve() error {
	if s.tls != nil {
		if err := s.tls.start(); err != nil {
			return err
		}
	}
	err := s.poller.Serve(s.cfg.Listen)
	if s.tls != nil {
		s.tls.stop()
	}
	if err != nil {
		return fmt.Errorf("serve %s: %w", s.cfg.Listen, err)
	}
	return nil
}

// Ready is closed once the listeners are bound.
func (s *Server) Ready() <-chan struct{} { return s.poller.Ready() }

// Addr is the bound listener address (valid after Ready).
func (s *Server) Addr() net.Addr { return s.poller.Addr() }

// Conns is the number of open connections.
func (s *Server) Conns() int64 { return s.conns.Load() }

// Draining reports whether the drain has begun: upgrades are refused and
// connections closed (after Config.ShutdownDelay).
func (s *Server) Draining() bool { return s.draining.Load() }

// Stopping reports whether Shutdown was called, from its first moment:
// the node is no longer ready for new clients, though during
// Config.ShutdownDelay it still serves them. Readiness checks use it.
func (s *Server) Stopping() bool { return s.stopping.Load() }

// Config returns the configuration the server runs with.
func (s *Server) Config() Config { return s.cfg }

// Shutdown drains the server. Stopping turns true at once; for
// Config.ShutdownDelay the server keeps serving normally (so a load
// balancer that polls readiness takes the node out first); then new
// upgrades are refused with 503, every open connection is sent a 1001
// close, spread over half the drain window with jitter, each carrying its
// own reconnect delay within Config.ReconnectSpread, so clients do not
// all come back at once, and the loops stop. It returns when everything
// is closed or ctx ends (then the rest is cut; a ctx that ends during the
// delay starts the drain at once).
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.shutdownOnce.Do(func() { err = s.shutdown(ctx) })
	return err
}

func (s *Server) shutdown(ctx context.Context) error {
	s.stopping.Store(true)
	if d := s.cfg.ShutdownDelay.D(); d > 0 {
		s.log.Info("shutting down: serving on while the node leaves rotation", "delay", d, "connections", s.conns.Load())
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	s.draining.Store(true)
	window := s.cfg.DrainTimeout.D() / 2
	s.log.Info("draining", "connections", s.conns.Load(), "window", window)
	if s.tls != nil {
		s.tls.bridge.StopAccepting()
	}
	var wg sync.WaitGroup
	for _, l := range s.allLoops() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.drainLoop(ctx, l, window)
		}()
	}
	wg.Wait()
	// Wait for the close handshakes to finish (peers answer and we close).
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for s.conns.Load() > 0 {
		select {
		case <-ctx.Done():
			s.log.Warn("drain deadline reached; cutting connections", "left", s.conns.Load())
			return s.stopPoller()
		case <-tick.C:
		}
	}
	return s.stopPoller()
}

func (s *Server) stopPoller() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.poller.Stop(ctx); err != nil {
		return fmt.Errorf("stop event loops: %w", err)
	}
	return nil
}

// drainLoop closes one loop's connections in batches spread over window.
func (s *Server) drainLoop(ctx context.Context, l *poller.Loop, window time.Duration) {
	collected := make(chan []*poller.Conn, 1)
	if err := l.Run(func() {
		var cs []*poller.Conn
		l.Each(func(c *poller.Conn) bool {
			cs = append(cs, c)
			return true
		})
		collected <- cs
	}); err != nil {
		return
	}
	var cs []*poller.Conn
	select {
	case cs = <-collected:
	case <-ctx.Done():
		return
	}
	rand.Shuffle(len(cs), func(i, j int) { cs[i], cs[j] = cs[j], cs[i] })
	const batches = 20
	step := window / batches
	per := (len(cs) + batches - 1) / batches
	for i := 0; i < len(cs); i += per {
		batch := cs[i:min(i+per, len(cs))]
		_ = l.Run(func() {
			for _, c := range batch {
				if !c.Closed() {
					code, reason := s.drainClose(c)
					s.closeConn(c, code, reason)
				}
			}
		})
		if i+per < len(cs) && step > 0 {
			jitter := time.Duration(rand.Int64N(int64(step)/4 + 1))
			select {
			case <-time.After(step + jitter):
			case <-ctx.Done():
				return
			}
		}
	}
}

// inboundBuffered is the node's memory held for incomplete client input:
// partial frames waiting in the loops' input buffers and fragments of
// unfinished messages (Config.MaxInboundBuffered bounds it). Safe from any
// goroutine.
func (s *Server) inboundBuffered() int64 {
	n := s.poller.InboundBuffered() + s.inbound.Load()
	if s.tls != nil {
		n += s.tls.client.InboundBuffered()
	}
	return n
}

// handshakesInProgress is the number of connections accepted and not yet
// upgraded, plain and TLS (Config.MaxHandshakes bounds it). Safe from any
// goroutine.
func (s *Server) handshakesInProgress() int64 { return s.adm.handshakes.Load() }

// admission counts what connections hold from their accept: a handshake
// slot until the upgrade, per-address slots.
type admission struct {
	max        int64 // Config.MaxHandshakes; <= 0: no cap
	handshakes atomic.Int64
	// hsPerIP and connsPerIP are nil when their limit is off.
	hsPerIP, connsPerIP *auth.IPLimiter
}

// init sets a's limits from cfg.
func (a *admission) init(cfg Config) {
	a.max = int64(cfg.MaxHandshakes)
	if cfg.MaxHandshakesPerIP > 0 {
		a.hsPerIP = auth.NewIPLimiter(cfg.MaxHandshakesPerIP)
	}
	if cfg.MaxConnsPerIP > 0 {
		a.connsPerIP = auth.NewIPLimiter(cfg.MaxConnsPerIP)
	}
}

// peerOf is the address the per-address limits count pc under: none
// (and no system call) when neither limit is on.
func (a *admission) peerOf(pc *poller.Conn) (netip.Addr, bool) {
	if a.hsPerIP == nil && a.connsPerIP == nil {
		return netip.Addr{}, false
	}
	ap, ok := pc.RemoteAddrPort()
	return ap.Addr(), ok
}

// ipHold is what one connection holds against the per-address limits.
type ipHold struct {
	ip       netip.Addr
	hs, conn bool
}

// admit takes a handshake slot and the per-address slots for a connection
// just accepted from ip (hasIP false: no address to count, as for a Unix
// socket). On refusal it holds nothing and returns the HTTP status and
// reason to answer with. Safe from any goroutine.
func (s *Server) admit(ip netip.Addr, hasIP bool) (ipHold, int, string) {
	a := &s.adm
	if n := a.handshakes.Add(1); a.max > 0 && n > a.max {
		a.handshakes.Add(-1)
		s.stats.RefusedHandshakes.Add(1)
		return ipHold{}, 503, "too many handshakes in progress"
	}
	h := ipHold{ip: ip}
	if hasIP && a.hsPerIP != nil {
		if !a.hsPerIP.Acquire(ip) {
			a.handshakes.Add(-1)
			s.stats.RefusedHandshakesPerIP.Add(1)
			return ipHold{}, 429, "too many handshakes from this address"
		}
		h.hs = true
	}
	if hasIP && a.connsPerIP != nil {
		if !a.connsPerIP.Acquire(ip) {
			s.release(h, true)
			s.stats.RefusedConnsPerIP.Add(1)
			return ipHold{}, 429, "too many connections from this address"
		}
		h.conn = true
	}
	return h, 0, ""
}

// release gives back what h holds and, with handshake, a handshake slot.
// Safe from any goroutine.
func (s *Server) release(h ipHold, handshake bool) {
	if handshake {
		s.adm.handshakes.Add(-1)
	}
	if h.hs {
		s.adm.hsPerIP.Release(h.ip)
	}
	if h.conn {
		s.adm.connsPerIP.Release(h.ip)
	}
}

// hold records on c what admit took for it. Loop goroutine.
func (s *Server) hold(c *Conn, h ipHold) {
	c.flags |= flagHandshakeSlot
	if !h.hs && !h.conn {
		return
	}
	c.flags |= flagIPHeld
	ls := &s.loops[c.li]
	if ls.ips == nil {
		ls.ips = map[*Conn]ipHold{}
	}
	ls.ips[c] = h
}

// releaseHandshake gives back c's handshake slots once it is upgraded;
// its per-address connection slot stays until it closes. Loop goroutine.
func (s *Server) releaseHandshake(c *Conn) {
	if c.flags&flagHandshakeSlot != 0 {
		c.flags &^= flagHandshakeSlot
		s.adm.handshakes.Add(-1)
	}
	if c.flags&flagIPHeld == 0 {
		return
	}
	ls := &s.loops[c.li]
	h := ls.ips[c]
	if h.hs {
		s.adm.hsPerIP.Release(h.ip)
		h.hs = false
	}
	if h.conn {
		ls.ips[c] = h
		return
	}
	delete(ls.ips, c)
	c.flags &^= flagIPHeld
}

// releaseAll gives back everything c holds. Loop goroutine.
func (s *Server) releaseAll(c *Conn) {
	s.releaseHandshake(c)
	if c.flags&flagIPHeld != 0 {
		c.flags &^= flagIPHeld
		ls := &s.loops[c.li]
		s.release(ls.ips[c], false)
		delete(ls.ips, c)
	}
}

// peerIP extracts the IP of a TCP peer.
func peerIP(a net.Addr) (netip.Addr, bool) {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, ok := netip.AddrFromSlice(ta.IP)
		return ip.Unmap(), ok
	}
	return netip.Addr{}, false
}

// logLimit rate-limits a log that clients can trigger at will (refused
// upgrades, protocol errors), so that a flood of bad clients cannot turn
// into a flood of log lines: golang.org/x/time/rate's token bucket, 10
// lines a second with bursts of 20, and a count of the lines left out,
// reported with the next line logged. Safe for concurrent use.
type logLimit struct {
	once       sync.Once
	lim        *rate.Limiter
	suppressed atomic.Uint64
}

// allow reports whether a line may be logged now, and how many were left
// out since the last one.
func (l *logLimit) allow() (bool, uint64) {
	l.once.Do(func() { l.lim = rate.NewLimiter(10, 20) })
	if !l.lim.Allow() {
		l.suppressed.Add(1)
		return false, 0
	}
	return true, l.suppressed.Swap(0)
}

// logRefusal logs a refused connection or upgrade, rate-limited.
func (s *Server) logRefusal(c *Conn, status int, reason string) {
	ok, left := s.refusalLog.allow()
	if !ok {
		return
	}
	s.log.Info("upgrade refused", "conn", c.ID(), "remote", c.RemoteAddr(), "status", status, "reason", reason, "suppressed", left)
}

// Package server assembles herald: it owns the WebSocket connection state
// machine (handshake, frames, close, liveness) that runs on the poller's
// event loops, and the graceful drain.
//
// Concurrency: every connection is owned by one event loop and its state is
// touched only from that loop's goroutine (poller callbacks and funcs run
// with Loop.Run). Server-wide counters are atomics. Plain connections own
// no goroutine; connections on the TLS listener (Config.TLSListen) have two
// in tlsbridge, which terminates TLS and hands the plaintext to a loop.
//
// permessage-deflate (Config.Compression) is negotiated at the upgrade,
// always without context takeover: inflating borrows pooled state for one
// message, and published messages are compressed once per publish
// (hub.Message.EnvelopeDeflate) for every subscriber with a full window.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

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

	conns    atomic.Int64
	draining atomic.Bool
	nextID   atomic.Uint64
	stats    Stats

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
}

// loopCounters are one loop's message counters. Only the loop writes
// them; atomics let metrics read them from other goroutines. The padding
// keeps two loops' counters off one cache line.
type loopCounters struct {
	messagesIn, messagesOut, bytesIn atomic.Uint64
	_                                [40]byte
}

// MessagesIn is the number of text and binary messages received.
func (s *Server) MessagesIn() uint64 {
	return s.sum(func(c *loopCounters) uint64 { return c.messagesIn.Load() })
}

// MessagesOut is the number of messages queued to clients (deliveries and
// replies).
func (s *Server) MessagesOut() uint64 {
	return s.sum(func(c *loopCounters) uint64 { return c.messagesOut.Load() })
}

// BytesIn is the number of bytes received after the handshakes.
func (s *Server) BytesIn() uint64 {
	return s.sum(func(c *loopCounters) uint64 { return c.bytesIn.Load() })
}

func (s *Server) sum(f func(*loopCounters) uint64) uint64 {
	var n uint64
	for i := range s.loops {
		n += f(&s.loops[i].counted)
	}
	return n
}

// Stats are server-wide counters, safe to read from any goroutine.
type Stats struct {
	// HandshakesOK counts upgrades (over TLS too); HandshakesDeflate those
	// that negotiated permessage-deflate.
	HandshakesOK      atomic.Uint64
	HandshakesDeflate atomic.Uint64
	HandshakesFailed  atomic.Uint64
	HandshakeTimeouts atomic.Uint64
	ProtocolErrors    atomic.Uint64
	PingTimeouts      atomic.Uint64
	TokenExpired      atomic.Uint64
	SlowClosed        atomic.Uint64
	// OutputBudget counts connections closed with 1008 because output
	// they asked for (pongs, replies) would pass Config.WriteBufferLimit.
	OutputBudget atomic.Uint64
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
		Loops:            loops,
		ReusePort:        true,
		TCPNoDelay:       true,
		SocketRecvBuffer: cfg.SocketRecvBuffer,
		SocketSendBuffer: cfg.SocketSendBuffer,
		TCPKeepAlive:     cfg.TCPKeepAlive.D(),
		CloseLinger:      lingerOf(cfg.CloseLinger),
		Logger:           log,
	}, (*handler)(s))
	return s, nil
}

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

// Stats returns the live counters.
func (s *Server) Stats() *Stats { return &s.stats }

// Draining reports whether a graceful shutdown has begun.
func (s *Server) Draining() bool { return s.draining.Load() }

// Config returns the configuration the server runs with.
func (s *Server) Config() Config { return s.cfg }

// Shutdown drains the server: new upgrades are refused with 503, every open
// connection is sent a 1001 close, spread over the drain window with jitter
// so clients do not all reconnect at once, then the loops stop. It returns
// when everything is closed or ctx ends (then the rest is cut).
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.shutdownOnce.Do(func() { err = s.shutdown(ctx) })
	return err
}

func (s *Server) shutdown(ctx context.Context) error {
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
					s.closeConn(c, codec.CloseGoingAway, "server shutting down")
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

// errNotRunning is returned by operations on a stopped server.
var errNotRunning = errors.New("server is not running")

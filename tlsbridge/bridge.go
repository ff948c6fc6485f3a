// Package tlsbridge terminates TLS (wss://) in front of herald's event
// loops, inside the process: it accepts TLS connections, runs the handshake
// with crypto/tls under a deadline, and then bridges each connection's
// plaintext to one end of a Unix socket pair whose other end the caller
// hands to its event loops, where it looks like any plain connection.
//
// gnet, under the loops, does not speak TLS, and crypto/tls needs a
// blocking net.Conn, so TLS runs here on goroutines: one per connection
// during the handshake, two per connection afterwards (one each way). They
// hold no buffer while the connection is idle: each waits for the socket to
// become readable without a read buffer (a one-byte MSG_PEEK) and borrows a
// pooled buffer only to move bytes that have arrived. What an idle TLS
// connection still costs — two goroutine stacks, crypto/tls's connection
// state and a second socket pair — is measured in bench/TLS_DEFLATE.md;
// tuning.md says when to terminate TLS in front of herald instead.
//
// Bad TLS input cannot hurt other connections: every handshake runs on its
// own goroutine under a deadline, the number of handshakes in flight is
// capped (the rest wait in the kernel's accept queue), and a connection
// that fails its handshake is closed without reaching the loops.
//
// A Bridge's methods are safe for concurrent use.
package tlsbridge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-push/herald/tlsrec"
)

// Defaults of a Config whose fields are zero.
const (
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultHelloTimeout     = 3 * time.Second
	DefaultWriteTimeout     = 30 * time.Second
	DefaultCloseLinger      = 3 * time.Second
	// DefaultMaxHandshakesPerCPU times the number of CPUs bounds the
	// handshakes in flight.
	DefaultMaxHandshakesPerCPU = 256
)

// Config configures a Bridge. TLS is required; every other zero field
// takes its default.
type Config struct {
	// TLS is the server's TLS configuration (certificates). MinVersion
	// below TLS 1.2 is raised to TLS 1.2.
	TLS *tls.Config
	// HandshakeTimeout bounds the TLS handshake; a client that has not
	// finished it in time is disconnected. 0 means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// HelloTimeout bounds the wait for the client's first handshake
	// message (the ClientHello), so that idle sockets cannot hold
	// handshake slots for the whole HandshakeTimeout. 0 means
	// DefaultHelloTimeout.
	HelloTimeout time.Duration
	// Admit, when set, is asked about every accepted connection before its
	// handshake, on the accepting goroutine; false closes the connection
	// at once (before any TLS byte: there is no way to say why). What it
	// holds for the connection travels as ticket: to Enroll in
	// Peer.Ticket once the handshake is done, or to Leave if the
	// connection ends before Enroll is called.
	Admit func(remote net.Addr) (ticket any, ok bool)
	// Leave gives back what Admit took for a connection that ended before
	// Enroll; it runs on the connection's goroutine.
	Leave func(ticket any)
	// WriteTimeout bounds one write to the TLS client; a client that
	// takes no data for this long is disconnected (by then the event loop
	// has usually closed it as a slow consumer). 0 means
	// DefaultWriteTimeout.
	WriteTimeout time.Duration
	// CloseLinger bounds how long a connection the event loop has closed
	// keeps reading (and discarding) what the client still sends, after
	// close_notify and the TCP write side are shut, so that the loop's
	// last bytes (a close frame) reach a client still writing instead of
	// being lost to a reset. 0 means DefaultCloseLinger; negative closes
	// at once.
	CloseLinger time.Duration
	// MaxHandshakes bounds the handshakes in progress at once; 0 means
	// DefaultMaxHandshakesPerCPU per CPU.
	MaxHandshakes int
	// Overload, when set, is sent over TLS to a client whose handshake is
	// done but whose connection cannot be bridged for want of file
	// descriptors (the socket pair fails), before it is closed: an HTTP
	// 503 with Retry-After, say. nil closes it without a word.
	Overload []byte
	// Direct, when set, takes TLS 1.3 connections off the bridge: right
	// after the handshake it is called on the handshake goroutine with
	// the TCP connection itself (which it takes over, closing it on error)
	// and a Peer carrying the application traffic secrets, so that the
	// caller carries the record layer (see package tlsrec). The handshake
	// then reads the socket one record at a time, so that no byte past
	// the client's Finished is consumed, session tickets are disabled
	// (the server sends nothing after its Finished) and the secrets are
	// captured per connection through tls.Config.KeyLogWriter. TLS 1.2
	// connections stay on the bridge and are counted (Stats.Fallback).
	// On error Direct gives back the connection's ticket itself.
	Direct func(raw net.Conn, peer Peer) error
	// Logger receives handshake failures at debug level, and accept and
	// socket-pair failures (at most one line a second each) at warning
	// level; nil means slog.Default().
	Logger *slog.Logger
}

// Peer describes a bridged connection's TLS client.
type Peer struct {
	// Remote is the client's address.
	Remote net.Addr
	// Version and CipherSuite are what the handshake agreed
	// (tls.VersionTLS13, tls.TLS_AES_128_GCM_SHA256, ...).
	Version, CipherSuite uint16
	// ClientSecret and ServerSecret are the application traffic secrets
	// (CLIENT_TRAFFIC_SECRET_0, SERVER_TRAFFIC_SECRET_0), for Direct only.
	ClientSecret, ServerSecret []byte
	// ServerName is the SNI the client sent ("" if none).
	ServerName string
	// Ticket is what Config.Admit returned for the connection; Enroll
	// owns it from then on.
	Ticket any
}

// Enroll takes the plaintext end of a bridged connection and hands it to
// the event loops. It owns plain from then on, and must close it on
// failure. It is called on the connection's goroutine and may block until
// the loops have it; plaintext starts flowing when it returns.
type Enroll func(plain net.Conn, peer Peer) error

// Stats are a Bridge's counters, safe to read from any goroutine.
type Stats struct {
	// Active is the number of bridged connections (handshake done, not yet
	// closed); Handshaking those in their handshake.
	Active, Handshaking atomic.Int64
	// Handshakes counts completed handshakes, HandshakeErrors failed ones
	// other than timeouts, HandshakeTimeouts those that ran out of time
	// (HelloTimeouts those of them that never sent their ClientHello in
	// time): each failed handshake counts once, as an error or a timeout.
	Handshakes, HandshakeErrors, HandshakeTimeouts, HelloTimeouts atomic.Uint64
	// Refused counts connections Config.Admit refused.
	Refused atomic.Uint64
	// AcceptErrors counts accept failures for want of descriptors or
	// memory (EMFILE, ENFILE, ENOBUFS, ENOMEM), each followed by a pause;
	// Overloaded the handshaken connections refused (Config.Overload,
	// then closed) because their socket pair could not be made.
	AcceptErrors, Overloaded atomic.Uint64
	// Direct counts the connections handed to Config.Direct, Fallback
	// those bridged while Direct was set (TLS 1.2).
	Direct, Fallback atomic.Uint64
}

// Bridge accepts TLS connections and bridges them to event loops. Create
// it with New, run it with Serve, stop it with Close.
type Bridge struct {
	cfg    Config
	enroll Enroll
	log    *slog.Logger
	sem    chan struct{} // one token per handshake in flight
	stats  Stats
	// pair makes a connection's socket pair (socketPair; tests fail it).
	pair func() (net.Conn, net.Conn, error)
	// acceptLog and pairLog rate-limit the accept and socket-pair
	// failure lines.
	acceptLog, pairLog logLimit

	mu      sync.Mutex
	ln      net.Listener
	stopped bool // no more accepts (StopAccepting or Close)
	closed  bool // Close was called
	conns   map[*bridged]struct{}
	wg      sync.WaitGroup
}

// New returns a Bridge that hands each connection to enroll once its TLS
// handshake is done.
func New(cfg Config, enroll Enroll) (*Bridge, error) {
	if cfg.TLS == nil || (len(cfg.TLS.Certificates) == 0 && cfg.TLS.GetCertificate == nil && cfg.TLS.GetConfigForClient == nil) {
		return nil, errors.New("tlsbridge: a TLS config with a certificate is required")
	}
	if enroll == nil {
		return nil, errors.New("tlsbridge: enroll is required")
	}
	cfg.TLS = cfg.TLS.Clone()
	if cfg.TLS.MinVersion < tls.VersionTLS12 {
		cfg.TLS.MinVersion = tls.VersionTLS12
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.HelloTimeout <= 0 {
		cfg.HelloTimeout = DefaultHelloTimeout
	}
	// The ClientHello is in once crypto/tls asks for the config: from then
	// on HandshakeTimeout alone bounds the handshake.
	next := cfg.TLS.GetConfigForClient
	base := cfg.TLS
	cfg.TLS.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
		if hi.Conn != nil {
			_ = hi.Conn.SetReadDeadline(time.Time{})
		}
		var cfg *tls.Config
		if next != nil {
			c, err := next(hi)
			if err != nil {
				return nil, err
			}
			cfg = c
		}
		if ec, ok := hi.Conn.(*exactConn); ok {
			// One config per handshake, so that its key log captures
			// this connection's secrets only.
			if cfg == nil {
				cfg = base
			}
			cfg = cfg.Clone()
			cfg.GetConfigForClient = nil
			cfg.SessionTicketsDisabled = true
			cfg.KeyLogWriter = &ec.keys
		}
		return cfg, nil
	}
	if cfg.Direct != nil {
		cfg.TLS.SessionTicketsDisabled = true
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.CloseLinger == 0 {
		cfg.CloseLinger = DefaultCloseLinger
	}
	if cfg.MaxHandshakes <= 0 {
		cfg.MaxHandshakes = DefaultMaxHandshakesPerCPU * runtime.NumCPU()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Bridge{
		cfg:    cfg,
		enroll: enroll,
		log:    cfg.Logger,
		sem:    make(chan struct{}, cfg.MaxHandshakes),
		pair:   socketPair,
		conns:  map[*bridged]struct{}{},
	}, nil
}

// Stats returns the live counters.
func (b *Bridge) Stats() *Stats { return &b.stats }

// ErrClosed is returned by Serve after Close.
var ErrClosed = errors.New("tlsbridge: closed")

// Serve accepts connections on ln until Close, which makes it return
// ErrClosed; any other accept error that is not temporary ends it too. ln
// is closed when Serve returns.
func (b *Bridge) Serve(ln net.Listener) error {
	b.mu.Lock()
	if b.stopped {
		b.mu.Unlock()
		_ = ln.Close()
		return ErrClosed
	}
	b.ln = ln
	b.mu.Unlock()
	defer ln.Close()
	var backoff time.Duration
	for {
		// Take a handshake slot before accepting, so that a flood waits in
		// the kernel's accept queue rather than in goroutines here.
		b.sem <- struct{}{}
		raw, err := ln.Accept()
		if err != nil {
			<-b.sem
			if b.isStopped() {
				return ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || outOfResources(err) {
				b.stats.AcceptErrors.Add(1)
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				if ok, left := b.acceptLog.allow(); ok {
					b.log.Warn("tls accept failed; listener paused", "err", err, "retry_in", backoff, "suppressed", left)
				}
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("tlsbridge: accept: %w", err)
		}
		backoff = 0
		var ticket any
		if b.cfg.Admit != nil {
			t, ok := b.cfg.Admit(raw.RemoteAddr())
			if !ok {
				b.stats.Refused.Add(1)
				_ = raw.Close()
				<-b.sem
				continue
			}
			ticket = t
		}
		b.wg.Add(1)
		go b.handle(raw, ticket)
	}
}

// Close stops accepting and closes every bridged connection at once. For a
// graceful end, close the connections through the event loops first (their
// bridges end when the loops close the plaintext side).
func (b *Bridge) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.stopped = true
	ln := b.ln
	conns := make([]*bridged, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	b.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	for _, c := range conns {
		c.close()
	}
	b.wg.Wait()
	return nil
}

// StopAccepting closes the listener but leaves bridged connections open,
// for a graceful drain; Serve returns ErrClosed.
func (b *Bridge) StopAccepting() {
	b.mu.Lock()
	b.stopped = true
	ln := b.ln
	b.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
}

func (b *Bridge) isStopped() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stopped
}

// handle runs one connection: the handshake, then the bridge.
func (b *Bridge) handle(raw net.Conn, ticket any) {
	defer b.wg.Done()
	tc, peer, ok := b.handshake(raw)
	<-b.sem
	if !ok {
		b.leave(ticket)
		return
	}
	peer.Ticket = ticket
	if b.cfg.Direct != nil {
		ec, _ := tc.NetConn().(*exactConn)
		if ec != nil && peer.Version == tls.VersionTLS13 && tlsrec.Supported(peer.CipherSuite) &&
			ec.atBoundary() && ec.keys.complete() {
			peer.ClientSecret, peer.ServerSecret = ec.keys.client, ec.keys.server
			b.stats.Direct.Add(1)
			if err := b.cfg.Direct(raw, peer); err != nil {
				b.log.Debug("tls: direct enroll", "remote", peer.Remote, "err", err)
			}
			return
		}
		if ec != nil {
			ec.exact = false
		}
		b.stats.Fallback.Add(1)
	}
	plain, mine, err := b.pair()
	if err != nil {
		b.overloaded(tc, peer.Remote, err)
		b.leave(ticket)
		return
	}
	c := &bridged{tc: tc, raw: raw, plain: mine, writeTimeout: b.cfg.WriteTimeout, linger: b.cfg.CloseLinger}
	if !b.track(c) {
		_ = plain.Close()
		c.close()
		b.leave(ticket)
		return
	}
	defer b.untrack(c)
	if err := b.enroll(plain, peer); err != nil {
		b.log.Debug("tls bridge: enroll", "remote", peer.Remote, "err", err)
		c.close()
		return
	}
	b.stats.Active.Add(1)
	defer b.stats.Active.Add(-1)
	c.run()
}

// overloaded refuses tc, handshaken but not bridged for want of a socket
// pair: Config.Overload over TLS, then close; counted, and logged at most
// once a second.
func (b *Bridge) overloaded(tc *tls.Conn, remote net.Addr, err error) {
	b.stats.Overloaded.Add(1)
	if ok, left := b.pairLog.allow(); ok {
		b.log.Warn("tls bridge: socket pair failed; connection refused", "remote", remote, "err", err, "suppressed", left)
	}
	if len(b.cfg.Overload) > 0 {
		_ = tc.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = tc.Write(b.cfg.Overload)
	}
	_ = tc.Close()
}

// leave hands ticket to Config.Leave, if any.
func (b *Bridge) leave(ticket any) {
	if b.cfg.Leave != nil && ticket != nil {
		b.cfg.Leave(ticket)
	}
}

// handshake runs the TLS handshake under the deadlines: HelloTimeout for
// the ClientHello (a read deadline, cleared when it is in), then
// HandshakeTimeout for the whole.
func (b *Bridge) handshake(raw net.Conn) (*tls.Conn, Peer, bool) {
	b.stats.Handshaking.Add(1)
	defer b.stats.Handshaking.Add(-1)
	_ = raw.SetReadDeadline(time.Now().Add(b.cfg.HelloTimeout))
	var conn net.Conn = raw
	if b.cfg.Direct != nil {
		conn = &exactConn{Conn: raw, exact: true}
	}
	tc := tls.Server(conn, b.cfg.TLS)
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.HandshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			// Only the ClientHello runs under a read deadline.
			b.stats.HandshakeTimeouts.Add(1)
			b.stats.HelloTimeouts.Add(1)
		case ctx.Err() != nil:
			b.stats.HandshakeTimeouts.Add(1)
		default:
			b.stats.HandshakeErrors.Add(1)
		}
		b.log.Debug("tls handshake failed", "remote", raw.RemoteAddr(), "err", err)
		var rh tls.RecordHeaderError
		if errors.As(err, &rh) && rh.Conn != nil && looksLikeHTTP(rh.RecordHeader[:]) {
			// As net/http does: tell a plain-HTTP client what went wrong.
			_ = raw.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = io.WriteString(raw, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		}
		_ = raw.Close()
		return nil, Peer{}, false
	}
	b.stats.Handshakes.Add(1)
	st := tc.ConnectionState()
	return tc, Peer{Remote: raw.RemoteAddr(), Version: st.Version, CipherSuite: st.CipherSuite, ServerName: st.ServerName}, true
}

func (b *Bridge) track(c *bridged) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.conns[c] = struct{}{}
	return true
}

func (b *Bridge) untrack(c *bridged) {
	b.mu.Lock()
	delete(b.conns, c)
	b.mu.Unlock()
}

// looksLikeHTTP reports whether the first bytes of a failed handshake are
// the start of an HTTP request line.
func looksLikeHTTP(hdr []byte) bool {
	switch string(hdr) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

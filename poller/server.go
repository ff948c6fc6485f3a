package poller

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// Server accepts TCP connections and serves them on event loops. Its
// methods are safe for concurrent use.
type Server struct {
	k *core

	state     atomic.Int32 // stateNew, stateRunning, stateStopped
	be        atomic.Pointer[serverBackend]
	addr      atomic.Pointer[net.TCPAddr]
	listening atomic.Bool // set once the backend has called markReady
	ready     chan struct{}
	readyOnce sync.Once
	done      chan struct{} // closed when Serve returns
}

const (
	stateNew int32 = iota
	stateRunning
	stateStopped
)

// NewServer returns a Server that will call h for every connection.
func NewServer(cfg Config, h Handler) *Server {
	return &Server{
		k:     newCore(cfg, h),
		ready: make(chan struct{}),
		done:  make(chan struct{}),
	}
}

// Serve listens on addr ("127.0.0.1:9000", ":8080", "[::1]:0"; port 0 picks
// a free port, see Addr) and serves until Stop; it returns nil after Stop,
// or the error that kept it from listening. Call it once.
func (s *Server) Serve(addr string) error {
	if !s.state.CompareAndSwap(stateNew, stateRunning) {
		if s.state.Load() == stateStopped {
			return ErrStopped
		}
		return ErrStarted
	}
	defer close(s.done)
	defer s.readyOnce.Do(func() { close(s.ready) })

	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("poller: listen address %q: %w", addr, err)
	}
	be, err := newServerBackend(s.k)
	if err != nil {
		return err
	}
	s.be.Store(&be)
	if err := be.serve(host, port, s.markReady); err != nil {
		return fmt.Errorf("poller: serve %s: %w", addr, err)
	}
	return nil
}

// markReady runs once every listener is bound: it records the bound address
// and closes Ready.
func (s *Server) markReady(a *net.TCPAddr) {
	if a != nil {
		s.addr.Store(a)
	}
	s.listening.Store(true)
	s.readyOnce.Do(func() { close(s.ready) })
}

// freePort finds a TCP port free on host.
func freePort(host string) (string, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return "", fmt.Errorf("poller: pick a port: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		return "", fmt.Errorf("poller: pick a port: %w", err)
	}
	return fmt.Sprint(port), nil
}

// Ready is closed once the server listens (or once Serve has failed, in
// which case Addr is nil).
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr is the address the server listens on, with the port the kernel
// picked if Serve was given port 0. It is nil before Ready.
func (s *Server) Addr() net.Addr {
	if a := s.addr.Load(); a != nil {
		return a
	}
	return nil
}

// Stop stops accepting, closes every connection (each gets OnClose) and the
// loops, and makes Serve return. It waits for that, or for ctx. Stop before
// Serve makes a later Serve return ErrStopped.
func (s *Server) Stop(ctx context.Context) error {
	if s.state.CompareAndSwap(stateNew, stateStopped) {
		return nil
	}
	select {
	case <-s.ready:
	case <-ctx.Done():
		return fmt.Errorf("poller: stop: %w", ctx.Err())
	}
	if be := s.be.Load(); be != nil && s.listening.Load() {
		(*be).stop()
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("poller: stop: %w", ctx.Err())
	}
}

// StopAccepting makes the server close every new connection as soon as it
// is accepted, without calling the Handler, while open connections carry
// on: the first step of a graceful drain. The listening sockets stay open
// (peers connect, then see the connection closed) until Stop.
func (s *Server) StopAccepting() { s.k.refusing.Store(true) }

// Loops returns the server's loops in Index order. With the epoll backend
// every loop is listed once Ready is closed; with gnet, which gives no
// handle on a loop before its first connection, a loop joins the list
// then (a loop that never had one has nothing to do). The returned slice
// must not be modified.
func (s *Server) Loops() []*Loop { return s.k.loopsSnapshot() }

// NumLoops is the number of event loops (Config.Loops after defaults): an
// upper bound for Loop.Index, to size per-loop state.
func (s *Server) NumLoops() int { return s.k.cfg.Loops }

// Conns is the number of open connections.
func (s *Server) Conns() int { return int(s.k.conns.Load()) }

// InboundBuffered is the number of input bytes the server holds because
// its Handler left them unconsumed (partial messages), over every
// connection. Safe for concurrent use.
func (s *Server) InboundBuffered() int64 { return s.k.inbound.Load() }

// AcceptStats counts a Server's accept failures; see Server.AcceptStats.
type AcceptStats struct {
	// Errors counts accept(2) calls that failed for want of resources
	// (EMFILE, ENFILE, ENOBUFS, ENOMEM): each one pauses the listener for
	// a backoff (50 ms, doubling up to 1 s while the failures last).
	Errors uint64
	// Shed counts the connections accepted on the reserve descriptor and
	// closed at once, after Config.Overload, because the process was out
	// of file descriptors.
	Shed uint64
}

// AcceptStats returns the accept failure counters (epoll backend; gnet
// reports none). Safe for concurrent use.
func (s *Server) AcceptStats() AcceptStats {
	return AcceptStats{Errors: s.k.acceptErrors.Load(), Shed: s.k.shed.Load()}
}

package poller

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/panjf2000/gnet/v2"
)

// Server accepts TCP connections and serves them on event loops. Its
// methods are safe for concurrent use.
type Server struct {
	k       *core
	handler *serverHandler

	state     atomic.Int32 // stateNew, stateRunning, stateStopped
	eng       atomic.Pointer[gnet.Engine]
	addr      atomic.Pointer[net.TCPAddr]
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
	s := &Server{
		k:     newCore(cfg, h),
		ready: make(chan struct{}),
		done:  make(chan struct{}),
	}
	s.handler = &serverHandler{gnetHandler{k: s.k}, s}
	s.k.onFirstTick = s.markReady
	return s
}

// serverHandler adds the engine's boot to gnetHandler.
type serverHandler struct {
	gnetHandler
	s *Server
}

// OnBoot runs on Serve's goroutine before the loops start.
func (h *serverHandler) OnBoot(eng gnet.Engine) gnet.Action {
	h.s.eng.Store(&eng)
	return gnet.None
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
	if port == "0" && s.k.cfg.ReusePort && s.k.cfg.Loops > 1 {
		// Each loop binds its own listener to the address it is given, so
		// they must agree on the port beforehand. There is a short window
		// in which another process could take the port; port 0 is for
		// tests and tools.
		if port, err = freePort(host); err != nil {
			return err
		}
	}
	err = gnet.Run(s.handler, "tcp://"+net.JoinHostPort(host, port), s.k.gnetOptions()...)
	if err != nil {
		return fmt.Errorf("poller: serve %s: %w", addr, err)
	}
	return nil
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

// markReady runs at the first tick, once every listener is bound: it learns
// the bound address from the kernel and closes Ready.
func (s *Server) markReady() {
	if eng := s.eng.Load(); eng != nil {
		if a, err := boundAddr(*eng); err != nil {
			s.k.log.Warn("poller: cannot read the bound address", "err", err)
		} else {
			s.addr.Store(a)
		}
	}
	s.readyOnce.Do(func() { close(s.ready) })
}

// boundAddr asks the kernel for the address of eng's listener.
func boundAddr(eng gnet.Engine) (*net.TCPAddr, error) {
	fd, err := eng.Dup()
	if err != nil {
		return nil, fmt.Errorf("dup listener: %w", err)
	}
	defer syscall.Close(fd)
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		return nil, fmt.Errorf("getsockname: %w", err)
	}
	switch sa := sa.(type) {
	case *syscall.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(sa.Addr[:]).To16(), Port: sa.Port}, nil
	case *syscall.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(sa.Addr[:]), Port: sa.Port}, nil
	}
	return nil, fmt.Errorf("getsockname: unexpected address %T", sa)
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
	if eng := s.eng.Load(); eng != nil {
		// gnet's Engine.Stop begins the shutdown at once, then polls for
		// its end every half second; wait for Serve to return instead.
		stopCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() { _ = eng.Stop(stopCtx) }()
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
// on: the first step of a graceful drain. gnet cannot close its listeners
// without stopping its loops, so the listening socket stays open (peers
// connect, then see the connection closed) until Stop.
func (s *Server) StopAccepting() { s.k.refusing.Store(true) }

// Loops returns the loops that own or have owned a connection, in Index
// order. gnet gives no handle on a loop before its first connection, so a
// loop joins this list then; a loop that never had one has nothing to do.
// The returned slice must not be modified.
func (s *Server) Loops() []*Loop { return s.k.loopsSnapshot() }

// NumLoops is the number of event loops (Config.Loops after defaults): an
// upper bound for Loop.Index, to size per-loop state.
func (s *Server) NumLoops() int { return s.k.cfg.Loops }

// Conns is the number of open connections.
func (s *Server) Conns() int { return int(s.k.conns.Load()) }

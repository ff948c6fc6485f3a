package poller

import (
	"fmt"
	"net"
	"sync"
)

// Client holds outbound connections on event loops, with the same Handler
// and Conn types as Server. New connections go to the loop with the fewest
// (epoll backend) or to the loops in turn (gnet). Its methods are safe for
// concurrent use.
type Client struct {
	k  *core
	be clientBackend

	mu    sync.RWMutex // held for reading while a connection is enrolled
	state int32        // stateNew, stateRunning, stateStopped; guarded by mu
}

// NewClient returns a Client that will call h for its connections; Start
// starts its loops. Config.ReusePort does not apply to a client.
func NewClient(cfg Config, h Handler) (*Client, error) {
	k := newCore(cfg, h)
	be, err := newClientBackend(k)
	if err != nil {
		return nil, fmt.Errorf("poller: new client: %w", err)
	}
	return &Client{k: k, be: be}, nil
}

// Backend is the backend the client runs on (Config.Backend with its
// default applied).
func (cl *Client) Backend() string { return cl.k.cfg.Backend }

// Start starts the client's loops.
func (cl *Client) Start() error {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	switch cl.state {
	case stateRunning:
		return ErrStarted
	case stateStopped:
		return ErrStopped
	}
	if err := cl.be.start(); err != nil {
		return fmt.Errorf("poller: start client: %w", err)
	}
	cl.state = stateRunning
	return nil
}

// Dial connects to addr ("127.0.0.1:8080") from localAddr (an IP such as
// "127.0.0.2", or "" for the system's choice) and hands the connection to a
// loop. It blocks the calling goroutine (never a loop's: do not call it
// from a Handler) until OnOpen has run on the loop; the Conn returned may
// already be closed if OnOpen closed it.
func (cl *Client) Dial(addr, localAddr string) (*Conn, error) {
	var d net.Dialer
	if localAddr != "" {
		ip := net.ParseIP(localAddr)
		if ip == nil {
			return nil, fmt.Errorf("poller: dial %s: bad local address %q", addr, localAddr)
		}
		d.LocalAddr = &net.TCPAddr{IP: ip}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("poller: dial: %w", err)
	}
	return cl.Enroll(nc)
}

// Enroll takes over nc, a connection the caller dialed (to choose the
// source address, socket options or a timeout), and hands it to a loop, as
// Dial does. nc is closed in every case: the loop keeps a duplicate of its
// file descriptor.
func (cl *Client) Enroll(nc net.Conn) (*Conn, error) { return cl.EnrollContext(nc, nil) }

// EnrollContext is Enroll with the Conn's context (see Conn.SetContext)
// set to v before OnOpen runs, so that OnOpen and the first OnData know
// what the caller knows of the connection.
func (cl *Client) EnrollContext(nc net.Conn, v any) (*Conn, error) {
	cl.mu.RLock()
	defer cl.mu.RUnlock()
	if cl.state != stateRunning {
		_ = nc.Close()
		return nil, ErrStopped
	}
	c := &Conn{id: cl.k.nextID.Add(1), fd: -1, ctx: v}
	if err := cl.be.enroll(nc, c); err != nil {
		return nil, fmt.Errorf("poller: enroll %s: %w", nc.RemoteAddr(), err)
	}
	return c, nil
}

// Stop closes every connection (each gets OnClose) and stops the loops. It
// waits for the loops to end.
func (cl *Client) Stop() error {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.state != stateRunning {
		cl.state = stateStopped
		return nil
	}
	cl.state = stateStopped
	if err := cl.be.stop(); err != nil {
		return fmt.Errorf("poller: stop client: %w", err)
	}
	return nil
}

// Loops returns the client's loops in Index order: with the epoll backend
// every loop once Start has returned, with gnet those that have owned a
// connection (see Server.Loops). The returned slice must not be modified.
func (cl *Client) Loops() []*Loop { return cl.k.loopsSnapshot() }

// NumLoops is the number of event loops (Config.Loops after defaults).
func (cl *Client) NumLoops() int { return cl.k.cfg.Loops }

// Conns is the number of open connections.
func (cl *Client) Conns() int { return int(cl.k.conns.Load()) }

// InboundBuffered is the number of input bytes the client holds because
// its Handler left them unconsumed (see Server.InboundBuffered). Safe for
// concurrent use.
func (cl *Client) InboundBuffered() int64 { return cl.k.inbound.Load() }

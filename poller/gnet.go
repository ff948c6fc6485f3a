package poller

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"
	gerrors "github.com/panjf2000/gnet/v2/pkg/errors"

	"github.com/herald-push/herald/pool"
)

// This file is the gnet backend (Config.Backend "gnet"): gnet/v2's event
// loops, on every OS gnet supports. See poller.go for the contract.
//
// Out of file descriptors, gnet (v2.9.7, acceptor_unix.go) does not spin
// but gives up: an accept error other than EAGAIN, EINTR, ECONNRESET and
// ECONNABORTED (EMFILE, ENFILE, ENOBUFS) is logged once and returned as
// ErrAcceptSocket, which ends the accepting loop's poll and shuts the
// engine down, closing every connection. This backend cannot change that
// (gnet calls accept(2) itself), so Config.Overload and the reserve
// descriptor are the epoll backend's alone, and AcceptStats stays zero
// here; keep descriptors well above the connection cap with gnet.

// gnetConn is gnet's connection handle, as kept in connExt.
type gnetConn = gnet.Conn

// gnetOptions translates the Config into gnet's options.
func (k *core) gnetOptions() []gnet.Option {
	noDelay := gnet.TCPDelay
	if k.cfg.TCPNoDelay {
		noDelay = gnet.TCPNoDelay
	}
	return []gnet.Option{
		gnet.WithNumEventLoop(k.cfg.Loops),
		gnet.WithReusePort(k.cfg.ReusePort),
		gnet.WithReuseAddr(true),
		gnet.WithTicker(true),
		gnet.WithReadBufferCap(k.cfg.ReadBufferCap),
		gnet.WithSocketRecvBuffer(k.cfg.SocketRecvBuffer),
		gnet.WithSocketSendBuffer(k.cfg.SocketSendBuffer),
		gnet.WithTCPNoDelay(noDelay),
		gnet.WithTCPKeepAlive(k.cfg.TCPKeepAlive),
		gnet.WithLogger(gnetLogger{k.log}),
	}
}

// gnetDriver is the driver of a Loop on one of gnet's event loops.
type gnetDriver struct {
	l        *Loop
	el       gnet.EventLoop
	tickTask gnet.Runnable // bound once so a tick allocates nothing here
	// tickQueued is set by the ticker goroutine when it queues a tick and
	// cleared by the loop when the tick runs.
	tickQueued atomic.Bool
}

func newGnetDriver(l *Loop, el gnet.EventLoop) *gnetDriver {
	d := &gnetDriver{l: l, el: el}
	d.tickTask = gnet.RunnableFunc(func(context.Context) error {
		d.tickQueued.Store(false)
		d.l.tick(time.Now())
		return nil
	})
	return d
}

func (d *gnetDriver) write(c *Conn, bufs [][]byte) {
	// gnet copies what the kernel does not take to its outbound buffer; on
	// an error it closes c itself.
	if len(bufs) == 1 {
		_, _ = c.x.gc.Write(bufs[0])
	} else {
		_, _ = c.x.gc.Writev(bufs)
	}
	if c.fd >= 0 && c.x.gc.OutboundBuffered() > 0 {
		d.l.wait(c)
	}
}

func (d *gnetDriver) outbound(c *Conn) int { return c.x.gc.OutboundBuffered() }

// shut lingers while gnet holds outbound bytes for c: gnet keeps sending
// them, OnTraffic drops what c sends meanwhile, and the loop's tick
// closes c once they are gone (or its time is up).
func (d *gnetDriver) shut(c *Conn) {
	if c.x.gc.OutboundBuffered() > 0 && d.l.linger(c) {
		return
	}
	d.finish(c)
}

func (d *gnetDriver) finish(c *Conn) {
	if err := d.el.Close(c.x.gc); err != nil {
		d.l.k.log.Debug("poller: close", "conn", c.id, "err", err)
	}
}

func (d *gnetDriver) addr(c *Conn, remote bool) net.Addr {
	if remote {
		return c.x.gc.RemoteAddr()
	}
	return c.x.gc.LocalAddr()
}

func (d *gnetDriver) addrPort(c *Conn) (netip.AddrPort, bool) {
	if a, ok := c.x.gc.RemoteAddr().(*net.TCPAddr); ok {
		ap := a.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), ap.IsValid()
	}
	return netip.AddrPort{}, false
}

func (d *gnetDriver) post(fn func()) error {
	err := d.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		d.l.runTask(fn)
		return nil
	}))
	if errors.Is(err, gerrors.ErrEngineInShutdown) {
		return ErrStopped
	}
	return err
}

// gnetHandler implements gnet.EventHandler for a core. Its methods run on
// gnet's goroutines as documented on each.
type gnetHandler struct {
	gnet.BuiltinEventEngine
	k *core
	// bufs holds the buffers of unconsumed inbound bytes (see OnTraffic).
	bufs *pool.Bytes
	// onFirstTick runs once, on the ticker goroutine, at gnet's first
	// OnTick: by then every listener is bound and every loop runs.
	onFirstTick func()
	ticked      bool // ticker goroutine only
	// bindMu serialises the creation of Loops.
	bindMu sync.Mutex
}

// loopOf returns the Loop for gnet's event loop el, creating it when el
// shows up for the first time. gnet gives no handle on a loop before a
// connection lands on it, so this is where loops become known. Called on
// el's goroutine.
func (g *gnetHandler) loopOf(el gnet.EventLoop) *Loop {
	find := func() *Loop {
		for _, l := range g.k.loopsSnapshot() {
			if l.drv.(*gnetDriver).el == el {
				return l
			}
		}
		return nil
	}
	if l := find(); l != nil {
		return l
	}
	g.bindMu.Lock()
	defer g.bindMu.Unlock()
	if l := find(); l != nil {
		return l
	}
	l := newLoop(g.k, len(g.k.loopsSnapshot()))
	l.drv = newGnetDriver(l, el)
	g.k.addLoop(l)
	return l
}

// OnOpen runs on the connection's loop.
func (g *gnetHandler) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	k := g.k
	c, _ := gc.Context().(*Conn) // set beforehand by Client.Enroll
	if c == nil {
		if k.refusing.Load() {
			return nil, gnet.Close
		}
		c = &Conn{id: k.nextID.Add(1)}
	}
	l := g.loopOf(gc.EventLoop())
	c.fd, c.x, c.loop = int32(gc.Fd()), &connExt{gc: gc}, l
	gc.SetContext(c)
	l.add(c)
	k.conns.Add(1)
	l.enter()
	k.h.OnOpen(c)
	l.leave()
	return nil, gnet.None
}

// OnTraffic runs on the connection's loop when bytes have been read.
//
// Bytes a Handler leaves unconsumed are kept in the connection's own
// buffer (connExt.in), not in gnet's: gnet presents its inbound buffer and
// the bytes just read as one slice by copying them when both hold bytes,
// so changes a Handler made to unconsumed bytes (a TLS record decrypted in
// place, a frame unmasked in place) would be lost, which OnData's contract
// forbids.
func (g *gnetHandler) OnTraffic(gc gnet.Conn) gnet.Action {
	c, _ := gc.Context().(*Conn)
	if c == nil || c.Closed() {
		_, _ = gc.Discard(-1)
		return gnet.None
	}
	in, err := gc.Peek(-1)
	if err != nil || len(in) == 0 {
		return gnet.None
	}
	x := c.x
	own := x.in != nil
	if own {
		*x.in = append(*x.in, in...)
		in = *x.in
		_, _ = gc.Discard(-1)
	}
	l := c.loop
	l.enter()
	n := g.k.h.OnData(c, in)
	// Flush before keeping or dropping the rest: writes may point into in.
	l.leave()
	if c.fd < 0 {
		return gnet.None // closed by the flush; OnClose returned the buffer
	}
	rest := in[min(max(n, 0), len(in)):]
	switch {
	case len(rest) == 0:
		if own {
			g.bufs.Put(x.in)
			x.in = nil
		}
	case own:
		*x.in = (*x.in)[:copy(*x.in, rest)]
	default:
		x.in = g.bufs.Get(len(rest))
		*x.in = append(*x.in, rest...)
	}
	if !own {
		_, _ = gc.Discard(-1)
	}
	g.k.countIn(x, len(rest))
	return gnet.None
}

// OnClose runs on the connection's loop, once per opened connection.
func (g *gnetHandler) OnClose(gc gnet.Conn, err error) gnet.Action {
	c, _ := gc.Context().(*Conn)
	if c == nil || c.fd < 0 {
		return gnet.None
	}
	l := c.loop
	g.k.countIn(c.x, 0)
	if c.x.in != nil {
		g.bufs.Put(c.x.in)
		c.x.in = nil
	}
	l.enter()
	l.remove(c)
	g.k.conns.Add(-1)
	g.k.h.OnClose(c, err)
	l.leave()
	return gnet.None
}

// OnTick runs on gnet's ticker goroutine: it asks every known loop to
// advance its timing wheel. A loop that has not yet run its previous tick
// is not asked again (its next tick catches up on the time that passed).
func (g *gnetHandler) OnTick() (time.Duration, gnet.Action) {
	k := g.k
	if !g.ticked {
		g.ticked = true
		if g.onFirstTick != nil {
			g.onFirstTick()
		}
	}
	for _, l := range k.loopsSnapshot() {
		d := l.drv.(*gnetDriver)
		if !d.tickQueued.CompareAndSwap(false, true) {
			continue
		}
		if err := d.el.Execute(context.Background(), d.tickTask); err != nil {
			d.tickQueued.Store(false)
		}
	}
	return k.interval, gnet.None
}

// gnetServer is the gnet backend's serverBackend.
type gnetServer struct {
	gnetHandler
	eng   atomic.Pointer[gnet.Engine]
	ready func(*net.TCPAddr)
}

func newGnetServer(k *core) *gnetServer {
	g := &gnetServer{gnetHandler: gnetHandler{k: k, bufs: pool.NewBytes()}}
	g.onFirstTick = g.markReady
	return g
}

// OnBoot runs on serve's goroutine before the loops start.
func (g *gnetServer) OnBoot(eng gnet.Engine) gnet.Action {
	g.eng.Store(&eng)
	return gnet.None
}

func (g *gnetServer) serve(host, port string, ready func(*net.TCPAddr)) error {
	g.ready = ready
	if port == "0" && g.k.cfg.ReusePort && g.k.cfg.Loops > 1 {
		// Each gnet loop binds its own listener to the address it is
		// given, so they must agree on the port beforehand. There is a
		// short window in which another process could take the port;
		// port 0 is for tests and tools.
		var err error
		if port, err = freePort(host); err != nil {
			return err
		}
	}
	if err := gnet.Run(g, "tcp://"+net.JoinHostPort(host, port), g.k.gnetOptions()...); err != nil {
		return fmt.Errorf("gnet: %w", err)
	}
	return nil
}

// markReady runs at the first tick, once every listener is bound: it learns
// the bound address from the kernel.
func (g *gnetServer) markReady() {
	var a *net.TCPAddr
	if eng := g.eng.Load(); eng != nil {
		var err error
		if a, err = gnetBoundAddr(*eng); err != nil {
			g.k.log.Warn("poller: cannot read the bound address", "err", err)
		}
	}
	g.ready(a)
}

func (g *gnetServer) stop() {
	if eng := g.eng.Load(); eng != nil {
		// gnet's Engine.Stop begins the shutdown at once, then polls for
		// its end every half second; Server.Stop waits for serve to
		// return instead, so this goroutine only lingers until then.
		go func() { _ = eng.Stop(context.Background()) }()
	}
}

// gnetBoundAddr asks the kernel for the address of eng's listener.
func gnetBoundAddr(eng gnet.Engine) (*net.TCPAddr, error) {
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

// gnetClient is the gnet backend's clientBackend.
type gnetClient struct {
	gc *gnet.Client
}

func newGnetClient(k *core) (*gnetClient, error) {
	gc, err := gnet.NewClient(&gnetHandler{k: k, bufs: pool.NewBytes()}, k.gnetOptions()...)
	if err != nil {
		return nil, fmt.Errorf("gnet: %w", err)
	}
	return &gnetClient{gc: gc}, nil
}

func (g *gnetClient) start() error { return g.gc.Start() }

func (g *gnetClient) enroll(nc net.Conn, c *Conn) error {
	_, err := g.gc.EnrollContext(nc, c)
	return err
}

func (g *gnetClient) stop() error { return g.gc.Stop() }

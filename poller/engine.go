package poller

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// core is what a Server and a Client share: the user's Handler, the loops
// met so far and the connection counter. Its gnet callbacks (the methods of
// gnetHandler) adapt gnet's events to Handler's.
type core struct {
	h        Handler
	cfg      Config
	log      *slog.Logger
	interval time.Duration

	nextID atomic.Uint64
	conns  atomic.Int64
	// refusing makes OnOpen close new connections at once (StopAccepting).
	refusing atomic.Bool
	// onFirstTick runs once, on the ticker goroutine, at gnet's first
	// OnTick: by then every listener is bound and every loop runs.
	onFirstTick func()
	ticked      bool // ticker goroutine only

	// bindMu serialises the creation of Loops; loops is the copy-on-write
	// list of them, in the order their first connection arrived.
	bindMu sync.Mutex
	loops  atomic.Pointer[[]*Loop]
}

func newCore(cfg Config, h Handler) *core {
	cfg = cfg.withDefaults()
	k := &core{h: h, cfg: cfg, log: cfg.Logger, interval: cfg.TickInterval}
	k.loops.Store(new([]*Loop))
	return k
}

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

// loopsSnapshot returns the loops met so far; the slice is never modified.
func (k *core) loopsSnapshot() []*Loop { return *k.loops.Load() }

// loopOf returns the Loop for gnet's event loop el, creating it when el
// shows up for the first time. gnet gives no handle on a loop before a
// connection lands on it, so this is where loops become known. Called on
// el's goroutine.
func (k *core) loopOf(el gnet.EventLoop) *Loop {
	for _, l := range *k.loops.Load() {
		if l.el == el {
			return l
		}
	}
	k.bindMu.Lock()
	defer k.bindMu.Unlock()
	cur := *k.loops.Load()
	for _, l := range cur {
		if l.el == el {
			return l
		}
	}
	l := newLoop(k, el, len(cur))
	next := append(slices.Clip(cur), l)
	k.loops.Store(&next)
	return l
}

// gnetHandler implements gnet.EventHandler for a core. Its methods run on
// gnet's goroutines as documented on each.
type gnetHandler struct {
	gnet.BuiltinEventEngine
	k *core
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
	l := k.loopOf(gc.EventLoop())
	c.gc, c.loop = gc, l
	gc.SetContext(c)
	l.add(c)
	k.conns.Add(1)
	l.enter()
	k.h.OnOpen(c)
	l.leave()
	return nil, gnet.None
}

// OnTraffic runs on the connection's loop when bytes have been read.
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
	l := c.loop
	l.enter()
	n := g.k.h.OnData(c, in)
	// Flush before Discard: in stays intact until the writes that may
	// point into it have been sent or copied.
	l.leave()
	// Discard(0) would drop everything, so only call it with n > 0; a
	// connection closed by the flush has nothing left to keep.
	if n > 0 && c.gc != nil {
		_, _ = gc.Discard(min(n, len(in)))
	}
	return gnet.None
}

// OnClose runs on the connection's loop, once per opened connection.
func (g *gnetHandler) OnClose(gc gnet.Conn, err error) gnet.Action {
	c, _ := gc.Context().(*Conn)
	if c == nil || c.gc == nil {
		return gnet.None
	}
	l := c.loop
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
	if !k.ticked {
		k.ticked = true
		if k.onFirstTick != nil {
			k.onFirstTick()
		}
	}
	for _, l := range k.loopsSnapshot() {
		if !l.tickQueued.CompareAndSwap(false, true) {
			continue
		}
		if err := l.el.Execute(context.Background(), l.tickTask); err != nil {
			l.tickQueued.Store(false)
		}
	}
	return k.interval, gnet.None
}

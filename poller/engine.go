package poller

import (
	"log/slog"
	"slices"
	"sync/atomic"
	"time"
)

// core is what a Server and a Client share, whatever the backend: the
// user's Handler, the configuration, the loops and the connection counter.
type core struct {
	h        Handler
	writable WritableHandler // h, if it implements it; else nil
	sealer   Sealer          // h, if it implements it; else nil
	cfg      Config
	log      *slog.Logger
	interval time.Duration

	nextID atomic.Uint64
	conns  atomic.Int64
	// inbound is the number of input bytes held for Handlers that left
	// them unconsumed, across the loops (see connExt.inCounted).
	inbound atomic.Int64
	// refusing makes the backend close new connections at once
	// (StopAccepting).
	refusing atomic.Bool

	// acceptErrors counts accept(2) failures other than a drained queue or
	// a connection gone before it was taken (EMFILE, ENFILE, ENOBUFS,
	// ENOMEM...); shed counts the connections accepted on the reserve
	// descriptor and closed, with Config.Overload, for want of
	// descriptors. acceptCalls counts accept(2) calls (tests: no spin).
	acceptErrors, shed, acceptCalls atomic.Uint64
	// noReserve keeps the epoll backend from holding a reserve descriptor
	// (tests: the listener's pause alone).
	noReserve bool

	// loops is the copy-on-write list of the loops, in Index order.
	loops atomic.Pointer[[]*Loop]
}

func newCore(cfg Config, h Handler) *core {
	cfg = cfg.withDefaults()
	k := &core{h: h, cfg: cfg, log: cfg.Logger, interval: cfg.TickInterval}
	k.writable, _ = h.(WritableHandler)
	k.sealer, _ = h.(Sealer)
	k.loops.Store(new([]*Loop))
	return k
}

// loopsSnapshot returns the loops known so far; the slice is never modified.
func (k *core) loopsSnapshot() []*Loop { return *k.loops.Load() }

// addLoop appends l to the list of loops. Callers serialise it.
func (k *core) addLoop(l *Loop) {
	next := append(slices.Clip(*k.loops.Load()), l)
	k.loops.Store(&next)
}

// countIn records that x's connection now holds n unconsumed input bytes.
func (k *core) countIn(x *connExt, n int) {
	if n != x.inCounted {
		k.inbound.Add(int64(n - x.inCounted))
		x.inCounted = n
	}
}

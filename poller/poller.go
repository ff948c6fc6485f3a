package poller

import (
	"net"
	"net/netip"
)

// A backend runs the loops over the operating system's readiness API and
// owns the sockets; everything else in the package (Conn, Loop and its
// write queue, the timing wheel, Server and Client state) is backend-neutral
// and reaches the backend only through the interfaces below.
//
// Two backends exist (Config.Backend):
//
//   - epoll (epoll_linux.go, Linux only, the default there): written on the
//     system calls directly, so that an idle connection costs its Conn and a
//     slot in an fd-indexed table, nothing else.
//   - gnet (gnet.go, every OS, the default off Linux): gnet/v2's event
//     loops (kqueue on the BSDs and macOS), which keep their own state per
//     connection (about 570 bytes).
//
// The contract a backend keeps:
//
//   - Every Handler call and every Loop.Run func for a connection runs on
//     its loop's goroutine, wrapped as an entry point (Loop.enter/leave,
//     Loop.runTask, Loop.tick), so that queued writes are flushed once, when
//     the outermost entry point returns.
//   - A connection is opened with Conn.fd set, added to Loop.conns
//     (Loop.add), counted in core.conns, then OnOpen runs; it is closed
//     exactly once: the backend releases its state, calls Loop.remove (which
//     sets fd to -1), uncounts it and calls OnClose.
//   - Inbound bytes a Handler leaves unconsumed are presented again,
//     unchanged, before new bytes; the slice given to OnData stays valid
//     until the entry point's writes have been flushed.
//   - About once per TickInterval each running loop calls Loop.tick.

// driver is one loop's side of a backend. Its methods other than post are
// called on the loop goroutine only, for an open connection of that loop.
type driver interface {
	// write hands bufs (at most iovMax of them) to the kernel for c and
	// keeps what the kernel does not take, to be sent, in order, when c is
	// writable. On a fatal error it closes c (OnClose runs nested).
	write(c *Conn, bufs [][]byte)
	// outbound is the number of bytes write kept for c.
	outbound(c *Conn) int
	// shut closes c, its queued writes flushed: at once if the kernel has
	// taken every byte (OnClose(c, nil) runs nested), else after
	// Loop.linger, until Loop.checkLinger or the backend calls finish.
	shut(c *Conn)
	// finish closes c at once, dropping what write kept; OnClose(c, nil)
	// runs nested.
	finish(c *Conn)
	// addr returns c's remote (or local) address, nil if unknown.
	addr(c *Conn, remote bool) net.Addr
	// addrPort returns c's remote IP and port, false if unknown; it
	// allocates nothing.
	addrPort(c *Conn) (netip.AddrPort, bool)
	// post queues fn to run on the loop through Loop.runTask and wakes the
	// loop. Safe for concurrent use. Once the loop is stopping it returns
	// ErrStopped (possibly wrapped) and fn never runs.
	post(fn func()) error
}

// serverBackend is a backend's listening side, for one Server.
type serverBackend interface {
	// serve listens on host:port, calls ready with the bound address once
	// every listener is bound and every loop runs, and serves until stop;
	// it returns nil after stop, or the error that kept it from serving.
	// Called once.
	serve(host, port string, ready func(*net.TCPAddr)) error
	// stop begins the shutdown: listeners closed, every connection closed
	// (OnClose each), loops ended; serve returns when that is done. Safe
	// for concurrent use; called once, after ready.
	stop()
}

// clientBackend is a backend's dialing side, for one Client. Client
// serialises start and stop, and calls enroll only between them.
type clientBackend interface {
	// start starts the loops.
	start() error
	// enroll takes over nc (closing it) and opens c, already numbered, on a
	// loop; it returns once OnOpen has run.
	enroll(nc net.Conn, c *Conn) error
	// stop closes every connection (OnClose each) and ends the loops,
	// waiting for them.
	stop() error
}

// Backend names for Config.Backend.
const (
	BackendEpoll = "epoll"
	BackendGnet  = "gnet"
)

// newServerBackend returns the server side of k's configured backend.
func newServerBackend(k *core) (serverBackend, error) {
	switch k.cfg.Backend {
	case BackendGnet:
		return newGnetServer(k), nil
	case BackendEpoll:
		return newEpollServer(k)
	}
	return nil, errBackend(k.cfg.Backend)
}

// newClientBackend returns the client side of k's configured backend.
func newClientBackend(k *core) (clientBackend, error) {
	switch k.cfg.Backend {
	case BackendGnet:
		return newGnetClient(k)
	case BackendEpoll:
		return newEpollClient(k)
	}
	return nil, errBackend(k.cfg.Backend)
}

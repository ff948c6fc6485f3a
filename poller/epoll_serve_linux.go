package poller

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// This file opens the epoll backend's listeners (epollServer) and takes
// over dialed connections (epollClient); epoll_linux.go runs the loops.

// listenBacklog is the backlog asked of listen(2); the kernel caps it at
// net.core.somaxconn.
const listenBacklog = 1<<16 - 1

// epollServer is the epoll backend's serverBackend.
type epollServer struct {
	k     *core
	mu    sync.Mutex
	loops []*epollLoop // guarded by mu; set once serve has started them
}

func newEpollServer(k *core) (serverBackend, error) { return &epollServer{k: k}, nil }

func (s *epollServer) serve(host, port string, ready func(*net.TCPAddr)) error {
	k := s.k
	sa, family, err := resolveListen(host, port)
	if err != nil {
		return err
	}
	loops, err := newEpollLoops(k, k.cfg.Loops)
	if err != nil {
		return err
	}
	// One listener per loop with SO_REUSEPORT (the kernel spreads the
	// connections); otherwise one, on loop 0, which hands them round.
	nl := 1
	if k.cfg.ReusePort {
		nl = len(loops)
	}
	var bound *net.TCPAddr
	for i := range nl {
		fd, err := listenTCP(family, sa, k.cfg.ReusePort, k.cfg.TCPNoDelay, k.cfg.DeferAccept)
		if err == nil {
			err = loops[i].addListener(fd)
		}
		if err != nil {
			abandon(loops)
			return err
		}
		if i == 0 {
			// With port 0 the first listener's port is the one the others
			// bind to: no window in which another process could take it.
			lsa, err := unix.Getsockname(fd)
			if err != nil {
				abandon(loops)
				return os.NewSyscallError("getsockname", err)
			}
			bound, _ = sockaddrToAddr(lsa).(*net.TCPAddr)
			setPort(sa, bound.Port)
		}
	}
	s.mu.Lock()
	s.loops = loops
	s.mu.Unlock()
	for _, e := range loops {
		go e.run()
	}
	ready(bound)
	for _, e := range loops {
		<-e.done
	}
	return nil
}

// abandon closes loops that never ran; Run on them returns ErrStopped.
func abandon(loops []*epollLoop) {
	for _, e := range loops {
		e.mu.Lock()
		e.stopped = true
		e.mu.Unlock()
		e.closeFds()
	}
}

func (s *epollServer) stop() {
	s.mu.Lock()
	loops := s.loops
	s.mu.Unlock()
	for _, e := range loops {
		e.stop()
	}
}

// addListener makes e accept on fd. Called before e runs.
func (e *epollLoop) addListener(fd int) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
	if err := unix.EpollCtl(e.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		_ = unix.Close(fd)
		return os.NewSyscallError("epoll_ctl", err)
	}
	e.lns = append(e.lns, fd)
	if e.reserve < 0 && !e.l.k.noReserve {
		e.reserve = openReserve()
	}
	return nil
}

// openReserve opens the descriptor a listening loop keeps in reserve
// (-1 if it cannot).
func openReserve() int {
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	return fd
}

// Backoff of a listener paused by accept failures.
const (
	minAcceptPause = 50 * time.Millisecond
	maxAcceptPause = time.Second
	// acceptLogEvery is the least time between two logged accept failures
	// of one loop; those in between are counted in the next line.
	acceptLogEvery = time.Second
)

// accept takes the connections waiting on lfd and opens each on a loop:
// this one when each loop has its own listener, else the loops in turn.
//
// Out of descriptors (EMFILE, ENFILE), the waiting connections are taken
// on the reserve descriptor, sent Config.Overload and closed (see shed);
// on that and any other failure for want of resources (ENOBUFS, ENOMEM)
// the loop stops polling its listeners for a backoff (pause), as
// level-triggered readiness would otherwise bring it straight back to
// fail again, and logs at most one line a second. The backoff doubles
// from minAcceptPause to maxAcceptPause while connections are left
// waiting; when shed has answered them all it stays at minAcceptPause.
//
// A wakeup takes a run of connections, not all of them until EAGAIN: the
// listener is level-triggered, so one still waiting brings it back at the
// loop's next wait, and a storm that wakes the loop for each connection
// would otherwise pay a second, failing accept4 for every one. The run
// starts at one, doubles (up to acceptBatch) when the listener is ready
// again at the very next wait after a whole run (a queue is building),
// and shrinks to what was there when accept4 says EAGAIN.
func (e *epollLoop) accept(lfd int) {
	k := e.l.k
	run := max(e.acceptRun, 1)
	if e.acceptFull == e.iter {
		run = min(2*run, acceptBatch)
	}
	taken := 0
	for range run {
		k.acceptCalls.Add(1)
		fd, err := accept4(lfd, &e.peer)
		if err != nil {
			switch err {
			case unix.EAGAIN:
				e.acceptRun = max(taken, 1)
			case unix.EINTR, unix.ECONNABORTED:
				continue
			case unix.EMFILE, unix.ENFILE:
				k.acceptErrors.Add(1)
				shed, state := e.shed(lfd)
				if state == shedRecovered {
					continue
				}
				if state == shedDrained {
					// Every waiting connection was answered: nothing is
					// left to spin on, so the shortest pause will do, and
					// the next clients wait no longer than that.
					e.backoff = 0
				}
				e.pause()
				e.logAccept(err, shed)
			default:
				k.acceptErrors.Add(1)
				e.pause()
				e.logAccept(err, 0)
			}
			return
		}
		e.backoff = 0
		taken++
		e.place(fd)
	}
	e.acceptRun = run
	e.acceptFull = e.iter + 1
}

// place opens fd, a connection just accepted, on a loop: this one when
// each loop has its own listener, else the loops in turn.
func (e *epollLoop) place(fd int) {
	k := e.l.k
	if k.refusing.Load() {
		_ = unix.Close(fd)
		return
	}
	to := e
	if len(e.lns) == 1 && !k.cfg.ReusePort && len(e.peers) > 1 {
		to = e.peers[e.next%len(e.peers)]
		e.next++
	}
	if to == e {
		// OnOpen may ask for the peer's address: accept4 gave it.
		e.peerFd = int32(fd)
		err := e.open(fd, nil, true)
		e.peerFd = -1
		if err != nil {
			k.log.Debug("poller: open", "err", err)
		}
		return
	}
	if err := to.post(func() {
		if err := to.open(fd, nil, true); err != nil {
			k.log.Debug("poller: open", "err", err)
		}
	}); err != nil {
		_ = unix.Close(fd)
	}
}

// shedState is how shed left the listener's queue.
type shedState int

const (
	// shedPending: connections may be left waiting.
	shedPending shedState = iota
	// shedDrained: every waiting connection was answered.
	shedDrained
	// shedRecovered: descriptors were freed meanwhile; the connection
	// that showed it was served, and accept goes on as usual.
	shedRecovered
)

// shed refuses connections waiting on lfd while the process is out of
// descriptors: it closes the reserve descriptor, accepts one connection in
// its place, reopens the reserve and, if that fails (still out), sends
// the connection Config.Overload, closes it and reopens the reserve
// again; at most acceptBatch of them. A reserve that reopens beside the
// new connection means descriptors were freed: that connection is served,
// not refused. It returns how many it refused, and the queue's state.
func (e *epollLoop) shed(lfd int) (n int, state shedState) {
	k := e.l.k
	for range acceptBatch {
		if e.reserve < 0 {
			if k.noReserve {
				return n, shedPending
			}
			// Lost earlier to another thread's open: try again now.
			if e.reserve = openReserve(); e.reserve < 0 {
				return n, shedPending
			}
		}
		_ = unix.Close(e.reserve)
		k.acceptCalls.Add(1)
		fd, err := accept4(lfd, &e.peer)
		e.reserve = openReserve()
		switch {
		case err == nil && e.reserve >= 0:
			e.place(fd)
			return n, shedRecovered
		case err == nil:
			k.shed.Add(1) // before the answer: a peer that read it finds it counted
			refuse(fd, k.cfg.Overload, e.rbuf)
			n++
			e.reserve = openReserve()
		case err == unix.EAGAIN:
			return n, shedDrained
		case err != unix.EINTR && err != unix.ECONNABORTED:
			return n, shedPending // another thread took the slot
		}
	}
	return n, shedPending
}

// refuse sends msg to fd, a connection just accepted, and closes it. What
// the peer has sent already is read first (one buffer's worth), as closing
// a socket with unread input makes the kernel reset the connection, which
// could destroy msg before the peer reads it.
func refuse(fd int, msg, scratch []byte) {
	_, _ = unix.Read(fd, scratch)
	if len(msg) > 0 {
		_, _ = unix.Write(fd, msg) // a fresh socket's buffer takes it all
	}
	_ = unix.Shutdown(fd, unix.SHUT_WR)
	_ = unix.Close(fd)
}

// pause takes the loop's listeners out of its epoll set for the next
// backoff; run calls resume when it is over.
func (e *epollLoop) pause() {
	e.backoff = min(max(2*e.backoff, minAcceptPause), maxAcceptPause)
	e.resumeAt = time.Now().Add(e.backoff)
	if e.paused {
		return
	}
	e.paused = true
	for _, fd := range e.lns {
		_ = unix.EpollCtl(e.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	}
}

// resume puts the listeners back in the epoll set after a pause; the
// connections that waited in the backlog meanwhile make them readable at
// once.
func (e *epollLoop) resume() {
	e.paused = false
	for _, fd := range e.lns {
		ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
		if err := unix.EpollCtl(e.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
			e.l.k.log.Error("poller: listener not resumed", "loop", e.l.idx, "err", os.NewSyscallError("epoll_ctl", err))
		}
	}
}

// logAccept logs an accept failure, at most once per acceptLogEvery per
// loop, with the number of failures left out since the last line.
func (e *epollLoop) logAccept(err error, shed int) {
	now := time.Now()
	if now.Before(e.logAt) {
		e.unlogged++
		return
	}
	e.logAt = now.Add(acceptLogEvery)
	e.l.k.log.Warn("poller: accept failed; listener paused",
		"loop", e.l.idx, "err", os.NewSyscallError("accept4", err), "refused", shed,
		"retry_in", e.backoff, "suppressed", e.unlogged)
	e.unlogged = 0
}

// resolveListen turns host and port into a socket address: IPv4 for an
// IPv4 host, else IPv6 (dual-stack for an empty host).
func resolveListen(host, port string) (unix.Sockaddr, int, error) {
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		pn, lerr := net.LookupPort("tcp", port)
		if lerr != nil {
			return nil, 0, fmt.Errorf("port %q: %w", port, lerr)
		}
		p = uint64(pn)
	}
	if host == "" {
		return &unix.SockaddrInet6{Port: int(p)}, unix.AF_INET6, nil
	}
	a, err := net.ResolveIPAddr("ip", host)
	if err != nil {
		return nil, 0, fmt.Errorf("host %q: %w", host, err)
	}
	if ip4 := a.IP.To4(); ip4 != nil {
		sa := &unix.SockaddrInet4{Port: int(p)}
		copy(sa.Addr[:], ip4)
		return sa, unix.AF_INET, nil
	}
	sa := &unix.SockaddrInet6{Port: int(p)}
	copy(sa.Addr[:], a.IP.To16())
	if a.Zone != "" {
		if ifi, err := net.InterfaceByName(a.Zone); err == nil {
			sa.ZoneId = uint32(ifi.Index)
		}
	}
	return sa, unix.AF_INET6, nil
}

// setPort sets the port of an address made by resolveListen.
func setPort(sa unix.Sockaddr, port int) {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		sa.Port = port
	case *unix.SockaddrInet6:
		sa.Port = port
	}
}

// listenTCP opens a non-blocking listening socket on sa. With noDelay it
// sets TCP_NODELAY on the listener, which the connections it accepts
// inherit (Linux copies the option to each accepted socket): one system
// call per connection fewer.
func listenTCP(family int, sa unix.Sockaddr, reusePort, noDelay bool, deferAccept time.Duration) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	fail := func(call string, err error) (int, error) {
		_ = unix.Close(fd)
		return -1, os.NewSyscallError(call, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fail("setsockopt SO_REUSEADDR", err)
	}
	if reusePort {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return fail("setsockopt SO_REUSEPORT", err)
		}
	}
	if noDelay {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
			return fail("setsockopt TCP_NODELAY", err)
		}
	}
	if err := setDeferAccept(fd, deferAccept); err != nil {
		_ = unix.Close(fd)
		return -1, err
	}
	if family == unix.AF_INET6 {
		if sa6, ok := sa.(*unix.SockaddrInet6); ok && sa6.Addr == ([16]byte{}) {
			// The unspecified address serves IPv4 as well, as Go's net
			// package does for ":port".
			_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	if err := unix.Listen(fd, listenBacklog); err != nil {
		return fail("listen", err)
	}
	return fd, nil
}

// setSockOpts applies the Config's socket options to a connection;
// accepted says it came from one of the loops' listeners, whose
// TCP_NODELAY it inherited (see listenTCP). A failure (as on a Unix
// socket handed to Client.Enroll) is logged at debug level and otherwise
// ignored: the connection works without the option.
func setSockOpts(fd int, cfg *Config, log *slog.Logger, accepted bool) {
	set := func(level, opt, v int, name string) {
		if err := unix.SetsockoptInt(fd, level, opt, v); err != nil {
			log.Debug("poller: setsockopt", "opt", name, "err", err)
		}
	}
	if cfg.TCPNoDelay && !accepted {
		set(unix.IPPROTO_TCP, unix.TCP_NODELAY, 1, "TCP_NODELAY")
	}
	if cfg.SocketRecvBuffer > 0 {
		set(unix.SOL_SOCKET, unix.SO_RCVBUF, cfg.SocketRecvBuffer, "SO_RCVBUF")
	}
	if cfg.SocketSendBuffer > 0 {
		set(unix.SOL_SOCKET, unix.SO_SNDBUF, cfg.SocketSendBuffer, "SO_SNDBUF")
	}
	if cfg.TCPKeepAlive > 0 {
		secs := max(int((cfg.TCPKeepAlive+time.Second-1)/time.Second), 1)
		set(unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1, "SO_KEEPALIVE")
		set(unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, secs, "TCP_KEEPIDLE")
		set(unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, secs, "TCP_KEEPINTVL")
	}
}

// epollClient is the epoll backend's clientBackend.
type epollClient struct {
	k     *core
	loops []*epollLoop // set by start; Client serialises start, enroll, stop
}

func newEpollClient(k *core) (clientBackend, error) { return &epollClient{k: k}, nil }

func (cl *epollClient) start() error {
	loops, err := newEpollLoops(cl.k, cl.k.cfg.Loops)
	if err != nil {
		return err
	}
	cl.loops = loops
	for _, e := range loops {
		go e.run()
	}
	return nil
}

func (cl *epollClient) enroll(nc net.Conn, c *Conn) error {
	fd, err := dupSocket(nc)
	if cerr := nc.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close the original: %w", cerr)
	}
	if err != nil {
		if fd >= 0 {
			_ = unix.Close(fd)
		}
		return err
	}
	// The least loaded loop; counts change meanwhile, which only makes the
	// choice approximate.
	to := cl.loops[0]
	for _, e := range cl.loops[1:] {
		if e.count.Load() < to.count.Load() {
			to = e
		}
	}
	opened := make(chan error, 1)
	if err := to.post(func() { opened <- to.open(fd, c, false) }); err != nil {
		_ = unix.Close(fd)
		return err
	}
	return <-opened
}

// dupSocket returns a non-blocking, close-on-exec duplicate of nc's file
// descriptor (-1 on failure).
func dupSocket(nc net.Conn) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1, errNotSocket
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, fmt.Errorf("syscall conn: %w", err)
	}
	fd, derr := -1, error(nil)
	if err := rc.Control(func(s uintptr) {
		fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, fmt.Errorf("control: %w", err)
	}
	if derr != nil {
		return -1, os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", derr)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		return fd, os.NewSyscallError("fcntl O_NONBLOCK", err)
	}
	return fd, nil
}

func (cl *epollClient) stop() error {
	for _, e := range cl.loops {
		e.stop()
	}
	for _, e := range cl.loops {
		<-e.done
	}
	return nil
}

// errNotSocket is returned by Client.Enroll for a net.Conn without a file
// descriptor.
var errNotSocket = errors.New("poller: connection has no socket to take over")

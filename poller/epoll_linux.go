package poller

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/herald-push/herald/pool"
)

// This file is the epoll backend's loop (Config.Backend "epoll", the
// default on Linux) and its inbound path; epoll_write_linux.go has the
// outbound path, epoll_serve_linux.go the listeners and clients.
// It is written on the system calls rather than on a framework so that an
// idle connection costs only its Conn and a slot in its loop's fd table:
// no buffer, no address, no callback object.
//
// The loop is level-triggered. A readable connection gets one read(2) per
// wakeup (at most one read buffer's worth), so a busy peer cannot starve
// the others and nothing has to be drained until EAGAIN; what is left is
// reported again by the next epoll_wait. EPOLLOUT is armed only while a
// connection has outbound bytes the kernel refused, and disarmed once they
// are sent, so a writable idle socket never wakes the loop.

// platformBackend is the backend an empty Config.Backend means.
const platformBackend = BackendEpoll

const (
	// epollBatch is the most events one epoll_wait returns.
	epollBatch = 256
	// minReadSpace is the least free room a connection's own inbound buffer
	// must have before a read into it; it grows (doubling) otherwise.
	minReadSpace = 4 << 10
	// maxFreeExts bounds a loop's list of recycled connExts.
	maxFreeExts = 256
	// acceptBatch bounds the accept(2) calls per listener wakeup, so that a
	// burst of connections does not starve the loop's other work.
	acceptBatch = 64
)

// epollLoop drives one Loop on its own epoll instance and goroutine, locked
// to an OS thread. Apart from post and stop (safe for concurrent use), its
// state belongs to the loop goroutine.
type epollLoop struct {
	l    *Loop
	epfd int
	evfd int // eventfd that wakes the loop for posted tasks
	// bufs lends per-connection buffers: inbound bytes a Handler left
	// unconsumed, outbound bytes the kernel did not take.
	bufs *pool.Bytes
	// peers are all the loops of the same Server or Client (self included),
	// for handing accepted connections round-robin.
	peers []*epollLoop
	// done is closed when run returns and the loop's fds are closed.
	done chan struct{}
	// count mirrors len(l.conns) for other goroutines (Client's choice of
	// the least loaded loop).
	count atomic.Int64

	mu      sync.Mutex
	tasks   []func() // guarded by mu
	stopped bool     // guarded by mu: post refuses, the loop shuts down
	// wake is set by the poster that writes the eventfd and cleared by the
	// loop before it takes the tasks: one wakeup per burst of posts.
	wake atomic.Bool

	// Loop goroutine only from here on.

	lns []int // listening sockets this loop accepts on
	// peer is the address accept4 wrote for the connection being opened,
	// peerFd its descriptor while OnOpen runs (-1 otherwise), so that
	// OnOpen's RemoteAddrPort costs no getpeername.
	peer   unix.RawSockaddrAny
	peerFd int32
	next   int // round-robin position among peers (acceptor)
	// iter counts the loop's waits; acceptRun is how many connections
	// the next listener wakeup takes, and acceptFull the iter at which a
	// wakeup that took its whole run is seen again (see accept).
	iter, acceptFull uint64
	acceptRun        int
	fds              []*Conn      // open connections by fd
	rbuf             []byte       // the loop's read buffer
	iov              []unix.Iovec // writev scratch
	events           []unix.EpollEvent
	spare            []func() // the task list not in use, kept for its capacity
	free             []*connExt
	// held counts the buffers borrowed from bufs and not yet returned,
	// and watching the connections with EPOLLOUT armed; tests read them
	// to prove that idle connections hold neither.
	held, watching int
	// grows counts the outbound buffers taken to make room for more
	// (tests: the growth must be geometric).
	grows int
	// signals counts the eventfd writes (tests).
	signals atomic.Int64
	quit    bool

	// reserve is a descriptor (/dev/null) held open by a listening loop
	// so that, out of descriptors, it can close it, accept a waiting
	// connection, refuse it and reopen it (-1: none).
	reserve int
	// paused says the listeners are out of the epoll set until resumeAt,
	// after an accept failure; backoff is the pause, doubling while the
	// failures last and reset by an accept that works.
	paused   bool
	resumeAt time.Time
	backoff  time.Duration
	// logAt is when an accept failure may next be logged; unlogged counts
	// the failures left out since the last line.
	logAt    time.Time
	unlogged int
}

// newEpollLoop creates the epoll instance and eventfd of loop idx of k.
func newEpollLoop(k *core, idx int, bufs *pool.Bytes) (*epollLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		_ = unix.Close(evfd)
		_ = unix.Close(epfd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	l := newLoop(k, idx)
	e := &epollLoop{
		l:       l,
		epfd:    epfd,
		evfd:    evfd,
		bufs:    bufs,
		done:    make(chan struct{}),
		reserve: -1,
		peerFd:  -1,
		rbuf:    make([]byte, k.cfg.ReadBufferCap),
		events:  make([]unix.EpollEvent, epollBatch),
	}
	l.drv = e
	return e, nil
}

// newEpollLoops creates n loops and registers them with k, in Index order.
func newEpollLoops(k *core, n int) ([]*epollLoop, error) {
	bufs := pool.NewBytes()
	loops := make([]*epollLoop, 0, n)
	for i := range n {
		e, err := newEpollLoop(k, i, bufs)
		if err != nil {
			for _, e := range loops {
				e.closeFds()
			}
			return nil, fmt.Errorf("loop %d: %w", i, err)
		}
		loops = append(loops, e)
	}
	for _, e := range loops {
		e.peers = loops
		k.addLoop(e.l)
	}
	return loops, nil
}

// closeFds closes the loop's own descriptors.
func (e *epollLoop) closeFds() {
	for _, fd := range e.lns {
		_ = unix.Close(fd)
	}
	e.lns = nil
	if e.reserve >= 0 {
		_ = unix.Close(e.reserve)
		e.reserve = -1
	}
	_ = unix.Close(e.evfd)
	_ = unix.Close(e.epfd)
}

// run is the loop goroutine: it waits for events, handles them, and
// advances the timing wheel once per TickInterval, until stopped.
func (e *epollLoop) run() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer close(e.done)
	defer e.closeFds()
	interval := e.l.k.interval
	hold := int(e.l.k.cfg.HoldWait / time.Millisecond)
	nextTick := time.Now().Add(interval)
	for !e.quit {
		e.iter++
		due := nextTick
		if e.paused && e.resumeAt.Before(due) {
			due = e.resumeAt
		}
		// What is ready already is taken without blocking, and without
		// the scheduler's bookkeeping of a blocking system call (which
		// hands the P over and wakes sysmon): a busy loop, in a storm of
		// handshakes, finds events there nearly every time. With a hold
		// (Config.HoldWait), the next events are awaited that way too, for
		// up to the hold: a storm's events come microseconds apart. Only
		// when none came does the loop sleep until the next event or due,
		// in a wait that gives its P up.
		n, err := epollPoll(e.epfd, e.events, 0)
		if n == 0 && err == nil {
			msec := max(int((time.Until(due)+time.Millisecond-1)/time.Millisecond), 0)
			if held := min(hold, msec); held > 0 {
				n, err = epollPoll(e.epfd, e.events, held)
				msec -= held // a hold that found nothing waited it all
			}
			if n == 0 && err == nil && msec > 0 { // at due: the poll above looked already
				n, err = unix.EpollWait(e.epfd, e.events, msec)
			}
		}
		if err != nil && err != unix.EINTR {
			e.l.k.log.Error("poller: epoll_wait failed; closing the loop", "loop", e.l.idx, "err", err)
			e.shutdown()
			return
		}
		// One clock reading per wakeup: the handlers' (Loop.Now), then
		// the timers'.
		now := time.Now()
		e.l.now, e.l.clocked = now, true
		for i := range n {
			e.handle(&e.events[i])
		}
		if e.paused && !now.Before(e.resumeAt) && !e.quit {
			e.resume()
		}
		if !now.Before(nextTick) {
			e.l.tick(now)
			nextTick = now.Add(interval)
		}
	}
}

// handle dispatches one event.
func (e *epollLoop) handle(ev *unix.EpollEvent) {
	fd := int(ev.Fd)
	if fd == e.evfd {
		e.runTasks()
		return
	}
	for _, lfd := range e.lns {
		if fd == lfd {
			e.accept(lfd)
			return
		}
	}
	if fd >= len(e.fds) {
		return
	}
	c := e.fds[fd]
	// Pad carries the low bits of the connection's id: an event queued
	// for a connection closed earlier in this batch, whose fd has been
	// reused since, is stale.
	if c == nil || uint32(ev.Pad) != uint32(c.id) {
		return
	}
	if ev.Events&unix.EPOLLOUT != 0 {
		e.drainOut(c)
		if c.fd < 0 {
			return
		}
	}
	if c.lingering() {
		switch {
		case ev.Events&(unix.EPOLLHUP|unix.EPOLLERR) != 0:
			e.closeConn(c, nil) // the peer is gone: nothing left to drain
		case c.x.draining && ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP) != 0:
			e.discard(c)
		}
		return
	}
	if ev.Events&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
		e.read(c)
	}
}

// post queues fn and wakes the loop. Safe for concurrent use.
func (e *epollLoop) post(fn func()) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return ErrStopped
	}
	e.tasks = append(e.tasks, fn)
	if e.wake.CompareAndSwap(false, true) {
		e.signal()
	}
	return nil
}

// stop makes the loop close everything and return. Safe for concurrent use.
func (e *epollLoop) stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.stopped {
		e.stopped = true
		e.signal()
	}
}

// eventfdOne is the 8-byte counter increment written to an eventfd; it is
// never modified.
var eventfdOne = [8]byte{1}

// signal wakes the loop through its eventfd. Lock should be held, and
// stopped not yet seen by the loop: the loop closes the eventfd once it
// has seen stopped, so a write outside the lock could hit a closed (or
// reused) descriptor. Only one signal per burst of posts takes the lock
// for a system call (see wake).
func (e *epollLoop) signal() {
	e.signals.Add(1)
	for {
		_, err := unix.Write(e.evfd, eventfdOne[:])
		if err != unix.EINTR {
			// EAGAIN means the counter is full: the loop is awake anyway.
			return
		}
	}
}

// runTasks runs the posted tasks, then shuts the loop down if stopped.
func (e *epollLoop) runTasks() {
	var b [8]byte
	_, _ = unix.Read(e.evfd, b[:])
	e.wake.Store(false) // before taking the tasks: a later post wakes again
	e.mu.Lock()
	tasks, stopped := e.tasks, e.stopped
	e.tasks = e.spare[:0]
	e.mu.Unlock()
	for i, fn := range tasks {
		e.l.runTask(fn)
		tasks[i] = nil
	}
	e.spare = tasks[:0]
	if stopped {
		e.shutdown()
	}
}

// shutdown closes the listeners and every connection (OnClose with a nil
// error) and ends run.
func (e *epollLoop) shutdown() {
	e.mu.Lock()
	e.stopped = true // already, unless epoll_wait failed
	e.mu.Unlock()
	for _, fd := range e.lns {
		_ = unix.Close(fd)
	}
	e.lns = nil
	l := e.l
	l.enter()
	for len(l.conns) > 0 {
		e.closeConn(l.conns[len(l.conns)-1], nil)
	}
	l.leave()
	e.quit = true
}

// open registers fd, a connected socket, as connection c (a new one if c
// is nil) and calls OnOpen; accepted says fd came from the loops'
// listeners. On failure fd is closed.
func (e *epollLoop) open(fd int, c *Conn, accepted bool) error {
	k := e.l.k
	if c == nil {
		c = &Conn{id: k.nextID.Add(1)}
	}
	setSockOpts(fd, &k.cfg, k.log, accepted)
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd), Pad: int32(uint32(c.id))}
	if err := sysEpollCtl(e.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		_ = unix.Close(fd)
		return os.NewSyscallError("epoll_ctl", err)
	}
	if fd >= len(e.fds) {
		e.fds = append(e.fds, make([]*Conn, max(fd+1, 2*len(e.fds), 64)-len(e.fds))...)
	}
	e.fds[fd] = c
	c.fd, c.loop = int32(fd), e.l
	e.l.add(c)
	e.count.Add(1)
	k.conns.Add(1)
	e.l.enter()
	k.h.OnOpen(c)
	e.l.leave()
	if accepted && k.cfg.DeferAccept > 0 && c.fd >= 0 && !c.Closed() {
		// The kernel held the connection until its first bytes came
		// (TCP_DEFER_ACCEPT): read them now rather than at the next
		// wakeup. A connection accepted without them, once the deferral
		// ran out, reads EAGAIN and waits for its event as usual.
		e.read(c)
	}
	return nil
}

// closeConn closes c, returns its buffers and calls OnClose(c, err).
func (e *epollLoop) closeConn(c *Conn, err error) {
	if c.fd < 0 {
		return
	}
	fd := int(c.fd)
	e.fds[fd] = nil
	if x := c.x; x != nil {
		e.l.k.countIn(x, 0)
		if x.out != nil {
			e.watching--
		}
		e.put(&x.in)
		e.put(&x.out)
		e.recycle(c)
	}
	if cerr := unix.Close(fd); cerr != nil {
		e.l.k.log.Debug("poller: close", "conn", c.id, "err", cerr)
	}
	l := e.l
	l.enter()
	l.remove(c)
	e.count.Add(-1)
	l.k.conns.Add(-1)
	l.k.h.OnClose(c, err)
	l.leave()
}

// shut is the driver's local close: one more try at sending what the
// kernel refused before, then close, or linger (not reading) while bytes
// are left.
func (e *epollLoop) shut(c *Conn) {
	if x := c.x; x != nil && x.out != nil {
		if n, _ := sysWrite(int(c.fd), (*x.out)[x.head:]); n > 0 {
			x.head += n
		}
		if x.head < len(*x.out) {
			if e.l.linger(c) {
				// Input left unconsumed is never read now: give it back.
				e.l.k.countIn(x, 0)
				e.put(&x.in)
				e.watchOut(c, true) // EPOLLOUT only, now that c is closing
				return
			}
			e.finish(c)
			return
		}
	}
	e.release(c)
}

// release ends a closed connection once the kernel has taken every byte
// queued for it. Closing a socket that still has unread input makes the
// kernel answer with a reset, and a reset destroys what the peer has not
// read yet — the close frame it should see among it. So unless the socket
// is quiet both ways (no input waiting, nothing unacknowledged), release
// shuts the write side (the kernel sends the rest, then FIN), keeps
// reading and dropping what the peer still sends, and closes on the
// peer's EOF or at the linger deadline (Loop.checkLinger).
func (e *epollLoop) release(c *Conn) {
	if x := c.x; x != nil {
		e.l.k.countIn(x, 0) // unconsumed input is never read now
		e.put(&x.in)
	}
	fd := int(c.fd)
	quiet := false
	for range 4 {
		n, err := sysRead(fd, e.rbuf)
		if err == unix.EAGAIN {
			quiet = true
			break
		}
		if err != nil || n <= 0 {
			e.closeConn(c, nil) // EOF or error: the peer is done
			return
		}
	}
	if quiet {
		if q, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ); err == nil && q == 0 {
			e.closeConn(c, nil)
			return
		}
	}
	x := e.ext(c)
	if !x.closing && !e.l.linger(c) {
		e.closeConn(c, nil)
		return
	}
	x.draining = true
	if err := unix.Shutdown(fd, unix.SHUT_WR); err != nil {
		e.closeConn(c, nil)
		return
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: c.fd, Pad: int32(uint32(c.id))}
	if err := sysEpollCtl(e.epfd, unix.EPOLL_CTL_MOD, fd, &ev); err != nil {
		e.closeConn(c, nil)
	}
}

// discard reads and drops what a draining connection's peer sent (one
// read per wakeup, like every other connection) and closes it at the
// peer's EOF.
func (e *epollLoop) discard(c *Conn) {
	n, err := sysRead(int(c.fd), e.rbuf)
	if err == unix.EAGAIN || err == unix.EINTR {
		return
	}
	if err != nil || n <= 0 {
		e.closeConn(c, nil)
	}
}

// finish closes c for good. Inbound bytes still unread make the kernel
// answer the close with a reset, which may destroy what the peer has not
// read yet (the close frame it should see): they are read and dropped
// first, a few reads' worth at most.
func (e *epollLoop) finish(c *Conn) {
	for range 4 {
		if n, _ := sysRead(int(c.fd), e.rbuf); n <= 0 {
			break
		}
	}
	e.closeConn(c, nil)
}

// read reads what c has and hands it, after any bytes left unconsumed
// before, to OnData.
func (e *epollLoop) read(c *Conn) {
	fd := int(c.fd)
	var in []byte
	own := c.x != nil && c.x.in != nil
	if own {
		// Bytes are waiting: read after them, into c's own buffer, so that
		// OnData sees them all in one slice.
		x := c.x
		if b := *x.in; cap(b)-len(b) < minReadSpace {
			nb := e.get(max(2*cap(b), len(b)+minReadSpace))
			*nb = append(*nb, b...)
			e.put(&x.in)
			x.in = nb
		}
		b := *x.in
		n, err := sysRead(fd, b[len(b):cap(b)])
		if n <= 0 {
			e.readFailed(c, err)
			return
		}
		in = b[:len(b)+n]
		*x.in = in
	} else {
		n, err := sysRead(fd, e.rbuf)
		if n <= 0 {
			e.readFailed(c, err)
			return
		}
		in = e.rbuf[:n]
	}
	if c.Closed() {
		return // Close was called: OnData is not called again
	}
	l := e.l
	l.enter()
	n := l.k.h.OnData(c, in)
	// Flush before keeping the rest: writes may point into in.
	l.leave()
	if c.fd < 0 {
		return // closed by the flush; closeConn returned the buffers
	}
	if c.lingering() {
		return // closed by the flush: what is left is never read (shut dropped it)
	}
	rest := in[min(max(n, 0), len(in)):]
	if own {
		l.k.countIn(c.x, len(rest))
	}
	switch {
	case len(rest) == 0:
		if own {
			e.put(&c.x.in)
			e.recycle(c)
		}
	case own && cap(*c.x.in) > 4*minReadSpace && len(rest) < cap(*c.x.in)/8:
		// Most of a large buffer was consumed: keep the rest, as it is,
		// in a smaller one.
		nb := e.get(len(rest) + minReadSpace)
		*nb = append(*nb, rest...)
		e.put(&c.x.in)
		c.x.in = nb
	case own:
		// Keep the unconsumed bytes, as they are, at the front.
		b := *c.x.in
		*c.x.in = b[:copy(b, rest)]
	default:
		x := e.ext(c)
		x.in = e.get(len(rest) + minReadSpace)
		*x.in = append(*x.in, rest...)
		l.k.countIn(x, len(rest))
	}
}

// readFailed handles a read that returned no bytes: the peer's FIN (err
// nil) or an error.
func (e *epollLoop) readFailed(c *Conn, err error) {
	switch {
	case err == nil:
		e.closeConn(c, io.EOF)
	case err == unix.EAGAIN || err == unix.EINTR:
		// Nothing after all; level-triggered readiness will say so again.
	case err == unix.ECONNRESET:
		e.closeConn(c, errReadReset) // the common one: no allocation
	default:
		e.closeConn(c, readError(err))
	}
}

// readError wraps a failed read's errno.
func readError(err error) error { return fmt.Errorf("poller: %w", os.NewSyscallError("read", err)) }

// errReadReset is a read's ECONNRESET, made once: a peer that resets is
// how most clients of a storm leave, and each close reports it.
var errReadReset = readError(unix.ECONNRESET)

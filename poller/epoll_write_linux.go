package poller

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// This file is the epoll backend's outbound path and its borrowed
// buffers; epoll_linux.go has the loop and the inbound path.

// write is the driver's write: everything goes to the kernel now, unless
// earlier bytes are still waiting (then, to keep the order, after them).
func (e *epollLoop) write(c *Conn, bufs [][]byte) {
	if c.x != nil && c.x.out != nil {
		e.appendOut(c, bufs, 0)
		return
	}
	n, err := e.writev(int(c.fd), bufs)
	if err != nil && err != unix.EAGAIN && err != unix.EINTR {
		e.closeConn(c, fmt.Errorf("poller: %w", os.NewSyscallError("writev", err)))
		return
	}
	total := 0
	for _, b := range bufs {
		total += len(b)
	}
	if n < total {
		// EPOLLOUT is armed exactly while c.x.out holds bytes.
		e.appendOut(c, bufs, n)
		e.watching++
		e.watchOut(c, true)
	}
}

// writev writes bufs to fd with one system call and returns how many bytes
// the kernel took. It is hand-written, unlike unix.Writev, so that it
// allocates nothing: it reuses the loop's iovec array, on the path every
// message takes.
func (e *epollLoop) writev(fd int, bufs [][]byte) (int, error) {
	if len(bufs) == 1 {
		n, err := sysWrite(fd, bufs[0])
		return max(n, 0), err
	}
	iov := e.iov[:0]
	for _, b := range bufs {
		if len(b) > 0 {
			v := unix.Iovec{Base: &b[0]}
			v.SetLen(len(b))
			iov = append(iov, v)
		}
	}
	if len(iov) == 0 {
		return 0, nil
	}
	n, err := sysWritev(fd, iov)
	clear(iov) // keep no reference to the caller's buffers
	e.iov = iov[:0]
	return n, err
}

// appendOut copies bufs, less their first skip bytes, to the end of c's
// outbound buffer, borrowing or growing it as needed.
func (e *epollLoop) appendOut(c *Conn, bufs [][]byte, skip int) {
	add := -skip
	for _, b := range bufs {
		add += len(b)
	}
	x := e.ext(c)
	if x.out == nil || cap(*x.out)-len(*x.out) < add {
		e.makeRoom(x, add)
	}
	b := *x.out
	for _, p := range bufs {
		if skip >= len(p) {
			skip -= len(p)
			continue
		}
		b = append(b, p[skip:]...)
		skip = 0
	}
	*x.out = b
}

// makeRoom makes x's outbound buffer able to take add more bytes: by
// moving the unsent bytes to the front when that frees enough room and
// they fill at most half the buffer, else by moving them to a buffer at
// least twice as large. Growth is geometric so that a peer that never
// reads costs amortised O(1) per byte queued: sized to fit, a queue of
// n bytes appended to in small pieces was re-copied on every append,
// O(n²), and one such peer kept a loop busy.
func (e *epollLoop) makeRoom(x *connExt, add int) {
	if x.out == nil {
		x.out, x.head = e.get(add), 0
		return
	}
	live := (*x.out)[x.head:]
	if c := cap(*x.out); c-len(live) >= add && len(live) <= c/2 {
		*x.out = (*x.out)[:copy(*x.out, live)]
		x.head = 0
		return
	}
	e.grows++
	nb := e.get(max(len(live)+add, 2*cap(*x.out)))
	*nb = append(*nb, live...)
	e.put(&x.out)
	x.out, x.head = nb, 0
}

// drainOut sends what c's outbound buffer holds, now that c is writable.
func (e *epollLoop) drainOut(c *Conn) {
	x := c.x
	if x == nil || x.out == nil {
		e.watchOut(c, false)
		return
	}
	n, err := sysWrite(int(c.fd), (*x.out)[x.head:])
	if err != nil {
		if err != unix.EAGAIN && err != unix.EINTR {
			e.closeConn(c, fmt.Errorf("poller: %w", os.NewSyscallError("write", err)))
		}
		return
	}
	x.head += n
	if x.head < len(*x.out) {
		return
	}
	if x.closing {
		e.release(c)
		return
	}
	e.put(&x.out)
	x.head = 0
	e.recycle(c)
	e.watching--
	e.watchOut(c, false)
	if w := e.l.k.writable; w != nil && c.fd >= 0 {
		e.l.enter()
		w.OnWritable(c)
		e.l.leave()
	}
}

// watchOut arms (or disarms) EPOLLOUT for c; EPOLLIN stays armed unless
// c is lingering after Close.
func (e *epollLoop) watchOut(c *Conn, on bool) {
	ev := unix.EpollEvent{Fd: c.fd, Pad: int32(uint32(c.id))}
	if !c.lingering() {
		ev.Events |= unix.EPOLLIN
	}
	if on {
		ev.Events |= unix.EPOLLOUT
	}
	if err := sysEpollCtl(e.epfd, unix.EPOLL_CTL_MOD, int(c.fd), &ev); err != nil {
		e.closeConn(c, fmt.Errorf("poller: %w", os.NewSyscallError("epoll_ctl", err)))
	}
}

func (e *epollLoop) outbound(c *Conn) int {
	if c.x == nil || c.x.out == nil {
		return 0
	}
	return len(*c.x.out) - c.x.head
}

func (e *epollLoop) addr(c *Conn, remote bool) net.Addr {
	var sa unix.Sockaddr
	var err error
	if remote {
		sa, err = unix.Getpeername(int(c.fd))
	} else {
		sa, err = unix.Getsockname(int(c.fd))
	}
	if err != nil {
		return nil
	}
	return sockaddrToAddr(sa)
}

// ext returns c's connExt, taking one from the free list if c has none.
func (e *epollLoop) ext(c *Conn) *connExt {
	if c.x == nil {
		if n := len(e.free); n > 0 {
			c.x = e.free[n-1]
			e.free[n-1] = nil
			e.free = e.free[:n-1]
		} else {
			c.x = new(connExt)
		}
	}
	return c.x
}

// recycle takes c's connExt back once it holds no buffer and no state.
func (e *epollLoop) recycle(c *Conn) {
	x := c.x
	// A lingering (or draining) connection keeps its state in x.
	if x == nil || x.in != nil || x.out != nil || x.closing || x.waiting {
		return
	}
	c.x = nil
	*x = connExt{}
	if len(e.free) < maxFreeExts {
		e.free = append(e.free, x)
	}
}

// get borrows a buffer of capacity at least n.
func (e *epollLoop) get(n int) *[]byte {
	e.held++
	return e.bufs.Get(n)
}

// put returns *b, if any, and clears *b.
func (e *epollLoop) put(b **[]byte) {
	if *b == nil {
		return
	}
	e.held--
	e.bufs.Put(*b)
	*b = nil
}

// sockaddrToAddr converts a socket address to the net package's form.
func sockaddrToAddr(sa unix.Sockaddr) net.Addr {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(sa.Addr[:]).To16(), Port: sa.Port}
	case *unix.SockaddrInet6:
		a := &net.TCPAddr{IP: net.IP(sa.Addr[:]).To16(), Port: sa.Port}
		if sa.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				a.Zone = ifi.Name
			}
		}
		return a
	case *unix.SockaddrUnix:
		return &net.UnixAddr{Name: sa.Name, Net: "unix"}
	}
	return nil
}

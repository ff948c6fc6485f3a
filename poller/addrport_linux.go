package poller

import (
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The accept and getpeername of the epoll backend, as raw system calls:
// x/sys/unix's Accept4 and Getpeername allocate the address they return
// and, for every IPv4 or IPv6 socket, make a getsockopt(SO_PROTOCOL) call
// to tell TCP from other protocols, which a TCP listener never needs.

// accept4 accepts a connection on lfd, non-blocking and close-on-exec,
// and writes its peer's address into rsa.
func accept4(lfd int, rsa *unix.RawSockaddrAny) (int, error) {
	n := uint32(unix.SizeofSockaddrAny)
	fd, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(lfd), uintptr(unsafe.Pointer(rsa)), uintptr(unsafe.Pointer(&n)),
		unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(fd), nil
}

// epollPoll is epoll_wait(2) with a timeout of msec milliseconds, as a raw
// system call: the runtime does not know the thread is in one, so the
// goroutine keeps its P however long it waits (see Config.HoldWait; the
// runtime's preemption signal ends the wait with EINTR). With 0 it never
// blocks. (It is epoll_pwait with no signal mask, which every
// architecture has.)
func epollPoll(epfd int, events []unix.EpollEvent, msec int) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(msec), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// peerAddrPort asks the kernel for fd's peer address.
func peerAddrPort(fd int) (netip.AddrPort, bool) {
	var rsa unix.RawSockaddrAny
	n := uint32(unix.SizeofSockaddrAny)
	if _, _, e := unix.RawSyscall(unix.SYS_GETPEERNAME, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&n))); e != 0 {
		return netip.AddrPort{}, false
	}
	return rawAddrPort(&rsa)
}

// rawAddrPort reads an IPv4 or IPv6 socket address; an IPv4-mapped IPv6
// address comes back in its 4-byte form.
func rawAddrPort(rsa *unix.RawSockaddrAny) (netip.AddrPort, bool) {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(p[0])<<8|uint16(p[1])), true
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(p[0])<<8|uint16(p[1])), true
	}
	return netip.AddrPort{}, false
}

func (e *epollLoop) addrPort(c *Conn) (netip.AddrPort, bool) {
	if c.fd == e.peerFd {
		return rawAddrPort(&e.peer)
	}
	return peerAddrPort(int(c.fd))
}

package poller

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The epoll backend's system calls on its non-blocking sockets, as raw
// system calls. x/sys/unix's Read, Write and EpollCtl tell the runtime the
// thread is entering a system call that may block (entersyscall and
// exitsyscall, and sysmon's attention when the call is slow), so that it
// can hand the goroutine's P to another thread; on a non-blocking socket
// no call blocks, and a handshake pays that bookkeeping four or five
// times. A loop holds its P while it works anyway. Errors are the bare
// Errno values, as x/sys/unix returns them (an Errno in an interface does
// not allocate).

// sysRead is read(2): the bytes read, or -1 and the error.
func sysRead(fd int, b []byte) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

// sysWrite is write(2): the bytes written, or -1 and the error.
func sysWrite(fd int, b []byte) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

// sysWritev is writev(2) of iov, which must not be empty: the bytes
// written, or 0 and the error.
func sysWritev(fd int, iov []unix.Iovec) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// sysEpollCtl is epoll_ctl(2).
func sysEpollCtl(epfd, op, fd int, ev *unix.EpollEvent) error {
	if _, _, e := unix.RawSyscall6(unix.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd), uintptr(unsafe.Pointer(ev)), 0, 0); e != 0 {
		return e
	}
	return nil
}

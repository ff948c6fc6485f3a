package poller

import (
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// setDeferAccept sets TCP_DEFER_ACCEPT on the listening socket fd to d in
// whole seconds, rounded up (Config.DeferAccept); nothing when d is not
// positive.
func setDeferAccept(fd int, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	secs := int((d + time.Second - 1) / time.Second)
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, secs); err != nil {
		return os.NewSyscallError("setsockopt TCP_DEFER_ACCEPT", err)
	}
	return nil
}

// DeferAcceptControl is a net.ListenConfig Control that gives a listener
// Go's net package opens (server's TLS listener) the deferral the poller's
// own listeners get from Config.DeferAccept. Nil when d is not positive,
// and off Linux, where TCP_DEFER_ACCEPT does not exist.
func DeferAcceptControl(d time.Duration) func(network, address string, c syscall.RawConn) error {
	if d <= 0 {
		return nil
	}
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = setDeferAccept(int(fd), d) }); err != nil {
			return err
		}
		return serr
	}
}

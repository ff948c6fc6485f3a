package server

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// deferAcceptControl is a net.ListenConfig Control that sets
// TCP_DEFER_ACCEPT to d (whole seconds, at least one) on the listener, for
// the TLS listener, which Go's net package opens (the plain one is the
// poller's: poller.Config.DeferAccept). Nil when d is not positive.
func deferAcceptControl(d time.Duration) func(network, address string, c syscall.RawConn) error {
	if d <= 0 {
		return nil
	}
	secs := max(int((d+time.Second-1)/time.Second), 1)
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, secs)
		}); err != nil {
			return err
		}
		return serr
	}
}

//go:build linux

package loadgen

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// bindNoPort sets IP_BIND_ADDRESS_NO_PORT before a dialer binds its source
// address, so the kernel picks the port at connect time for the whole
// 4-tuple: one source address then serves up to a port range of
// connections per destination instead of per address.
func bindNoPort(network, address string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	})
	if err != nil {
		return err
	}
	// Not every kernel has the option; binding works without it.
	_ = serr
	return nil
}

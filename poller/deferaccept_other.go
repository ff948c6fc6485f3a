//go:build !linux

package poller

import (
	"syscall"
	"time"
)

// DeferAcceptControl is nil off Linux: TCP_DEFER_ACCEPT is Linux's (see
// the Linux build for what it does).
func DeferAcceptControl(time.Duration) func(network, address string, c syscall.RawConn) error {
	return nil
}

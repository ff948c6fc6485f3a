//go:build !linux

package server

import (
	"syscall"
	"time"
)

// deferAcceptControl is nil off Linux: TCP_DEFER_ACCEPT is Linux's.
func deferAcceptControl(time.Duration) func(network, address string, c syscall.RawConn) error {
	return nil
}

//go:build !unix

package doctor

import (
	"errors"
	"runtime"
)

// RaiseNoFile does nothing on this OS, which has no RLIMIT_NOFILE.
func RaiseNoFile() (soft, hard uint64, err error) {
	return 0, 0, errors.New("doctor: RLIMIT_NOFILE not supported on " + runtime.GOOS)
}

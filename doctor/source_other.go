//go:build !linux && !darwin && !freebsd

package doctor

import (
	"errors"
	"runtime"
)

// errNotSupported is what the minimal Source answers for what it cannot read.
var errNotSupported = errors.New("doctor: not supported on " + runtime.GOOS)

// Live returns the Source of the machine this process runs on. On this OS
// it reads nothing: the report only carries the per-connection arithmetic.
func Live() Source { return otherSource{} }

// otherSource reads nothing. It is safe for concurrent use.
type otherSource struct{}

// OS implements Source.
func (otherSource) OS() string { return runtime.GOOS }

// Sysctl implements Source.
func (otherSource) Sysctl(string) (string, error) { return "", errNotSupported }

// Rlimit implements Source.
func (otherSource) Rlimit() (soft, hard uint64, err error) { return 0, 0, errNotSupported }

// MemAvailable implements Source.
func (otherSource) MemAvailable() (uint64, error) { return 0, errNotSupported }

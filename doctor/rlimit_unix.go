//go:build unix

package doctor

import (
	"os"

	"golang.org/x/sys/unix"
)

// RaiseNoFile raises this process's soft RLIMIT_NOFILE to its hard limit
// (on macOS, to kern.maxfilesperproc when that is lower, since the kernel
// refuses more) and returns the limits in force afterwards, with Unlimited
// for RLIM_INFINITY. The Go runtime already raises the soft limit to one
// below the hard limit at start; this takes the last descriptor too and
// makes the figure explicit for the log. It changes process-wide state:
// call it once, early, from main.
func RaiseNoFile() (soft, hard uint64, err error) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, os.NewSyscallError("getrlimit", err)
	}
	raised := lim
	raised.Cur = raised.Max
	capNoFile(&raised)
	if raised.Cur > lim.Cur {
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &raised); err != nil {
			return rlim(uint64(lim.Cur)), rlim(uint64(lim.Max)), os.NewSyscallError("setrlimit", err)
		}
		lim = raised
	}
	return rlim(uint64(lim.Cur)), rlim(uint64(lim.Max)), nil
}

// rlim maps RLIM_INFINITY to Unlimited.
func rlim(n uint64) uint64 {
	if n >= uint64(unix.RLIM_INFINITY) {
		return Unlimited
	}
	return n
}

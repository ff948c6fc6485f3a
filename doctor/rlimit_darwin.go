//go:build darwin

package doctor

import "golang.org/x/sys/unix"

// capNoFile lowers the soft limit to kern.maxfilesperproc: macOS refuses a
// soft RLIMIT_NOFILE above it (and RLIM_INFINITY).
func capNoFile(lim *unix.Rlimit) {
	n, err := unix.SysctlUint32("kern.maxfilesperproc")
	if err == nil && lim.Cur > uint64(n) {
		lim.Cur = uint64(n)
	}
}

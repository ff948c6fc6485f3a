//go:build unix && !darwin

package doctor

import "golang.org/x/sys/unix"

// capNoFile leaves the limit alone: these kernels accept a soft limit equal
// to the hard one (FreeBSD clamps it to kern.maxfilesperproc itself).
func capNoFile(*unix.Rlimit) {}

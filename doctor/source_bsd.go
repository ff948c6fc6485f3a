//go:build darwin || freebsd

package doctor

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Live returns the Source of the machine this process runs on: sysctl(3)
// and getrlimit(2) on macOS and FreeBSD.
func Live() Source { return bsdSource{} }

// bsdSource reads a macOS or FreeBSD box through sysctl(3). It holds no
// state and is safe for concurrent use.
type bsdSource struct{}

// OS implements Source.
func (bsdSource) OS() string { return runtime.GOOS }

// Sysctl implements Source. The kern.os* parameters are strings; every
// other one this package reads is an integer of 4 or 8 bytes in the
// machine's byte order (little-endian on amd64 and arm64).
func (bsdSource) Sysctl(name string) (string, error) {
	if strings.HasPrefix(name, "kern.os") {
		v, err := unix.Sysctl(name)
		if err != nil {
			return "", fmt.Errorf("sysctl %s: %w", name, err)
		}
		return strings.TrimSpace(v), nil
	}
	b, err := unix.SysctlRaw(name)
	if err != nil {
		return "", fmt.Errorf("sysctl %s: %w", name, err)
	}
	switch len(b) {
	case 4:
		return strconv.FormatUint(uint64(binary.LittleEndian.Uint32(b)), 10), nil
	case 8:
		return strconv.FormatUint(binary.LittleEndian.Uint64(b), 10), nil
	}
	return "", fmt.Errorf("sysctl %s: %d bytes, not an integer", name, len(b))
}

// Rlimit implements Source.
func (bsdSource) Rlimit() (soft, hard uint64, err error) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, os.NewSyscallError("getrlimit", err)
	}
	return rlim(uint64(lim.Cur)), rlim(uint64(lim.Max)), nil
}

// MemAvailable implements Source: free plus reclaimable pages where the
// kernel counts them, else the physical memory.
func (s bsdSource) MemAvailable() (uint64, error) {
	var names []string
	switch runtime.GOOS {
	case "darwin":
		names = []string{"vm.page_free_count", "vm.page_speculative_count", "vm.page_purgeable_count"}
	default:
		names = []string{"vm.stats.vm.v_free_count", "vm.stats.vm.v_inactive_count"}
	}
	page, err := unix.SysctlUint32("hw.pagesize")
	if err == nil {
		var pages uint64
		for _, n := range names {
			v, err := unix.SysctlUint32(n)
			if err != nil {
				pages = 0
				break
			}
			pages += uint64(v)
		}
		if pages > 0 {
			return pages * uint64(page), nil
		}
	}
	name := "hw.physmem"
	if runtime.GOOS == "darwin" {
		name = "hw.memsize"
	}
	n, err := unix.SysctlUint64(name)
	if err != nil {
		return 0, fmt.Errorf("sysctl %s: %w", name, err)
	}
	return n, nil
}

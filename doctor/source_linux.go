//go:build linux

package doctor

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Live returns the Source of the machine this process runs on: /proc,
// /proc/sys and the memory cgroup on Linux.
func Live() Source { return linuxSource{proc: "/proc", cgroup: "/sys/fs/cgroup"} }

// linuxSource reads a Linux box. The roots are fields so that tests can
// point them at a fake tree. It holds no state and is safe for concurrent
// use.
type linuxSource struct {
	proc   string // where procfs is mounted
	cgroup string // where the cgroup v2 hierarchy is mounted
}

// OS implements Source.
func (linuxSource) OS() string { return "linux" }

// Sysctl implements Source by reading /proc/sys.
func (s linuxSource) Sysctl(name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(s.proc, "sys", strings.ReplaceAll(name, ".", "/")))
	if err != nil {
		return "", fmt.Errorf("sysctl %s: %w", name, err)
	}
	return strings.Join(strings.Fields(string(b)), " "), nil
}

// Rlimit implements Source.
func (linuxSource) Rlimit() (soft, hard uint64, err error) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, os.NewSyscallError("getrlimit", err)
	}
	return lim.Cur, lim.Max, nil // RLIM_INFINITY is Unlimited on Linux
}

// MemAvailable implements Source: MemAvailable from /proc/meminfo, capped
// by the room left under memory.max of this process's cgroup and of each of
// its ancestors (cgroup v2).
func (s linuxSource) MemAvailable() (uint64, error) {
	b, err := os.ReadFile(filepath.Join(s.proc, "meminfo"))
	if err != nil {
		return 0, fmt.Errorf("read meminfo: %w", err)
	}
	avail, err := meminfoField(b, "MemAvailable")
	if err != nil {
		return 0, err
	}
	if room, ok := s.cgroupRoom(); ok {
		avail = min(avail, room)
	}
	return avail, nil
}

// cgroupRoom returns the smallest memory.max - memory.current along this
// process's cgroup v2 path, and false when no level caps memory.
func (s linuxSource) cgroupRoom() (uint64, bool) {
	b, err := os.ReadFile(filepath.Join(s.proc, "self", "cgroup"))
	if err != nil {
		return 0, false
	}
	var rel string
	for line := range strings.Lines(string(b)) {
		if p, ok := strings.CutPrefix(strings.TrimSpace(line), "0::"); ok {
			rel = p
			break
		}
	}
	if rel == "" {
		return 0, false
	}
	room, found := uint64(Unlimited), false
	for dir := filepath.Join(s.cgroup, rel); ; dir = filepath.Dir(dir) {
		if r, ok := cgroupLevelRoom(dir); ok {
			room, found = min(room, r), true
		}
		if len(dir) <= len(s.cgroup) {
			break
		}
	}
	return room, found
}

// cgroupLevelRoom returns memory.max - memory.current of one cgroup, and
// false when it has no numeric memory.max.
func cgroupLevelRoom(dir string) (uint64, bool) {
	mb, err := os.ReadFile(filepath.Join(dir, "memory.max"))
	if err != nil {
		return 0, false
	}
	limit, err := strconv.ParseUint(strings.TrimSpace(string(mb)), 10, 64)
	if err != nil { // "max"
		return 0, false
	}
	var cur uint64
	if cb, err := os.ReadFile(filepath.Join(dir, "memory.current")); err == nil {
		cur, _ = strconv.ParseUint(strings.TrimSpace(string(cb)), 10, 64)
	}
	return subSat(limit, cur), true
}

// meminfoField returns a /proc/meminfo field in bytes.
func meminfoField(meminfo []byte, field string) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(meminfo))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			break
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("meminfo %s: %w", field, err)
		}
		if len(f) > 1 && f[1] == "kB" {
			n *= 1024
		}
		return n, nil
	}
	return 0, fmt.Errorf("meminfo: no %s field", field)
}

// Package procstat reads a process's memory and thread count from
// /proc/PID/status and its CPU time from /proc/PID/stat (Linux), for the
// tests and benchmark tools that measure herald from outside its process.
package procstat

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Status is what /proc/PID/status says of a process.
type Status struct {
	RSS     int64 // VmRSS, bytes
	PeakRSS int64 // VmHWM, bytes
	Threads int
}

// Read reads pid's status.
func Read(pid int) (Status, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Status{}, fmt.Errorf("procstat: %w", err)
	}
	var s Status
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			s.RSS = kb << 10
		case "VmHWM:":
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			s.PeakRSS = kb << 10
		case "Threads:":
			s.Threads, _ = strconv.Atoi(f[1])
		}
	}
	if s.RSS == 0 {
		return s, fmt.Errorf("procstat: no VmRSS in /proc/%d/status", pid)
	}
	return s, nil
}

// CPUTicks returns the user and system time pid has used, in clock ticks
// (USER_HZ, 100 a second on Linux), from /proc/PID/stat; 0 if it cannot
// be read.
func CPUTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces: the fields start after its ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

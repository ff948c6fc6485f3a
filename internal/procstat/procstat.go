// Package procstat reads a process's memory and thread count from
// /proc/PID/status (Linux), for the tests and benchmark tools that measure
// herald from outside its process.
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

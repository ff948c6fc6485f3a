package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/herald-push/herald/internal/procstat"
)

// clkTck is USER_HZ, the unit of /proc times; 100 on every Linux platform
// Go supports.
const clkTck = 100

// procMem returns the VmRSS (bytes) and thread count of pid.
func procMem(pid int) (rss int64, threads int, err error) {
	st, err := procstat.Read(pid)
	return st.RSS, st.Threads, err
}

// procCPU returns the user+system CPU seconds pid has used.
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clkTck
}

// cpuTimes is one CPU's line of /proc/stat, in ticks.
type cpuTimes struct {
	user, nice, system, idle, iowait, irq, softirq, steal uint64
}

func (c cpuTimes) total() uint64 {
	return c.user + c.nice + c.system + c.idle + c.iowait + c.irq + c.softirq + c.steal
}

// procStat reads the per-CPU lines of /proc/stat ("cpu0", "cpu1", ...).
func procStat() map[string]cpuTimes {
	out := map[string]cpuTimes{}
	f, err := os.Open("/proc/stat")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 9 || !strings.HasPrefix(fs[0], "cpu") || fs[0] == "cpu" {
			continue
		}
		v := make([]uint64, 8)
		for i := range v {
			v[i], _ = strconv.ParseUint(fs[i+1], 10, 64)
		}
		out[fs[0]] = cpuTimes{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]}
	}
	return out
}

// CPUShare is how one CPU spent a phase, in percent.
type CPUShare struct {
	Busy, User, Sys, Softirq float64
}

// cpuDelta turns two /proc/stat readings into shares per CPU.
func cpuDelta(a, b map[string]cpuTimes) map[string]CPUShare {
	out := map[string]CPUShare{}
	for k, y := range b {
		x := a[k]
		tot := float64(y.total() - x.total())
		if tot <= 0 {
			continue
		}
		idle := float64(y.idle + y.iowait - x.idle - x.iowait)
		out[k] = CPUShare{
			Busy:    100 * (1 - idle/tot),
			User:    100 * float64(y.user+y.nice-x.user-x.nice) / tot,
			Sys:     100 * float64(y.system-x.system) / tot,
			Softirq: 100 * float64(y.softirq+y.irq-x.softirq-x.irq) / tot,
		}
	}
	return out
}

var goroutineTotal = regexp.MustCompile(`goroutine profile: total (\d+)`)

// goroutines asks a server how many goroutines it runs: the peers' /stats
// or herald's pprof endpoint. -1 when it cannot tell.
func goroutines(url string) int {
	if url == "" {
		return -1
	}
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if m := goroutineTotal.FindSubmatch(b); m != nil {
		n, _ := strconv.Atoi(string(m[1]))
		return n
	}
	var s struct {
		Goroutines int `json:"goroutines"`
	}
	if json.Unmarshal(b, &s) == nil && bytes.Contains(b, []byte("goroutines")) {
		return s.Goroutines
	}
	return -1
}

// waitListening waits until addr accepts TCP connections.
func waitListening(addr string, d time.Duration) error {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not listening after %v", addr, d)
}

// machine describes the host for the report.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		if len(f) >= 2 {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			mem = fmt.Sprintf("%.1f GiB RAM", float64(kb)/(1<<20))
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%d × %s, %s, Linux %s", len(procStat()), model, mem, kernel)
}

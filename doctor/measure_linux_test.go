//go:build linux

package doctor

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMeasureKernelMemory measures what the kernel spends on idle loopback
// TCP connections, the figure behind DefaultKernelBytesPerConn and
// tuning.md. It opens N connections (both ends in this process, sized to
// the open-file limit), reads /proc/slabinfo, /proc/meminfo and
// /proc/net/sockstat before and after, and prints the growth per socket,
// for several socket settings, median of three rounds. Slab counts are
// system-wide, so run it on a quiet machine:
//
//	HERALD_MEASURE=1 go test -run TestMeasureKernelMemory -v ./doctor/
//
// Reading /proc/slabinfo needs root; without it only meminfo is used.
func TestMeasureKernelMemory(t *testing.T) {
	if os.Getenv("HERALD_MEASURE") != "1" {
		t.Skip("set HERALD_MEASURE=1 to measure kernel memory per connection")
	}
	soft, _, err := Live().Rlimit()
	if err != nil {
		t.Fatal(err)
	}
	n := int(min(9000, (soft-500)/2))
	variants := []struct {
		name  string
		setup func(server, client *net.TCPConn) error
	}{
		{"idle, default buffers", nil},
		{"idle, SO_RCVBUF=SO_SNDBUF=4096", func(s, c *net.TCPConn) error {
			for _, conn := range []*net.TCPConn{s, c} {
				if err := conn.SetReadBuffer(4096); err != nil {
					return err
				}
				if err := conn.SetWriteBuffer(4096); err != nil {
					return err
				}
			}
			return nil
		}},
		{"25-byte message unread per connection", func(s, _ *net.TCPConn) error {
			_, err := s.Write([]byte("0123456789012345678901234"))
			return err
		}},
	}
	t.Logf("%d connections = %d sockets per round, median of 3 rounds", n, 2*n)
	t.Logf("%-40s %12s %12s %14s %12s", "variant", "slab B/sock", "Slab B/sock", "sockstat pages", "MemAvail B/conn")
	for _, v := range variants {
		var objs, slab, pages, avail []float64
		var top []string
		for range 3 {
			d, err := measureRound(n, v.setup)
			if err != nil {
				t.Fatalf("%s: %v", v.name, err)
			}
			objs = append(objs, d.slabObjs/float64(2*n))
			slab = append(slab, d.meminfoSlab/float64(2*n))
			pages = append(pages, d.tcpPages/float64(n))
			avail = append(avail, d.memAvail/float64(n))
			top = d.top
			t.Logf("  round: slab objects %.0f B/sock, meminfo Slab %.0f B/sock", objs[len(objs)-1], slab[len(slab)-1])
		}
		t.Logf("%-40s %12.0f %12.0f %14.2f %12.0f", v.name, median(objs), median(slab), median(pages), median(avail))
		t.Logf("  largest slab caches (last round): %s", strings.Join(top, ", "))
	}
}

// roundDelta is the growth of each counter over one round.
type roundDelta struct {
	slabObjs    float64 // Σ active_objs × objsize over /proc/slabinfo
	meminfoSlab float64 // Slab from /proc/meminfo
	memAvail    float64 // MemAvailable drop
	tcpPages    float64 // TCP mem from /proc/net/sockstat
	top         []string
}

// measureRound opens n loopback connections, applies setup to each pair,
// and returns the growth of the kernel's counters while they are open.
func measureRound(n int, setup func(server, client *net.TCPConn) error) (roundDelta, error) {
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return roundDelta{}, err
	}
	defer ln.Close()
	before, err := snapshot()
	if err != nil {
		return roundDelta{}, err
	}
	servers := make([]*net.TCPConn, 0, n)
	clients := make([]*net.TCPConn, 0, n)
	defer func() {
		for _, c := range slices.Concat(servers, clients) {
			_ = c.SetLinger(0) // RST: no TIME_WAIT left to skew the next round
			_ = c.Close()
		}
	}()
	accepted := make(chan *net.TCPConn, n)
	acceptErr := make(chan error, 1)
	go func() {
		for range n {
			c, err := ln.AcceptTCP()
			if err != nil {
				acceptErr <- err
				return
			}
			accepted <- c
		}
	}()
	for range n {
		c, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
		if err != nil {
			return roundDelta{}, fmt.Errorf("dial: %w", err)
		}
		clients = append(clients, c)
		select {
		case s := <-accepted:
			servers = append(servers, s)
		case err := <-acceptErr:
			return roundDelta{}, fmt.Errorf("accept: %w", err)
		case <-time.After(5 * time.Second):
			return roundDelta{}, fmt.Errorf("accept: timed out")
		}
		if setup != nil {
			if err := setup(servers[len(servers)-1], c); err != nil {
				return roundDelta{}, fmt.Errorf("setup: %w", err)
			}
		}
	}
	time.Sleep(200 * time.Millisecond) // let deferred kernel work settle
	after, err := snapshot()
	if err != nil {
		return roundDelta{}, err
	}
	d := roundDelta{
		meminfoSlab: float64(after.meminfo["Slab"]) - float64(before.meminfo["Slab"]),
		memAvail:    float64(before.meminfo["MemAvailable"]) - float64(after.meminfo["MemAvailable"]),
		tcpPages:    float64(after.tcpPages) - float64(before.tcpPages),
	}
	type cache struct {
		name  string
		bytes float64
	}
	var caches []cache
	for name, b := range after.slab {
		if g := float64(b) - float64(before.slab[name]); g != 0 {
			d.slabObjs += g
			caches = append(caches, cache{name, g})
		}
	}
	slices.SortFunc(caches, func(a, b cache) int { return int(b.bytes - a.bytes) })
	for _, c := range caches[:min(6, len(caches))] {
		d.top = append(d.top, fmt.Sprintf("%s %.0f B/sock", c.name, c.bytes/float64(2*n)))
	}
	return d, nil
}

// kernelSnapshot holds the counters measureRound compares.
type kernelSnapshot struct {
	slab     map[string]uint64 // cache name → active_objs × objsize
	meminfo  map[string]uint64 // field → bytes
	tcpPages uint64
}

// snapshot reads the counters.
func snapshot() (kernelSnapshot, error) {
	s := kernelSnapshot{slab: map[string]uint64{}, meminfo: map[string]uint64{}}
	mi, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return s, err
	}
	for _, f := range []string{"Slab", "MemAvailable"} {
		if s.meminfo[f], err = meminfoField(mi, f); err != nil {
			return s, err
		}
	}
	if b, err := os.ReadFile("/proc/slabinfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 4 || strings.HasPrefix(f[0], "#") || f[0] == "slabinfo" {
				continue
			}
			active, _ := strconv.ParseUint(f[1], 10, 64)
			size, _ := strconv.ParseUint(f[3], 10, 64)
			s.slab[f[0]] = active * size
		}
	} else if !os.IsPermission(err) {
		return s, err
	}
	if b, err := os.ReadFile("/proc/net/sockstat"); err == nil {
		for line := range strings.Lines(string(b)) {
			rest, ok := strings.CutPrefix(line, "TCP:")
			if !ok {
				continue
			}
			f := strings.Fields(rest)
			for i := 0; i+1 < len(f); i += 2 {
				if f[i] == "mem" {
					s.tcpPages, _ = strconv.ParseUint(f[i+1], 10, 64)
				}
			}
		}
	}
	return s, nil
}

// median returns the middle of xs (xs has an odd length).
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

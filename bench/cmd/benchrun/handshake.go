package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/herald-push/herald/auth"
)

// The handshake phase alone (-phases handshake): each server is started
// fresh, takes the first ramp of the full run (o.nSmall idle connections,
// unbounded connect rate, 256 handshakes in flight) and is stopped; its
// CPU over the ramp divided by the connections is its CPU per handshake,
// as in the full run. Herald runs three times: with anonymous clients
// (herald), with one HS256 token in the URL shared by every connection
// (herald-hs256: a server that caches verified tokens verifies it once),
// and with a token per connection, each its own user (herald-hs256-users:
// sub u0, u1, ..., minted by the load generator before its ramp, as in a
// reconnect storm of distinct users). With -baseline, a second herald
// binary runs the same three, so before and after come from one run.
// The peers (bare gnet, the floor the ratios are taken against, then
// nbio, gws and gorilla) run once each. Servers take turns within each
// repetition.

// benchSecret is the HS256 secret of the herald-hs256 runs.
const benchSecret = "benchrun-hs256-secret-0123456789abcdef"

// hsServers are the servers of the handshake phase.
func hsServers(o opts) ([]server, error) {
	tok, err := auth.Sign([]byte(benchSecret), auth.TokenSpec{
		Subject: "bench", Subscribe: []string{"bench"},
		IssuedAt: time.Now(), ExpiresAt: time.Now().Add(24 * time.Hour),
	})
	if err != nil {
		return nil, fmt.Errorf("sign the bench token: %w", err)
	}
	heralds := func(name, bin string) []server {
		base := servers(opts{herald: bin, only: "herald"})[0]
		anon := base
		anon.name = name
		hs := base
		hs.name = name + "-hs256"
		hs.args = func(ws, api string) []string {
			args := slices.DeleteFunc(base.args(ws, api), func(a string) bool { return a == "--allow-anonymous" })
			return append(args, "--jwt-secret", benchSecret)
		}
		hs.url = func(ws string) string { return base.url(ws) + "&token=" + tok }
		// The load generator signs a token per connection (channels: the
		// URL's, bench); the secret goes by environment, not argument.
		users := hs
		users.name = name + "-hs256-users"
		users.url = base.url
		users.lgEnv = []string{"LOADGEN_TOKEN_SECRET=" + benchSecret}
		return []server{anon, hs, users}
	}
	all := heralds("herald", o.herald)
	if o.baseline != "" {
		all = append(heralds("herald-base", o.baseline), all...)
	}
	for _, s := range servers(opts{peers: o.peers}) {
		if s.name != "herald" { // the peers: gnet (the floor), nbio, gws, gorilla
			all = append(all, s)
		}
	}
	if o.only == "" {
		return all, nil
	}
	var out []server
	for _, s := range all {
		if strings.Contains(","+o.only+",", ","+s.name+",") {
			out = append(out, s)
		}
	}
	return out, nil
}

// hsMeasurement is one handshake ramp.
type hsMeasurement struct {
	perSec float64
	// cpuUs is the server's utime+stime over the ramp per handshake (10
	// ms ticks), schedUs the same from its threads' schedstat (ns).
	cpuUs, schedUs float64
}

// runHandshake runs the handshake phase and prints its table.
func runHandshake(o opts) error {
	srvs, err := hsServers(o)
	if err != nil {
		return err
	}
	res := map[string]map[bool][]hsMeasurement{}
	for rep := range o.reps {
		for _, pinned := range o.modes {
			for _, s := range srvs {
				runNo++
				m, err := measureHandshake(o, s, pinned, runNo)
				if err != nil {
					return fmt.Errorf("%s, %s, run %d: %w", s.name, modeName(pinned), rep+1, err)
				}
				fmt.Fprintf(os.Stderr, "== %s, %s, run %d/%d: %.0f handshakes/s, %.1f µs CPU (%.1f schedstat)\n",
					s.name, modeName(pinned), rep+1, o.reps, m.perSec, m.cpuUs, m.schedUs)
				if res[s.name] == nil {
					res[s.name] = map[bool][]hsMeasurement{}
				}
				res[s.name][pinned] = append(res[s.name][pinned], m)
			}
		}
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("Handshake phase, %s, %s: %d connections per ramp, medians of %d (the runs in brackets)\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), machine(), o.nSmall, o.reps)
	for _, pinned := range o.modes {
		w("%s:\n\n| server | handshakes/s | server CPU/handshake (µs) | schedstat (µs) | CPU vs gnet |\n|---|---:|---:|---:|---:|\n", modeName(pinned))
		gnet := hsMedian(res["gnet"][pinned], func(m hsMeasurement) float64 { return m.cpuUs })
		for _, s := range srvs {
			ms := res[s.name][pinned]
			cpu := hsMedian(ms, func(m hsMeasurement) float64 { return m.cpuUs })
			ratio := "n/a"
			if gnet > 0 {
				ratio = fmt.Sprintf("%.2f", cpu/gnet)
			}
			w("| %s | %.0f %s | %.1f %s | %.1f %s | %s |\n", s.name,
				hsMedian(ms, func(m hsMeasurement) float64 { return m.perSec }), hsRuns(ms, func(m hsMeasurement) float64 { return m.perSec }, "%.0f"),
				cpu, hsRuns(ms, func(m hsMeasurement) float64 { return m.cpuUs }, "%.1f"),
				hsMedian(ms, func(m hsMeasurement) float64 { return m.schedUs }), hsRuns(ms, func(m hsMeasurement) float64 { return m.schedUs }, "%.1f"),
				ratio)
		}
		w("\n")
	}
	fmt.Print(b.String())
	if o.out != "" {
		return os.WriteFile(filepath.Join(o.out, "results", "handshake.txt"), []byte(b.String()), 0o644)
	}
	return nil
}

func hsMedian(ms []hsMeasurement, f func(hsMeasurement) float64) float64 {
	var v []float64
	for _, m := range ms {
		v = append(v, f(m))
	}
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func hsRuns(ms []hsMeasurement, f func(hsMeasurement) float64, format string) string {
	var parts []string
	for _, m := range ms {
		parts = append(parts, fmt.Sprintf(format, f(m)))
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// measureHandshake starts s, ramps o.nSmall idle connections, and stops.
func measureHandshake(o opts, s server, pinned bool, n int) (m hsMeasurement, err error) {
	srvCPU, lgCPU := -1, -1
	if pinned {
		srvCPU, lgCPU = 0, 1
	}
	srv, wsAddr, _, stop, err := startServer(s, srvCPU, 21000+2*(n%5000))
	if err != nil {
		return m, err
	}
	defer stop()
	pid := srv.Process.Pid
	time.Sleep(500 * time.Millisecond)
	src := fmt.Sprintf("127.0.%d.%d", (n*3)/250%250, 2+(n*3)%250)
	cpu0, sched0 := procCPU(pid), procSched(pid)
	lg, err := startLoadgenEnv(lgCPU, s.lgEnv, o.loadgen, "-url", s.url(wsAddr), "-quiet", "-connect-rate", "-1",
		"-scenario", "idle", "-conns", fmt.Sprint(o.nSmall), "-duration", "10m", "-source-addrs", src)
	if err != nil {
		return m, err
	}
	if err := lg.waitReady(120 * time.Second); err != nil {
		lg.stop()
		return m, fmt.Errorf("ramp: %w", err)
	}
	m.cpuUs = (procCPU(pid) - cpu0) / float64(o.nSmall) * 1e6
	m.schedUs = (procSched(pid) - sched0) / float64(o.nSmall) * 1e6
	r := lg.stop()
	if r == nil {
		return m, fmt.Errorf("no result from the load generator")
	}
	if r.GaveUp > 0 {
		return m, fmt.Errorf("%d connections gave up: %v", r.GaveUp, r.ConnectFailures)
	}
	m.perSec = r.HandshakesPerSec
	time.Sleep(time.Second) // let the closes settle before the next server
	return m, nil
}

// procSched returns the CPU seconds pid's threads have run, from their
// schedstat (nanoseconds; finer than procCPU's ticks).
func procSched(pid int) float64 {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var ns float64
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "schedstat"))
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) > 0 {
			v, _ := strconv.ParseFloat(f[0], 64)
			ns += v
		}
	}
	return ns / 1e9
}

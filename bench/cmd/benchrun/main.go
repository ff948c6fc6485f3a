// Command benchrun runs herald and its peers (gorilla/websocket, nbio, gws
// and a bare gnet/v2 + gobwas/ws server) in turn under the same load from
// herald's load generator, pinned to separate cores and unpinned, several
// times, and writes bench/RESULTS.md and SVG plots. bench/run.sh builds
// everything and calls it; see that script for the knobs.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/herald-push/herald/loadgen"
)

// server is one server under test.
type server struct {
	name  string
	bin   string
	args  func(ws, api string) []string
	url   func(ws string) string
	pub   func(api string) string
	stats func(api string) string
	// lgEnv is extra environment for the load generator ("NAME=value").
	lgEnv []string
}

// opts are the knobs of a whole benchmark run.
type opts struct {
	loadgen, herald, peers, out string
	reps                        int
	modes                       []bool // pinned?
	nSmall, nMax                int
	bcastCount                  int
	sustConns                   int
	sustRate                    float64
	sustDur                     time.Duration
	settle                      time.Duration
	only                        string
	// phases is "all" or "handshake" (the first ramp alone, see
	// runHandshake); baseline is a second herald binary for it.
	phases, baseline string
}

func main() {
	var o opts
	var modes string
	flag.StringVar(&o.loadgen, "loadgen", "bin/loadgen", "load generator binary")
	flag.StringVar(&o.herald, "herald", "bin/herald", "herald binary")
	flag.StringVar(&o.peers, "peers", "bin/peers", "directory with the peer servers' binaries")
	flag.StringVar(&o.out, "out", "bench", "directory for RESULTS.md and results/")
	flag.IntVar(&o.reps, "reps", 3, "runs per server and mode (the table shows medians)")
	flag.StringVar(&modes, "modes", "pinned,unpinned", "pinned (server on CPU 0, load on CPU 1) and/or unpinned")
	flag.IntVar(&o.nSmall, "n", 10000, "idle connections for the first memory sample")
	flag.IntVar(&o.nMax, "nmax", 0, "idle connections for the second sample and the broadcast (0: open-file limit - 1000)")
	flag.IntVar(&o.bcastCount, "bcast-count", 5, "broadcast messages")
	flag.IntVar(&o.sustConns, "sust-conns", 1000, "connections in the sustained phase")
	flag.Float64Var(&o.sustRate, "sust-rate", 400, "publishes/s in the sustained phase (x sust-conns = offered deliveries/s)")
	flag.DurationVar(&o.sustDur, "sust-duration", 5*time.Second, "sustained phase length")
	flag.DurationVar(&o.settle, "settle", 2*time.Second, "wait before each memory sample")
	flag.StringVar(&o.only, "only", "", "comma-separated server names to run (default all)")
	flag.StringVar(&o.phases, "phases", "all", "all, or handshake: only the first ramp's CPU per handshake against bare gnet (and the other peers), of herald anonymous (herald), with one HS256 token shared by every connection (herald-hs256) and with a token per connection, each its own user (herald-hs256-users), printed and written to results/handshake.txt")
	flag.StringVar(&o.baseline, "baseline", "", "with -phases handshake: another herald binary, run as herald-base, herald-base-hs256 and herald-base-hs256-users in the same rounds")
	flag.Parse()
	for m := range strings.SplitSeq(modes, ",") {
		o.modes = append(o.modes, m == "pinned")
	}
	if o.nMax == 0 {
		var rl syscall.Rlimit
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
		o.nMax = int(rl.Max) - 1000
	}
	runPhases := run
	if o.phases == "handshake" {
		runPhases = runHandshake
	}
	if err := runPhases(o); err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		os.Exit(1)
	}
}

func servers(o opts) []server {
	peer := func(name string) server {
		return server{
			name: name, bin: filepath.Join(o.peers, name),
			args:  func(ws, api string) []string { return []string{"-listen", ws, "-pub-listen", api} },
			url:   func(ws string) string { return "ws://" + ws + "/" },
			pub:   func(api string) string { return "http://" + api + "/publish" },
			stats: func(api string) string { return "http://" + api + "/stats" },
		}
	}
	all := []server{{
		name: "herald", bin: o.herald,
		args: func(ws, api string) []string {
			return []string{"serve", "--listen", ws, "--api-listen", api, "--allow-anonymous", "--log-level", "warn", "--ping-interval", "0", "--max-handshakes-per-ip", "-1"}
		},
		url:   func(ws string) string { return "ws://" + ws + "/ws?channel=bench" },
		pub:   func(api string) string { return "http://" + api + "/api/publish?channel=bench" },
		stats: func(api string) string { return "http://" + api + "/debug/pprof/goroutine?debug=1" },
	}, peer("gnet"), peer("nbio"), peer("gws"), peer("gorilla")}
	if o.only == "" {
		return all
	}
	var out []server
	for _, s := range all {
		if strings.Contains(","+o.only+",", ","+s.name+",") {
			out = append(out, s)
		}
	}
	return out
}

// measurement is what one run of one server measured.
type measurement struct {
	RSS0, RSSSmall, RSSMax  int64
	NSmall, NMax            int
	Goroutines, Threads     int
	HandshakesPerSec        float64
	CPUPerHandshakeUs       float64
	Bcast, Sust             *loadgen.Result
	BcastCPU, SustCPU       map[string]CPUShare
	SustServerCPU           float64 // seconds, process
	IdleFailures, PhaseErrs []string
}

var runNo int

func run(o opts) error {
	started := time.Now()
	results := map[string]map[bool][]measurement{}
	for rep := range o.reps {
		for _, pinned := range o.modes {
			for _, s := range servers(o) {
				runNo++
				fmt.Fprintf(os.Stderr, "== %s, %s, run %d/%d (%.0f s so far)\n", s.name, modeName(pinned), rep+1, o.reps, time.Since(started).Seconds())
				m, err := measure(o, s, pinned, runNo)
				if err != nil {
					m.PhaseErrs = append(m.PhaseErrs, err.Error())
					fmt.Fprintln(os.Stderr, "   error:", err)
				}
				if results[s.name] == nil {
					results[s.name] = map[bool][]measurement{}
				}
				results[s.name][pinned] = append(results[s.name][pinned], m)
			}
		}
	}
	return report(o, results, time.Since(started))
}

func modeName(pinned bool) string {
	if pinned {
		return "pinned"
	}
	return "unpinned"
}

// command returns a command pinned to cpu (or not, when cpu < 0).
func command(cpu int, bin string, args ...string) *exec.Cmd {
	if cpu < 0 {
		return exec.Command(bin, args...)
	}
	return exec.Command("taskset", append([]string{"-c", fmt.Sprint(cpu), bin}, args...)...)
}

// startServer starts s pinned to cpu (or not, when cpu < 0) on a pair of
// free ports from portBase and waits until it listens; stop ends it
// (SIGTERM, then SIGKILL after 10 s).
func startServer(s server, cpu, portBase int) (srv *exec.Cmd, wsAddr, apiAddr string, stop func(), err error) {
	wsAddr, apiAddr, err = freePorts(portBase)
	if err != nil {
		return nil, "", "", nil, err
	}
	srv = command(cpu, s.bin, s.args(wsAddr, apiAddr)...)
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		return nil, "", "", nil, fmt.Errorf("start %s: %w", s.name, err)
	}
	stop = func() {
		_ = srv.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = srv.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = srv.Process.Kill()
			<-done
		}
	}
	if err := waitListening(wsAddr, 10*time.Second); err != nil {
		stop()
		return nil, "", "", nil, err
	}
	return srv, wsAddr, apiAddr, stop, nil
}

func measure(o opts, s server, pinned bool, n int) (m measurement, err error) {
	srvCPU, lgCPU := -1, -1
	if pinned {
		srvCPU, lgCPU = 0, 1
	}
	srv, wsAddr, apiAddr, stop, err := startServer(s, srvCPU, 21000+2*n)
	if err != nil {
		return m, err
	}
	defer stop()
	pid := srv.Process.Pid
	time.Sleep(500 * time.Millisecond)
	m.RSS0, _, _ = procMem(pid)
	// Source addresses differ per run so that no 4-tuple is still in
	// TIME_WAIT from an earlier run.
	src := func(k int) string { return fmt.Sprintf("127.0.%d.%d", (n*3+k)/250, 2+(n*3+k)%250) }
	base := []string{"-url", s.url(wsAddr), "-quiet", "-connect-rate", "-1"}

	// Idle: nSmall, then up to nMax, from two processes.
	m.NSmall, m.NMax = o.nSmall, o.nMax
	cpu0 := procCPU(pid)
	lg1, err := startLoadgen(lgCPU, o.loadgen, append(base, "-scenario", "idle", "-conns", fmt.Sprint(o.nSmall), "-duration", "10m", "-source-addrs", src(0))...)
	if err != nil {
		return m, err
	}
	if err := lg1.waitReady(120 * time.Second); err != nil {
		lg1.stop()
		return m, fmt.Errorf("idle ramp: %w", err)
	}
	m.CPUPerHandshakeUs = (procCPU(pid) - cpu0) / float64(o.nSmall) * 1e6
	time.Sleep(o.settle)
	m.RSSSmall, m.Threads, _ = procMem(pid)
	m.Goroutines = goroutines(s.stats(apiAddr))
	lg2, err := startLoadgen(lgCPU, o.loadgen, append(base, "-scenario", "idle", "-conns", fmt.Sprint(o.nMax-o.nSmall), "-duration", "10m", "-source-addrs", src(1))...)
	if err == nil {
		if err = lg2.waitReady(120 * time.Second); err == nil {
			time.Sleep(o.settle)
			m.RSSMax, _, _ = procMem(pid)
		}
		if r2 := lg2.stop(); r2 != nil && r2.GaveUp > 0 {
			m.IdleFailures = append(m.IdleFailures, fmt.Sprintf("second step: %d gave up %v", r2.GaveUp, r2.ConnectFailures))
		}
	}
	r1 := lg1.stop()
	if r1 != nil {
		m.HandshakesPerSec = r1.HandshakesPerSec
		if r1.GaveUp > 0 {
			m.IdleFailures = append(m.IdleFailures, fmt.Sprintf("first step: %d gave up %v", r1.GaveUp, r1.ConnectFailures))
		}
	}
	if err != nil {
		return m, fmt.Errorf("idle second step: %w", err)
	}
	time.Sleep(time.Second)

	// Broadcast to nMax.
	var st0 map[string]cpuTimes
	lgB, err := startLoadgen(lgCPU, o.loadgen, append(base, "-scenario", "broadcast", "-conns", fmt.Sprint(o.nMax),
		"-count", fmt.Sprint(o.bcastCount), "-interval", "1s", "-drain", "5s", "-pub-http", s.pub(apiAddr), "-source-addrs", src(2))...)
	if err != nil {
		return m, err
	}
	if err := lgB.waitReady(120 * time.Second); err == nil {
		st0 = procStat()
	}
	m.Bcast = lgB.stop()
	m.BcastCPU = cpuDelta(st0, procStat())
	time.Sleep(time.Second)

	// Sustained overload.
	lgS, err := startLoadgen(lgCPU, o.loadgen, append(base, "-scenario", "sustained", "-conns", fmt.Sprint(o.sustConns),
		"-rate", fmt.Sprint(o.sustRate), "-duration", o.sustDur.String(), "-drain", "5s", "-pub-workers", "16",
		"-pub-http", s.pub(apiAddr), "-source-addrs", src(0))...)
	if err != nil {
		return m, err
	}
	var cpuS float64
	if err := lgS.waitReady(60 * time.Second); err == nil {
		st0, cpuS = procStat(), procCPU(pid)
	}
	m.Sust = lgS.stop()
	m.SustCPU = cpuDelta(st0, procStat())
	m.SustServerCPU = procCPU(pid) - cpuS
	return m, nil
}

// freePorts returns two consecutive loopback addresses, from port from
// upwards, that can be listened on now. Ports below the kernel's ephemeral
// range are only ever taken by listeners, so they stay free until the
// server binds them.
func freePorts(from int) (string, string, error) {
	for p := from; p < 32000; p += 2 {
		a, b := fmt.Sprintf("127.0.0.1:%d", p), fmt.Sprintf("127.0.0.1:%d", p+1)
		la, err := net.Listen("tcp", a)
		if err != nil {
			continue
		}
		lb, err := net.Listen("tcp", b)
		_ = la.Close()
		if err != nil {
			continue
		}
		_ = lb.Close()
		return a, b, nil
	}
	return "", "", errors.New("no free port pair below 32000")
}

// lgProc is a running load generator.
type lgProc struct {
	cmd   *exec.Cmd
	json  string
	ready chan struct{}
	done  chan struct{}
}

// startLoadgen starts the load generator bin with args, pinned to cpu (or
// not, when cpu < 0), adding -print-ready and -json.
func startLoadgen(cpu int, bin string, args ...string) (*lgProc, error) {
	return startLoadgenEnv(cpu, nil, bin, args...)
}

// startLoadgenEnv is startLoadgen with env ("NAME=value") added to the
// load generator's environment.
func startLoadgenEnv(cpu int, env []string, bin string, args ...string) (*lgProc, error) {
	f, err := os.CreateTemp("", "loadgen-*.json")
	if err != nil {
		return nil, err
	}
	_ = f.Close()
	args = append(args, "-print-ready", "-json", f.Name())
	cmd := command(cpu, bin, args...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start loadgen: %w", err)
	}
	p := &lgProc{cmd: cmd, json: f.Name(), ready: make(chan struct{}), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(out)
		closed := false
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "READY") && !closed {
				close(p.ready)
				closed = true
			}
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *lgProc) waitReady(d time.Duration) error {
	select {
	case <-p.ready:
		return nil
	case <-p.done:
		return errors.New("load generator exited before its ramp ended")
	case <-time.After(d):
		return errors.New("ramp did not end in time")
	}
}

// stop lets the load generator finish (interrupting an idle hold) and
// returns its result, or nil.
func (p *lgProc) stop() *loadgen.Result {
	defer os.Remove(p.json)
	select {
	case <-p.ready:
	case <-p.done:
	}
	if isIdle(p.cmd.Args) {
		_ = p.cmd.Process.Signal(os.Interrupt)
	}
	select {
	case <-p.done:
	case <-time.After(3 * time.Minute):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	b, err := os.ReadFile(p.json)
	if err != nil || len(b) == 0 {
		return nil
	}
	var r loadgen.Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil
	}
	return &r
}

func isIdle(args []string) bool {
	for i, a := range args {
		if a == "-scenario" && i+1 < len(args) {
			return args[i+1] == "idle"
		}
	}
	return false
}

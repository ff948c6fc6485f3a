// Package testutil starts herald binaries for end-to-end tests: it builds
// cmd/herald once per test process, runs it on a free loopback port, waits
// until it accepts connections and stops it (SIGTERM, then SIGKILL) when the
// test ends. Safe for concurrent use by parallel tests.
package testutil

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/herald-push/herald/internal/procstat"
)

// moduleRoot finds the directory holding go.mod, from this file's location.
func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// RaceEnv, set to 1, makes Binary build with the race detector, and Stop
// fail the test when the process reported a data race. Set to a
// comma-separated list of test package folders (e2e,cluster), it does so
// for those packages only, so that one run of the suites covers both
// builds.
const RaceEnv = "HERALD_TEST_RACE"

// raceBuild reports whether this test process, whose working directory
// is its package's folder, wants the race-built binary (RaceEnv).
func raceBuild() bool {
	v := os.Getenv(RaceEnv)
	if v == "1" {
		return true
	}
	wd, _ := os.Getwd()
	return slices.Contains(strings.Split(v, ","), filepath.Base(wd))
}

// Binary builds ./cmd/<name> (once per test process) and returns its path.
//
// Every test process of a run shares one binary per flavor (plain or
// race), under the module's ignored bin/test/: the first to get the
// folder's lock builds it, and the others, waiting on that lock, find it
// up to date, which the go command checks by build ID without linking
// again. A link takes seconds (many with -race), and a run of the suites
// starts a dozen packages, each of which used to link its own copy.
func Binary(t testing.TB, name string) string {
	t.Helper()
	key := name
	binMu.Lock()
	defer binMu.Unlock()
	if p, ok := binaries[key]; ok {
		return p
	}
	flavor := "plain"
	if raceBuild() {
		flavor = "race"
	}
	dir := filepath.Join(moduleRoot(), "bin", "test", flavor)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("test binary folder: %v", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		t.Fatalf("lock the test binary folder: %v", err)
	}
	defer unlock()
	out := filepath.Join(dir, name)
	args := []string{"build", "-o", out}
	if flavor == "race" {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./cmd/"+name)...)
	cmd.Dir = moduleRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/%s: %v\n%s", name, err, b)
	}
	binaries[key] = out
	return out
}

// lockDir takes an exclusive lock on dir's .lock file, shared with the
// other test processes (flock: it goes with the process, should one die
// holding it), and returns the function that gives it back.
func lockDir(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("flock %s: %w", f.Name(), err)
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

var (
	binMu    sync.Mutex
	binaries = map[string]string{}
)

// FreePort returns a loopback port that was free a moment ago. It picks
// one outside the kernel's ephemeral range (ip_local_port_range) when the
// range leaves room, so that the many client sockets a test opens cannot
// take it as their source port before the server binds it; otherwise it
// asks the kernel for any free port.
func FreePort(t testing.TB) int {
	t.Helper()
	if lo, _ := ephemeralRange(); lo > 12000 {
		for range 64 {
			port := 10000 + rand.IntN(lo-11000)
			if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
				l.Close()
				return port
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// ephemeralRange reads the kernel's range of source ports (Linux); 0, 0
// where it is unknown.
func ephemeralRange() (lo, hi int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil {
		return 0, 0
	}
	return lo, hi
}

// Proc is a running herald process.
type Proc struct {
	Cmd  *exec.Cmd
	Addr string // host:port of the WebSocket listener
	// Log collects the process's stderr and stdout.
	Log *SyncBuffer
	// Extra holds more addresses the caller asked for (API listener...).
	Extra map[string]string

	waitErr error
	done    chan struct{}
}

// SyncBuffer is a bytes.Buffer safe for one writer and many readers.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Start runs the binary with args, replacing "{port}" in them with a free
// port that becomes p.Addr, and "{port:NAME}" with another free port stored
// in p.Extra[NAME]. It waits until p.Addr and every p.Extra address accept
// TCP connections (a process may open its listeners one after the other).
func Start(t testing.TB, bin string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Log: &SyncBuffer{}, Extra: map[string]string{}, done: make(chan struct{})}
	port := FreePort(t)
	p.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	final := make([]string, len(args))
	for i, a := range args {
		a = strings.ReplaceAll(a, "{port}", fmt.Sprint(port))
		for strings.Contains(a, "{port:") {
			j := strings.Index(a, "{port:")
			k := strings.Index(a[j:], "}") + j
			name := a[j+6 : k]
			addr, ok := p.Extra[name]
			if !ok {
				addr = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
				p.Extra[name] = addr
			}
			_, pt, _ := net.SplitHostPort(addr)
			a = a[:j] + pt + a[k+1:]
		}
		final[i] = a
	}
	p.Cmd = exec.Command(bin, final...)
	p.Cmd.Stdout = p.Log
	p.Cmd.Stderr = p.Log
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		p.waitErr = p.Cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.Stop(t) })
	deadline := time.Now().Add(15 * time.Second)
	addrs := []string{p.Addr}
	for _, a := range p.Extra {
		addrs = append(addrs, a)
	}
	for _, addr := range addrs {
		for {
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-p.done:
				t.Fatalf("%s exited early: %v\n%s", bin, p.waitErr, p.Log)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not listen on %s within 15s\n%s", bin, addr, p.Log)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return p
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) error { return p.Cmd.Process.Signal(sig) }

// Wait waits up to d for the process to exit and returns its error.
func (p *Proc) Wait(d time.Duration) (exited bool, err error) {
	select {
	case <-p.done:
		return true, p.waitErr
	case <-time.After(d):
		return false, nil
	}
}

// Stop ends the process: SIGTERM, then SIGKILL after 10 s. It fails the
// test if the process (built with RaceEnv) reported a data race.
func (p *Proc) Stop(t testing.TB) {
	defer func() {
		if strings.Contains(p.Log.String(), "WARNING: DATA RACE") {
			t.Errorf("%s reported a data race:\n%s", p.Cmd.Path, p.Log)
		}
	}()
	select {
	case <-p.done:
		// It exited before the test ended: show why when the test failed.
		if t.Failed() {
			t.Logf("%s exited early (%v); its output ends:\n%s", p.Cmd.Path, p.waitErr, tail(p.Log.String(), 8<<10))
		}
		return
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	if ok, _ := p.Wait(10 * time.Second); !ok {
		_ = p.Cmd.Process.Kill()
		<-p.done
		t.Logf("process %d needed SIGKILL", p.Cmd.Process.Pid)
	}
}

// tail is the last n bytes of s.
func tail(s string, n int) string { return s[max(len(s)-n, 0):] }

// RSS returns the process's resident set size in bytes (Linux).
func (p *Proc) RSS() (int64, error) {
	st, err := procstat.Read(p.Cmd.Process.Pid)
	return st.RSS, err
}

// DevCert writes a development certificate for 127.0.0.1 and localhost
// and its key into dir with `herald gencert` (bin is the herald binary)
// and returns their paths and a pool that trusts the certificate.
func DevCert(t testing.TB, bin, dir string) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if out, err := exec.Command(bin, "gencert", "--host", "127.0.0.1,localhost", "--cert", certFile, "--key", keyFile).CombinedOutput(); err != nil {
		t.Fatalf("herald gencert: %v\n%s", err, out)
	}
	pemBytes, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	roots = x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemBytes) {
		t.Fatal("generated certificate does not parse")
	}
	return certFile, keyFile, roots
}

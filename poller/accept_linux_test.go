package poller

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fdChildEnv makes a test run its body: the parent re-executes the test
// binary with it set, so that the body, which exhausts the process's file
// descriptors, runs alone in a process of its own.
const fdChildEnv = "HERALD_POLLER_FD_CHILD"

// inChild re-executes the test binary to run only test name with
// fdChildEnv set, and reports its failure; it returns true in the child,
// which then runs the body.
func inChild(t *testing.T, name string) bool {
	t.Helper()
	if os.Getenv(fdChildEnv) == name {
		return true
	}
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), fdChildEnv+"="+name)
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: "+name)) {
		t.Fatalf("child: %v\n%s", err, out)
	}
	return false
}

// countingHandler is an slog.Handler that counts records.
type countingHandler struct{ n *atomic.Int64 }

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(context.Context, slog.Record) error {
	h.n.Add(1)
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

// fdExhaustion lowers the soft RLIMIT_NOFILE close to the descriptors open
// now and fills the rest; release frees them and restores the limit.
type fdExhaustion struct {
	saved  unix.Rlimit
	filler []int
}

func exhaustFds(t *testing.T) *fdExhaustion {
	t.Helper()
	x := &fdExhaustion{}
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &x.saved); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	// The highest descriptor open bounds the limit from below.
	lim := unix.Rlimit{Cur: uint64(len(ents) + 64), Max: x.saved.Max}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	for {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err == unix.EMFILE {
			break
		}
		if err != nil {
			x.release()
			t.Fatal(err)
		}
		x.filler = append(x.filler, fd)
	}
	return x
}

func (x *fdExhaustion) release() {
	for _, fd := range x.filler {
		_ = unix.Close(fd)
	}
	x.filler = nil
	_ = unix.Setrlimit(unix.RLIMIT_NOFILE, &x.saved)
}

// rawClients makes n client sockets before the descriptors run out;
// connect needs no new descriptor, so they can connect afterwards.
func rawClients(t *testing.T, n int) []int {
	t.Helper()
	fds := make([]int, n)
	for i := range fds {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		fds[i] = fd
		t.Cleanup(func() { _ = unix.Close(fd) })
	}
	return fds
}

func rawConnect(t *testing.T, fd int, s *Server) {
	t.Helper()
	sa := &unix.SockaddrInet4{Port: s.Addr().(*net.TCPAddr).Port}
	copy(sa.Addr[:], []byte{127, 0, 0, 1})
	if err := unix.Connect(fd, sa); err != nil && err != unix.EINPROGRESS {
		t.Fatalf("connect: %v", err)
	}
}

// rawRead waits (poll(2), no descriptor needed) for fd to be readable and
// reads what is there; 0 bytes is EOF.
func rawRead(t *testing.T, fd int) []byte {
	t.Helper()
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	deadline := time.Now().Add(testTimeout)
	for {
		n, err := unix.Poll(pfd, int(time.Until(deadline)/time.Millisecond))
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			t.Fatalf("poll: no answer (%v)", err)
		}
		b := make([]byte, 512)
		m, err := unix.Read(fd, b)
		if err == unix.EAGAIN {
			continue
		}
		if err != nil {
			return nil // a reset: closed all the same
		}
		return b[:m]
	}
}

// TestAcceptOutOfFiles runs a server out of file descriptors: the clients
// that connect meanwhile are answered with Config.Overload and closed (not
// left in the backlog), with a bounded number of accept calls and log
// lines, and service resumes once descriptors are free.
func TestAcceptOutOfFiles(t *testing.T) {
	if !inChild(t, "TestAcceptOutOfFiles") {
		return
	}
	const overload = "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\r\n"
	var logs atomic.Int64
	s := startServer(t, Config{
		Backend:  BackendEpoll,
		Loops:    1,
		Overload: []byte(overload),
		Logger:   slog.New(countingHandler{&logs}),
	}, &funcs{data: lineEcho})
	const n = 5
	clients := rawClients(t, n+1)
	x := exhaustFds(t)
	defer x.release()
	start := time.Now()
	for _, fd := range clients[:n] {
		rawConnect(t, fd, s)
	}
	for i, fd := range clients[:n] {
		got := string(rawRead(t, fd))
		if got != overload {
			t.Fatalf("client %d: got %q, want the overload answer", i, got)
		}
		if b := rawRead(t, fd); len(b) != 0 {
			t.Fatalf("client %d: %q after the answer, want EOF", i, b)
		}
	}
	elapsed := time.Since(start)
	k := s.k
	st := s.AcceptStats()
	if st.Shed != n {
		t.Errorf("shed %d connections, want %d", st.Shed, n)
	}
	// Each wakeup: one failed accept, one per refused connection and one
	// that finds the queue empty; a pause of 50 ms and more between
	// wakeups.
	if calls, bound := k.acceptCalls.Load(), uint64(3*n+2)*uint64(1+elapsed/minAcceptPause); calls > bound {
		t.Errorf("%d accept calls in %v, want at most %d: the loop spins", calls, elapsed, bound)
	}
	if l := logs.Load(); l > 1+int64(elapsed/acceptLogEvery) {
		t.Errorf("%d log lines in %v: not rate-limited", l, elapsed)
	}
	if s.Conns() != 0 {
		t.Errorf("%d connections open, want 0", s.Conns())
	}
	x.release()
	// Service resumes.
	fd := clients[n]
	rawConnect(t, fd, s)
	waitFor(t, "the connection to open", func() bool { return s.Conns() == 1 })
	if _, err := unix.Write(fd, []byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	if got := string(rawRead(t, fd)); got != "hello\n" {
		t.Fatalf("echo: got %q", got)
	}
}

// TestAcceptPausesWithoutReserve runs a server out of file descriptors
// with no reserve descriptor to refuse connections on: the listener backs
// off (50 ms, doubling) instead of failing accept(2) in a loop, and the
// client left waiting in the backlog is served once descriptors are free.
func TestAcceptPausesWithoutReserve(t *testing.T) {
	if !inChild(t, "TestAcceptPausesWithoutReserve") {
		return
	}
	var logs atomic.Int64
	s := NewServer(Config{
		Backend: BackendEpoll,
		Loops:   1,
		Logger:  slog.New(countingHandler{&logs}),
	}, &funcs{data: lineEcho})
	s.k.noReserve = true
	serveStarted(t, s)
	fd := rawClients(t, 1)[0]
	x := exhaustFds(t)
	defer x.release()
	start := time.Now()
	rawConnect(t, fd, s)
	const failures = 4
	waitFor(t, "accept failures", func() bool { return s.AcceptStats().Errors >= failures })
	elapsed := time.Since(start)
	// Pauses of 50, 100 and 200 ms come between the first four failures.
	if min := 350 * time.Millisecond; elapsed < min {
		t.Errorf("%d accept failures in %v, want at least %v between them: no backoff", failures, elapsed, min)
	}
	if calls, errs := s.k.acceptCalls.Load(), s.AcceptStats().Errors; calls != errs {
		t.Errorf("%d accept calls for %d failures, want one per wakeup", calls, errs)
	}
	if l := logs.Load(); l > 1+int64(elapsed/acceptLogEvery) {
		t.Errorf("%d log lines in %v: not rate-limited", l, elapsed)
	}
	if s.Conns() != 0 {
		t.Fatalf("%d connections open while out of descriptors", s.Conns())
	}
	x.release()
	waitFor(t, "the waiting connection to open", func() bool { return s.Conns() == 1 })
	if _, err := unix.Write(fd, []byte("hi\n")); err != nil {
		t.Fatal(err)
	}
	if got := string(rawRead(t, fd)); got != "hi\n" {
		t.Fatalf("echo: got %q", got)
	}
}

// TestShedServesOnceDescriptorsAreFree runs shed, as accept does after an
// EMFILE, at a moment descriptors have been freed again (as when a burst
// of closes races the refusals): the waiting connection is served, not
// refused with Config.Overload, and accept goes on as usual.
func TestShedServesOnceDescriptorsAreFree(t *testing.T) {
	t.Parallel()
	const overload = "HTTP/1.1 503 Service Unavailable\r\n\r\n"
	s := startServer(t, Config{Backend: BackendEpoll, Loops: 1, Overload: []byte(overload)}, &funcs{data: lineEcho})
	e := epollOf(t, s.Loops()[0])
	fd := rawClients(t, 1)[0]
	var state shedState
	var refused int
	onLoop(t, s.Loops()[0], func() {
		// The loop is busy here, so the connection waits in the backlog
		// until shed takes it.
		rawConnect(t, fd, s)
		lfd := e.lns[0]
		pfd := []unix.PollFd{{Fd: int32(lfd), Events: unix.POLLIN}}
		if n, err := unix.Poll(pfd, int(testTimeout/time.Millisecond)); n != 1 || err != nil {
			t.Errorf("listener not readable: %d, %v", n, err)
			return
		}
		refused, state = e.shed(lfd)
	})
	if refused != 0 || state != shedRecovered {
		t.Fatalf("shed refused %d, state %d; want 0 and shedRecovered", refused, state)
	}
	if st := s.AcceptStats(); st.Shed != 0 {
		t.Fatalf("shed count %d, want 0", st.Shed)
	}
	waitFor(t, "the connection to open", func() bool { return s.Conns() == 1 })
	if _, err := unix.Write(fd, []byte("hi\n")); err != nil {
		t.Fatal(err)
	}
	if got := string(rawRead(t, fd)); got != "hi\n" {
		t.Fatalf("echo: got %q, want the echo (not the overload answer)", got)
	}
}

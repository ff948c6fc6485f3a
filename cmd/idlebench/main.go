// Command idlebench measures what one idle WebSocket connection costs a
// herald server: it starts the server binary, opens N idle connections from
// this (separate) process, and reports the server's RSS growth per
// connection and its thread and goroutine counts at each step. N is sized to
// the open-file limit of both processes unless -n is given.
//
//	go run ./cmd/idlebench -server bin/herald
package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/herald-push/herald/internal/procstat"
)

func main() {
	serverBin := flag.String("server", "bin/herald", "herald binary to measure")
	n := flag.Int("n", 0, "connections to open (0 = as many as the open-file limit allows, minus headroom)")
	steps := flag.String("steps", "1000,10000", "comma-separated counts at which to sample, besides N")
	listen := flag.String("listen", "127.0.0.1:18080", "address the server listens on")
	api := flag.String("api", "127.0.0.1:18081", "address of the server's API listener (for the goroutine count)")
	settle := flag.Duration("settle", 3*time.Second, "wait before each sample")
	heapProfile := flag.String("heap-profile", "", "write the server's heap profile at N here (go tool pprof -sample_index=inuse_space)")
	flag.Parse()
	if err := run(*serverBin, *n, *steps, *listen, *api, *settle, *heapProfile); err != nil {
		fmt.Fprintln(os.Stderr, "idlebench:", err)
		os.Exit(1)
	}
}

func nofile() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 1024
	}
	rl.Cur = rl.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	return int(rl.Cur)
}

func run(bin string, n int, stepList, listen, api string, settle time.Duration, heapProfile string) error {
	limit := nofile()
	if n == 0 {
		n = limit - 500
	}
	if n > limit-100 {
		return fmt.Errorf("-n %d does not fit the open-file limit %d", n, limit)
	}
	// All connections come from this one process (one address): the
	// per-address handshake cap, a defence against one attacker, is lifted;
	// pprof (off by default) gives the heap and goroutine counts.
	args := []string{"serve", "--listen", listen, "--api-listen", api, "--allow-anonymous", "--log-level=warn", "--ping-interval=0", "--max-handshakes-per-ip=-1", "--pprof"}
	srv := exec.Command(bin, args...)
	srv.Stderr = os.Stderr
	if err := srv.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	defer func() {
		_ = srv.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = srv.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = srv.Process.Kill()
		}
	}()
	if err := waitListening(listen, 10*time.Second); err != nil {
		return err
	}
	var samples []int
	for _, s := range strings.Split(stepList, ",") {
		if v, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && v > 0 && v < n {
			samples = append(samples, v)
		}
	}
	samples = append(samples, n)
	fmt.Printf("server %s, open-file limit %d, N = %d\n", bin, limit, n)
	fmt.Printf("%8s %12s %14s %14s %9s %11s\n", "conns", "RSS KiB", "RSS B/conn", "heap B/conn", "threads", "goroutines")
	conns := make([]net.Conn, 0, n)
	base := sample(srv.Process.Pid, api)
	fmt.Printf("%8d %12d %14s %14s %9d %11d\n", 0, base.rss>>10, "-", "-", base.threads, base.goroutines)
	prev, prevN := base, 0
	for _, target := range samples {
		var err error
		conns, err = openUpTo(conns, target, listen)
		if err != nil {
			return err
		}
		time.Sleep(settle)
		s := sample(srv.Process.Pid, api)
		marg := float64(s.rss-prev.rss) / float64(target-prevN)
		hmarg := float64(s.heap-prev.heap) / float64(target-prevN)
		fmt.Printf("%8d %12d %14.0f %14.0f %9d %11d\n", target, s.rss>>10, marg, hmarg, s.threads, s.goroutines)
		prev, prevN = s, target
	}
	if heapProfile != "" {
		if err := saveProfile("http://"+api+"/debug/pprof/heap?gc=1", heapProfile); err != nil {
			return err
		}
	}
	for _, c := range conns {
		c.Close()
	}
	return nil
}

func saveProfile(url, path string) error {
	resp, err := http.Get(url)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

func waitListening(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("server did not listen on %s", addr)
}

// openUpTo opens connections (with the WebSocket handshake) until there are
// target of them, 64 handshakes at a time.
func openUpTo(conns []net.Conn, target int, addr string) ([]net.Conn, error) {
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for i := len(conns); i < target; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := handshake(addr)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			conns = append(conns, c)
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return conns, fmt.Errorf("after %d connections: %w", len(conns), firstErr)
	}
	return conns, nil
}

func handshake(addr string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))
	req := "GET /ws?channel=idle HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n\r\n"
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, fmt.Errorf("write upgrade: %w", err)
	}
	br := bufio.NewReaderSize(c, 512)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("read upgrade response: %w", err)
	}
	if resp.StatusCode != 101 {
		c.Close()
		return nil, fmt.Errorf("upgrade status %d", resp.StatusCode)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

type stat struct {
	rss        int64
	heap       int64 // live heap after a forced GC
	threads    int
	goroutines int
}

var heapRe = regexp.MustCompile(`# HeapAlloc = (\d+)`)

var goroutineRe = regexp.MustCompile(`goroutine profile: total (\d+)`)

func sample(pid int, api string) stat {
	var s stat
	if st, err := procstat.Read(pid); err == nil {
		s.rss, s.threads = st.RSS, st.Threads
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+api+"/debug/pprof/goroutine?debug=1", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if m := goroutineRe.FindSubmatch(body); m != nil {
			s.goroutines, _ = strconv.Atoi(string(m[1]))
		}
	} else {
		s.goroutines = -1
	}
	req, _ = http.NewRequestWithContext(ctx, "GET", "http://"+api+"/debug/pprof/heap?debug=1&gc=1", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if m := heapRe.FindSubmatch(body); m != nil {
			s.heap, _ = strconv.ParseInt(string(m[1]), 10, 64)
		}
	}
	return s
}

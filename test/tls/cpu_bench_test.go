package tls

import (
	"bufio"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-push/herald/internal/procstat"
)

// The CPU measurements below are measurements only, not tests of a
// feature: they run when HERALD_BENCH=1 is set and skip otherwise, so
// `make test` leaves them out.
func benchOnly(t *testing.T) {
	if os.Getenv("HERALD_BENCH") != "1" {
		t.Skip("a measurement: set HERALD_BENCH=1 to run it")
	}
}

func benchInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// The plain comparison server: this test binary re-executed with
// HERALD_BENCH_PLAIN_SERVER=cert.pem,key.pem serves TLS with crypto/tls
// and net/http and answers a WebSocket upgrade with a minimal hijack; it
// prints its address on stdout and holds each upgraded connection until
// the client closes it.
func TestMain(m *testing.M) {
	if spec := os.Getenv("HERALD_BENCH_PLAIN_SERVER"); spec != "" {
		plainServer(spec)
		return
	}
	os.Exit(m.Run())
}

func plainServer(spec string) {
	files := strings.SplitN(spec, ",", 2)
	pair, err := tls.LoadX509KeyPair(files[0], files[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println(ln.Addr().String())
	conf := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS13, NextProtos: []string{"http/1.1"}}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Sec-WebSocket-Key")
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || key == "" {
			http.Error(w, "not a websocket upgrade", http.StatusBadRequest)
			return
		}
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
			base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n")
		brw.Flush()
		io.Copy(io.Discard, brw) // until the client closes
	})
	(&http.Server{Handler: h}).Serve(tls.NewListener(ln, conf))
}

// startPlain runs the plain server as a subprocess with herald's pair.
func startPlain(t *testing.T, cert, key string) (*exec.Cmd, string) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "HERALD_BENCH_PLAIN_SERVER="+cert+","+key)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("plain server: %v", err)
	}
	return cmd, strings.TrimSpace(line)
}

// cpuNanos sums the on-CPU time of the process's threads from
// /proc/PID/task/*/schedstat (nanoseconds), a finer cross-check of the
// 10 ms clock ticks of /proc/PID/stat.
func cpuNanos(pid int) int64 {
	dirs, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var sum int64
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		var n int64
		fmt.Sscan(string(b), &n)
		sum += n
	}
	return sum
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

// handshakes runs n TLS (conf != nil) or plain connections with a
// WebSocket upgrade each against addr, `par` at a time, and closes them.
func handshakes(t *testing.T, addr string, conf *tls.Config, n, par int) {
	var wg sync.WaitGroup
	var next atomic.Int64
	var failed atomic.Value
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(n) {
				var c net.Conn
				var err error
				if conf != nil {
					c, err = tls.Dial("tcp", addr, conf)
				} else {
					c, err = net.Dial("tcp", addr)
				}
				if err != nil {
					failed.Store(err)
					return
				}
				fmt.Fprintf(c, "GET /ws?channel=hs HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
					"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				c.Close()
				if err != nil || resp.StatusCode != 101 {
					failed.Store(fmt.Errorf("upgrade: %v %v", resp, err))
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
}

// TestHandshakeCPU compares the server CPU per TLS 1.3 handshake plus
// WebSocket upgrade of herald (loop engine) with a plain crypto/tls +
// net/http server using the same certificate, both subprocesses measured
// from /proc/PID/stat; herald over ws is the no-TLS reference. Median of
// three rounds, the servers interleaved in each round.
func TestHandshakeCPU(t *testing.T) {
	benchOnly(t)
	n, par, rounds := benchInt("HERALD_BENCH_N", 2000), benchInt("HERALD_BENCH_PAR", 4), 3
	srv := start(t, "--api-listen", "", "--allow-anonymous", "--ping-interval=0")
	defer srv.Stop(t)
	key := filepath.Join(filepath.Dir(srv.certFile), "key.pem")
	plain, plainAddr := startPlain(t, srv.certFile, key)
	conf := srv.tlsConfig(tls.VersionTLS13)
	type target struct {
		name string
		pid  int
		addr string
		conf *tls.Config
	}
	targets := []target{
		{"herald wss (loop)", srv.Cmd.Process.Pid, srv.tlsAddr, conf},
		{"plain crypto/tls + net/http", plain.Process.Pid, plainAddr, conf},
		{"herald ws (no TLS)", srv.Cmd.Process.Pid, srv.Addr, nil},
	}
	for _, tg := range targets { // warm up: caches, the allocator's heap, the runtime's threads
		handshakes(t, tg.addr, tg.conf, 200, par)
	}
	ticks := make([][]float64, len(targets))
	nanos := make([][]float64, len(targets))
	rate := make([][]float64, len(targets))
	for range rounds {
		for i, tg := range targets {
			time.Sleep(300 * time.Millisecond)
			t0, n0, w0 := procstat.CPUTicks(tg.pid), cpuNanos(tg.pid), time.Now()
			handshakes(t, tg.addr, tg.conf, n, par)
			el := time.Since(w0)
			time.Sleep(300 * time.Millisecond) // the server's side of the closes
			ticks[i] = append(ticks[i], float64(procstat.CPUTicks(tg.pid)-t0)*1e4/float64(n))
			nanos[i] = append(nanos[i], float64(cpuNanos(tg.pid)-n0)/1e3/float64(n))
			rate[i] = append(rate[i], float64(n)/el.Seconds())
		}
	}
	base := median(ticks[1])
	for i, tg := range targets {
		t.Logf("%-28s server CPU %6.1f µs/handshake (stat, rounds %.0f) %6.1f µs (schedstat)  ×%.2f of plain  %5.0f handshakes/s",
			tg.name, median(ticks[i]), ticks[i], median(nanos[i]), median(ticks[i])/base, median(rate[i]))
	}
}

// recordCounter counts the TLS records arriving on a connection (it
// parses the 5-byte record headers in the byte stream).
type recordCounter struct {
	net.Conn
	hdr     [5]byte
	have    int // header bytes seen of the current record
	left    int // body bytes left of the current record
	records *atomic.Int64
}

func (r *recordCounter) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	b := p[:n]
	for len(b) > 0 {
		if r.left > 0 {
			k := min(r.left, len(b))
			r.left -= k
			b = b[k:]
			continue
		}
		r.hdr[r.have] = b[0]
		r.have++
		b = b[1:]
		if r.have == 5 {
			r.have = 0
			r.left = int(r.hdr[3])<<8 | int(r.hdr[4])
			r.records.Add(1)
		}
	}
	return n, err
}

// TestBroadcastCPU holds wss (loop engine) and ws connections on one
// herald, half and half, each half subscribed to its own channel, and
// publishes K messages of 1 KiB to each channel through the API: one
// call at a time (each waits for every delivery) and in bursts of ten
// concurrent calls. It reports the server's CPU per delivered message
// from /proc/PID/stat, and for wss the TLS records per delivered message.
func TestBroadcastCPU(t *testing.T) {
	benchOnly(t)
	conns, k, rounds := benchInt("HERALD_BENCH_CONNS", 2000), benchInt("HERALD_BENCH_K", 50), 3
	srv := start(t, "--api-listen", "127.0.0.1:{port:api}", "--allow-anonymous", "--ping-interval=0")
	defer srv.Stop(t)
	api, pid := srv.Extra["api"], srv.Cmd.Process.Pid
	var got [2]atomic.Int64 // deliveries: [0] wss, [1] ws
	var records atomic.Int64
	channels := [2]string{"bwss", "bws"}
	var all []*websocket.Conn
	defer func() {
		for _, c := range all {
			c.Close()
		}
	}()
	for i := range conns {
		side := i % 2
		d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
		url := "ws://" + srv.Addr + "/ws?channel=" + channels[side]
		if side == 0 {
			url = "wss://" + srv.tlsAddr + "/ws?channel=" + channels[side]
			d.NetDialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
				raw, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				c := tls.Client(&recordCounter{Conn: raw, records: &records}, srv.tlsConfig(tls.VersionTLS13))
				return c, c.HandshakeContext(ctx)
			}
		}
		c, _, err := d.Dial(url, nil)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		all = append(all, c)
		subscribed := make(chan struct{})
		go func() {
			first := true
			for {
				_, msg, err := c.ReadMessage()
				if err != nil {
					return
				}
				if first && strings.Contains(string(msg), `"subscribed"`) {
					first = false
					close(subscribed)
					continue
				}
				got[side].Add(1)
			}
		}()
		select {
		case <-subscribed:
		case <-time.After(10 * time.Second):
			t.Fatalf("connection %d: no subscribed", i)
		}
	}
	perSide := int64((conns + 1) / 2)
	body := `{"pad":"` + strings.Repeat("x", 1024-10) + `"}` // 1 KiB
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	publish := func(ch string) {
		resp, err := hc.Post("http://"+api+"/api/publish?channel="+ch, "application/json", strings.NewReader(body))
		if err != nil {
			t.Error(err)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("publish: %s", resp.Status)
		}
	}
	waitFor := func(side int, want int64) {
		deadline := time.Now().Add(60 * time.Second)
		for got[side].Load() < want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d of %d delivered", channels[side], got[side].Load(), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	var baseGot [2]int64
	// run publishes k messages to one side, burst at a time, waiting for
	// every delivery of a burst before the next.
	run := func(side, burst int) {
		for sent := 0; sent < k; sent += burst {
			var wg sync.WaitGroup
			for range burst {
				wg.Add(1)
				go func() { defer wg.Done(); publish(channels[side]) }()
			}
			wg.Wait()
			want := int64(sent+burst) * perSide
			waitFor(side, baseGot[side]+want)
		}
	}
	type mode struct {
		name        string
		side, burst int
	}
	modes := []mode{{"wss, 1 per call", 0, 1}, {"ws, 1 per call", 1, 1}, {"wss, bursts of 10", 0, 10}, {"ws, bursts of 10", 1, 10}}
	ticks := make([][]float64, len(modes))
	nanos := make([][]float64, len(modes))
	recs := make([][]float64, len(modes))
	publish(channels[0]) // warm up
	publish(channels[1])
	waitFor(0, perSide)
	waitFor(1, perSide)
	for range rounds {
		for i, m := range modes {
			time.Sleep(300 * time.Millisecond)
			baseGot[m.side] = got[m.side].Load()
			t0, n0, r0 := procstat.CPUTicks(pid), cpuNanos(pid), records.Load()
			run(m.side, m.burst)
			del := float64(int64(k) * perSide)
			ticks[i] = append(ticks[i], float64(procstat.CPUTicks(pid)-t0)*1e4/del)
			nanos[i] = append(nanos[i], float64(cpuNanos(pid)-n0)/1e3/del)
			recs[i] = append(recs[i], float64(records.Load()-r0)/del)
		}
	}
	for i, m := range modes {
		t.Logf("%-18s server CPU %5.2f µs/delivered message (stat, rounds %.2f) %5.2f µs (schedstat)  TLS records/message %.2f",
			m.name, median(ticks[i]), ticks[i], median(nanos[i]), median(recs[i]))
	}
}

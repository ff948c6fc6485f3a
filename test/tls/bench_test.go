package tls

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/herald-push/herald/internal/procstat"
)

// upgradeOver sends a WebSocket upgrade on c and waits for the 101.
func upgradeOver(tb testing.TB, c net.Conn, br *bufio.Reader) {
	tb.Helper()
	fmt.Fprintf(c, "GET /ws?channel=idle HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		tb.Fatalf("upgrade: %v %v", resp, err)
	}
}

// BenchmarkIdleConn holds idle WebSocket connections subscribed to one
// channel, plain and over TLS, and reports the server's resident memory
// per connection (the marginal RSS over the batch, so the process's fixed
// cost is left out).
func BenchmarkIdleConn(b *testing.B) {
	for _, mode := range []string{"plain", "tls", "tls-bridge"} {
		b.Run(mode, func(b *testing.B) {
			args := []string{"--api-listen", "127.0.0.1:{port:api}", "--allow-anonymous", "--ping-interval=0"}
			if mode == "tls-bridge" {
				args = append(args, "--tls-engine", "bridge")
			}
			srv := start(&testing.T{}, args...)
			addr := srv.Addr
			var conf *tls.Config
			if mode != "plain" {
				addr, conf = srv.tlsAddr, srv.tlsConfig(0)
			}
			open := func(n int) []net.Conn {
				cs := make([]net.Conn, 0, n)
				for range n {
					var c net.Conn
					var err error
					if conf != nil {
						c, err = tls.Dial("tcp", addr, conf)
					} else {
						c, err = net.Dial("tcp", addr)
					}
					if err != nil {
						b.Fatal(err)
					}
					br := bufio.NewReader(c)
					upgradeOver(b, c, br)
					cs = append(cs, c)
				}
				return cs
			}
			warm := open(200)
			runtime.GC()
			time.Sleep(time.Second)
			api := srv.Extra["api"]
			before, _ := srv.RSS()
			g0, fd0 := metric(b, api, "go_goroutines"), metric(b, api, "process_open_fds")
			n := max(b.N, 2000)
			cs := open(n)
			time.Sleep(2 * time.Second) // let the server's GC settle
			after, _ := srv.RSS()
			g1, fd1 := metric(b, api, "go_goroutines"), metric(b, api, "process_open_fds")
			b.ReportMetric(float64(after-before)/float64(n), "B/conn")
			b.ReportMetric((g1-g0)/float64(n), "goroutines/conn")
			b.ReportMetric((fd1-fd0)/float64(n), "fds/conn")
			for _, c := range append(warm, cs...) {
				c.Close()
			}
			srv.Stop(b)
		})
	}
}

// BenchmarkHandshake measures connection setup, TLS handshake included,
// and reports the server's CPU per handshake (user+system, from /proc).
func BenchmarkHandshake(b *testing.B) {
	for _, mode := range []string{"plain", "tls1.2", "tls1.3"} {
		b.Run(mode, func(b *testing.B) {
			srv := start(&testing.T{}, "--echo", "--api-listen", "")
			pid := srv.Cmd.Process.Pid
			var conf *tls.Config
			addr := srv.Addr
			switch mode {
			case "tls1.2":
				addr, conf = srv.tlsAddr, srv.tlsConfig(tls.VersionTLS12)
			case "tls1.3":
				addr, conf = srv.tlsAddr, srv.tlsConfig(tls.VersionTLS13)
			}
			t0 := procstat.CPUTicks(pid)
			start := time.Now()
			for b.Loop() {
				var c net.Conn
				var err error
				if conf != nil {
					c, err = tls.Dial("tcp", addr, conf)
				} else {
					c, err = net.Dial("tcp", addr)
				}
				if err != nil {
					b.Fatal(err)
				}
				upgradeOver(b, c, bufio.NewReader(c))
				c.Close()
			}
			el := time.Since(start)
			ticks := procstat.CPUTicks(pid) - t0
			b.ReportMetric(float64(b.N)/el.Seconds(), "handshakes/s")
			b.ReportMetric(float64(ticks)*1e4/float64(b.N), "server-µs/handshake") // 100 ticks/s
			srv.Stop(b)
		})
	}
}

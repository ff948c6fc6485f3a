package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestSlowConsumers: clients that never read are closed (policy close,
// 1013) or have messages dropped (policy drop) while the clients that read
// keep receiving everything promptly, and the server's memory stays
// bounded.
func TestSlowConsumers(t *testing.T) {
	for _, policy := range []string{"close", "drop"} {
		t.Run(policy, func(t *testing.T) {
			n := start(t, "--allow-anonymous", "--slow-policy="+policy, "--write-buffer-limit=1048576",
				"--socket-send-buffer=16384", "--history-size=10")
			const slowN, fastN = 8, 4
			var slow []net.Conn
			for i := 0; i < slowN; i++ {
				slow = append(slow, rawSubscriber(t, n, "firehose"))
			}
			var fast []*client
			for i := 0; i < fastN; i++ {
				c := n.mustDial(t, "channel=firehose")
				c.expectOp("subscribed")
				fast = append(fast, c)
			}
			before, _ := n.RSS()
			payload := strings.Repeat("x", 16<<10)
			const msgs = 1000
			// The publisher stays at most window messages ahead of the
			// slowest fast client (window × 16 KiB is a quarter of the
			// write-buffer limit), so a busy machine slows the test down
			// but never turns a reading client into a slow consumer.
			const window = 16
			got := make([]atomic.Int64, fastN)
			progress := make(chan struct{}, 1)
			failed := make(chan struct{})
			var failOnce sync.Once
			var wg sync.WaitGroup
			var maxLag time.Duration
			var mu sync.Mutex
			for i, c := range fast {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := 1; k <= msgs; k++ {
						m, err := c.next(30 * time.Second)
						if err == nil && m.Offset != uint64(k) {
							err = fmt.Errorf("offset %d want %d", m.Offset, k)
						}
						if err != nil {
							t.Errorf("fast client %d at message %d: %v", i, k, err)
							failOnce.Do(func() { close(failed) })
							return
						}
						var sent int64
						fmt.Sscanf(string(m.Data), `"%d`, &sent)
						lag := time.Since(time.Unix(0, sent))
						mu.Lock()
						maxLag = max(maxLag, lag)
						mu.Unlock()
						got[i].Store(int64(k))
						select {
						case progress <- struct{}{}:
						default:
						}
					}
				}()
			}
			slowest := func() int64 {
				low := int64(msgs)
				for i := range got {
					low = min(low, got[i].Load())
				}
				return low
			}
		publishing:
			for k := 1; k <= msgs; k++ {
				for slowest() < int64(k-window) {
					select {
					case <-progress:
					case <-failed:
						break publishing
					}
				}
				publish(t, n, "firehose", fmt.Sprintf("%d %s", time.Now().UnixNano(), payload))
			}
			wg.Wait()
			after, _ := n.RSS()
			t.Logf("policy %s: fast clients got all %d messages, worst publish-to-receive %v; RSS %d -> %d KiB",
				policy, msgs, maxLag.Round(time.Millisecond), before>>10, after>>10)
			// 8 stalled readers × 1000 × 16 KiB would be 128 MiB if buffered
			// without bound; the cap keeps each connection under 1 MiB + one
			// message (the rest is garbage from 1000 publishes the GC has
			// not returned yet).
			if after-before > 64<<20 {
				t.Fatalf("RSS grew by %d MiB with stalled readers", (after-before)>>20)
			}
			switch policy {
			case "close":
				if v := metric(t, n, `herald_disconnects_total{reason="slow_consumer"}`); v < slowN {
					t.Fatalf("slow_consumer disconnects = %v, want %d", v, slowN)
				}
			case "drop":
				if v := metric(t, n, "herald_dropped_messages_total"); v == 0 {
					t.Fatal("no message was dropped for the stalled readers")
				}
				if v := metric(t, n, "herald_connections"); v != slowN+fastN {
					t.Fatalf("drop policy closed connections: %v open, want %d", v, slowN+fastN)
				}
			}
			for _, c := range slow {
				c.Close()
			}
		})
	}
}

// rawSubscriber subscribes over a raw socket with a tiny receive buffer and
// then never reads again.
func rawSubscriber(t *testing.T, n *node, channel string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	c, err := d.Dial("tcp", n.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "GET /ws?channel=%s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", channel)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("raw upgrade: %v %v", resp, err)
	}
	return c
}

// TestDrain: SIGTERM makes /readyz fail, closes every connection with 1001
// spread over the drain window, and the process exits.
func TestDrain(t *testing.T) {
	n := start(t, "--allow-anonymous", "--drain-timeout=4s")
	var cs []*client
	for i := 0; i < 40; i++ {
		c := n.mustDial(t, "channel=d")
		c.expectOp("subscribed")
		cs = append(cs, c)
	}
	if code, _ := apiCall(t, "GET", n.API+"/readyz", "", nil); code != 200 {
		t.Fatalf("readyz before drain: %d", code)
	}
	start := time.Now()
	if err := n.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if code, body := apiCall(t, "GET", n.API+"/readyz", "", nil); code != 503 {
		t.Fatalf("readyz during drain: %d %s", code, body)
	}
	var closedAt []time.Duration
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code := c.closeCode(10 * time.Second)
			if code != 1001 {
				t.Errorf("closed with %d, want 1001", code)
			}
			mu.Lock()
			closedAt = append(closedAt, time.Since(start))
			mu.Unlock()
		}()
	}
	wg.Wait()
	first, last := closedAt[0], closedAt[0]
	for _, d := range closedAt {
		first, last = min(first, d), max(last, d)
	}
	t.Logf("closes spread from %v to %v", first.Round(time.Millisecond), last.Round(time.Millisecond))
	if last-first < 500*time.Millisecond {
		t.Fatalf("all connections closed within %v: the drain is not spread", last-first)
	}
	if exited, _ := n.Wait(10 * time.Second); !exited {
		t.Fatal("server did not exit after draining")
	}
}

// TestAPIErrors: the API's statuses and JSON errors, and the API key.
func TestAPIErrors(t *testing.T) {
	n := start(t, "--allow-anonymous", "--api-key=k3y", "--max-body-bytes=1024")
	key := map[string]string{"Authorization": "Bearer k3y"}
	cases := []struct {
		name, method, path, body string
		hdr                      map[string]string
		status                   int
		want                     string
	}{
		{"no-key", "POST", "/api/publish?channel=a", "x", nil, 401, "unauthorized"},
		{"wrong-key", "POST", "/api/publish?channel=a", "x", map[string]string{"X-API-Key": "nope"}, 401, "unauthorized"},
		{"ok", "POST", "/api/publish?channel=a", "x", key, 200, `"offset":1`},
		{"x-api-key", "POST", "/api/publish?channel=a", "x", map[string]string{"X-API-Key": "k3y"}, 200, `"offset":2`},
		{"json-body", "POST", "/api/publish", `{"channel":"b","data":{"k":1}}`, key, 200, `"channel":"b"`},
		{"bad-json", "POST", "/api/publish", `{"channel":`, key, 400, "bad_request"},
		{"no-channel", "POST", "/api/publish", `{"data":1}`, key, 400, "bad_request"},
		{"bad-channel", "POST", "/api/publish?channel=has%20space", "x", key, 400, "bad_request"},
		{"too-large", "POST", "/api/publish?channel=a", strings.Repeat("x", 2048), key, 413, "too_large"},
		{"broadcast", "POST", "/api/broadcast", `{"channels":["a","b"],"data":"hi"}`, key, 200, `"published"`},
		{"broadcast-empty", "POST", "/api/broadcast", `{"channels":[],"data":"hi"}`, key, 400, "bad_request"},
		{"disconnect-nobody", "POST", "/api/disconnect", `{"user":"nobody"}`, key, 200, `"disconnected":0`},
		{"disconnect-bad", "POST", "/api/disconnect", `{}`, key, 400, "bad_request"},
		{"channels", "GET", "/api/channels", "", key, 200, `"name":"a"`},
		{"stats", "GET", "/api/stats", "", key, 200, `"connections"`},
		{"unknown", "GET", "/api/unknown", "", key, 404, "not_found"},
		{"wrong-method", "GET", "/api/publish", "", key, 405, "method_not_allowed"},
		{"healthz-open", "GET", "/healthz", "", nil, 200, "ok"},
		{"metrics-open", "GET", "/metrics", "", nil, 200, "herald_connections"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := apiCall(t, tc.method, n.API+tc.path, tc.body, tc.hdr)
			if code != tc.status || !strings.Contains(body, tc.want) {
				t.Fatalf("%s %s: %d %s, want %d containing %q", tc.method, tc.path, code, body, tc.status, tc.want)
			}
		})
	}
}

// TestPingTimeout: a client that answers nothing is closed after the ping
// interval plus the pong timeout; one that answers stays.
func TestPingTimeout(t *testing.T) {
	n := start(t, "--allow-anonymous", "--ping-interval=500ms", "--pong-timeout=500ms")
	dead := rawSubscriber(t, n, "x")
	alive := n.mustDial(t, "channel=x")
	alive.expectOp("subscribed")
	// gorilla answers pings while reading.
	go func() {
		for {
			alive.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, _, err := alive.ReadMessage(); err != nil {
				return
			}
		}
	}()
	dead.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	start := time.Now()
	for {
		if _, err := dead.Read(buf); err != nil {
			break
		}
	}
	t.Logf("silent client closed after %v", time.Since(start).Round(time.Millisecond))
	if v := metric(t, n, `herald_disconnects_total{reason="ping_timeout"}`); v != 1 {
		t.Fatalf("ping_timeout disconnects = %v, want 1", v)
	}
	if v := metric(t, n, "herald_connections"); v != 1 {
		t.Fatalf("connections = %v, want the answering client only", v)
	}
}

// TestPerIPLimit: the per-IP cap refuses the extra connection with 429.
func TestPerIPLimit(t *testing.T) {
	n := start(t, "--allow-anonymous", "--max-conns-per-ip=3")
	for i := 0; i < 3; i++ {
		n.mustDial(t, "")
	}
	_, resp, err := n.dial(t, "", nil)
	if err == nil || resp == nil || resp.StatusCode != 429 {
		t.Fatalf("4th connection from one IP: %v %v, want 429", resp, err)
	}
}

// TestMaxConns: past --max-conns the upgrade is refused with 503.
func TestMaxConns(t *testing.T) {
	n := start(t, "--allow-anonymous", "--max-conns=2")
	// The start-up probe's TCP connection counts until the server has seen
	// it close.
	waitMetric(t, n, "herald_connections", 0)
	a := n.mustDial(t, "")
	n.mustDial(t, "")
	_, resp, err := n.dial(t, "", nil)
	if err == nil || resp == nil || resp.StatusCode != 503 {
		t.Fatalf("3rd connection: %v %v, want 503", resp, err)
	}
	// A slot frees when a client leaves.
	a.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, _, err := n.dial(t, "", nil)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot never freed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitMetric waits up to 5 s for a metric to reach want.
func waitMetric(t *testing.T, n *node, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		v := metric(t, n, name)
		if v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", name, v, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

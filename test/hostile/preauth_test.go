package hostile

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// idleOutcome is what an idle socket saw: the HTTP status the server
// answered with (0: none), whether it carried Retry-After, and whether the
// server ended the connection (versus a read timeout).
type idleOutcome struct {
	status     int
	retryAfter bool
	ended      bool
}

// watchIdle reads every socket until the server answers or ends it, or d
// passes, in parallel.
func watchIdle(conns []net.Conn, d time.Duration) []idleOutcome {
	out := make([]idleOutcome, len(conns))
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := readStatus(c, time.Until(deadline))
			if err == nil {
				out[i] = idleOutcome{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After") != "", ended: true}
				return
			}
			var ne net.Error
			out[i].ended = !(errors.As(err, &ne) && ne.Timeout())
		}()
	}
	wg.Wait()
	return out
}

// openIdle opens count TCP connections to addr from local and sends
// nothing on them.
func openIdle(t *testing.T, addr, local string, count int) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, 0, count)
	for range count {
		c, err := tcpDial(t, addr, dialOpts{Local: local})
		if err != nil {
			t.Fatalf("idle socket %d from %s: %v", len(conns), local, err)
		}
		conns = append(conns, c)
	}
	return conns
}

// legitDialer dials from another loopback address (another client IP).
func legitDialer(local string, tc *tls.Config) *websocket.Dialer {
	nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	return &websocket.Dialer{
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return nd.DialContext(ctx, network, addr)
		},
		TLSClientConfig:  tc,
		HandshakeTimeout: 5 * time.Second,
	}
}

// TestPreAuthConnsPerIP: 300 idle sockets from one IP filled --max-conns
// although --max-conns-per-ip 5 was set, because the per-IP cap applied
// only after the upgrade. It is counted at accept: past it, HTTP 429 with
// Retry-After, and a client from another IP still upgrades.
func TestPreAuthConnsPerIP(t *testing.T) {
	t.Parallel()
	const idle, perIP = 300, 5
	needFiles(t, idle+20)
	n := start(t, "--allow-anonymous", "--max-conns-per-ip", fmt.Sprint(perIP), "--max-conns", fmt.Sprint(idle))
	conns := openIdle(t, n.WS, "127.0.0.1", idle)
	if c, resp, err := dialWS(t, legitDialer("127.0.0.2", nil), "ws", n.WS, ""); err != nil {
		st := 0
		if resp != nil {
			st = resp.StatusCode
		}
		t.Errorf("a client from another IP could not upgrade while %d idle sockets were held: %v (HTTP %d)", idle, err, st)
	} else {
		c.send(map[string]any{"op": "ping"})
		c.expectOp("pong")
	}
	out := watchIdle(conns, 8*time.Second)
	refused := 0
	for i, o := range out {
		if o.status == 429 {
			refused++
			if !o.retryAfter {
				t.Errorf("idle socket %d: 429 without Retry-After", i)
			}
		} else if o.status != 0 {
			t.Errorf("idle socket %d: HTTP %d, want 429", i, o.status)
		}
	}
	if refused < idle-perIP {
		t.Errorf("%d of %d idle sockets from one IP refused with 429, want %d (max-conns-per-ip %d counted at accept)", refused, idle, idle-perIP, perIP)
	}
	n.expectMetric(refusals("conns_per_ip"), float64(idle-perIP))
}

// TestPreAuthHandshakeSlots: connections accepted but not upgraded were
// not capped node-wide. Past max_handshakes (4096, counted at accept)
// they are answered 503 with Retry-After. 4200 idle sockets from 140
// client IPs, 30 each (under max_handshakes_per_ip 32).
func TestPreAuthHandshakeSlots(t *testing.T) {
	t.Parallel()
	const ips, perIP, maxHandshakes = 140, 30, 4096
	needFiles(t, ips*perIP+50)
	// The first-byte deadline is long enough that every idle socket is
	// still held when the last ones are opened, however slowly a busy
	// machine opens 4200 sockets; it then ends the silent rest.
	const firstByte = 15 * time.Second
	n := start(t, "--allow-anonymous", "--first-byte-timeout="+firstByte.String(), "--handshake-timeout=20s")
	var conns []net.Conn
	for i := range ips {
		conns = append(conns, openIdle(t, n.WS, fmt.Sprintf("127.0.%d.%d", 1+i/200, 1+i%200), perIP)...)
	}
	if g, ok := n.metrics()["herald_handshakes_in_progress"]; !ok || g > maxHandshakes {
		t.Errorf("herald_handshakes_in_progress = %v (exported %v), want at most %d", g, ok, maxHandshakes)
	}
	out := watchIdle(conns, firstByte+15*time.Second)
	refused := 0
	for i, o := range out {
		switch o.status {
		case 0:
		case 503:
			refused++
			if !o.retryAfter {
				t.Errorf("idle socket %d: 503 without Retry-After", i)
			}
		default:
			t.Errorf("idle socket %d: HTTP %d, want 503 (or no answer)", i, o.status)
		}
	}
	if refused == 0 {
		t.Errorf("none of %d idle sockets was refused with 503 (max_handshakes %d)", len(conns), maxHandshakes)
	}
	n.expectMetric(refusals("handshakes"), float64(refused))
	// The first-byte deadline ends the silent rest.
	for i, o := range out {
		if !o.ended {
			t.Fatalf("idle socket %d still open past first_byte_timeout %v", i, firstByte)
		}
	}
}

// TestPreAuthTLSSlots: 512 idle TCP sockets held every TLS handshake slot,
// so each real wss handshake waited ~10 s. Handshakes per IP are capped
// at accept (32): a wss client from another IP upgrades while they are
// held, and the refusals are counted.
func TestPreAuthTLSSlots(t *testing.T) {
	t.Parallel()
	const idle, perIP = 512, 32
	needFiles(t, idle+20)
	n := startTLS(t, "--allow-anonymous")
	conns := openIdle(t, n.TLS, "127.0.0.1", idle)
	if g, ok := n.metrics()["herald_handshakes_in_progress"]; !ok || g > perIP+4 {
		t.Errorf("herald_handshakes_in_progress = %v (exported %v) with %d idle sockets from one IP, want at most %d", g, ok, idle, perIP)
	}
	c, resp, err := dialWS(t, legitDialer("127.0.0.2", n.tlsConfig()), "wss", n.TLS, "")
	if err != nil {
		st := 0
		if resp != nil {
			st = resp.StatusCode
		}
		t.Errorf("a wss client from another IP could not upgrade while %d idle sockets were held: %v (HTTP %d)", idle, err, st)
	} else {
		c.send(map[string]any{"op": "ping"})
		c.expectOp("pong")
	}
	out := watchIdle(conns, 10*time.Second)
	for i, o := range out {
		if (o.status == 429 || o.status == 503) && !o.retryAfter {
			t.Errorf("idle TLS socket %d: %d without Retry-After", i, o.status)
		}
		if !o.ended {
			t.Fatalf("idle TLS socket %d still open after 10 s (ClientHello deadline 3s)", i)
		}
	}
	n.expectMetric(refusals("handshakes_per_ip"), idle-perIP)
}

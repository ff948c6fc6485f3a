package hostile

import (
	"io"
	"net"
	"strconv"
	"testing"
	"time"
)

// TestAcceptPaceStorm: a storm of new connections against --accept-rate 1
// --accept-burst 20. The first 20 are upgraded; past the burst the node
// answers 503 with a Retry-After of 1 to 3 seconds and closes, counted in
// herald_limit_refusals_total{limit="accept_rate"}; the clients it took
// keep getting their messages; once the bucket refills a new client gets
// through. Over the TLS port, a connection past the pace is closed before
// its TLS handshake.
func TestAcceptPaceStorm(t *testing.T) {
	t.Parallel()
	const burst, storm = 20, 80
	n := startTLS(t, "--allow-anonymous", "--accept-rate", "1", "--accept-burst", strconv.Itoa(burst))
	w := n.watch("storm", "")
	upgraded, refused := 1, 0
	began := time.Now()
	for range storm {
		nc, err := tcpDial(t, n.WS, dialOpts{})
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		resp, _, err := upgrade(nc, n.WS, "/ws?channel=storm", "")
		if err != nil {
			t.Fatalf("upgrade: %v", err)
		}
		switch resp.StatusCode {
		case 101:
			upgraded++
		case 503:
			retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
			if err != nil || retry < 1 || retry > 3 {
				t.Fatalf("503 with Retry-After %q, want 1 to 3 seconds", resp.Header.Get("Retry-After"))
			}
			// The node closes a refused connection.
			_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				t.Fatalf("reading the refusal to its end: %v", err)
			}
			_ = nc.Close()
			refused++
		default:
			t.Fatalf("upgrade answered %d, want 101 or 503", resp.StatusCode)
		}
	}
	// One token a second refills during the storm: the burst, plus one
	// per second the storm took (plus one for rounding), get through.
	if most := burst + 1 + int(time.Since(began).Seconds()); refused == 0 || upgraded > most {
		t.Fatalf("%d upgraded and %d refused of %d, want at most %d upgraded (the burst of %d and the refill) and the rest refused", upgraded, refused, storm+1, most, burst)
	}
	n.waitMetric(refusals("accept_rate"), float64(refused))

	// A TLS connection past the pace is closed at accept, before any TLS
	// byte. More connections than the bucket can hold (its burst), opened
	// back to back, pass the pace however slow the machine: the refusals
	// counted meanwhile are TLS ones, since nothing else connects now.
	before := n.metric(refusals("accept_rate"))
	var tlsConns []net.Conn
	for range 2 * burst {
		nc, err := net.DialTimeout("tcp", n.TLS, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		tlsConns = append(tlsConns, nc)
	}
	n.waitMetric(refusals("accept_rate"), before+1)
	for _, nc := range tlsConns {
		_ = nc.Close()
	}

	// The connections the node took are served as before.
	n.mustPublish("storm", `"after the storm"`)
	w.expect(t, 1)

	// The bucket refills: retrying (as Retry-After says, here without
	// waiting that long) gets a client through.
	deadline := time.Now().Add(15 * time.Second)
	for attempt := 1; ; attempt++ {
		c, resp, err := dialWS(t, nil, "ws", n.WS, "channel=storm")
		if err == nil {
			c.expectOp("subscribed")
			break
		}
		if resp == nil || resp.StatusCode != 503 {
			t.Fatalf("attempt %d: %v, want 101 or 503", attempt, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("still refused after %d attempts", attempt)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

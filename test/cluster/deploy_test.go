package cluster

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/herald-push/herald/client/heraldclient"
	"github.com/herald-push/herald/server"
)

// balancer is a TCP load balancer on loopback: each new connection goes
// to the first backend whose /readyz answers 200, as a balancer with
// health checks would send it.
type balancer struct {
	ln       net.Listener
	backends []*node
	mu       sync.Mutex
	conns    []net.Conn
	routed   map[string]int // connections per backend
}

func newBalancer(t *testing.T, backends ...*node) *balancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &balancer{ln: ln, backends: backends, routed: map[string]int{}}
	t.Cleanup(func() {
		ln.Close()
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, c := range b.conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go b.route(c)
		}
	}()
	return b
}

func (b *balancer) route(c net.Conn) {
	for _, n := range b.backends {
		if st, _ := get(n.API + "/readyz"); st != http.StatusOK {
			continue
		}
		up, err := net.Dial("tcp", strings.TrimPrefix(n.WS, "ws://"))
		if err != nil {
			continue
		}
		b.mu.Lock()
		b.conns = append(b.conns, c, up)
		b.routed[n.name]++
		b.mu.Unlock()
		go splice(c, up)
		go splice(up, c)
		return
	}
	c.Close()
}

func splice(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// deployClient records what one Go client saw.
type deployClient struct {
	c  *heraldclient.Client
	mu sync.Mutex
	// offsets delivered, and on which connection (0: the first).
	offsets []uint64
	conn    []int
	conns   int
	disc    []heraldclient.Disconnected
	discAt  []time.Time
	connAt  []time.Time
	resubs  []heraldclient.Subscribed
}

func (d *deployClient) read() {
	for ev := range d.c.Events() {
		d.mu.Lock()
		switch ev := ev.(type) {
		case heraldclient.Message:
			d.offsets = append(d.offsets, ev.Offset)
			d.conn = append(d.conn, d.conns)
		case heraldclient.Disconnected:
			// The client's own times: this goroutine may take an event
			// late on a loaded machine, and the two ends of the wait late
			// by different amounts.
			d.disc = append(d.disc, ev)
			d.discAt = append(d.discAt, ev.At)
		case heraldclient.Connected:
			if ev.Reconnected {
				d.conns++
				d.connAt = append(d.connAt, ev.At)
			}
		case heraldclient.Subscribed:
			if ev.Resubscribed {
				d.resubs = append(d.resubs, ev)
			}
		}
		d.mu.Unlock()
	}
}

func (d *deployClient) last() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.offsets) == 0 {
		return 0
	}
	return d.offsets[len(d.offsets)-1]
}

// TestDeployWithShutdownDelay SIGTERMs a node that runs with
// --shutdown-delay behind a balancer: during the delay it answers
// /readyz 503, still accepts upgrades and still delivers; then its 1001
// closes advise each client a reconnect delay of its own, the clients
// (herald's Go client) wait at least that long, land on the other node
// through the balancer and recover there: every offset once, in order,
// while publishing never stops.
func TestDeployWithShutdownDelay(t *testing.T) {
	const (
		clients = 20
		delay   = 3 * time.Second
		spread  = time.Second
	)
	s := startNATS(t, 0, t.TempDir())
	a := startNode(t, "a", s.ClientURL(), "--shutdown-delay", delay.String(), "--reconnect-spread", spread.String(), "--drain-timeout", "2s")
	b := startNode(t, "b", s.ClientURL())
	waitReady(t, a, true, 10*time.Second)
	waitReady(t, b, true, 10*time.Second)
	lb := newBalancer(t, a, b)
	url := "ws://" + lb.ln.Addr().String() + "/ws"

	ctx := context.Background()
	dcs := make([]*deployClient, clients)
	for i := range dcs {
		c, err := heraldclient.Dial(ctx, url, heraldclient.Options{Backoff: heraldclient.Backoff{Min: 100 * time.Millisecond, Max: time.Second}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		dcs[i] = &deployClient{c: c}
		go dcs[i].read()
		if _, err := c.Subscribe(ctx, "deploy"); err != nil {
			t.Fatal(err)
		}
	}
	lb.mu.Lock()
	if lb.routed["a"] != clients {
		t.Fatalf("balancer routed %v, want all %d clients on a", lb.routed, clients)
	}
	lb.mu.Unlock()

	// Publish on b all along.
	var sent atomic.Uint64
	stop := make(chan struct{})
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		for i := uint64(1); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			st, p, err := publish(b, "deploy", fmt.Sprintf(`{"n":%d}`, i))
			if err != nil || st != http.StatusOK || p.Offset != i {
				t.Errorf("publish %d on b: status %d, %+v, %v", i, st, p, err)
				return
			}
			sent.Store(i)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	waitFor(t, 20*time.Second, "every client to see 10 messages", func() bool {
		for _, d := range dcs {
			if d.last() < 10 {
				return false
			}
		}
		return true
	})

	began := time.Now()
	if err := a.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitReady(t, a, false, 10*time.Second)
	// While the delay lasts: a still serves upgrades and deliveries. (On a
	// machine too slow to get here within it there is nothing to check.)
	marker := sent.Load() + 1
	waitFor(t, 10*time.Second, "a publish after /readyz turned 503", func() bool { return sent.Load() >= marker })
	if _, e, err := subscribe(t, a, "deploy", published{}); time.Since(began) < delay && (err != nil || e.Op != "subscribed") {
		t.Fatalf("upgrade on a during the shutdown delay: %+v, %v", e, err)
	}
	if st, _ := get(a.API + "/healthz"); st != http.StatusOK && time.Since(began) < delay {
		t.Fatalf("/healthz on a during the shutdown delay: %d", st)
	}
	markerIn := time.Since(began) < delay

	// Every client is closed, comes back on b and recovers.
	waitFor(t, 30*time.Second, "every client to resubscribe on b", func() bool {
		for _, d := range dcs {
			d.mu.Lock()
			n := len(d.resubs)
			d.mu.Unlock()
			if n == 0 {
				return false
			}
		}
		return true
	})
	if exited, err := a.Wait(15 * time.Second); !exited || err != nil {
		t.Errorf("a after SIGTERM: exited %v, %v", exited, err)
	}
	// Some more live messages on b, then stop and check every offset.
	after := sent.Load() + 20
	waitFor(t, 20*time.Second, "more publishes", func() bool { return sent.Load() >= after })
	close(stop)
	<-pubDone
	total := sent.Load()
	waitFor(t, 20*time.Second, fmt.Sprintf("every client to reach offset %d", total), func() bool {
		for _, d := range dcs {
			if d.last() < total {
				return false
			}
		}
		return true
	})

	advices := map[time.Duration]bool{}
	for i, d := range dcs {
		d.mu.Lock()
		if len(d.disc) != 1 || len(d.connAt) != 1 || len(d.resubs) != 1 {
			t.Errorf("client %d: %d disconnections, %d reconnections, %d resubscriptions, want one each", i, len(d.disc), len(d.connAt), len(d.resubs))
			d.mu.Unlock()
			continue
		}
		dis := d.disc[0]
		if dis.Code != heraldclient.CloseGoingAway || !dis.WillReconnect {
			t.Errorf("client %d: %+v, want 1001 and a reconnect", i, dis)
		}
		advice, ok := server.ParseReconnectAfter(dis.Reason)
		if !ok {
			t.Errorf("client %d: close reason %q carries no reconnect advice", i, dis.Reason)
		}
		advices[advice] = true
		if advice < 0 || advice >= spread {
			t.Errorf("client %d: advised %v, want within [0, %v)", i, advice, spread)
		}
		if dis.Retry < advice || dis.Retry >= advice+100*time.Millisecond {
			t.Errorf("client %d: retry %v for an advice of %v", i, dis.Retry, advice)
		}
		if gap := d.connAt[0].Sub(d.discAt[0]); gap < advice {
			t.Errorf("client %d: reconnected %v after the close, sooner than the advised %v", i, gap, advice)
		}
		if e := d.discAt[0].Sub(began); e < delay {
			t.Errorf("client %d: closed %v after SIGTERM, within the shutdown delay %v", i, e, delay)
		}
		if r := d.resubs[0]; !r.Recovered {
			t.Errorf("client %d: resubscription %+v, want recovered", i, r)
		}
		if len(d.offsets) != int(total) {
			t.Errorf("client %d: %d messages, want %d", i, len(d.offsets), total)
		}
		for j, o := range d.offsets {
			if o != uint64(j+1) {
				t.Errorf("client %d: offset %d at position %d: lost or duplicated", i, o, j+1)
				break
			}
			if o == marker && markerIn && d.conn[j] != 0 {
				t.Errorf("client %d: offset %d, published during the shutdown delay, came after the reconnect", i, o)
			}
		}
		d.mu.Unlock()
	}
	if len(advices) < 2 {
		t.Errorf("%d clients were all advised %v", clients, advices)
	}
	lb.mu.Lock()
	defer lb.mu.Unlock()
	if lb.routed["b"] < clients {
		t.Errorf("balancer routed %v, want every client on b after the deploy", lb.routed)
	}
}

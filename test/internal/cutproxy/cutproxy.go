// Package cutproxy is a TCP proxy for tests: it stands between a client
// and herald, and the test can cut its connections, refuse new ones,
// freeze them (a dead path no close announces) or send new ones to
// another node, to play the network failing under a client. Its methods
// are safe for concurrent use.
package cutproxy

import (
	"net"
	"sync"
	"testing"
)

// Mode is what a Proxy does with connections.
type Mode int

const (
	// Pass forwards bytes both ways.
	Pass Mode = iota
	// Reject closes new connections at once (the server seems down).
	Reject
	// Freeze stops forwarding on every connection, open or new, but
	// keeps them open: a dead network path that no close announces.
	Freeze
)

// Proxy is a TCP proxy in front of herald whose connections a test can
// cut, refuse or freeze.
type Proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	mode   Mode
	conns  []net.Conn
	frozen chan struct{} // closed when leaving Freeze
}

// New listens on a free loopback port and forwards to target; the proxy
// closes with the test.
func New(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &Proxy{ln: ln, target: target, frozen: make(chan struct{})}
	close(p.frozen)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
	})
	return p
}

// SetTarget sends the connections accepted from now on to target.
func (p *Proxy) SetTarget(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetMode changes how connections are treated from now on.
func (p *Proxy) SetMode(m Mode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m == Freeze && p.mode != Freeze {
		p.frozen = make(chan struct{})
	}
	if m != Freeze && p.mode == Freeze {
		close(p.frozen)
	}
	p.mode = m
}

// Cut closes every proxied connection, both sides, and returns how many
// pairs there were.
func (p *Proxy) Cut() int {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	return len(conns) / 2
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		mode := p.mode
		p.mu.Unlock()
		if mode == Reject {
			c.Close()
			continue
		}
		p.mu.Lock()
		target := p.target
		p.mu.Unlock()
		up, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go p.pipe(up, c)
		go p.pipe(c, up)
	}
}

// pipe copies src to dst, holding data back while frozen.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			frozen := p.frozen
			p.mu.Unlock()
			select {
			case <-frozen:
			default:
				// Frozen: swallow the bytes, as a dead path would.
				continue
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or closed: the deferred closes end the other side
		}
	}
}

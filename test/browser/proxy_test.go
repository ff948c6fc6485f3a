package browser

import (
	"net"
	"sync"
	"testing"
)

// proxyMode is what a cutProxy does with connections.
type proxyMode int

const (
	// modePass forwards bytes both ways.
	modePass proxyMode = iota
	// modeReject closes new connections at once (the server seems down).
	modeReject
	// modeFreeze stops forwarding on every connection, open or new, but
	// keeps them open: a dead network path that no close announces.
	modeFreeze
)

// cutProxy is a TCP proxy in front of herald whose connections a test can
// cut, refuse or freeze, to play the network failing under a client.
type cutProxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	mode   proxyMode
	conns  []net.Conn
	frozen chan struct{} // closed when leaving modeFreeze
}

// newCutProxy listens on a free loopback port and forwards to target.
func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p := &cutProxy{ln: ln, target: target, frozen: make(chan struct{})}
	close(p.frozen)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
	})
	return p
}

// SetTarget sends the connections accepted from now on to target.
func (p *cutProxy) SetTarget(target string) {
	p.mu.Lock()
	p.target = target
	p.mu.Unlock()
}

// Addr is the proxy's host:port.
func (p *cutProxy) Addr() string { return p.ln.Addr().String() }

// SetMode changes how connections are treated from now on.
func (p *cutProxy) SetMode(m proxyMode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m == modeFreeze && p.mode != modeFreeze {
		p.frozen = make(chan struct{})
	}
	if m != modeFreeze && p.mode == modeFreeze {
		close(p.frozen)
	}
	p.mode = m
}

// Cut closes every proxied connection, both sides, and returns how many
// pairs there were.
func (p *cutProxy) Cut() int {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	return len(conns) / 2
}

func (p *cutProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		mode := p.mode
		p.mu.Unlock()
		if mode == modeReject {
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
func (p *cutProxy) pipe(dst, src net.Conn) {
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

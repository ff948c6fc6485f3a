package poller

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// echoClient collects what each client connection receives.
type echoClient struct {
	funcs
	mu       sync.Mutex
	received map[uint64]*bytes.Buffer
	closed   atomic.Int64
}

func newEchoClient(greeting func(c *Conn) []byte) *echoClient {
	ec := &echoClient{received: map[uint64]*bytes.Buffer{}}
	ec.open = func(c *Conn) { c.Write(greeting(c)) }
	ec.data = func(c *Conn, in []byte) int {
		ec.mu.Lock()
		defer ec.mu.Unlock()
		b := ec.received[c.ID()]
		if b == nil {
			b = new(bytes.Buffer)
			ec.received[c.ID()] = b
		}
		b.Write(in)
		return len(in)
	}
	ec.close = func(c *Conn, err error) { ec.closed.Add(1) }
	return ec
}

func (ec *echoClient) got(id uint64) string {
	ec.mu.Lock()
	defer ec.mu.Unlock()
	if b := ec.received[id]; b != nil {
		return b.String()
	}
	return ""
}

func TestClientEcho(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		localAddr string
		enroll    bool
		linux     bool
	}{
		{name: "dial"},
		{name: "dial-from-127.0.0.2", localAddr: "127.0.0.2", linux: true},
		{name: "enroll", enroll: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if tc.linux && runtime.GOOS != "linux" {
				t.Skip("127.0.0.2 answers on loopback only on Linux")
			}
			var peers sync.Map // server side: remote IPs seen
			s := startServer(t, Config{Loops: 2}, &funcs{
				open: func(c *Conn) { peers.Store(c.RemoteAddr().(*net.TCPAddr).IP.String(), true) },
				data: lineEcho,
			})
			greeting := func(c *Conn) []byte { return fmt.Appendf(nil, "hello from %d\n", c.ID()) }
			ec := newEchoClient(greeting)
			cl, err := NewClient(Config{Loops: 2, TCPNoDelay: true}, ec)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cl.Dial(s.Addr().String(), ""); !errors.Is(err, ErrStopped) {
				t.Errorf("Dial before Start = %v, want ErrStopped", err)
			}
			if err := cl.Start(); err != nil {
				t.Fatal(err)
			}
			const n = 8
			conns := make([]*Conn, n)
			for i := range conns {
				if tc.enroll {
					nc, derr := net.Dial("tcp", s.Addr().String())
					if derr != nil {
						t.Fatal(derr)
					}
					conns[i], err = cl.Enroll(nc)
				} else {
					conns[i], err = cl.Dial(s.Addr().String(), tc.localAddr)
				}
				if err != nil {
					t.Fatalf("conn %d: %v", i, err)
				}
			}
			if got := cl.Conns(); got != n {
				t.Errorf("client Conns() = %d, want %d", got, n)
			}
			for _, c := range conns {
				want := fmt.Sprintf("hello from %d\n", c.ID())
				waitFor(t, "echo of "+strings.TrimSpace(want), func() bool { return ec.got(c.ID()) == want })
			}
			if tc.localAddr != "" {
				if _, ok := peers.Load(tc.localAddr); !ok {
					t.Errorf("server saw no peer from %s", tc.localAddr)
				}
			}
			if err := cl.Stop(); err != nil {
				t.Fatalf("client stop: %v", err)
			}
			if got := ec.closed.Load(); got != n {
				t.Errorf("client OnClose calls = %d, want %d", got, n)
			}
			if _, err := cl.Dial(s.Addr().String(), ""); !errors.Is(err, ErrStopped) {
				t.Errorf("Dial after Stop = %v, want ErrStopped", err)
			}
			waitFor(t, "server sees the closes", func() bool { return s.Conns() == 0 })
		})
	}
}

func TestClientDialErrors(t *testing.T) {
	t.Parallel()
	cl, err := NewClient(Config{Loops: 1}, &funcs{})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Start(); err != nil {
		t.Fatal(err)
	}
	defer cl.Stop()
	if err := cl.Start(); !errors.Is(err, ErrStarted) {
		t.Errorf("second Start = %v, want ErrStarted", err)
	}
	cases := []struct{ name, addr, local string }{
		{name: "bad-local", addr: "127.0.0.1:1", local: "not-an-ip"},
		{name: "refused", addr: "127.0.0.1:1"},
	}
	for _, tc := range cases {
		if _, err := cl.Dial(tc.addr, tc.local); err == nil {
			t.Errorf("%s: Dial succeeded", tc.name)
		}
	}
}

package poller

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestAcceptedSocket: an accepted connection has TCP_NODELAY from its
// listener (no setsockopt of its own), and RemoteAddrPort gives the
// client's address both in OnOpen (from accept4) and later (from the
// kernel), without allocating.
// Not parallel: AllocsPerRun.
func TestAcceptedSocket(t *testing.T) {
	type seen struct {
		noDelay    int
		open, late netip.AddrPort
		allocs     float64
	}
	got := make(chan seen, 1)
	h := &funcs{}
	h.open = func(c *Conn) {
		nd, err := unix.GetsockoptInt(int(c.fd), unix.IPPROTO_TCP, unix.TCP_NODELAY)
		if err != nil {
			t.Errorf("getsockopt: %v", err)
		}
		open, _ := c.RemoteAddrPort()
		allocs := testing.AllocsPerRun(10, func() { _, _ = c.RemoteAddrPort() })
		_ = c.Loop().Run(func() {
			late, _ := c.RemoteAddrPort()
			allocs += testing.AllocsPerRun(10, func() { _, _ = c.RemoteAddrPort() })
			got <- seen{noDelay: nd, open: open, late: late, allocs: allocs}
		})
	}
	s := startServer(t, Config{Backend: BackendEpoll, Loops: 1, ReusePort: true, TCPNoDelay: true}, h)
	nc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	want := nc.LocalAddr().(*net.TCPAddr).AddrPort()
	want = netip.AddrPortFrom(want.Addr().Unmap(), want.Port())
	select {
	case g := <-got:
		if g.noDelay == 0 {
			t.Error("accepted socket without TCP_NODELAY")
		}
		if g.open != want || g.late != want {
			t.Errorf("RemoteAddrPort %v in OnOpen, %v later; want %v", g.open, g.late, want)
		}
		if g.allocs != 0 {
			t.Errorf("RemoteAddrPort allocates (%v)", g.allocs)
		}
	case <-time.After(testTimeout):
		t.Fatal("no connection opened")
	}
}

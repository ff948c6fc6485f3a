package server

import (
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// TestTLSListenerDefersAccept checks that the TLS listener, which Go's
// net package opens, gets TCP_DEFER_ACCEPT by default and not with a
// negative DeferAccept.
func TestTLSListenerDefersAccept(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		deferAccept Duration
		want        bool
	}{{"default", 0, true}, {"off", -1, false}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.TLSListen = "127.0.0.1:0"
			certFile, keyFile, _ := writeTestCert(t)
			cfg.TLSCert, cfg.TLSKey = certFile, keyFile
			cfg.DeferAccept = tc.deferAccept
			s := startServer(t, cfg, newRecorder())
			rc, err := s.tls.ln.(*net.TCPListener).SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var secs int
			var gerr error
			if err := rc.Control(func(fd uintptr) {
				secs, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT)
			}); err != nil || gerr != nil {
				t.Fatalf("getsockopt: %v %v", err, gerr)
			}
			if got := secs > 0; got != tc.want {
				t.Errorf("TLS listener's TCP_DEFER_ACCEPT = %d, want set: %v", secs, tc.want)
			}
		})
	}
}

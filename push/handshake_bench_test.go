package push

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/herald-push/herald/auth"
	"github.com/herald-push/herald/hub"
	"github.com/herald-push/herald/server"
)

// BenchmarkHandshake measures the whole server side of one connection's
// life on the real event loop: accept, the upgrade request parsed, Accept
// (the query, the token or the anonymous claims), the 101, OnOpen (the
// URL's channel subscribed, and the personal channel with a token), then
// the connection stays open, as in the benchmark harness's ramp (bench/),
// and is reset with the others of its batch of 500 with the timer stopped,
// once the server has closed them all. "hs256-users" gives every
// connection a token of its own user (signed, 500 at a time, with the
// timer stopped), as in a reconnect storm of distinct users: the token's
// first check, its claims, the personal channel. One connection stays open
// throughout, so the channel lives on as it does under load. The client is
// raw system calls on blocking sockets (no net.Conn, nothing allocated per
// connection), so allocs/op is the server's, plus a few the runtime makes;
// ns/op includes the client's system calls and the loopback round trips.
// Sequential: one connection at a time, one loop.
//
//	go test -run XXX -bench Handshake -benchmem -cpuprofile cpu.prof ./push/
func BenchmarkHandshake(b *testing.B) {
	tok, err := auth.Sign(testSecret, auth.TokenSpec{Subject: "bench", Subscribe: []string{"bench"}, ExpiresAt: time.Now().Add(time.Hour)})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name, query string
		users       bool
	}{
		{"anonymous", "channel=bench", false},
		{"hs256", "channel=bench&token=" + url.QueryEscape(tok), false},
		{"hs256-users", "channel=bench&token=", true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			srv := startBenchPush(b)
			addr := netip.MustParseAddrPort(srv.Addr().String())
			request := func(query string) []byte {
				return []byte("GET /ws?" + query + " HTTP/1.1\r\nHost: " + addr.String() +
					"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
					"Sec-WebSocket-Version: 13\r\nOrigin: http://" + addr.String() + "\r\nUser-Agent: bench\r\n\r\n")
			}
			const batch = 500
			req := request(bc.query)
			var reqs [][]byte // hs256-users: this batch's requests, a new user each
			users := 0
			sign := func() {
				reqs = reqs[:0]
				for range batch {
					users++
					t, err := auth.Sign(testSecret, auth.TokenSpec{Subject: fmt.Sprint("u", users), Subscribe: []string{"bench"}, ExpiresAt: time.Now().Add(time.Hour)})
					if err != nil {
						b.Fatal(err)
					}
					reqs = append(reqs, request(bc.query+t))
				}
			}
			if bc.users {
				sign()
				req = reqs[0]
			}
			sa := &unix.SockaddrInet4{Port: int(addr.Port()), Addr: addr.Addr().As4()}
			var buf [512]byte
			keep, err := rawHandshake(sa, req, buf[:])
			if err != nil {
				b.Fatal(err)
			}
			defer unix.Close(keep)
			fds := make([]int, 0, batch)
			reset := func() {
				b.StopTimer()
				for _, fd := range fds {
					_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
					_ = unix.Close(fd)
				}
				fds = fds[:0]
				if bc.users {
					sign()
				}
				for deadline := time.Now().Add(testTimeout); srv.Conns() > 1; {
					if time.Now().After(deadline) {
						b.Fatalf("%d connections still open", srv.Conns())
					}
					time.Sleep(100 * time.Microsecond)
				}
				b.StartTimer()
			}
			b.ReportAllocs()
			for b.Loop() {
				if bc.users {
					req = reqs[len(fds)]
				}
				fd, err := rawHandshake(sa, req, buf[:])
				if err != nil {
					b.Fatal(err)
				}
				if fds = append(fds, fd); len(fds) == batch {
					reset()
				}
			}
			reset()
		})
	}
}

// rawHandshake opens a connection, sends req and reads up to the end of
// the 101's header; it returns the open socket.
func rawHandshake(sa *unix.SockaddrInet4, req, buf []byte) (fd int, err error) {
	fd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer func() {
		if err != nil {
			_ = unix.Close(fd)
		}
	}()
	if err := unix.Connect(fd, sa); err != nil {
		return -1, err
	}
	if _, err := unix.Write(fd, req); err != nil {
		return -1, err
	}
	n := 0
	for !bytes.Contains(buf[:n], []byte("\r\n\r\n")) {
		m, err := unix.Read(fd, buf[n:])
		if err != nil {
			return -1, err
		}
		if m == 0 {
			return -1, io.ErrUnexpectedEOF
		}
		n += m
	}
	if !bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 101 ")) {
		return -1, &unexpectedResponse{buf[:n]}
	}
	return fd, nil
}

type unexpectedResponse struct{ b []byte }

func (e *unexpectedResponse) Error() string { return "unexpected response: " + string(e.b) }

// startBenchPush runs a one-loop push server as herald serve configures
// it for the benchmarks (anonymous clients allowed, HS256 tokens, no
// pings, no per-address handshake cap).
func startBenchPush(b *testing.B) *server.Server {
	b.Helper()
	v, err := auth.NewVerifier(auth.Config{HMACSecret: testSecret, AllowAnonymous: true, AnonymousSubscribe: []string{"*"}})
	if err != nil {
		b.Fatal(err)
	}
	h := hub.New(hub.Config{Encoder: Encoder{MaxFrame: server.DefaultWriteBufferLimit}})
	app := New(Options{Hub: h, Verifier: v})
	cfg := server.Config{Listen: "127.0.0.1:0", Loops: 1, MaxHandshakesPerIP: -1}
	srv, err := server.New(cfg, app, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	<-srv.Ready()
	if srv.Addr() == nil {
		b.Fatalf("server did not start: %v", <-done)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	return srv
}

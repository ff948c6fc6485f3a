package heraldclient_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/client/heraldclient"
)

var fast = heraldclient.Backoff{Min: 5 * time.Millisecond, Max: 50 * time.Millisecond}

func startNode(t *testing.T) *herald.Node {
	t.Helper()
	cfg := herald.DefaultConfig()
	cfg.Listen, cfg.APIListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Loops = 1
	cfg.AllowAnonymous = true
	cfg.AnonymousPublish = []string{"*"}
	cfg.DrainTimeout = 0
	cfg.Logger = slog.New(slog.DiscardHandler)
	node, err := herald.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-node.Ready():
	case err := <-done:
		t.Fatal(err)
	}
	return node
}

// next waits for the next event of type T, skipping others.
func next[T heraldclient.Event](t *testing.T, c *heraldclient.Client) T {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-c.Events():
			if !ok {
				t.Fatalf("events closed: %v", c.Err())
			}
			if v, ok := ev.(T); ok {
				return v
			}
		case <-timeout:
			var zero T
			t.Fatalf("no %T within 10s", zero)
		}
	}
}

// proxy forwards TCP to target; cut closes every connection.
type proxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	t.Cleanup(func() { ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go pipe(c, up)
			go pipe(up, c)
		}
	}()
	return p
}

func pipe(dst, src net.Conn) {
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

func (p *proxy) cut() {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// TestRecoveryAfterCut: messages published while the connection is cut
// arrive after the reconnect, each once, in order, with recovered:true.
func TestRecoveryAfterCut(t *testing.T) {
	node := startNode(t)
	p := newProxy(t, node.Addr().String())
	ctx := context.Background()
	c, err := heraldclient.Dial(ctx, "ws://"+p.ln.Addr().String()+"/ws", heraldclient.Options{Backoff: fast})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Subscribe(ctx, "room"); err != nil {
		t.Fatal(err)
	}
	next[heraldclient.Connected](t, c)
	for i := 1; i <= 3; i++ {
		node.Publish("room", []byte(fmt.Sprint(i)))
	}
	for i := 1; i <= 3; i++ {
		if m := next[heraldclient.Message](t, c); m.Offset != uint64(i) {
			t.Fatalf("message %d has offset %d", i, m.Offset)
		}
	}
	p.cut()
	d := next[heraldclient.Disconnected](t, c)
	if !d.WillReconnect {
		t.Fatalf("disconnected without reconnect: %+v", d)
	}
	for i := 4; i <= 6; i++ {
		node.Publish("room", []byte(fmt.Sprint(i)))
	}
	if ev := next[heraldclient.Connected](t, c); !ev.Reconnected {
		t.Fatal("second connection not marked Reconnected")
	}
	s := next[heraldclient.Subscribed](t, c)
	if !s.Resubscribed || !s.Recovered {
		t.Fatalf("resubscription: %+v", s)
	}
	for i := 4; i <= 7; i++ {
		if i == 7 {
			if _, err := c.Publish(ctx, "room", i); err != nil {
				t.Fatal(err)
			}
		}
		m := next[heraldclient.Message](t, c)
		if m.Offset != uint64(i) || string(m.Data) != fmt.Sprint(i) {
			t.Fatalf("got %d %s, want offset %d", m.Offset, m.Data, i)
		}
	}
	if pos, ok := c.Position("room"); !ok || pos.Offset != 7 || pos.Epoch == "" {
		t.Fatalf("position %+v %v", pos, ok)
	}
	if _, err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestErrors: a refused command is an *Error with the server's code.
func TestErrors(t *testing.T) {
	node := startNode(t)
	ctx := context.Background()
	c, err := heraldclient.Dial(ctx, "ws://"+node.Addr().String()+"/ws", heraldclient.Options{Backoff: fast})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Unsubscribe(ctx, "nothing"); err == nil {
		t.Fatal("unsub of a channel not subscribed succeeded")
	} else if e := (*heraldclient.Error)(nil); !errors.As(err, &e) || e.Code != "not_subscribed" {
		t.Fatalf("unsub: %v", err)
	}
	c.Close()
	if !errors.Is(c.Err(), heraldclient.ErrClosed) {
		t.Fatalf("Err after Close: %v", c.Err())
	}
	if _, err := c.Publish(ctx, "x", 1); !errors.Is(err, heraldclient.ErrClosed) {
		t.Fatalf("publish after Close: %v", err)
	}
	if _, ok := <-c.Events(); ok {
		// drain: events may be buffered, but the channel ends closed
		for range c.Events() {
		}
	}
}

// fakeServer upgrades every request and runs script on the connection;
// it records the Authorization header and the arrival time of each.
type fakeServer struct {
	*httptest.Server
	mu    sync.Mutex
	auths []string
	at    []time.Time
}

func newFake(t *testing.T, script func(n int, conn net.Conn)) *fakeServer {
	f := &fakeServer{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.auths = append(f.auths, r.Header.Get("Authorization"))
		f.at = append(f.at, time.Now()) // before the 101: a client that saw it finds it here
		n := len(f.auths)
		f.mu.Unlock()
		conn, _, _, err := ws.UpgradeHTTP(r, w)
		if err != nil {
			return
		}
		defer conn.Close()
		script(n, conn)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeServer) url() string { return "ws" + strings.TrimPrefix(f.URL, "http") + "/ws" }

func closeWith(conn net.Conn, code ws.StatusCode) {
	ws.WriteFrame(conn, ws.NewCloseFrame(ws.NewCloseFrameBody(code, "test")))
	// wait for the client's answer or its close
	wsutil.ReadClientData(conn)
}

func TestCloseCodes(t *testing.T) {
	t.Run("4003 stops", func(t *testing.T) {
		f := newFake(t, func(n int, conn net.Conn) { closeWith(conn, 4003) })
		c, err := heraldclient.Dial(context.Background(), f.url(), heraldclient.Options{Backoff: fast})
		if err != nil {
			t.Fatal(err)
		}
		d := next[heraldclient.Disconnected](t, c)
		if d.Code != 4003 || d.WillReconnect {
			t.Fatalf("%+v", d)
		}
		<-c.Done()
		var ce *heraldclient.CloseError
		if !errors.As(c.Err(), &ce) || ce.Code != 4003 {
			t.Fatalf("Err: %v", c.Err())
		}
	})
	t.Run("4001 refreshes the token", func(t *testing.T) {
		f := newFake(t, func(n int, conn net.Conn) {
			if n == 1 {
				closeWith(conn, 4001)
				return
			}
			wsutil.ReadClientData(conn) // until the client closes
		})
		c, err := heraldclient.Dial(context.Background(), f.url(), heraldclient.Options{
			Token: "old", Backoff: fast,
			RefreshToken: func(context.Context) (string, error) { return "new", nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if d := next[heraldclient.Disconnected](t, c); d.Code != 4001 || !d.WillReconnect || d.Retry != 0 {
			t.Fatalf("%+v", d)
		}
		next[heraldclient.Connected](t, c)
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.auths) != 2 || f.auths[0] != "Bearer old" || f.auths[1] != "Bearer new" {
			t.Fatalf("authorization headers %q", f.auths)
		}
	})
	t.Run("4001 without RefreshToken stops", func(t *testing.T) {
		f := newFake(t, func(n int, conn net.Conn) { closeWith(conn, 4001) })
		c, err := heraldclient.Dial(context.Background(), f.url(), heraldclient.Options{Backoff: fast})
		if err != nil {
			t.Fatal(err)
		}
		<-c.Done()
		if !errors.Is(c.Err(), heraldclient.ErrTokenExpired) {
			t.Fatalf("Err: %v", c.Err())
		}
	})
	for _, code := range []ws.StatusCode{1001, 1008, 1013} {
		t.Run(fmt.Sprintf("%d reconnects", code), func(t *testing.T) {
			f := newFake(t, func(n int, conn net.Conn) {
				if n == 1 {
					closeWith(conn, code)
					return
				}
				wsutil.ReadClientData(conn)
			})
			c, err := heraldclient.Dial(context.Background(), f.url(), heraldclient.Options{Backoff: fast})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if d := next[heraldclient.Disconnected](t, c); d.Code != int(code) || !d.WillReconnect {
				t.Fatalf("%+v", d)
			}
			if !next[heraldclient.Connected](t, c).Reconnected {
				t.Fatal("not reconnected")
			}
		})
	}
	t.Run("1001 with reconnect advice waits as told", func(t *testing.T) {
		const advice = 400 * time.Millisecond
		var closedAt time.Time
		var mu sync.Mutex
		f := newFake(t, func(n int, conn net.Conn) {
			if n == 1 {
				mu.Lock()
				closedAt = time.Now()
				mu.Unlock()
				ws.WriteFrame(conn, ws.NewCloseFrame(ws.NewCloseFrameBody(1001, "server shutting down; reconnect_after_ms=400")))
				wsutil.ReadClientData(conn)
				return
			}
			wsutil.ReadClientData(conn)
		})
		c, err := heraldclient.Dial(context.Background(), f.url(), heraldclient.Options{Backoff: fast})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		d := next[heraldclient.Disconnected](t, c)
		if d.Code != 1001 || !d.WillReconnect || d.Retry < advice || d.Retry >= advice+fast.Min {
			t.Fatalf("%+v, want a retry in [%v, %v)", d, advice, advice+fast.Min)
		}
		next[heraldclient.Connected](t, c)
		mu.Lock()
		defer mu.Unlock()
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.at) != 2 {
			t.Fatalf("%d upgrade requests, want 2", len(f.at))
		}
		if e := f.at[1].Sub(closedAt); e < advice {
			t.Fatalf("reconnected %v after the close, sooner than the advised %v", e, advice)
		}
	})
	t.Run("refused handshake", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "no", http.StatusUnauthorized)
		}))
		defer srv.Close()
		_, err := heraldclient.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", heraldclient.Options{})
		var he *heraldclient.HandshakeError
		if !errors.As(err, &he) || he.Status != 401 {
			t.Fatalf("Dial: %v", err)
		}
	})
}

// TestDedupe: a replayed offset is delivered once.
func TestDedupe(t *testing.T) {
	f := newFake(t, func(n int, conn net.Conn) {
		cmd, _ := wsutil.ReadClientText(conn) // sub with id 1
		_ = cmd
		for _, s := range []string{
			`{"op":"subscribed","channel":"a","offset":0,"epoch":"e","id":1}`,
			`{"channel":"a","offset":1,"data":1}`,
			`{"channel":"a","offset":1,"data":1}`,
			`{"channel":"a","offset":2,"data":2}`,
			`{"channel":"a","offset":1,"data":1}`,
			`{"channel":"a","offset":3,"data":3}`,
		} {
			wsutil.WriteServerText(conn, []byte(s))
		}
		wsutil.ReadClientData(conn)
	})
	ctx := context.Background()
	c, err := heraldclient.Dial(ctx, f.url(), heraldclient.Options{Backoff: fast})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if s, err := c.Subscribe(ctx, "a"); err != nil || s.Epoch != "e" {
		t.Fatalf("%+v %v", s, err)
	}
	for want := uint64(1); want <= 3; want++ {
		m := next[heraldclient.Message](t, c)
		if m.Offset != want || m.Epoch != "e" {
			t.Fatalf("got %+v, want offset %d", m, want)
		}
	}
}

func TestBackoffDelay(t *testing.T) {
	b := heraldclient.Backoff{Min: 10 * time.Millisecond, Max: 80 * time.Millisecond, Factor: 2}
	for n := range 20 {
		limit := min(b.Max, b.Min<<min(n, 10))
		for range 50 {
			if d := b.Delay(n); d < 0 || d >= limit {
				t.Fatalf("Delay(%d) = %v, want [0, %v)", n, d, limit)
			}
		}
	}
}

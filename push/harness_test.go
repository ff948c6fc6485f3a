package push

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/herald-push/herald/auth"
	"github.com/herald-push/herald/hub"
	"github.com/herald-push/herald/internal/wstest"
	"github.com/herald-push/herald/server"
)

// The harness: an App on a real server (the real poller, one loop, on
// loopback), driven by wstest clients, an independent RFC 6455 client.
// Tests wait for frames, never for time.

// testTimeout bounds every wait in this package's tests.
const testTimeout = 10 * time.Second

// testSecret signs the harness's tokens (auth.Sign, HS256).
var testSecret = []byte("push-harness-secret-0123456789abcdef")

// pushNode is an App on a running server.
type pushNode struct {
	hub  *hub.Hub
	app  *App
	srv  *server.Server
	addr string
}

// startPush starts a one-loop push server that lets anonymous clients
// subscribe and publish to every channel and verifies tokens signed with
// testSecret. edit adjusts the options and the server config first; the
// hub is built from hc with the App's Encoder bounded by the output budget
// unless hc has an Encoder of its own.
func startPush(t *testing.T, hc hub.Config, edit func(*Options, *server.Config)) *pushNode {
	t.Helper()
	v, err := auth.NewVerifier(auth.Config{
		HMACSecret:     testSecret,
		AllowAnonymous: true, AnonymousSubscribe: []string{"*"}, AnonymousPublish: []string{"*"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var o Options
	cfg := server.Config{Listen: "127.0.0.1:0", Loops: 1} // zero-valid: every other field its default
	if edit != nil {
		edit(&o, &cfg)
	}
	if hc.Encoder == nil {
		hc.Encoder = Encoder{MaxFrame: max(cfg.WriteBufferLimit, 0)}
	}
	h := hub.New(hc)
	o.Hub, o.Verifier = h, v
	app := New(o)
	srv, err := server.New(cfg, app, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	<-srv.Ready()
	if srv.Addr() == nil {
		t.Fatalf("server did not start: %v", <-done)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	})
	return &pushNode{hub: h, app: app, srv: srv, addr: srv.Addr().String()}
}

// dial connects a client to path (e.g. "/ws?channel=a").
func (n *pushNode) dial(t *testing.T, path string) *wstest.Conn {
	t.Helper()
	return wstest.Dial(t, n.addr, wstest.Options{Path: path})
}

// token signs a token for subject with the given patterns.
func token(t *testing.T, subject string, subscribe, publish []string) string {
	t.Helper()
	tok, err := auth.Sign(testSecret, auth.TokenSpec{Subject: subject, Subscribe: subscribe, Publish: publish, ExpiresAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return url.QueryEscape(tok)
}

// onLoop runs fn on the server's (only) loop and waits for it: whatever
// fn publishes is delivered in one later drain of the loop's mailbox.
func (n *pushNode) onLoop(t *testing.T, fn func()) {
	t.Helper()
	done := make(chan struct{})
	if err := n.srv.Loops()[0].Run(func() { fn(); close(done) }); err != nil {
		t.Fatalf("run: %v", err)
	}
	select {
	case <-done:
	case <-time.After(testTimeout):
		t.Fatal("Run func did not run")
	}
}

// send writes one text command.
func send(c *wstest.Conn, cmd string) {
	c.Send(wstest.Frame{Fin: true, Op: wstest.OpText, Payload: []byte(cmd)})
}

// next reads the next text frame as JSON; a close frame fails the test.
func next(t *testing.T, c *wstest.Conn) map[string]any {
	t.Helper()
	f, err := c.Read(testTimeout)
	// A ping from the server is answered and skipped: these tests are
	// about the protocol's messages.
	for err == nil && (f.Op == wstest.OpPing || f.Op == wstest.OpPong) {
		if f.Op == wstest.OpPing {
			c.Send(wstest.Frame{Fin: true, Op: wstest.OpPong, Payload: f.Payload})
		}
		f, err = c.Read(testTimeout)
	}
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if f.Op == wstest.OpClose {
		t.Fatalf("closed: %d %q", closeCode(f), f.Payload[min(2, len(f.Payload)):])
	}
	var m map[string]any
	if err := json.Unmarshal(f.Payload, &m); err != nil {
		t.Fatalf("frame %q: %v", f.Payload, err)
	}
	return m
}

// expect reads the next frame and checks it holds every field of want, a
// JSON object ("{}" matches any object).
func expect(t *testing.T, c *wstest.Conn, want string) map[string]any {
	t.Helper()
	got := next(t, c)
	var w map[string]any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want %q: %v", want, err)
	}
	for k, v := range w {
		if !reflect.DeepEqual(got[k], v) {
			t.Fatalf("got %v, want the fields of %s (%s: %v)", got, want, k, got[k])
		}
	}
	return got
}

// closeCode is the status code of a close frame.
func closeCode(f wstest.Frame) int {
	if len(f.Payload) < 2 {
		return 0
	}
	return int(f.Payload[0])<<8 | int(f.Payload[1])
}

// readClose reads until a close frame and returns its code and reason and
// how many frames came before it.
func readClose(t *testing.T, c *wstest.Conn) (code int, reason string, before int) {
	t.Helper()
	for {
		f, err := c.Read(testTimeout)
		if err != nil {
			t.Fatalf("read: %v (no close frame)", err)
		}
		if f.Op == wstest.OpClose {
			return closeCode(f), string(f.Payload[min(2, len(f.Payload)):]), before
		}
		before++
	}
}

// goSubmitter runs each task on a goroutine of its own.
type goSubmitter struct{}

func (goSubmitter) Submit(_ uint64, task func()) error { go task(); return nil }

// sendHandler answers every application message with a Send: of size
// bytes of JSON string when size > 0, else of the message itself.
type sendHandler struct{ size int }

func (h sendHandler) OnMessage(s *Session, data []byte) {
	if h.size == 0 {
		s.Send(data)
		return
	}
	s.Send([]byte(`"` + strings.Repeat("y", h.size) + `"`))
}

// fakeInterest is an Interest that holds every subscription back until the
// test lets it through, as a broker does until its copy of a channel is
// current.
type fakeInterest struct {
	acquired chan acquisition
	released chan string
}

// acquisition is one Acquire call.
type acquisition struct {
	channel string
	since   *hub.Position
	ready   func()
}

func newFakeInterest() *fakeInterest {
	return &fakeInterest{acquired: make(chan acquisition, 64), released: make(chan string, 64)}
}

func (f *fakeInterest) Acquire(channel string, since *hub.Position, ready func()) bool {
	var s *hub.Position
	if since != nil {
		p := *since
		s = &p
	}
	f.acquired <- acquisition{channel: strings.Clone(channel), since: s, ready: ready}
	return false
}

func (f *fakeInterest) Release(channel string) { f.released <- channel }

// nextAcquire waits for the next Acquire.
func (f *fakeInterest) nextAcquire(t *testing.T) acquisition {
	t.Helper()
	select {
	case a := <-f.acquired:
		return a
	case <-time.After(testTimeout):
		t.Fatal("no Acquire")
		return acquisition{}
	}
}

// nextRelease waits for the next Release and checks its channel.
func (f *fakeInterest) nextRelease(t *testing.T, want string) {
	t.Helper()
	select {
	case ch := <-f.released:
		if ch != want {
			t.Fatalf("released %q, want %q", ch, want)
		}
	case <-time.After(testTimeout):
		t.Fatalf("no Release of %q", want)
	}
}

// publish publishes data to ch on n's hub or fails the test.
func (n *pushNode) publish(t *testing.T, ch, data string) *hub.Message {
	t.Helper()
	m, err := n.hub.Publish(ch, []byte(data))
	if err != nil {
		t.Fatalf("publish to %s: %v", ch, err)
	}
	return m
}

// sinceParam is the URL form of a position: channel:offset:epoch.
func sinceParam(ch string, p hub.Position) string {
	return url.QueryEscape(fmt.Sprintf("%s:%d:%s", ch, p.Offset, p.Epoch))
}

// waitFor polls cond until it holds, failing the test after testTimeout:
// for state the protocol exposes no event for (a connection's close
// reaching the server).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

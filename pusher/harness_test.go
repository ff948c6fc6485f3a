package pusher

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/herald-push/herald/hub"
	"github.com/herald-push/herald/internal/wstest"
	"github.com/herald-push/herald/server"
)

// The harness: the Protocol behind a server.Mux (echo on every other
// path) on a real server (the real poller, one loop, on loopback), driven
// by wstest clients. Tests wait for frames, never for time.

const testTimeout = 10 * time.Second

var testApp = App{ID: "42", Key: "test-key", Secret: "test-secret"}

type node struct {
	p    *Protocol
	hub  *hub.Hub
	srv  *server.Server
	addr string
}

func start(t *testing.T, edit func(*Options, *server.Config)) *node {
	t.Helper()
	o := Options{Apps: []App{testApp}}
	cfg := server.Config{Listen: "127.0.0.1:0", Loops: 1}
	if edit != nil {
		edit(&o, &cfg)
	}
	h := hub.New(hub.Config{HistorySize: 16, Encoder: Encoder{MaxFrame: cfg.WriteBufferLimit}})
	o.Hub = h
	p := New(o)
	srv, err := server.New(cfg, server.NewMux(server.EchoApp{}, server.Route{Prefix: "/app/", App: p}), slog.New(slog.NewTextHandler(io.Discard, nil)))
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
		_ = p.Close(ctx) // posts the webhooks still queued
	})
	return &node{p: p, hub: h, srv: srv, addr: srv.Addr().String()}
}

// client is one Pusher connection and its socket id.
type client struct {
	t   *testing.T
	c   *wstest.Conn
	sid string
}

var socketIDForm = regexp.MustCompile(`^\d+\.\d+$`)

// connect opens /app/{key} and reads pusher:connection_established.
func (n *node) connect(t *testing.T) *client {
	t.Helper()
	c := &client{t: t, c: wstest.Dial(t, n.addr, wstest.Options{Path: "/app/" + testApp.Key + "?protocol=7&client=js&version=8.4.0"})}
	m := c.expect(`{"event":"pusher:connection_established"}`)
	var d struct {
		SocketID        string `json:"socket_id"`
		ActivityTimeout int    `json:"activity_timeout"`
	}
	if err := json.Unmarshal([]byte(m["data"].(string)), &d); err != nil || !socketIDForm.MatchString(d.SocketID) || d.ActivityTimeout != 120 {
		t.Fatalf("connection_established %v: %+v %v", m, d, err)
	}
	c.sid = d.SocketID
	return c
}

func (c *client) send(v any) {
	b, _ := json.Marshal(v)
	c.c.Send(wstest.Frame{Fin: true, Op: wstest.OpText, Payload: b})
}

func (c *client) next() map[string]any {
	c.t.Helper()
	f, err := c.c.Read(testTimeout)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	if f.Op == wstest.OpClose {
		c.t.Fatalf("closed: %d %q", closeCode(f), f.Payload[min(2, len(f.Payload)):])
	}
	var m map[string]any
	if err := json.Unmarshal(f.Payload, &m); err != nil {
		c.t.Fatalf("frame %q: %v", f.Payload, err)
	}
	return m
}

// expect reads the next frame and checks it has every field of want.
func (c *client) expect(want string) map[string]any {
	c.t.Helper()
	got := c.next()
	var w map[string]any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		c.t.Fatalf("want %q: %v", want, err)
	}
	for k, v := range w {
		if !reflect.DeepEqual(got[k], v) {
			c.t.Fatalf("got %v, want the fields of %s (%s: %v)", got, want, k, got[k])
		}
	}
	return got
}

// expectClose reads until a close frame and checks its code.
func (c *client) expectClose(code int) {
	c.t.Helper()
	for {
		f, err := c.c.Read(testTimeout)
		if err != nil {
			c.t.Fatalf("read: %v (no close frame)", err)
		}
		if f.Op == wstest.OpClose {
			if got := closeCode(f); got != code {
				c.t.Fatalf("close %d %q, want %d", got, f.Payload[min(2, len(f.Payload)):], code)
			}
			return
		}
	}
}

func closeCode(f wstest.Frame) int {
	if len(f.Payload) < 2 {
		return 0
	}
	return int(f.Payload[0])<<8 | int(f.Payload[1])
}

// subscribe sends pusher:subscribe with the right auth for ch (and
// channelData for presence).
func (c *client) subscribe(ch, channelData string) {
	d := map[string]any{"channel": ch}
	switch {
	case isPresence(ch):
		d["auth"] = testApp.Key + ":" + sign(testApp.Secret, c.sid+":"+ch+":"+channelData)
		d["channel_data"] = channelData
	case isPrivate(ch):
		d["auth"] = testApp.Key + ":" + sign(testApp.Secret, c.sid+":"+ch)
	}
	c.send(map[string]any{"event": "pusher:subscribe", "data": d})
}

// subscribed subscribes and waits for subscription_succeeded; it returns
// its data.
func (c *client) subscribed(ch, channelData string) map[string]any {
	c.t.Helper()
	c.subscribe(ch, channelData)
	m := c.expect(fmt.Sprintf(`{"event":"pusher_internal:subscription_succeeded","channel":%q}`, ch))
	var d map[string]any
	if err := json.Unmarshal([]byte(m["data"].(string)), &d); err != nil {
		c.t.Fatalf("subscription_succeeded data %v: %v", m["data"], err)
	}
	return d
}

// ping round-trips a pusher:ping: everything sent before it was handled.
func (c *client) ping() {
	c.t.Helper()
	c.send(map[string]any{"event": "pusher:ping", "data": map[string]any{}})
	c.expect(`{"event":"pusher:pong"}`)
}

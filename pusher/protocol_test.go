package pusher

import (
	"context"
	"errors"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/herald-push/herald/internal/wstest"
	"github.com/herald-push/herald/server"
)

func TestConnectPingAndRouting(t *testing.T) {
	n := start(t, nil)
	c := n.connect(t)
	c.ping()
	c.send(map[string]any{"event": "pusher:bogus"})
	c.expect(`{"event":"pusher:error"}`)
	// Every other path goes to the Mux's fallback (echo here).
	e := wstest.Dial(t, n.addr, wstest.Options{Path: "/ws"})
	e.Send(wstest.Frame{Fin: true, Op: wstest.OpText, Payload: []byte("hi")})
	if f, err := e.Read(testTimeout); err != nil || string(f.Payload) != "hi" {
		t.Fatalf("echo: %q %v", f.Payload, err)
	}
}

func TestUnknownAppAndProtocol(t *testing.T) {
	n := start(t, nil)
	for path, code := range map[string]int{
		"/app/nope?protocol=7":        CodeUnknownApp,
		"/app/test-key?protocol=3":    CodeBadProtocol,
		"/app/test-key?protocol=oops": CodeBadProtocol,
	} {
		c := &client{t: t, c: wstest.Dial(t, n.addr, wstest.Options{Path: path})}
		m := c.expect(`{"event":"pusher:error"}`)
		if d := m["data"].(map[string]any); d["code"] != float64(code) {
			t.Errorf("%s: error %v, want code %d", path, m, code)
		}
		c.expectClose(code)
	}
}

func TestPublicTriggerExcludesSocket(t *testing.T) {
	n := start(t, nil)
	a, b := n.connect(t), n.connect(t)
	a.subscribed("news", "")
	b.subscribed("news", "")
	if err := n.p.Trigger(testApp.ID, Event{Name: "flash", Channels: []string{"news", "other"}, Data: `{"x":1}`, SocketID: a.sid}); err != nil {
		t.Fatal(err)
	}
	b.expect(`{"event":"flash","channel":"news","data":"{\"x\":1}"}`)
	if err := n.p.Trigger(testApp.ID, Event{Name: "second", Channels: []string{"news"}, Data: "plain"}); err != nil {
		t.Fatal(err)
	}
	a.expect(`{"event":"second","data":"plain"}`) // a missed "flash"
	b.expect(`{"event":"second"}`)

	chs, err := n.p.Channels(testApp.ID, "")
	if err != nil || !reflect.DeepEqual(chs, map[string]ChannelInfo{"news": {Occupied: true, SubscriptionCount: 2}}) {
		t.Fatalf("Channels: %v %v", chs, err)
	}
	if ci, _ := n.p.Channel(testApp.ID, "other"); ci.Occupied {
		t.Errorf("other: %+v", ci)
	}
	a.send(map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": "news"}})
	a.ping()
	if ci, _ := n.p.Channel(testApp.ID, "news"); ci.SubscriptionCount != 1 {
		t.Errorf("after unsubscribe: %+v", ci)
	}
	for _, ev := range []Event{
		{Name: "x", Channels: []string{"bad name"}},
		{Name: "", Channels: []string{"a"}},
		{Name: "x", Channels: nil},
		{Name: "x", Channels: []string{"a"}, SocketID: "nope"},
	} {
		if err := n.p.Trigger(testApp.ID, ev); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%+v: %v, want ErrBadRequest", ev, err)
		}
	}
	if err := n.p.Trigger("nope", Event{Name: "x", Channels: []string{"a"}}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown app: %v", err)
	}
}

func TestPrivateAuthAndClientEvents(t *testing.T) {
	n := start(t, nil)
	a, b := n.connect(t), n.connect(t)
	a.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "private-room", "auth": testApp.Key + ":deadbeef"}})
	a.expect(`{"event":"pusher:subscription_error","channel":"private-room"}`)
	a.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": "private-room"}})
	a.expect(`{"event":"pusher:subscription_error"}`)
	a.subscribed("private-room", "")
	b.subscribed("private-room", "")
	a.send(map[string]any{"event": "client-typing", "channel": "private-room", "data": map[string]any{"who": "a"}})
	b.expect(`{"event":"client-typing","channel":"private-room","data":{"who":"a"}}`)
	a.ping() // a did not get its own event back

	b.subscribed("public", "")
	b.send(map[string]any{"event": "client-x", "channel": "public", "data": "{}"})
	b.expect(`{"event":"pusher:error"}`)
	b.send(map[string]any{"event": "client-x", "channel": "private-elsewhere", "data": "{}"})
	b.expect(`{"event":"pusher:error"}`)

	// Encrypted channels: auth like private ones, payload untouched, no
	// client events.
	a.subscribed("private-encrypted-vault", "")
	a.send(map[string]any{"event": "client-x", "channel": "private-encrypted-vault", "data": "{}"})
	a.expect(`{"event":"pusher:error"}`)
	sealed := `{"nonce":"bm9uY2U=","ciphertext":"c2VjcmV0"}`
	if err := n.p.Trigger(testApp.ID, Event{Name: "e", Channels: []string{"private-encrypted-vault"}, Data: sealed}); err != nil {
		t.Fatal(err)
	}
	if m := a.expect(`{"event":"e"}`); m["data"] != sealed {
		t.Errorf("encrypted payload changed: %v", m["data"])
	}
}

func TestPresence(t *testing.T) {
	n := start(t, nil)
	const ch = "presence-lobby"
	alice1, alice2, bob := n.connect(t), n.connect(t), n.connect(t)
	d := alice1.subscribed(ch, `{"user_id":"alice","user_info":{"name":"Alice"}}`)
	want := map[string]any{"presence": map[string]any{"ids": []any{"alice"}, "hash": map[string]any{"alice": map[string]any{"name": "Alice"}}, "count": float64(1)}}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("presence data %v, want %v", d, want)
	}
	alice2.subscribed(ch, `{"user_id":"alice","user_info":{"name":"Alice"}}`)
	alice1.ping() // no member_added for a second connection of alice
	d = bob.subscribed(ch, `{"user_id":7}`)
	if p := d["presence"].(map[string]any); p["count"] != float64(2) {
		t.Fatalf("bob sees %v", d)
	}
	alice1.expect(`{"event":"pusher_internal:member_added","channel":"presence-lobby","data":"{\"user_id\":\"7\",\"user_info\":null}"}`)
	alice2.expect(`{"event":"pusher_internal:member_added"}`)
	users, _ := n.p.Users(testApp.ID, ch)
	sort.Strings(users)
	if !reflect.DeepEqual(users, []string{"7", "alice"}) {
		t.Errorf("Users: %v", users)
	}
	if ci, _ := n.p.Channel(testApp.ID, ch); ci.UserCount != 2 || ci.SubscriptionCount != 3 {
		t.Errorf("Channel: %+v", ci)
	}
	bob.send(map[string]any{"event": "client-hi", "channel": ch, "data": "{}"})
	alice1.expect(`{"event":"client-hi","user_id":"7"}`)
	alice2.expect(`{"event":"client-hi"}`)

	alice1.c.NC.Close()
	bob.ping()
	alice2.send(map[string]any{"event": "pusher:unsubscribe", "data": map[string]any{"channel": ch}})
	bob.expect(`{"event":"pusher_internal:member_removed","channel":"presence-lobby","data":"{\"user_id\":\"alice\"}"}`)

	bad := n.connect(t)
	bad.send(map[string]any{"event": "pusher:subscribe", "data": map[string]any{"channel": ch, "auth": testApp.Key + ":" + sign(testApp.Secret, bad.sid+":"+ch), "channel_data": `{"user_id":"x"}`}})
	bad.expect(`{"event":"pusher:subscription_error"}`)
}

func TestCacheChannel(t *testing.T) {
	n := start(t, nil)
	a := n.connect(t)
	a.subscribed("cache-price", "")
	a.expect(`{"event":"pusher:cache_miss","channel":"cache-price"}`)
	for _, v := range []string{"1", "2"} {
		if err := n.p.Trigger(testApp.ID, Event{Name: "tick", Channels: []string{"cache-price"}, Data: v}); err != nil {
			t.Fatal(err)
		}
		a.expect(`{"event":"tick","data":"` + v + `"}`)
	}
	b := n.connect(t)
	b.subscribed("cache-price", "")
	b.expect(`{"event":"tick","channel":"cache-price","data":"2"}`)
}

func TestSigninAndTerminate(t *testing.T) {
	n := start(t, nil)
	c := n.connect(t)
	ud := `{"id":"u1","name":"U"}`
	c.send(map[string]any{"event": "pusher:signin", "data": map[string]any{"auth": testApp.Key + ":00", "user_data": ud}})
	if m := c.expect(`{"event":"pusher:error"}`); m["data"].(map[string]any)["code"] != float64(CodeUnauthorized) {
		t.Fatalf("bad signin: %v", m)
	}
	c.subscribe("#server-to-user-u1", "")
	c.expect(`{"event":"pusher:subscription_error"}`)
	c.send(map[string]any{"event": "pusher:signin", "data": map[string]any{"auth": testApp.Key + ":" + sign(testApp.Secret, c.sid+"::user::"+ud), "user_data": ud}})
	c.expect(`{"event":"pusher:signin_success","data":"{\"user_data\":\"{\\\"id\\\":\\\"u1\\\",\\\"name\\\":\\\"U\\\"}\"}"}`)
	c.subscribed("#server-to-user-u1", "")
	c.subscribe("#server-to-user-u2", "")
	c.expect(`{"event":"pusher:subscription_error"}`)
	if err := n.p.TerminateUser(testApp.ID, "u1"); err != nil {
		t.Fatal(err)
	}
	c.expect(`{"event":"pusher:error"}`)
	c.expectClose(CodeUnauthorized)
}

func TestLimits(t *testing.T) {
	n := start(t, func(o *Options, _ *server.Config) { o.MaxSubscriptions = 1; o.CommandRate = 5 })
	c := n.connect(t)
	c.subscribed("one", "")
	c.subscribe("two", "")
	c.expect(`{"event":"pusher:subscription_error","channel":"two","data":{"type":"LimitReached","error":"Too many subscriptions on this connection (limit 1)","status":429}}`)
	for range 20 {
		c.send(map[string]any{"event": "pusher:ping", "data": map[string]any{}})
	}
	c.expectClose(CodeRateLimited)
}

func TestDrainAdvisesReconnect(t *testing.T) {
	n := start(t, nil)
	c := n.connect(t)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.srv.Shutdown(ctx)
	}()
	c.expectClose(CodeReconnect)
}

func TestSocketID(t *testing.T) {
	p := New(Options{Apps: []App{testApp}})
	a := p.byID[testApp.ID]
	n := p.node | 12345
	sid := p.formatSocketID(a, n)
	if id, ok := p.parseSocketID(a, sid); !ok || id != n {
		t.Fatalf("%s: %d %v", sid, id, ok)
	}
	if id, ok := p.parseSocketID(a, "12345.1"); !ok || id != 0 {
		t.Errorf("forged tag: %d %v", id, ok)
	}
	// Another node (another process) reads the same id, and numbers its
	// own connections apart.
	q := New(Options{Apps: []App{testApp}, Node: 7})
	if id, ok := q.parseSocketID(q.byID[testApp.ID], sid); !ok || id != n {
		t.Errorf("another node reads %s as %d %v", sid, id, ok)
	}
	if q.node == p.node || q.node != 7<<connBits {
		t.Errorf("node numbers %x and %x", p.node, q.node)
	}
	if err := Validate([]App{testApp, testApp}); err == nil {
		t.Error("duplicate apps accepted")
	}
}

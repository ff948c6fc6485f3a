package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/internal/wstest"
)

func TestCounterApply(t *testing.T) {
	t.Parallel()
	c := newCounter()
	cases := []struct {
		name        string
		action      string
		wantValue   int64
		wantChanged bool
		wantErr     bool
	}{
		{name: "get at start", action: "get", wantValue: 0},
		{name: "incr", action: "incr", wantValue: 1, wantChanged: true},
		{name: "incr again", action: "incr", wantValue: 2, wantChanged: true},
		{name: "decr", action: "decr", wantValue: 1, wantChanged: true},
		{name: "unknown", action: "reset", wantValue: 1, wantErr: true},
		{name: "empty", action: "", wantValue: 1, wantErr: true},
		{name: "get", action: "get", wantValue: 1},
	}
	for _, tc := range cases { // in order: each case starts where the last ended
		v, changed, err := c.apply(tc.action)
		if v != tc.wantValue || changed != tc.wantChanged || (err != nil) != tc.wantErr {
			t.Fatalf("%s: apply(%q) = %d, %v, %v; want %d, %v, error %v", tc.name, tc.action, v, changed, err, tc.wantValue, tc.wantChanged, tc.wantErr)
		}
	}
}

func TestValueJSON(t *testing.T) {
	t.Parallel()
	for _, v := range []int64{0, 7, -12, 1 << 40} {
		var got struct{ Value int64 }
		if err := json.Unmarshal(valueJSON(v), &got); err != nil || got.Value != v {
			t.Fatalf("valueJSON(%d) = %s: %v", v, valueJSON(v), err)
		}
	}
}

func TestPageHandlerBeforeListening(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		listen     string
		wantStatus int
		wantPort   string
	}{
		{name: "all interfaces", listen: ":8080", wantStatus: http.StatusOK, wantPort: "8080"},
		{name: "loopback", listen: "127.0.0.1:9000", wantStatus: http.StatusOK, wantPort: "9000"},
		{name: "no port", listen: "localhost", wantStatus: http.StatusInternalServerError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := herald.DefaultConfig()
			cfg.Listen = tc.listen
			var n atomic.Pointer[herald.Node]
			rec := httptest.NewRecorder()
			pageHandler(cfg, &n).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", rec.Code, tc.wantStatus, rec.Body)
			}
			if tc.wantPort != "" && !strings.Contains(rec.Body.String(), `<meta name="herald-ws-port" content="`+tc.wantPort+`">`) {
				t.Fatalf("page does not carry port %s", tc.wantPort)
			}
		})
	}
}

// startNode runs a node with the demo on loopback ports until the test ends.
func startNode(t *testing.T) *herald.Node {
	t.Helper()
	cfg := herald.DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.APIListen = "127.0.0.1:0"
	cfg.AllowAnonymous = true
	cfg.Demo = true
	cfg.Loops = 2
	cfg.DrainTimeout = 0
	d := Configure(&cfg)
	n, err := herald.New(cfg)
	if err != nil {
		t.Fatalf("herald.New: %v", err)
	}
	d.Attach(n)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("node did not stop within 10s")
		}
	})
	select {
	case <-n.Ready():
	case err := <-done:
		t.Fatalf("node stopped: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("node not ready within 10s")
	}
	return n
}

// frame is what the demo's client sees: publications and replies.
type frame struct {
	Op      string          `json:"op"`
	Channel string          `json:"channel"`
	Offset  uint64          `json:"offset"`
	Data    json.RawMessage `json:"data"`
}

// dial connects a client subscribed to the counter and waits for the
// subscription.
func dial(t *testing.T, n *herald.Node) *wstest.Conn {
	t.Helper()
	c := wstest.Dial(t, n.Addr().String(), wstest.Options{Path: "/ws?channel=" + CounterChannel})
	if f := read(t, c); f.Op != "subscribed" {
		t.Fatalf("first frame %+v, want subscribed", f)
	}
	return c
}

// read returns the next text message, answering pings on the way.
func read(t *testing.T, c *wstest.Conn) frame {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, err := c.Read(time.Until(deadline))
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		switch {
		case m.Op == wstest.OpPing:
			c.Send(wstest.Frame{Fin: true, Op: wstest.OpPong, Payload: m.Payload})
			continue
		case m.Op != wstest.OpText || !m.Fin:
			t.Fatalf("read: frame op %d fin %v, want a whole text message", m.Op, m.Fin)
		}
		var f frame
		if err := json.Unmarshal(m.Payload, &f); err != nil {
			t.Fatalf("read: %v in %q", err, m.Payload)
		}
		return f
	}
}

// msg is the frame carrying action to the counter.
func msg(action string) []byte {
	b, _ := json.Marshal(map[string]any{"op": "msg", "data": map[string]string{"action": action}})
	return wstest.Encode(wstest.Frame{Fin: true, Op: wstest.OpText, Payload: b})
}

func send(t *testing.T, c *wstest.Conn, action string) {
	t.Helper()
	c.NC.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.NC.Write(msg(action)); err != nil {
		t.Fatalf("send %s: %v", action, err)
	}
}

func TestCounterOverWebSocket(t *testing.T) {
	n := startNode(t)
	a, b := dial(t, n), dial(t, n)

	steps := []struct {
		name string
		from *wstest.Conn
		act  string
		// wantPub is the value both clients get published; wantReply the
		// value or error only the sender gets.
		wantPub   string
		wantReply string
	}{
		{name: "get at start", from: a, act: "get", wantReply: `{"value":0}`},
		{name: "incr by a", from: a, act: "incr", wantPub: `{"value":1}`},
		{name: "incr by b", from: b, act: "incr", wantPub: `{"value":2}`},
		{name: "decr by a", from: a, act: "decr", wantPub: `{"value":1}`},
		{name: "get by b", from: b, act: "get", wantReply: `{"value":1}`},
		{name: "bad action", from: b, act: "explode", wantReply: `{"error":"demo: unknown action \"explode\" (want incr, decr or get)"}`},
	}
	for _, s := range steps {
		send(t, s.from, s.act)
		if s.wantPub != "" {
			for i, c := range []*wstest.Conn{a, b} {
				f := read(t, c)
				if f.Channel != CounterChannel || string(f.Data) != s.wantPub {
					t.Fatalf("%s: client %d got %+v (%s), want %s on %s", s.name, i, f, f.Data, s.wantPub, CounterChannel)
				}
			}
			continue
		}
		f := read(t, s.from)
		if f.Op != "msg" || string(f.Data) != s.wantReply {
			t.Fatalf("%s: got %+v (%s), want msg %s", s.name, f, f.Data, s.wantReply)
		}
	}
}

// TestCounterConcurrentClients increments from several clients at once:
// the final value counts every click, and the values published follow the
// channel's offsets.
func TestCounterConcurrentClients(t *testing.T) {
	n := startNode(t)
	watcher := dial(t, n)
	const clients, clicks = 4, 25
	var wg sync.WaitGroup
	for range clients {
		c := dial(t, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range clicks {
				if _, err := c.NC.Write(msg("incr")); err != nil {
					t.Errorf("send: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for i := 1; i <= clients*clicks; i++ {
		f := read(t, watcher)
		if want := fmt.Sprintf(`{"value":%d}`, f.Offset); string(f.Data) != want {
			t.Fatalf("offset %d carried %s, want %s", f.Offset, f.Data, want)
		}
		if f.Offset != uint64(i) {
			t.Fatalf("message %d has offset %d", i, f.Offset)
		}
	}
}

func TestNodeServesPageAndScript(t *testing.T) {
	n := startNode(t)
	_, wsPort, _ := net.SplitHostPort(n.Addr().String())
	cases := []struct {
		path     string
		wantType string
		want     string
	}{
		{path: "/", wantType: "text/html; charset=utf-8", want: `<meta name="herald-ws-port" content="` + wsPort + `">`},
		{path: "/herald.js", wantType: "text/javascript; charset=utf-8", want: "class Herald"},
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			resp, err := http.Get("http://" + n.APIAddr().String() + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != tc.wantType {
				t.Fatalf("GET %s: %s %q", tc.path, resp.Status, resp.Header.Get("Content-Type"))
			}
			if !strings.Contains(string(body), tc.want) {
				t.Fatalf("GET %s: body lacks %q", tc.path, tc.want)
			}
		})
	}
}

package push

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-push/herald/hub"
	"github.com/herald-push/herald/server"
)

// event is one dispatched Server-Sent Event as a client parses it.
type event struct {
	id, typ, data string
	retry         string
}

// sseClient reads an event stream as EventSource does (comments skipped,
// data lines joined with "\n", id kept across events).
type sseClient struct {
	t      *testing.T
	br     *bufio.Reader
	nc     net.Conn
	lastID string
	resp   *http.Response
}

func (n *pushNode) stream(t *testing.T, target string, header ...string) *sseClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", n.addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(testTimeout))
	req := "GET " + target + " HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
	for _, h := range header {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(nc, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return &sseClient{t: t, br: br, nc: nc, resp: resp}
}

// next returns the next event (a retry-only block counts as one, its data
// empty).
func (c *sseClient) next() event {
	c.t.Helper()
	var ev event
	var data []string
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if data == nil && ev.retry == "" && ev.id == "" {
				continue
			}
			ev.data = strings.Join(data, "\n")
			if ev.id != "" {
				c.lastID = ev.id
			}
			return ev
		}
		if line[0] == ':' {
			continue
		}
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimPrefix(v, " ")
		switch k {
		case "id":
			ev.id = v
		case "event":
			ev.typ = v
		case "data":
			data = append(data, v)
		case "retry":
			ev.retry = v
		}
	}
}

// message reads the next event, which must be a message, and returns its
// envelope.
func (c *sseClient) message() (map[string]any, event) {
	c.t.Helper()
	ev := c.next()
	if ev.typ != "message" {
		c.t.Fatalf("event %+v, want a message", ev)
	}
	var env map[string]any
	if err := json.Unmarshal([]byte(ev.data), &env); err != nil {
		c.t.Fatalf("data %q: %v", ev.data, err)
	}
	return env, ev
}

func TestStreamLiveAndResume(t *testing.T) {
	n := startPush(t, hub.Config{HistorySize: 100}, nil)
	c := n.stream(t, "/sse?channel=a&channel=b")
	if c.resp.StatusCode != 200 || c.resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("response %d %v", c.resp.StatusCode, c.resp.Header)
	}
	// The padding comment comes first, then the retry advice.
	first, _ := c.br.Peek(streamPadding + 1)
	if first[0] != ':' || strings.TrimSpace(string(first[1:])) != "" {
		t.Fatalf("no padding comment: %q", first[:16])
	}
	if ev := c.next(); ev.retry != "3000" {
		t.Fatalf("first event %+v, want retry: 3000", ev)
	}
	waitFor(t, "subscriptions", func() bool { return n.hub.Stats().Subscriptions == 2 })
	ma := n.publish(t, "a", `{"n":1}`)
	env, ev := c.message()
	if env["channel"] != "a" || env["offset"] != 1.0 || env["data"].(map[string]any)["n"] != 1.0 {
		t.Fatalf("envelope %v", env)
	}
	if !strings.Contains(ev.id, "a:1:"+ma.Epoch) {
		t.Fatalf("id %q", ev.id)
	}
	n.publish(t, "b", "{\n  \"multi\": \"line\"\n}")
	env, ev = c.message()
	if env["channel"] != "b" || env["data"].(map[string]any)["multi"] != "line" {
		t.Fatalf("envelope %v", env)
	}
	if len(strings.Fields(ev.id)) != 2 {
		t.Fatalf("id %q does not carry both channels", ev.id)
	}
	last := c.lastID
	_ = c.nc.Close()
	waitFor(t, "the stream's close", func() bool { return n.hub.Stats().Subscriptions == 0 })

	// Missed while away: two of a, one of b.
	n.publish(t, "a", `"a2"`)
	n.publish(t, "b", `"b2"`)
	n.publish(t, "a", `"a3"`)
	c = n.stream(t, "/sse?channel=a&channel=b", "Last-Event-ID: "+last)
	c.next() // retry
	got := map[string][]any{}
	for range 3 {
		env, _ := c.message()
		got[env["channel"].(string)] = append(got[env["channel"].(string)], env["data"])
	}
	if strings.Join(anyStrings(got["a"]), ",") != "a2,a3" || strings.Join(anyStrings(got["b"]), ",") != "b2" {
		t.Fatalf("recovered %v", got)
	}
	n.publish(t, "b", `"b3"`)
	if env, _ := c.message(); env["data"] != "b3" {
		t.Fatalf("live after recovery: %v", env)
	}
	// The polyfill's query parameter resumes the same.
	c = n.stream(t, "/sse?channel=a&channel=b&lastEventId="+strings.ReplaceAll(c.lastID, " ", "%20"))
	c.next()
	n.publish(t, "a", `"a4"`)
	if env, _ := c.message(); env["data"] != "a4" {
		t.Fatalf("lastEventId: %v, want exactly a4", env)
	}
}

func anyStrings(v []any) []string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i], _ = x.(string)
	}
	return out
}

func TestStreamNotRecovered(t *testing.T) {
	n := startPush(t, hub.Config{HistorySize: 100}, nil)
	n.publish(t, "a", `1`)
	c := n.stream(t, "/sse?channel=a", "Last-Event-ID: a:1:gone")
	c.next()
	ev := c.next()
	if ev.typ != "recovered" {
		t.Fatalf("event %+v, want recovered", ev)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(ev.data), &r); err != nil || r["channel"] != "a" || r["recovered"] != false {
		t.Fatalf("recovered event %q", ev.data)
	}
	if !strings.HasPrefix(ev.id, "a:1:") || strings.HasSuffix(ev.id, ":gone") {
		t.Fatalf("id %q, want the channel's new position", ev.id)
	}
	n.publish(t, "a", `2`)
	if env, _ := c.message(); env["offset"] != 2.0 {
		t.Fatalf("live %v", env)
	}
}

func TestStreamRefusalsAndErrors(t *testing.T) {
	n := startPush(t, hub.Config{}, nil)
	c := n.stream(t, "/sse?token=bad")
	if c.resp.StatusCode != 401 {
		t.Fatalf("bad token: %d", c.resp.StatusCode)
	}
	tok := token(t, "alice", []string{"news"}, nil)
	c = n.stream(t, "/sse?channel=secret&channel=news", "Authorization: Bearer "+unescapeToken(tok))
	if c.resp.StatusCode != 200 {
		t.Fatalf("status %d", c.resp.StatusCode)
	}
	c.next()
	ev := c.next()
	if ev.typ != "error" || !strings.Contains(ev.data, `"forbidden"`) || !strings.Contains(ev.data, "secret") {
		t.Fatalf("event %+v, want the forbidden error", ev)
	}
	waitFor(t, "subscriptions", func() bool { return n.hub.Stats().Subscriptions == 2 })
	m := n.publish(t, "user:alice", `"hi"`)
	_, ev = c.message()
	if !strings.Contains(ev.id, "user:alice:1:"+m.Epoch) {
		t.Fatalf("id %q lacks the personal channel", ev.id)
	}
}

func unescapeToken(s string) string { return strings.ReplaceAll(s, "%3D", "=") }

func TestStreamSlowConsumer(t *testing.T) {
	n := startPush(t, hub.Config{}, func(_ *Options, cfg *server.Config) { cfg.WriteBufferLimit = 8192 })
	c := n.stream(t, "/sse?channel=a")
	waitFor(t, "subscription", func() bool { return n.hub.Stats().Subscriptions == 1 })
	// The client reads nothing: the kernel's buffers fill, then the
	// budget, and the slow-consumer policy closes the stream.
	big := `"` + strings.Repeat("x", 4000) + `"`
	for n.app.Stats().SlowClosed == 0 {
		n.publish(t, "a", big)
	}
	if _, err := io.ReadAll(c.br); err != nil {
		t.Fatalf("read to the end: %v", err)
	}
}

func TestStreamEventShared(t *testing.T) {
	m := &hub.Message{Channel: "c", Offset: 7, Data: []byte("{\r\n\"k\":1}")}
	Encoder{}.Encode(m, noteJSON|noteUTF8)
	f := framesOf(m)
	a, b := f.streamEvent(), f.streamEvent()
	if a != b {
		t.Fatal("the event is built twice")
	}
	want := "event: message\ndata: {\"channel\":\"c\",\"offset\":7,\"data\":{\ndata: \"k\":1}}\n\n"
	if string(a.Bytes()) != want {
		t.Fatalf("event %q, want %q", a.Bytes(), want)
	}
}

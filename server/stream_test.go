package server

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-push/herald/codec"
)

// streamer is a recorder that also serves event streams at /events.
type streamer struct{ *recorder }

func (streamer) AcceptStream(_ *Conn, req *codec.Request) (bool, error) {
	switch req.Path {
	case "/events":
		return true, nil
	case "/forbidden":
		return false, &codec.HandshakeError{Status: 401, Reason: "no token"}
	}
	return false, nil
}

// openStream sends a plain GET of path and reads the 200's header.
func openStream(t *testing.T, s *Server, path string) (*bufio.Reader, *http.Response, func([]byte)) {
	t.Helper()
	nc := dialRaw(t, s)
	if _, err := io.WriteString(nc, "GET "+path+" HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nOrigin: http://page\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return br, resp, func(p []byte) { _, _ = nc.Write(p) }
}

func TestStreamResponse(t *testing.T) {
	rec := newRecorder()
	cfg := testConfig()
	cfg.PingInterval = Duration(20 * time.Millisecond)
	s := startServer(t, cfg, streamer{rec})
	br, resp, _ := openStream(t, s, "/events?x=1")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for k, v := range map[string]string{
		"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no",
		"Access-Control-Allow-Origin": "http://page",
	} {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	c := <-rec.opened
	onLoop(t, c, func() {
		if !c.Stream() || !c.Open() {
			t.Error("not an open stream")
		}
		if c.WriteMessage(codec.OpText, []byte("x")) {
			t.Error("WriteMessage wrote a WebSocket frame to a stream")
		}
		if !c.WriteStream([]byte("data: one\n\n")) {
			t.Error("WriteStream refused")
		}
		if !c.WriteFrame(NewFrame([]byte("data: two\n\n"))) {
			t.Error("WriteFrame refused")
		}
	})
	want := []string{"data: one", "", "data: two", "", ": ping", "", ": ping"}
	for _, w := range want {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if line != w+"\n" {
			t.Fatalf("line %q, want %q", line, w)
		}
	}
	if n := s.Stats().Streams; n != 1 {
		t.Errorf("Streams = %d", n)
	}
	onLoop(t, c, func() { c.Close(1000, "") })
	if rest, err := io.ReadAll(br); err != nil || strings.Contains(string(rest), "\x88") {
		t.Fatalf("after Close: %q %v (want the stream's end, no close frame)", rest, err)
	}
}

func TestStreamRefusals(t *testing.T) {
	s := startServer(t, testConfig(), streamer{newRecorder()})
	for path, status := range map[string]int{"/other": 400, "/forbidden": 401} {
		_, resp, _ := openStream(t, s, path)
		if resp.StatusCode != status {
			t.Errorf("%s: status %d, want %d", path, resp.StatusCode, status)
		}
	}
	// Without StreamApp, a plain GET is refused as before.
	s = startServer(t, testConfig(), newRecorder())
	if _, resp, _ := openStream(t, s, "/events"); resp.StatusCode != 400 {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
}

func TestStreamBudgetAndInput(t *testing.T) {
	rec := newRecorder()
	cfg := testConfig()
	cfg.WriteBufferLimit = 4096
	s := startServer(t, cfg, streamer{rec})
	br, _, write := openStream(t, s, "/events")
	c := <-rec.opened
	onLoop(t, c, func() {
		if c.Room() != 4096-c.Buffered() {
			t.Errorf("Room %d", c.Room())
		}
		if c.WriteStream(make([]byte, c.Room()+1)) {
			t.Error("WriteStream past Room")
		}
		if c.WriteFrame(NewFrame(make([]byte, c.Room()+1))) {
			t.Error("WriteFrame past Room")
		}
	})
	// Anything the client sends after its request ends the stream.
	write([]byte("GET / HTTP/1.1\r\n\r\n"))
	if _, err := io.ReadAll(br); err != nil {
		t.Fatalf("read to the end: %v", err)
	}
	waitCounter(t, "connections", 0, func() int64 { return s.Stats().Connections })
}

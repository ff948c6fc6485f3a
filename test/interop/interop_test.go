// Package interop checks herald against WebSocket clients nobody here wrote:
// gorilla/websocket and coder/websocket in Go, Node's ws package, and
// headless Chromium's native WebSocket. Each test runs the real herald
// binary in echo mode on loopback.
package interop

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"
	gorilla "github.com/gorilla/websocket"

	"github.com/herald-push/herald/internal/testutil"
)

var sizes = []int{0, 1, 125, 126, 1000, 65535, 65536, 1 << 20}

func startEcho(t *testing.T, extra ...string) *testutil.Proc {
	t.Helper()
	bin := testutil.Binary(t, "herald")
	return testutil.Start(t, bin, append([]string{"serve", "--echo", "--listen", "127.0.0.1:{port}", "--api-listen", "127.0.0.1:{port:api}", "--log-level=warn"}, extra...)...)
}

func payload(n int, text bool) []byte {
	b := make([]byte, n)
	for i := range b {
		if text {
			b[i] = 'a' + byte(i%26)
		} else {
			b[i] = byte(i * 13)
		}
	}
	return b
}

func TestGorillaClient(t *testing.T) {
	srv := startEcho(t)
	c, resp, err := gorilla.DefaultDialer.Dial("ws://"+srv.Addr+"/any/path?x=1", nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	defer c.Close()
	c.SetReadLimit(4 << 20)
	for _, n := range sizes {
		for _, mt := range []int{gorilla.TextMessage, gorilla.BinaryMessage} {
			p := payload(n, mt == gorilla.TextMessage)
			if err := c.WriteMessage(mt, p); err != nil {
				t.Fatalf("write %d: %v", n, err)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			gt, got, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("read %d: %v", n, err)
			}
			if gt != mt || !bytes.Equal(got, p) {
				t.Fatalf("echo of %d bytes type %d: got type %d, %d bytes", n, mt, gt, len(got))
			}
		}
	}
	// A message larger than gorilla's write buffer goes out as several
	// fragments through NextWriter.
	w, _ := c.NextWriter(gorilla.TextMessage)
	var want bytes.Buffer
	for i := 0; i < 2000; i++ {
		fmt.Fprintf(w, "part%d;", i)
		fmt.Fprintf(&want, "part%d;", i)
	}
	w.Close()
	_, got, err := c.ReadMessage()
	if err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("fragmented echo: %d bytes, %v", len(got), err)
	}
	// Close with code and reason: the server echoes the code.
	if err := c.WriteMessage(gorilla.CloseMessage, gorilla.FormatCloseMessage(4001, "gorilla done")); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.ReadMessage()
	ce, ok := err.(*gorilla.CloseError)
	if !ok || ce.Code != 4001 {
		t.Fatalf("close: got %v, want close 4001", err)
	}
}

func TestCoderClient(t *testing.T) {
	srv := startEcho(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+srv.Addr+"/", &websocket.DialOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.SetReadLimit(4 << 20)
	for _, n := range sizes {
		for _, mt := range []websocket.MessageType{websocket.MessageText, websocket.MessageBinary} {
			p := payload(n, mt == websocket.MessageText)
			if err := c.Write(ctx, mt, p); err != nil {
				t.Fatalf("write %d: %v", n, err)
			}
			gt, got, err := c.Read(ctx)
			if err != nil {
				t.Fatalf("read %d: %v", n, err)
			}
			if gt != mt || !bytes.Equal(got, p) {
				t.Fatalf("echo of %d bytes: got type %v, %d bytes", n, gt, len(got))
			}
		}
	}
	// coder/websocket reads pongs only inside Read: keep one reader busy
	// while pinging, then release it with a last echo.
	echoed := make(chan error, 1)
	go func() {
		_, got, err := c.Read(ctx)
		if err == nil && string(got) != "after ping" {
			err = fmt.Errorf("got %q after the ping", got)
		}
		echoed <- err
	}()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte("after ping")); err != nil {
		t.Fatal(err)
	}
	if err := <-echoed; err != nil {
		t.Fatalf("echo after ping: %v", err)
	}
	// coder's Close performs the whole close handshake and reports a
	// mismatch or a missing close frame as an error.
	if err := c.Close(websocket.StatusCode(4002), "coder done"); err != nil {
		t.Fatalf("close handshake: %v", err)
	}
}

package herald_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/push"
)

// Example runs a node in the program: one Config with the settings and the
// message handler, a client subscribed to "news", a publish that reaches
// it, and an application message the handler answers.
func Example() {
	cfg := herald.DefaultConfig()
	cfg.Listen = "127.0.0.1:0" // any free port, for both listeners
	cfg.APIListen = "127.0.0.1:0"
	cfg.Loops = 1
	cfg.AllowAnonymous = true // no token needed; anonymous clients may subscribe to any channel
	cfg.DrainTimeout = 0      // stop at once
	cfg.Logger = slog.New(slog.DiscardHandler)
	// The handler receives clients' {"op":"msg"} messages on the worker
	// pool, in order per connection, and may answer the sender.
	cfg.Handler = func(s *push.Session, data []byte) {
		s.Send(bytes.ToUpper(data))
	}

	node, err := herald.New(cfg)
	if err != nil {
		fmt.Println("new:", err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Run(ctx) }()
	select {
	case <-node.Ready():
	case err := <-done:
		fmt.Println("run:", err)
		cancel()
		return
	}

	// A client subscribes to "news" in its URL; the subscribed reply says
	// the subscription is in place.
	c, err := dial("ws://" + node.Addr().String() + "/ws?channel=news")
	if err != nil {
		fmt.Println("dial:", err)
		cancel()
		return
	}
	defer c.Close()
	c.print()

	if _, err := node.Publish("news", []byte(`{"headline":"herald runs in-process"}`)); err != nil {
		fmt.Println("publish:", err)
	}
	c.print()

	c.send(`{"op":"msg","data":"hello"}`)
	c.print()

	cancel()
	fmt.Println("stopped:", <-done)
	// Output:
	// subscribed news
	// news 1 {"headline":"herald runs in-process"}
	// msg "HELLO"
	// stopped: <nil>
}

// client is a bare WebSocket client for the example.
type client struct {
	net.Conn
	rw io.ReadWriter
}

func dial(url string) (*client, error) {
	nc, br, _, err := ws.Dial(context.Background(), url)
	if err != nil {
		return nil, err
	}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second)) // an example that fails must not hang
	c := &client{Conn: nc, rw: nc}
	if br != nil { // bytes the server sent right after its handshake
		c.rw = struct {
			io.Reader
			io.Writer
		}{br, nc}
	}
	return c, nil
}

func (c *client) send(msg string) {
	if err := wsutil.WriteClientText(c.rw, []byte(msg)); err != nil {
		fmt.Println("send:", err)
	}
}

// print reads one message and prints what does not change from run to run
// (not the channel's epoch).
func (c *client) print() {
	b, err := wsutil.ReadServerText(c.rw)
	if err != nil {
		fmt.Println("read:", err)
		return
	}
	var m struct {
		Op      string          `json:"op"`
		Channel string          `json:"channel"`
		Offset  uint64          `json:"offset"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		fmt.Println("decode:", err, string(b))
		return
	}
	switch m.Op {
	case "":
		fmt.Println(m.Channel, m.Offset, string(m.Data))
	case "msg":
		fmt.Println(m.Op, string(m.Data))
	default:
		fmt.Println(m.Op, m.Channel)
	}
}

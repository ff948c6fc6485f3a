package hub_test

import (
	"fmt"

	"github.com/herald-push/herald/hub"
)

// syncLoop stands in for a *poller.Loop: it runs funcs at once.
type syncLoop struct{}

func (syncLoop) Index() int          { return 0 }
func (syncLoop) Run(fn func()) error { fn(); return nil }

// printer stands in for a connection: it would write the frames of
// m.Frames to its socket.
type printer struct{ name string }

func (p *printer) Deliver(m *hub.Message) {
	fmt.Printf("%s <- %s offset %d: %s\n", p.name, m.Channel, m.Offset, m.Data)
}

func Example() {
	h := hub.New(hub.Config{})
	loop := syncLoop{}

	// On the loop's goroutine, as the server does for {"op":"sub"}.
	alice := &printer{name: "alice"}
	pos, _, _, _ := h.Subscribe(loop, "news", alice, nil)
	fmt.Println("subscribed at offset", pos.Offset)

	// From any goroutine, as the HTTP API does.
	_, _ = h.Publish("news", []byte(`{"headline":"hello"}`))
	_, _ = h.Publish("news", []byte("plain text"))

	// A client that saw offset 1 reconnects and recovers what it missed.
	bob := &printer{name: "bob"}
	_, backlog, recovered, _ := h.Subscribe(loop, "news", bob, &hub.Position{Offset: 1, Epoch: pos.Epoch})
	fmt.Println("recovered:", recovered)
	for _, m := range backlog {
		bob.Deliver(m)
	}
	// Output:
	// subscribed at offset 0
	// alice <- news offset 1: {"headline":"hello"}
	// alice <- news offset 2: plain text
	// recovered: true
	// bob <- news offset 2: plain text
}

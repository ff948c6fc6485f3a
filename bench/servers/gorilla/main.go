// Command gorilla is the benchmark's gorilla/websocket peer, written the way
// that library's chat example is: a read goroutine and a write goroutine
// per connection, a hub that hands each connection's writer a prepared
// (encoded once) message through a buffered channel. A connection whose
// channel is full misses the message, as in the example's hub.
package main

import (
	"fmt"
	"net/http"
	"os"
	"sync"

	"github.com/gorilla/websocket"
	"github.com/herald-push/herald/bench/internal/peer"
)

type client struct {
	ws   *websocket.Conn
	send chan *websocket.PreparedMessage
}

type hub struct {
	mu      sync.RWMutex
	clients map[*client]struct{}
}

func main() {
	listen, pub := peer.Flags()
	h := &hub{clients: map[*client]struct{}{}}
	up := websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 1024}
	peer.ServePublish(pub, h.broadcast, func() int { h.mu.RLock(); defer h.mu.RUnlock(); return len(h.clients) })
	go func() {
		err := http.ListenAndServe(listen, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ws, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			c := &client{ws: ws, send: make(chan *websocket.PreparedMessage, 256)}
			h.mu.Lock()
			h.clients[c] = struct{}{}
			h.mu.Unlock()
			go c.writePump()
			c.readPump(h)
		}))
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}()
	peer.Wait()
}

func (c *client) readPump(h *hub) {
	defer func() {
		h.mu.Lock()
		delete(h.clients, c)
		close(c.send)
		h.mu.Unlock()
		_ = c.ws.Close()
	}()
	for {
		mt, p, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		pm, err := websocket.NewPreparedMessage(mt, p)
		if err != nil {
			return
		}
		h.mu.RLock()
		select {
		case c.send <- pm:
		default:
		}
		h.mu.RUnlock()
	}
}

func (c *client) writePump() {
	for pm := range c.send {
		if err := c.ws.WritePreparedMessage(pm); err != nil {
			_ = c.ws.Close()
			for range c.send {
			}
			return
		}
	}
}

func (h *hub) broadcast(body []byte) int {
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, body)
	if err != nil {
		return 0
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	for c := range h.clients {
		select {
		case c.send <- pm:
			n++
		default:
		}
	}
	return n
}

// Command gws is the benchmark's lxzan/gws peer: one read goroutine per
// connection (gws's ReadLoop), echo in OnMessage, and broadcasts through
// gws.Broadcaster, which encodes the frame once for every connection.
package main

import (
	"fmt"
	"net/http"
	"os"
	"sync"

	"github.com/herald-push/herald/bench/internal/peer"
	"github.com/lxzan/gws"
)

type handler struct {
	gws.BuiltinEventHandler
	mu    sync.RWMutex
	conns map[*gws.Conn]struct{}
}

func (h *handler) OnOpen(c *gws.Conn) {
	h.mu.Lock()
	h.conns[c] = struct{}{}
	h.mu.Unlock()
}

func (h *handler) OnClose(c *gws.Conn, err error) {
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
}

func (h *handler) OnMessage(c *gws.Conn, m *gws.Message) {
	defer m.Close()
	_ = c.WriteMessage(m.Opcode, m.Bytes())
}

func (h *handler) broadcast(body []byte) int {
	b := gws.NewBroadcaster(gws.OpcodeText, body)
	defer func() { _ = b.Close() }()
	h.mu.RLock()
	defer h.mu.RUnlock()
	for c := range h.conns {
		_ = b.Broadcast(c)
	}
	return len(h.conns)
}

func main() {
	listen, pub := peer.Flags()
	h := &handler{conns: map[*gws.Conn]struct{}{}}
	up := gws.NewUpgrader(h, &gws.ServerOption{})
	peer.ServePublish(pub, h.broadcast, func() int { h.mu.RLock(); defer h.mu.RUnlock(); return len(h.conns) })
	go func() {
		err := http.ListenAndServe(listen, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := up.Upgrade(w, r)
			if err != nil {
				return
			}
			go c.ReadLoop()
		}))
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}()
	peer.Wait()
}

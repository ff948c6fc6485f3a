// Command nbio is the benchmark's lesismal/nbio peer in its non-blocking
// mode: nbhttp serves the upgrade on nbio's epoll loops, connections own no
// goroutine, echo happens in OnMessage, and a broadcast writes the message
// to each connection with WriteMessage (nbio has no encode-once API).
package main

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
	"sync"

	"github.com/herald-push/herald/bench/internal/peer"
	"github.com/lesismal/nbio/nbhttp"
	"github.com/lesismal/nbio/nbhttp/websocket"
)

func main() {
	listen, pub := peer.Flags()
	var mu sync.RWMutex
	conns := map[*websocket.Conn]struct{}{}
	up := websocket.NewUpgrader()
	up.OnOpen(func(c *websocket.Conn) {
		mu.Lock()
		conns[c] = struct{}{}
		mu.Unlock()
	})
	up.OnClose(func(c *websocket.Conn, err error) {
		mu.Lock()
		delete(conns, c)
		mu.Unlock()
	})
	up.OnMessage(func(c *websocket.Conn, mt websocket.MessageType, data []byte) {
		_ = c.WriteMessage(mt, data)
	})
	engine := nbhttp.NewEngine(nbhttp.Config{
		Network: "tcp",
		Addrs:   []string{listen},
		IOMod:   nbhttp.IOModNonBlocking,
		NPoller: runtime.NumCPU(),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = up.Upgrade(w, r, nil)
		}),
		ReleaseWebsocketPayload: true,
	})
	if err := engine.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	peer.ServePublish(pub, func(body []byte) int {
		mu.RLock()
		defer mu.RUnlock()
		for c := range conns {
			_ = c.WriteMessage(websocket.TextMessage, body)
		}
		return len(conns)
	}, func() int { mu.RLock(); defer mu.RUnlock(); return len(conns) })
	peer.Wait()
	engine.Stop()
}

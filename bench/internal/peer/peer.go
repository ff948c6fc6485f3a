// Package peer holds what the benchmark's peer servers share: their flags,
// the publish and stats endpoints, and the wait for a stop signal. Each
// server speaks the same protocol: every WebSocket connection (on any path)
// is subscribed to everything, POST /publish on the publish listener
// broadcasts its body as one text message to every connection, and text or
// binary messages from a client are echoed to it.
package peer

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

// Flags parses the common flags: the WebSocket listen address and the
// publish listen address.
func Flags() (listen, pub string) {
	l := flag.String("listen", "127.0.0.1:9000", "WebSocket listen address")
	p := flag.String("pub-listen", "127.0.0.1:9001", "HTTP listen address for POST /publish and GET /stats")
	flag.Parse()
	return *l, *p
}

// ServePublish serves POST /publish, which calls broadcast with the body
// (broadcast returns the number of connections it reached), and GET /stats
// (goroutines and connections) on addr, in a goroutine. conns may be
// called from any goroutine.
func ServePublish(addr string, broadcast func(body []byte) int, conns func() int) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /publish", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		n := broadcast(body)
		_, _ = fmt.Fprintf(w, "%d\n", n)
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]int{"goroutines": runtime.NumGoroutine(), "conns": conns()})
	})
	go func() {
		if err := http.ListenAndServe(addr, mux); err != nil {
			fmt.Fprintln(os.Stderr, "publish listener:", err)
			os.Exit(1)
		}
	}()
}

// Wait blocks until SIGINT or SIGTERM.
func Wait() {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	<-ch
}

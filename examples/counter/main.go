// Command counter is the shared counter from the WebSocket literature,
// written against herald's library API: every page can increment or
// decrement one counter, and every connected page sees the new value at
// once. It is what `herald serve` shows at / (package demo), in one file.
//
//	go run ./examples/counter                 # then open http://localhost:8081/
//	go run ./examples/counter -listen 127.0.0.1:9080 -api-listen 127.0.0.1:9081
//
// Pages send application messages ({"op":"msg","data":{"action":"incr"}});
// the handler runs on the node's worker pool, updates the counter and
// publishes {"value":N} on the channel "counter", to which every page is
// subscribed.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"

	"github.com/herald-push/herald"
	clientjs "github.com/herald-push/herald/client/js"
	"github.com/herald-push/herald/push"
)

// channel carries the counter's value to every page.
const channel = "counter"

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "WebSocket listener")
	apiListen := flag.String("api-listen", "127.0.0.1:8081", "HTTP listener for the page, /herald.js and the API")
	flag.Parse()
	if err := run(*listen, *apiListen); err != nil {
		fmt.Fprintln(os.Stderr, "counter:", err)
		os.Exit(1)
	}
}

// counter is the shared state. The handler runs on worker goroutines for
// many connections at once: mu guards value, and publishing under mu keeps
// the published values in the channel's offset order.
type counter struct {
	mu    sync.Mutex
	value int64
	node  *herald.Node // set before the node runs
}

// handle is the herald.Handler: it runs on the worker pool, in order per
// connection.
func (c *counter) handle(s *push.Session, data []byte) {
	var req struct {
		Action string `json:"action"`
	}
	if err := json.Unmarshal(data, &req); err != nil {
		s.Send([]byte(`{"error":"want {\"action\":...}"}`))
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch req.Action {
	case "incr":
		c.value++
	case "decr":
		c.value--
	case "get":
		s.Send(c.valueJSON()) // to this page only
		return
	default:
		s.Send([]byte(`{"error":"unknown action"}`))
		return
	}
	if _, err := c.node.Publish(channel, c.valueJSON()); err != nil {
		slog.Error("publish", "channel", channel, "err", err)
	}
}

// valueJSON encodes the value. Lock should be held.
func (c *counter) valueJSON() []byte {
	return append(strconv.AppendInt([]byte(`{"value":`), c.value, 10), '}')
}

func run(listen, apiListen string) error {
	cfg := herald.DefaultConfig()
	cfg.Listen = listen
	cfg.APIListen = apiListen
	cfg.AllowAnonymous = true         // a demo: anyone may connect and subscribe
	cfg.AnonymousPublish = []string{} // but only the server publishes
	cfg.Demo = true                   // serve the page at /

	c := &counter{}
	cfg.Handler = c.handle
	cfg.DemoPage = pageHandler(func() net.Addr { return c.node.Addr() })
	cfg.ClientScript = clientjs.Handler()
	node, err := herald.New(cfg)
	if err != nil {
		return fmt.Errorf("new node: %w", err)
	}
	c.node = node

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- node.Run(ctx) }()
	select {
	case <-node.Ready():
		slog.Info("counter running", "open", "http://"+node.APIAddr().String()+"/", "websocket", node.Addr().String())
	case err := <-errc:
		return err
	}
	return <-errc
}

// page is the counter's page; it joins its own host name to the
// WebSocket port it is given.
var page = template.Must(template.New("page").Parse(`<!doctype html>
<meta charset="utf-8"><title>counter</title>
<style>body{font:16px system-ui;text-align:center;margin-top:15vh}#value{font-size:72px;margin:16px}button{font-size:24px;width:56px}</style>
<div id="value">…</div>
<button id="dec">−</button> <button id="inc">+</button>
<script src="/herald.js"></script>
<script>
const h = new Herald('ws://' + location.hostname + ':{{.}}/ws', {channels: []});
const show = (d) => { if (d && typeof d.value === 'number') document.getElementById('value').textContent = d.value; };
h.subscribe('counter', show);
h.on('message', show);
h.on('open', () => h.send({action: 'get'}));
document.getElementById('inc').onclick = () => h.send({action: 'incr'});
document.getElementById('dec').onclick = () => h.send({action: 'decr'});
</script>`))

// pageHandler serves the page with the WebSocket listener's port.
func pageHandler(wsAddr func() net.Addr) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, port, err := net.SplitHostPort(wsAddr().String())
		if err != nil {
			http.Error(w, "counter: WebSocket address: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if err := page.Execute(w, port); err != nil {
			slog.Error("render page", "err", err)
		}
	})
}

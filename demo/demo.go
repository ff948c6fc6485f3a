// Package demo is herald's demo: the shared counter from the WebSocket
// literature, built on the library API. Any page can increment or decrement
// one counter and every connected page sees the new value at once.
//
// The page (served at / on the API listener) loads /herald.js, connects to
// the node's WebSocket listener subscribed to [CounterChannel] and sends
// application messages: {"action":"incr"}, {"action":"decr"} or
// {"action":"get"}. The counter's handler runs on the node's worker pool;
// it publishes {"value":N} to [CounterChannel] after every change and
// answers "get" to the asking client alone with [push.Session.Send].
//
// [Configure] puts the demo's hooks in a config, with cfg.Demo set (the
// page is served only then, and only then may anonymous clients publish to
// demo:* by default); the node built from it is then attached:
//
//	cfg.Demo = true
//	d := demo.Configure(&cfg)
//	node, err := herald.New(cfg)
//	...
//	d.Attach(node)
package demo

import (
	_ "embed"
	"html/template"
	"net"
	"net/http"
	"sync/atomic"

	"github.com/herald-push/herald"
	clientjs "github.com/herald-push/herald/client/js"
)

// CounterChannel is the channel the counter publishes its value on.
// Anonymous clients may subscribe to it; only the server publishes on it.
const CounterChannel = "demo:counter"

// ChatChannel is where the page's "say something" box publishes; while the
// demo runs, anonymous clients may publish on demo:* unless
// herald.Config.AnonymousPublish says otherwise.
const ChatChannel = "demo:chat"

//go:embed page.html
var pageHTML string

var pageTmpl = template.Must(template.New("page").Parse(pageHTML))

// Demo is one shared counter, starting at zero, and the page showing it.
type Demo struct{ c *counter }

// Configure sets in cfg what a node needs to serve the demo, replacing
// what those fields held: the counter's message handler (Handler), the
// page at / (DemoPage, shown when cfg.Demo is set) and the browser client
// at /herald.js (ClientScript). Each call makes a new counter; Attach binds
// it to the node built from cfg.
func Configure(cfg *herald.Config) *Demo {
	d := &Demo{c: newCounter()}
	cfg.Handler = d.c.handle
	cfg.DemoPage = pageHandler(*cfg, &d.c.node)
	cfg.ClientScript = clientjs.Handler()
	return d
}

// Attach binds the demo to n, the node built from the config Configure
// filled: the counter publishes through it and the page shows its
// WebSocket port. Call it before n.Run; until then the counter answers
// changes with an error.
func (d *Demo) Attach(n *herald.Node) { d.c.node.Store(n) }

// pageData fills page.html.
type pageData struct {
	// WSPort is the WebSocket listener's port; the page joins it to its
	// own host name, because the API and WebSocket listeners differ.
	WSPort string
	// WSSPort is the wss:// listener's port, empty without one. The page
	// connects there when it is set (or the page came over https), unless
	// its URL says ?transport=ws.
	WSSPort string
	Counter string
	Chat    string
}

// pageHandler renders the page with the node's WebSocket ports, plain and
// TLS (known once the node listens; cfg.Listen and cfg.TLSListen before
// that).
func pageHandler(cfg herald.Config, node *atomic.Pointer[herald.Node]) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := cfg.Listen
		if n := node.Load(); n != nil && n.Addr() != nil {
			addr = n.Addr().String()
		}
		_, port, err := net.SplitHostPort(addr)
		if err != nil || port == "" {
			http.Error(w, "demo: the WebSocket listener's port is unknown ("+addr+")", http.StatusInternalServerError)
			return
		}
		tlsAddr := cfg.TLSListen
		if n := node.Load(); n != nil && n.Server() != nil && n.Server().TLSAddr() != nil {
			tlsAddr = n.Server().TLSAddr().String()
		}
		var tlsPort string
		if tlsAddr != "" {
			_, tlsPort, _ = net.SplitHostPort(tlsAddr)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_ = pageTmpl.Execute(w, pageData{WSPort: port, WSSPort: tlsPort, Counter: CounterChannel, Chat: ChatChannel})
	})
}

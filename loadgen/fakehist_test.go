package loadgen

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// fakeHub is one channel's history shared by fake nodes, as a cluster
// shares it: publishing on any node appends to it and reaches every
// subscriber of every node. It speaks the part of herald's protocol the
// recovery scenarios use: {"op":"sub"} with since, the subscribed reply
// (offset, epoch, recovered) and envelopes with offsets.
type fakeHub struct {
	mu      sync.Mutex
	epoch   string
	history [][]byte // offset i+1
	subs    map[*histConn]struct{}
}

// histConn is one subscriber; its writer goroutine drains out, so that
// what the hub queues under its lock goes out in that order.
type histConn struct {
	nc  net.Conn
	out chan []byte
}

func newFakeHub() *fakeHub { return &fakeHub{epoch: "e1", subs: map[*histConn]struct{}{}} }

func envelope(off int, data []byte) []byte {
	return []byte(`{"channel":"bench","offset":` + strconv.Itoa(off) + `,"data":` + string(data) + `}`)
}

// publish appends body and queues it to every subscriber.
func (h *fakeHub) publish(body []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.history = append(h.history, append([]byte(nil), body...))
	msg := envelope(len(h.history), body)
	for c := range h.subs {
		h.queue(c, msg)
	}
}

// queue hands msg to c's writer; a subscriber that far behind is cut.
// Called with h.mu held.
func (h *fakeHub) queue(c *histConn, msg []byte) {
	select {
	case c.out <- msg:
	default:
		delete(h.subs, c)
		_ = c.nc.Close()
	}
}

type subCmd struct {
	Op      string `json:"op"`
	Channel string `json:"channel"`
	Since   *struct {
		Offset int    `json:"offset"`
		Epoch  string `json:"epoch"`
	} `json:"since"`
}

// subscribe answers a sub command: the reply, the backlog after since,
// then live messages.
func (h *fakeHub) subscribe(c *histConn, cmd subCmd) {
	h.mu.Lock()
	defer h.mu.Unlock()
	latest := len(h.history)
	recovered := cmd.Since != nil && cmd.Since.Epoch == h.epoch && cmd.Since.Offset <= latest
	reply := `{"op":"subscribed","channel":"bench","offset":` + strconv.Itoa(latest) + `,"epoch":"` + h.epoch + `"`
	if cmd.Since != nil {
		reply += `,"recovered":` + strconv.FormatBool(recovered)
	}
	h.queue(c, []byte(reply+"}"))
	if recovered {
		for off := cmd.Since.Offset + 1; off <= latest; off++ {
			h.queue(c, envelope(off, h.history[off-1]))
		}
	}
	h.subs[c] = struct{}{}
}

func (h *fakeHub) leave(c *histConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, c)
}

// fakeNode is one node of a fakeHub: /ws for subscribers, /publish to
// publish the body. Stop closes its listener and every connection, as a
// node that goes away.
type fakeNode struct {
	*httptest.Server
	hub *fakeHub

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	down  bool
	// tokens are the token parameters of the upgrade requests, in order.
	tokens []string
}

func newFakeNode(t *testing.T, hub *fakeHub) *fakeNode {
	t.Helper()
	n := &fakeNode{hub: hub, conns: map[net.Conn]struct{}{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", n.serveWS)
	mux.HandleFunc("/publish", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		hub.publish(body)
	})
	n.Server = httptest.NewServer(mux)
	t.Cleanup(n.Stop)
	return n
}

func (n *fakeNode) wsURL() string { return "ws" + strings.TrimPrefix(n.URL, "http") + "/ws" }

// Stop takes the node away: no new connections, every one closed.
func (n *fakeNode) Stop() {
	n.mu.Lock()
	if n.down {
		n.mu.Unlock()
		return
	}
	n.down = true
	for nc := range n.conns {
		_ = nc.Close()
	}
	n.mu.Unlock()
	n.Server.Listener.Close()
	n.Server.CloseClientConnections()
}

func (n *fakeNode) serveWS(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	if n.down {
		n.mu.Unlock()
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	if tok := r.URL.Query().Get("token"); tok != "" {
		n.tokens = append(n.tokens, tok)
	}
	nc, rw, _, err := ws.UpgradeHTTP(r, w)
	if err != nil {
		n.mu.Unlock()
		return
	}
	n.conns[nc] = struct{}{}
	n.mu.Unlock()
	c := &histConn{nc: nc, out: make(chan []byte, 1<<14)}
	done := make(chan struct{})
	var wmu sync.Mutex // the writer's frames and the control answers
	go func() {
		for {
			select {
			case <-done:
				return
			case msg := <-c.out:
				wmu.Lock()
				_ = nc.SetWriteDeadline(time.Now().Add(fakeWriteTimeout))
				err := wsutil.WriteServerMessage(nc, ws.OpText, msg)
				wmu.Unlock()
				if err != nil {
					_ = nc.Close()
					return
				}
			}
		}
	}()
	defer func() {
		close(done)
		n.hub.leave(c)
		n.mu.Lock()
		delete(n.conns, nc)
		n.mu.Unlock()
		_ = nc.Close()
	}()
	cw := writerFunc(func(p []byte) (int, error) {
		wmu.Lock()
		defer wmu.Unlock()
		return nc.Write(p)
	})
	control := wsutil.ControlFrameHandler(cw, ws.StateServerSide)
	rd := &wsutil.Reader{Source: rw.Reader, State: ws.StateServerSide, OnIntermediate: control}
	for {
		hd, err := rd.NextFrame()
		if err != nil {
			return
		}
		if hd.OpCode.IsControl() {
			if err := control(hd, rd); err != nil {
				return
			}
			continue
		}
		p, err := io.ReadAll(rd)
		if err != nil {
			return
		}
		var cmd subCmd
		if json.Unmarshal(p, &cmd) == nil && cmd.Op == "sub" {
			n.hub.subscribe(c, cmd)
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

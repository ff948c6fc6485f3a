// Package cluster tests herald nodes sharing a NATS server: real herald
// processes on loopback (built and run by internal/testutil), an embedded
// NATS server with JetStream inside the test process, real WebSocket
// clients. It covers fan-out across nodes, recovery when a node dies and
// the nodes' own recovery when NATS restarts.
package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/herald-push/herald/internal/testutil"
	"github.com/herald-push/herald/test/internal/natstest"
)

// startNATS runs an embedded NATS server (see natstest.Start).
func startNATS(t *testing.T, port int, dir string) *natsserver.Server {
	t.Helper()
	return natstest.Start(t, port, dir)
}

// natsPort is the port s listens on.
func natsPort(s *natsserver.Server) int { return natstest.Port(s) }

// node is a running herald process of the cluster.
type node struct {
	*testutil.Proc
	name string
	API  string // http://host:port
	WS   string // ws://host:port
}

// startNode starts herald with the NATS broker at natsURL.
func startNode(t *testing.T, name, natsURL string, extra ...string) *node {
	t.Helper()
	bin := testutil.Binary(t, "herald")
	args := append([]string{"serve", "--listen", "127.0.0.1:{port}", "--api-listen", "127.0.0.1:{port:api}",
		"--log-level=warn", "--allow-anonymous", "--demo=false", "--loops=1",
		"--broker", natsURL, "--history-size", "1000"}, extra...)
	p := testutil.Start(t, bin, args...)
	n := &node{Proc: p, name: name, API: "http://" + p.Extra["api"], WS: "ws://" + p.Addr}
	waitFor(t, 10*time.Second, name+" /healthz", func() bool { st, _ := get(n.API + "/healthz"); return st == http.StatusOK })
	return n
}

// startCluster starts count nodes on one NATS server, all ready.
func startCluster(t *testing.T, natsURL string, names ...string) []*node {
	t.Helper()
	nodes := make([]*node, len(names))
	for i, name := range names {
		nodes[i] = startNode(t, name, natsURL)
	}
	for _, n := range nodes {
		waitReady(t, n, true, 10*time.Second)
	}
	return nodes
}

// get fetches u and returns its status and body.
func get(u string) (int, string) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitReady waits until n's /readyz says ready (or not ready).
func waitReady(t *testing.T, n *node, ready bool, d time.Duration) string {
	t.Helper()
	want := http.StatusOK
	if !ready {
		want = http.StatusServiceUnavailable
	}
	var body string
	waitFor(t, d, fmt.Sprintf("%s /readyz %d", n.name, want), func() bool {
		var st int
		st, body = get(n.API + "/readyz")
		return st == want
	})
	return body
}

// published is the API's answer to a publish.
type published struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// publish posts data to channel on n's API and returns the status and,
// on success, the position.
func publish(n *node, channel, data string) (int, published, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Post(n.API+"/api/publish?channel="+channel, "application/json", strings.NewReader(data))
	if err != nil {
		return 0, published{}, err
	}
	defer resp.Body.Close()
	var p published
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
			return resp.StatusCode, p, fmt.Errorf("decoding the reply: %w", err)
		}
	}
	return resp.StatusCode, p, nil
}

// mustPublish publishes or fails the test.
func mustPublish(t *testing.T, n *node, channel, data string) published {
	t.Helper()
	st, p, err := publish(n, channel, data)
	if err != nil || st != http.StatusOK {
		t.Fatalf("publish on %s: status %d, %v", n.name, st, err)
	}
	return p
}

// envelope is a delivered message, or a reply (Op set).
type envelope = testutil.Msg

// client is one WebSocket subscriber.
type client struct {
	conn *websocket.Conn
}

// subscribe connects to n, subscribes to channel (recovering after since,
// when since.Epoch is set) and returns the client and the subscribed
// reply.
func subscribe(t *testing.T, n *node, channel string, since published) (*client, envelope, error) {
	t.Helper()
	u := n.WS + "/ws?channel=" + channel
	if since.Epoch != "" {
		u += fmt.Sprintf("&since=%s:%d:%s", channel, since.Offset, since.Epoch)
	}
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, _, err := d.Dial(u, nil)
	if err != nil {
		return nil, envelope{}, fmt.Errorf("dial %s: %w", n.name, err)
	}
	c := &client{conn: conn}
	t.Cleanup(func() { conn.Close() })
	e, err := c.next(10 * time.Second)
	if err != nil {
		return nil, envelope{}, err
	}
	if e.Op != "subscribed" {
		return nil, e, fmt.Errorf("first frame from %s is %+v, want subscribed", n.name, e)
	}
	return c, e, nil
}

// next reads one frame within d.
func (c *client) next(d time.Duration) (envelope, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	var e envelope
	_, b, err := c.conn.ReadMessage()
	if err != nil {
		return e, err
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("frame %q: %w", b, err)
	}
	return e, nil
}

// waitFor polls cond every 20 ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// log collects what goroutines report, for the test goroutine to check.
type log struct {
	mu   sync.Mutex
	errs []string
}

func (l *log) errorf(format string, args ...any) {
	l.mu.Lock()
	l.errs = append(l.errs, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *log) check(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.errs {
		t.Error(e)
	}
}

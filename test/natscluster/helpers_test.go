// Package natscluster tests herald on a real NATS cluster: three NATS
// servers joined by routes into one JetStream cluster (in the test
// process, natstest.StartCluster), three herald processes (the real
// binary, internal/testutil), each on its own NATS server, the stream and
// the presence bucket created with --broker-replicas 3, and
// gorilla/websocket clients with signed tokens. It covers fan-out,
// recovery on another node and presence across the nodes, the loss of
// the NATS server a node is connected to, and test/cmd/natsd's cluster
// flags (three natsd processes clustered by -cluster and -routes).
package natscluster

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/herald-push/herald/auth"
	"github.com/herald-push/herald/internal/testutil"
)

// secret signs the suite's tokens.
const secret = "natscluster-suite-secret-0123456789abcdef"

// wait bounds each wait for an event: generous, for a loaded 2-core
// machine on which NATS elects new leaders after a server's loss.
const wait = 60 * time.Second

// node is a running herald process.
type node struct {
	*testutil.Proc
	name    string
	API, WS string
	listen  string // its --listen, which names its NATS connections
}

// startNode runs herald on NATS at natsURLs (comma-separated) with
// replicas 3 and the suite's presence channel, and waits until it is
// ready.
func startNode(t *testing.T, name, natsURLs string, extra ...string) *node {
	t.Helper()
	file := filepath.Join(t.TempDir(), "jwt.secret")
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"serve", "--listen", "127.0.0.1:{port}", "--api-listen", "127.0.0.1:{port:api}",
		"--log-level=warn", "--demo=false", "--loops=1", "--jwt-secret-file", file,
		"--broker", natsURLs, "--broker-replicas", "3", "--history-size", "1000",
		"--presence-channel", "lobby", "--presence-leave-delay", "-1s"}, extra...)
	p := testutil.Start(t, testutil.Binary(t, "herald"), args...)
	n := &node{Proc: p, name: name, API: "http://" + p.Extra["api"], WS: "ws://" + p.Addr, listen: p.Addr}
	n.waitReady(t)
	return n
}

// waitReady waits until n's /readyz answers 200.
func (n *node) waitReady(t *testing.T) {
	t.Helper()
	waitFor(t, n.name+" ready", func() bool { st, _ := testutil.Get(n.API + "/readyz"); return st == http.StatusOK })
}

// position is a channel position, as the API and the protocol give it.
type position struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// publish posts data to channel on n's API under an idempotency key, so
// that a retry after an unclear answer (a NATS server lost meanwhile)
// stores it once, and returns the status and the position.
func (n *node) publish(channel, data, key string) (int, position, error) {
	body, _ := json.Marshal(map[string]any{"channel": channel, "data": json.RawMessage(data), "idempotency_key": key})
	c := http.Client{Timeout: 15 * time.Second}
	resp, err := c.Post(n.API+"/api/publish", "application/json", strings.NewReader(string(body)))
	if err != nil {
		return 0, position{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var p position
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, &p); err != nil {
			return resp.StatusCode, p, fmt.Errorf("reply %q: %w", b, err)
		}
	} else {
		err = fmt.Errorf("%s", b)
	}
	return resp.StatusCode, p, err
}

// mustPublish publishes message i ({"n":i}) to channel on n, retrying
// (same key) while the cluster answers 503 or not at all, and checks
// that it got offset i.
func (n *node) mustPublish(t *testing.T, channel string, i int) position {
	t.Helper()
	var (
		st  int
		p   position
		err error
	)
	key := fmt.Sprintf("%s-%d", channel, i)
	waitFor(t, fmt.Sprintf("publish %d on %s", i, n.name), func() bool {
		st, p, err = n.publish(channel, fmt.Sprintf(`{"n":%d}`, i), key)
		if st != http.StatusOK && st != http.StatusServiceUnavailable && st != 0 {
			t.Fatalf("publish %d on %s: %d %v", i, n.name, st, err)
		}
		return st == http.StatusOK
	})
	if p.Offset != uint64(i) {
		t.Fatalf("publish %d on %s: acknowledged at %+v, want offset %d", i, n.name, p, i)
	}
	return p
}

// msg is a server → client message.
type msg = testutil.Msg

// client is one WebSocket connection to a node.
type client struct {
	t    *testing.T
	name string
	conn *websocket.Conn
}

// dial connects to n as user (a token for every channel).
func (n *node) dial(t *testing.T, user string) *client {
	t.Helper()
	tok, err := auth.Sign([]byte(secret), auth.TokenSpec{Subject: user, Subscribe: []string{"*"}, ExpiresAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, _, err := d.Dial(n.WS+"/ws?token="+url.QueryEscape(tok), nil)
	if err != nil {
		t.Fatalf("dial %s as %s: %v", n.name, user, err)
	}
	t.Cleanup(func() { conn.Close() })
	return &client{t: t, name: user + "@" + n.name, conn: conn}
}

// subscribe dials n as user and subscribes to channel, recovering after
// since when since.Epoch is set; it returns the client and the
// subscribed reply.
func (n *node) subscribe(t *testing.T, user, channel string, since position) (*client, msg) {
	t.Helper()
	c := n.dial(t, user)
	cmd := map[string]any{"op": "sub", "channel": channel}
	if since.Epoch != "" {
		cmd["since"] = since
	}
	b, _ := json.Marshal(cmd)
	c.send(string(b))
	m := c.next()
	if m.Op != "subscribed" || m.Channel != channel {
		t.Fatalf("%s: %+v, want subscribed to %s", c.name, m, channel)
	}
	return c, m
}

// send writes one text frame.
func (c *client) send(v string) {
	c.t.Helper()
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(v)); err != nil {
		c.t.Fatalf("%s: send: %v", c.name, err)
	}
}

// next reads the next message (within wait).
func (c *client) next() msg {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(wait))
	_, b, err := c.conn.ReadMessage()
	if err != nil {
		c.t.Fatalf("%s: read: %v", c.name, err)
	}
	var m msg
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("%s: not JSON: %q", c.name, b)
	}
	return m
}

// expect reads messages from..to of channel and fails unless they come
// exactly once each, in order, with their data ({"n":i}).
func (c *client) expect(channel string, from, to int) {
	c.t.Helper()
	for i := from; i <= to; i++ {
		m := c.next()
		if m.Op != "" || m.Channel != channel || m.Offset != uint64(i) || string(m.Data) != fmt.Sprintf(`{"n":%d}`, i) {
			c.t.Fatalf("%s: got %+v (data %s), want message %d of %s: lost, duplicated or out of order", c.name, m, m.Data, i, channel)
		}
	}
}

// event reads the next message and checks it is op (join or leave) of
// user in channel.
func (c *client) event(op, channel, user string) {
	c.t.Helper()
	if m := c.next(); m.Op != op || m.Channel != channel || m.User != user {
		c.t.Fatalf("%s: got %+v, want %s of %s in %s", c.name, m, op, user, channel)
	}
}

// presence is GET /api/presence's answer.
type presence struct {
	Count int      `json:"count"`
	Users []string `json:"users"`
}

// presenceOf asks n's API for channel's members.
func (n *node) presenceOf(t *testing.T, channel string) presence {
	t.Helper()
	st, b := testutil.Get(n.API + "/api/presence?channel=" + url.QueryEscape(channel))
	if st != http.StatusOK {
		t.Fatalf("%s: GET /api/presence?channel=%s: %d %s", n.name, channel, st, b)
	}
	var p presence
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("%s: GET /api/presence: %q: %v", n.name, b, err)
	}
	return p
}

// serverOf is the running NATS server, of servers, that holds n's
// broker connection (named "herald LISTEN"), or nil.
func (n *node) serverOf(servers []*natsserver.Server) *natsserver.Server {
	for _, s := range servers {
		if !s.Running() {
			continue
		}
		cz, err := s.Connz(&natsserver.ConnzOptions{})
		if err != nil {
			continue
		}
		for _, c := range cz.Conns {
			if c.Name == "herald "+n.listen {
				return s
			}
		}
	}
	return nil
}

// waitFor polls cond every 20 ms until it holds, failing after wait.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", wait, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Package e2e tests herald's push tier end to end: the real binary on
// loopback, real WebSocket clients (gorilla/websocket), the HTTP API,
// tokens, recovery, backpressure, drain and metrics.
package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-push/herald/auth"
	"github.com/herald-push/herald/internal/testutil"
)

const secret = "e2e-test-secret-that-is-long-enough-for-hs256"

// node is a running herald with its API address.
type node struct {
	*testutil.Proc
	API string // http://host:port
	WS  string // ws://host:port
}

func start(t *testing.T, extra ...string) *node {
	t.Helper()
	bin := testutil.Binary(t, "herald")
	args := append([]string{"serve", "--listen", "127.0.0.1:{port}", "--api-listen", "127.0.0.1:{port:api}",
		"--log-level=warn", "--jwt-secret", secret, "--demo=false"}, extra...)
	p := testutil.Start(t, bin, args...)
	n := &node{Proc: p, API: "http://" + p.Extra["api"], WS: "ws://" + p.Addr}
	waitHTTP(t, n.API+"/healthz")
	return n
}

func waitHTTP(t *testing.T, u string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(u); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never answered", u)
}

func token(t *testing.T, sub string, ttl time.Duration, subscribe, publish []string) string {
	t.Helper()
	spec := auth.TokenSpec{Subject: sub, Subscribe: subscribe, Publish: publish, IssuedAt: time.Now()}
	if ttl != 0 {
		spec.ExpiresAt = time.Now().Add(ttl)
	}
	tok, err := auth.Sign([]byte(secret), spec)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// client is a gorilla connection with JSON helpers.
type client struct {
	t *testing.T
	*websocket.Conn
}

func (n *node) dial(t *testing.T, query string, hdr http.Header) (*client, *http.Response, error) {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(n.WS+"/ws?"+query, hdr)
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, Conn: c}, resp, nil
}

func (n *node) mustDial(t *testing.T, query string) *client {
	t.Helper()
	c, resp, err := n.dial(t, query, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial ?%s: %v (HTTP %d)", query, err, status)
	}
	return c
}

// msg is a server → client message.
type msg = testutil.Msg

func (c *client) next(d time.Duration) (msg, error) {
	c.SetReadDeadline(time.Now().Add(d))
	_, b, err := c.ReadMessage()
	if err != nil {
		return msg{}, err
	}
	var m msg
	if err := json.Unmarshal(b, &m); err != nil {
		return msg{}, fmt.Errorf("not JSON: %q", b)
	}
	return m, nil
}

func (c *client) mustNext() msg {
	c.t.Helper()
	m, err := c.next(5 * time.Second)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return m
}

// expectOp reads until a message with op arrives (skipping deliveries).
func (c *client) expectOp(op string) msg {
	c.t.Helper()
	for {
		m := c.mustNext()
		if m.Op == op {
			return m
		}
		if m.Op != "" {
			c.t.Fatalf("got %+v while waiting for op %q", m, op)
		}
	}
}

func (c *client) send(v any) {
	c.t.Helper()
	if err := c.WriteJSON(v); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// closeCode reads until the connection closes and returns the close code.
func (c *client) closeCode(d time.Duration) int {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		c.SetReadDeadline(deadline)
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		if ce, ok := err.(*websocket.CloseError); ok {
			return ce.Code
		}
		c.t.Fatalf("connection ended without a close frame: %v", err)
	}
	c.t.Fatalf("connection not closed within %v", d)
	return 0
}

func publish(t *testing.T, n *node, channel, body string) map[string]any {
	t.Helper()
	resp, err := http.Post(n.API+"/api/publish?channel="+url.QueryEscape(channel), "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("publish to %s: %d %s", channel, resp.StatusCode, b)
	}
	var out map[string]any
	json.Unmarshal(b, &out)
	return out
}

func apiCall(t *testing.T, method, u, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric reads one sample from /metrics ("name{labels}" as printed).
func metric(t *testing.T, n *node, name string) float64 { return testutil.Metric(t, n.API, name) }

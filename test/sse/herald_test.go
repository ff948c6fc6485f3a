package sse

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-push/herald/internal/testutil"
)

// node is a herald process under test.
type node struct {
	*testutil.Proc
	// WS is the WebSocket (and event-stream) listener's host:port, API the
	// API listener's.
	WS, API string
}

// startHerald runs the herald binary with anonymous access and the given
// extra flags.
func startHerald(t *testing.T, extra ...string) *node {
	t.Helper()
	bin := testutil.Binary(t, "herald")
	args := append([]string{"serve", "--allow-anonymous",
		"--listen", "127.0.0.1:{port}", "--api-listen", "127.0.0.1:{port:api}"}, extra...)
	p := testutil.Start(t, bin, args...)
	n := &node{Proc: p, WS: p.Addr, API: p.Extra["api"]}
	waitFor(t, 10*time.Second, "the API listener", func() error {
		resp, err := http.Get("http://" + n.API + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz: %s", resp.Status)
		}
		return nil
	})
	return n
}

// publish posts body to channel through the HTTP API.
func (n *node) publish(t *testing.T, channel, body string) {
	t.Helper()
	resp, err := http.Post("http://"+n.API+"/api/publish?channel="+channel, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("publish: %s %s", resp.Status, b)
	}
}

// waitFor polls check every 20ms until it returns nil, failing the test
// with the last error after d.
func waitFor(t *testing.T, d time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting %v for %s: %v", d, what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sseEvent is what a client dispatched.
type sseEvent struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data string `json:"data"`
}

// envelope decodes a message event's data.
func (e sseEvent) envelope(t *testing.T) (channel string, offset int, data string) {
	t.Helper()
	var env struct {
		Channel string `json:"channel"`
		Offset  int    `json:"offset"`
		Data    string `json:"data"`
	}
	if err := json.Unmarshal([]byte(e.Data), &env); err != nil {
		t.Fatalf("event data %q: %v", e.Data, err)
	}
	return env.Channel, env.Offset, env.Data
}

// nodeClient is the eventsource npm client, run by node/client.mjs.
type nodeClient struct {
	mu     sync.Mutex
	events []sseEvent
}

func startNodeClient(t *testing.T, url string) *nodeClient {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node is not installed: run `make test-deps`")
	}
	dir, err := filepath.Abs("node")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "eventsource")); err != nil {
		t.Fatal("the eventsource package is missing: run `make test-deps` (npm install in test/sse/node)")
	}
	cmd := exec.Command("node", filepath.Join(dir, "client.mjs"), url)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	c := &nodeClient{}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var e sseEvent
			if json.Unmarshal(sc.Bytes(), &e) == nil {
				c.mu.Lock()
				c.events = append(c.events, e)
				c.mu.Unlock()
			}
		}
	}()
	return c
}

// count is how many events of type typ the client saw.
func (c *nodeClient) of(typ string) []sseEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []sseEvent
	for _, e := range c.events {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// waitN waits until the client saw n events of type typ and returns them.
func (c *nodeClient) waitN(t *testing.T, typ string, n int) []sseEvent {
	t.Helper()
	waitFor(t, 20*time.Second, fmt.Sprintf("%d %s events", n, typ), func() error {
		if got := len(c.of(typ)); got < n {
			return fmt.Errorf("%d so far", got)
		}
		return nil
	})
	return c.of(typ)
}

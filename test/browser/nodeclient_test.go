package browser

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// event is one line printed by node/harness.js.
type event struct {
	Ev            string          `json:"ev"`
	Channel       string          `json:"channel"`
	Offset        uint64          `json:"offset"`
	Epoch         string          `json:"epoch"`
	Data          json.RawMessage `json:"data"`
	Code          int             `json:"code"`
	Reason        string          `json:"reason"`
	WillReconnect bool            `json:"willReconnect"`
	Reconnected   bool            `json:"reconnected"`
	Recovered     bool            `json:"recovered"`
	Attempt       int             `json:"attempt"`
	Delay         int             `json:"delay"`
	State         string          `json:"state"`
	N             int             `json:"n"`
	Message       string          `json:"message"`
	T             int64           `json:"t"` // when the harness saw it, Unix ms
}

// harnessConfig is node/harness.js's argument.
type harnessConfig struct {
	URL          string         `json:"url"`
	Token        string         `json:"token,omitempty"`
	TokenURL     string         `json:"tokenURL,omitempty"`
	Channels     []string       `json:"channels,omitempty"`
	Reconnect    map[string]any `json:"reconnect,omitempty"`
	PingInterval int            `json:"pingInterval"`
	PongTimeout  int            `json:"pongTimeout,omitempty"`
}

// nodeClient is herald.js running under Node, driven over stdin/stdout.
type nodeClient struct {
	t     *testing.T
	stdin io.WriteCloser

	mu     sync.Mutex
	events []event
	more   chan struct{} // signalled on every new event
}

// nodeModules is where `make test-deps` installs Node's ws package.
func nodeModules(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node is not installed: run `make test-deps` (or apt-get install nodejs npm)")
	}
	dir, err := filepath.Abs(filepath.Join("..", "interop", "node", "node_modules"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ws")); err != nil {
		t.Fatal("Node's ws package is missing: run `make test-deps` (npm install in test/interop/node)")
	}
	return dir
}

// startNodeClient runs node/harness.js with cfg; it is stopped when the
// test ends, and at most after 60 s.
func startNodeClient(t *testing.T, cfg harnessConfig) *nodeClient {
	t.Helper()
	mods := nodeModules(t)
	arg, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, "node", "harness.js", string(arg))
	cmd.Dir = "node"
	cmd.Env = append(os.Environ(), "NODE_PATH="+mods)
	cmd.Stderr = &testWriter{t: t}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start node: %v", err)
	}
	c := &nodeClient{t: t, stdin: stdin, more: make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			var e event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				continue
			}
			c.mu.Lock()
			c.events = append(c.events, e)
			c.mu.Unlock()
			select {
			case c.more <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		cancel()
		_ = cmd.Wait()
	})
	return c
}

// do sends a command to the harness.
func (c *nodeClient) do(cmd map[string]any) {
	c.t.Helper()
	b, _ := json.Marshal(cmd)
	if _, err := c.stdin.Write(append(b, '\n')); err != nil {
		c.t.Fatalf("harness command %s: %v", b, err)
	}
}

// snapshot returns the events so far.
func (c *nodeClient) snapshot() []event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]event(nil), c.events...)
}

// count returns how many events satisfy match.
func (c *nodeClient) count(match func(event) bool) int {
	n := 0
	for _, e := range c.snapshot() {
		if match(e) {
			n++
		}
	}
	return n
}

// waitN waits until n events satisfy match and returns the n-th.
func (c *nodeClient) waitN(what string, n int, d time.Duration, match func(event) bool) event {
	c.t.Helper()
	deadline := time.After(d)
	for {
		seen := 0
		for _, e := range c.snapshot() {
			if match(e) {
				seen++
				if seen == n {
					return e
				}
			}
		}
		select {
		case <-c.more:
		case <-deadline:
			c.t.Fatalf("waited %v for %s (%d of %d); events:\n%s", d, what, seen, n, c.dump())
		}
	}
}

func (c *nodeClient) dump() string {
	var out []byte
	for _, e := range c.snapshot() {
		b, _ := json.Marshal(e)
		out = append(append(out, b...), '\n')
	}
	return string(out)
}

// is matches events by name.
func is(name string) func(event) bool { return func(e event) bool { return e.Ev == name } }

// pubsOn matches publications on channel.
func pubsOn(channel string) func(event) bool {
	return func(e event) bool { return e.Ev == "pub" && e.Channel == channel }
}

// testWriter sends a child's stderr to the test log.
type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Logf("node: %s", p)
	return len(p), nil
}

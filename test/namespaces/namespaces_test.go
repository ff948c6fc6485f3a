// Package namespaces tests channel namespaces end to end: the real binary
// started with a config file listing namespaces, gorilla/websocket
// clients and the HTTP API; and `herald checkconfig` on good and bad
// files, with its exit status.
package namespaces

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/herald-push/herald/internal/testutil"
)

// config is the node's config file: anonymous clients may subscribe and
// publish to any channel by the patterns, so every refusal below is a
// namespace's.
const config = `{
	"allow_anonymous": true,
	"anonymous_subscribe": ["*"],
	"anonymous_publish": ["*"],
	"demo": false,
	"log_level": "warn",
	"namespaces": [
		{"name": "nohist", "history_size": 0},
		{"name": "keep", "history_ttl": "1h", "history_size": 10},
		{"name": "open", "anonymous_publish": true},
		{"name": "closed"},
		{"name": "small", "max_message_size": 64, "anonymous_publish": true}
	]
}`

// node is a running herald.
type node struct {
	*testutil.Proc
	API, WS string
}

func start(t *testing.T) *node {
	t.Helper()
	file := filepath.Join(t.TempDir(), "herald.json")
	if err := os.WriteFile(file, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := testutil.Binary(t, "herald")
	p := testutil.Start(t, bin, "serve", "--config", file, "--listen", "127.0.0.1:{port}", "--api-listen", "127.0.0.1:{port:api}")
	n := &node{Proc: p, API: "http://" + p.Extra["api"], WS: "ws://" + p.Addr}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(n.API + "/healthz")
		if err == nil {
			resp.Body.Close()
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("API never answered: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// msg is a server → client message.
type msg = testutil.Msg

type client struct {
	t *testing.T
	*websocket.Conn
}

func (n *node) dial(t *testing.T) *client {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(n.WS+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, Conn: c}
}

func (c *client) send(v string) {
	c.t.Helper()
	if err := c.WriteMessage(websocket.TextMessage, []byte(v)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) next() msg {
	c.t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := c.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	var m msg
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("not JSON: %q", b)
	}
	return m
}

// publish posts body to channel through the API and returns the status
// and the decoded answer.
func (n *node) publish(t *testing.T, channel, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(n.API+"/api/publish?channel="+url.QueryEscape(channel), "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return resp.StatusCode, out
}

func TestNamespaces(t *testing.T) {
	t.Parallel()
	n := start(t)

	t.Run("history off in one namespace, recovery in another", func(t *testing.T) {
		for _, tc := range []struct {
			channel   string
			recovered bool
		}{{"nohist:a", false}, {"keep:a", true}} {
			var epoch string
			for i := range 3 {
				status, out := n.publish(t, tc.channel, fmt.Sprintf(`"m%d"`, i+1))
				if status != 200 {
					t.Fatalf("publish to %s: %d %v", tc.channel, status, out)
				}
				epoch, _ = out["epoch"].(string)
			}
			c := n.dial(t)
			c.send(`{"op":"sub","channel":"` + tc.channel + `","since":{"offset":1,"epoch":"` + epoch + `"}}`)
			m := c.next()
			if m.Op != "subscribed" || m.Offset != 3 || m.Recovered == nil || *m.Recovered != tc.recovered {
				t.Fatalf("%s: %+v, want subscribed at 3 with recovered=%v", tc.channel, m, tc.recovered)
			}
			var want []uint64
			if tc.recovered {
				want = []uint64{2, 3}
			}
			if status, _ := n.publish(t, tc.channel, `"live"`); status != 200 {
				t.Fatalf("live publish: %d", status)
			}
			want = append(want, 4)
			for _, off := range want {
				if m := c.next(); m.Channel != tc.channel || m.Offset != off {
					t.Fatalf("%s: got %+v, want the message at %d (backlog %v then live)", tc.channel, m, off, want)
				}
			}
		}
	})

	t.Run("anonymous publish only where allowed", func(t *testing.T) {
		c := n.dial(t)
		c.send(`{"op":"pub","channel":"open:a","data":1}`)
		if m := c.next(); m.Op != "published" || m.Channel != "open:a" {
			t.Fatalf("anonymous pub in open: %+v, want published", m)
		}
		c.send(`{"op":"pub","channel":"closed:a","data":1}`)
		if m := c.next(); m.Op != "error" || m.Code != "forbidden" || !strings.Contains(m.Message, `"closed"`) {
			t.Fatalf("anonymous pub in closed: %+v, want forbidden naming the namespace", m)
		}
		c.send(`{"op":"pub","channel":"news","data":1}`)
		if m := c.next(); m.Op != "published" {
			t.Fatalf("anonymous pub to an unprefixed channel: %+v, want published (top-level patterns)", m)
		}
	})

	t.Run("unknown namespace refused", func(t *testing.T) {
		c := n.dial(t)
		c.send(`{"op":"sub","channel":"nope:a"}`)
		if m := c.next(); m.Op != "error" || m.Code != "unknown_namespace" || !strings.Contains(m.Message, `"nope"`) {
			t.Fatalf("sub nope:a: %+v, want unknown_namespace naming it", m)
		}
		c.send(`{"op":"pub","channel":"nope:a","data":1}`)
		if m := c.next(); m.Op != "error" || m.Code != "unknown_namespace" {
			t.Fatalf("pub nope:a: %+v, want unknown_namespace", m)
		}
		status, out := n.publish(t, "nope:a", "1")
		e, _ := out["error"].(map[string]any)
		if status != 400 || e["code"] != "unknown_namespace" || !strings.Contains(fmt.Sprint(e["message"]), `"nope"`) {
			t.Fatalf("API publish to nope:a: %d %v, want 400 unknown_namespace naming it", status, out)
		}
		resp, err := http.Get(n.API + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "\nherald_unknown_namespace_total 3\n") {
			t.Errorf("metrics do not count the 3 refusals:\n%s", grep(string(body), "namespace"))
		}
	})

	t.Run("large message refused in a small-message namespace", func(t *testing.T) {
		big := `"` + strings.Repeat("x", 100) + `"`
		status, out := n.publish(t, "small:a", big)
		if e, _ := out["error"].(map[string]any); status != 413 || e["code"] != "too_large" {
			t.Fatalf("API publish of 102 bytes to small:a: %d %v, want 413 too_large", status, out)
		}
		if status, _ := n.publish(t, "open:a", big); status != 200 {
			t.Fatalf("the same message to open:a: %d, want 200 (top-level size)", status)
		}
		c := n.dial(t)
		c.send(`{"op":"pub","channel":"small:a","data":` + big + `}`)
		if m := c.next(); m.Op != "error" || m.Code != "bad_request" {
			t.Fatalf("client pub of 102 bytes to small:a: %+v, want an error", m)
		}
		c.send(`{"op":"pub","channel":"small:a","data":"short"}`)
		if m := c.next(); m.Op != "published" {
			t.Fatalf("client pub of a short message to small:a: %+v, want published", m)
		}
	})
}

// TestCheckconfig runs the binary's checkconfig on a good and a bad file
// and checks its output and exit status.
func TestCheckconfig(t *testing.T) {
	t.Parallel()
	bin := testutil.Binary(t, "herald")
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(good, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(`{"allow_anonymous": true, "namespaces": [{"name": "a"}, {"name": "a"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(file string) (string, string, int) {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(bin, "checkconfig", file)
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return stdout.String(), stderr.String(), code
	}
	out, _, code := run(good)
	if code != 0 || !strings.HasPrefix(out, "ok: ") || !strings.Contains(out, "5 namespaces (closed, keep, nohist, open, small)") {
		t.Errorf("checkconfig good: exit %d, %q", code, out)
	}
	out, errOut, code := run(bad)
	if code != 1 || out != "" || !strings.Contains(errOut, `namespace "a" listed twice`) {
		t.Errorf("checkconfig bad: exit %d, stdout %q, stderr %q; want 1 and the error", code, out, errOut)
	}
}

// grep returns the lines of s containing sub.
func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

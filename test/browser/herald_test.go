package browser

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-push/herald/internal/testutil"
)

// jwtSecret signs the tokens of tests that need a subject.
const jwtSecret = "browser-tests-secret-0123456789abcdef"

// node is a herald process under test.
type node struct {
	*testutil.Proc
	// WS is the WebSocket listener's host:port, API the API listener's.
	WS, API string
}

// startHerald runs the herald binary with anonymous access, a JWT secret
// and the given extra flags.
func startHerald(t *testing.T, extra ...string) *node {
	t.Helper()
	bin := testutil.Binary(t, "herald")
	args := append([]string{"serve", "--allow-anonymous", "--demo", "--jwt-secret", jwtSecret,
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
	n.post(t, "/api/publish?channel="+channel, body)
}

// post sends a POST to the API and fails the test unless it answers 200.
func (n *node) post(t *testing.T, path, body string) string {
	t.Helper()
	resp, err := http.Post("http://"+n.API+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s %s", path, resp.Status, b)
	}
	return string(b)
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

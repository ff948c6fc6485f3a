// Package pusher runs the real herald binary with a Pusher app and drives
// it with pusher-js and Laravel Echo (installed from npm by
// scripts/test-deps.sh into node/).
package pusher

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/herald-push/herald/internal/testutil"
)

const (
	appKey    = "herald-test-key"
	appSecret = "herald-test-secret"
)

func TestPusherJSAndEcho(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node is not installed: run `make test-deps` (or apt-get install nodejs npm)")
	}
	for _, pkg := range []string{"pusher-js", "laravel-echo", "pusher"} {
		if _, err := os.Stat(filepath.Join("node", "node_modules", pkg)); err != nil {
			t.Fatalf("%s is missing: run `make test-deps` (npm install in test/pusher/node)", pkg)
		}
	}
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte(appSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := testutil.Binary(t, "herald")
	p := testutil.Start(t, bin, "serve", "--listen", "127.0.0.1:{port}", "--api-listen", "127.0.0.1:{port:api}", "--allow-anonymous",
		"--pusher-app-id", "1", "--pusher-key", appKey, "--pusher-secret-file", secret, "--log-level=warn")
	host, port, _ := net.SplitHostPort(p.Addr)
	_, apiPort, _ := net.SplitHostPort(p.Extra["api"])
	cmd := exec.Command("node", "scenarios.js", host, port, appKey, appSecret, "1", apiPort)
	cmd.Dir = "node"
	out, _ := cmd.Output() // the exit status repeats "ok"
	var r struct {
		OK      bool           `json:"ok"`
		Results map[string]any `json:"results"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("node scenarios: %v, output %q\nserver log:\n%s", err, out, p.Log)
	}
	for name, res := range r.Results {
		if res != true {
			t.Errorf("%s: %v", name, res)
		}
	}
	if !r.OK || len(r.Results) == 0 {
		t.Fatalf("scenarios failed: %s\nserver log:\n%s", out, p.Log)
	}
	t.Logf("pusher-js and Laravel Echo: %v", r.Results)
}

package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// NodeDir is the folder (from the module root) holding the Node interop
// client and its `ws` package, installed by `make test-deps`.
const NodeDir = "test/interop/node"

// NodeClient runs test/interop/node/client.js against url with args and
// returns what it printed (one JSON line). The test fails with the fix
// when node or the ws package is missing.
func NodeClient(t testing.TB, url string, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node is not installed: run `make test-deps` (or apt-get install nodejs npm)")
	}
	dir := filepath.Join(moduleRoot(), NodeDir)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ws")); err != nil {
		t.Fatal("Node's ws package is missing: run `make test-deps` (npm install in " + NodeDir + ")")
	}
	cmd := exec.Command("node", append([]string{"client.js", url}, args...)...)
	cmd.Dir = dir
	out, _ := cmd.Output() // the exit status repeats the JSON's "ok"
	return out
}

package interop

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// nodeResult is what node/client.js prints.
type nodeResult struct {
	OK          bool   `json:"ok"`
	Echoed      int    `json:"echoed"`
	CloseCode   int    `json:"closeCode"`
	CloseReason string `json:"closeReason"`
	Error       string `json:"error"`
	Extensions  string `json:"extensions"`
}

// runNode runs node/client.js against url. `make test` installs Node's ws
// package (scripts/test-deps.sh); without it the test fails and says how.
func runNode(t *testing.T, url string, args ...string) nodeResult {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node is not installed: run `make test-deps` (or apt-get install nodejs npm)")
	}
	if _, err := os.Stat(filepath.Join("node", "node_modules", "ws")); err != nil {
		t.Fatal("Node's ws package is missing: run `make test-deps` (npm install in test/interop/node)")
	}
	cmd := exec.Command("node", append([]string{"client.js", url}, args...)...)
	cmd.Dir = "node"
	out, err := cmd.Output()
	var r nodeResult
	if jerr := json.Unmarshal(out, &r); jerr != nil {
		t.Fatalf("node client: %v / %v, output %q", err, jerr, out)
	}
	return r
}

func TestNodeWsClient(t *testing.T) {
	srv := startEcho(t)
	r := runNode(t, "ws://"+srv.Addr+"/node")
	if !r.OK {
		t.Fatalf("node ws client: %+v", r)
	}
	if r.CloseCode != 4000 {
		t.Fatalf("close code %d, want the echoed 4000", r.CloseCode)
	}
	t.Logf("node ws: %d messages echoed, closed with %d", r.Echoed, r.CloseCode)
}

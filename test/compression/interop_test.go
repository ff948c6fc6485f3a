package compression

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNodeWS echoes through Node's ws client with permessage-deflate, for
// several server windows. Node inflates with zlib, which rejects a
// back-reference beyond the negotiated window, so this also checks that
// herald honours server_max_window_bits.
func TestNodeWS(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node is not installed: run `make test-deps` (or apt-get install nodejs npm)")
	}
	if _, err := os.Stat(filepath.Join("..", "interop", "node", "node_modules", "ws")); err != nil {
		t.Fatal("Node's ws package is missing: run `make test-deps` (npm install in test/interop/node)")
	}
	srv := startEcho(t)
	for _, bits := range []int{0, 9, 12, 15} {
		t.Run(fmt.Sprint("server_max_window_bits=", bits), func(t *testing.T) {
			args := []string{"deflate.js", "ws://" + srv.Addr + "/node"}
			if bits != 0 {
				args = append(args, fmt.Sprint(bits))
			}
			cmd := exec.Command("node", args...)
			cmd.Dir = "node"
			out, err := cmd.Output()
			var r struct {
				OK         bool   `json:"ok"`
				Echoed     int    `json:"echoed"`
				Extensions string `json:"extensions"`
				Error      any    `json:"error"`
			}
			if jerr := json.Unmarshal(out, &r); jerr != nil || err != nil || !r.OK {
				t.Fatalf("node: %v / %v, output %q", err, jerr, out)
			}
			if !strings.HasPrefix(r.Extensions, "permessage-deflate") {
				t.Fatalf("extensions %q: compression was not negotiated", r.Extensions)
			}
			if bits != 0 && !strings.Contains(r.Extensions, fmt.Sprint(`"server_max_window_bits":`, bits)) {
				t.Fatalf("extensions %q: window not echoed", r.Extensions)
			}
			t.Logf("node ws: %s, %d echoes", r.Extensions, r.Echoed)
		})
	}
}

package compression

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/herald-push/herald/internal/testutil"
)

// TestNodeWS echoes through Node's ws client with permessage-deflate, for
// several server windows. Node inflates with zlib, which rejects a
// back-reference beyond the negotiated window, so this also checks that
// herald honours server_max_window_bits.
func TestNodeWS(t *testing.T) {
	srv := startEcho(t)
	for _, bits := range []int{0, 9, 12, 15} {
		t.Run(fmt.Sprint("server_max_window_bits=", bits), func(t *testing.T) {
			flag := "--deflate"
			if bits != 0 {
				flag += fmt.Sprint("=", bits)
			}
			out := testutil.NodeClient(t, "ws://"+srv.Addr+"/node", flag)
			var r struct {
				OK         bool   `json:"ok"`
				Echoed     int    `json:"echoed"`
				Extensions string `json:"extensions"`
				Error      any    `json:"error"`
			}
			if err := json.Unmarshal(out, &r); err != nil || !r.OK {
				t.Fatalf("node: %v, output %q", err, out)
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

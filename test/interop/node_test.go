package interop

import (
	"encoding/json"
	"testing"

	"github.com/herald-push/herald/internal/testutil"
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

// runNode runs node/client.js against url (see testutil.NodeClient).
func runNode(t *testing.T, url string, args ...string) nodeResult {
	t.Helper()
	out := testutil.NodeClient(t, url, args...)
	var r nodeResult
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("node client: %v, output %q", err, out)
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

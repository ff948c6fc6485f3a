package tls

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/herald-push/herald/internal/testutil"
)

// tlsCounters reads the TLS listener's counters from /api/stats.
func tlsCounters(t *testing.T, api string) (direct, fallback uint64) {
	t.Helper()
	var st struct {
		Server struct {
			TLS struct{ Direct, Fallback uint64 } `json:"tls"`
		} `json:"server"`
	}
	r, err := http.Get("http://" + api + "/api/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if err := json.NewDecoder(r.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st.Server.TLS.Direct, st.Server.TLS.Fallback
}

// TestNodeWsOverWSS: Node's `ws` package (test/interop/node/client.js,
// trusting the test certificate through NODE_EXTRA_CA_CERTS) echoes text
// and binary messages up to 1 MiB over wss://, with and without
// permessage-deflate, and closes with its code; Node negotiates TLS 1.3,
// so the loop engine carries every connection and none is bridged.
func TestNodeWsOverWSS(t *testing.T) {
	srv := start(t, "--echo", "--api-listen", "127.0.0.1:{port:api}")
	t.Setenv("NODE_EXTRA_CA_CERTS", srv.certFile)
	for i, args := range [][]string{nil, {"--deflate"}} {
		out := testutil.NodeClient(t, "wss://"+srv.tlsAddr+"/node", args...)
		var r struct {
			OK        bool   `json:"ok"`
			Echoed    int    `json:"echoed"`
			CloseCode int    `json:"closeCode"`
			Error     string `json:"error"`
		}
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("node client %v: %v, output %q", args, err, out)
		}
		if !r.OK || r.CloseCode != 4000 || r.Echoed == 0 {
			t.Fatalf("node ws over wss %v: %+v", args, r)
		}
		direct, fallback := tlsCounters(t, srv.Extra["api"])
		if direct != uint64(i+1) || fallback != 0 {
			t.Fatalf("after %d Node clients: %d on the loops, %d bridged; want all on the loops", i+1, direct, fallback)
		}
		t.Logf("node ws over wss %v: %d messages echoed, closed with %d", args, r.Echoed, r.CloseCode)
	}
}

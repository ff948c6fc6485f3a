package cluster

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPusherJSAcrossNodes runs pusher-js on two nodes sharing NATS, and
// Pusher's Node server library against each node's API
// (test/pusher/node/cluster.js): an event triggered on one node's API
// reaches a client of the other, a client event crosses nodes, and
// presence (member lists, member_added, member_removed, the API's users)
// is the cluster's.
func TestPusherJSAcrossNodes(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node is not installed: run `make test-deps` (or apt-get install nodejs npm)")
	}
	dir := filepath.Join("..", "pusher", "node")
	for _, pkg := range []string{"pusher-js", "pusher"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg)); err != nil {
			t.Fatalf("%s is missing: run `make test-deps` (npm install in test/pusher/node)", pkg)
		}
	}
	s := startNATS(t, 0, t.TempDir())
	a := startPusherNode(t, "a", s.ClientURL())
	b := startPusherNode(t, "b", s.ClientURL())
	port := func(u string) string {
		_, p, _ := net.SplitHostPort(u[strings.Index(u, "://")+3:])
		return p
	}
	cmd := exec.Command("node", "cluster.js", "127.0.0.1", port(a.WS), port(b.WS), pusherKey, pusherSecret, pusherAppID, port(a.API), port(b.API))
	cmd.Dir = dir
	out, _ := cmd.Output() // the exit status repeats "ok"
	var r struct {
		OK      bool           `json:"ok"`
		Results map[string]any `json:"results"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("node cluster.js: %v, output %q\nnode a:\n%s\nnode b:\n%s", err, out, a.Log, b.Log)
	}
	for name, res := range r.Results {
		if res != true {
			t.Errorf("%s: %v", name, res)
		}
	}
	if !r.OK || len(r.Results) != 3 {
		t.Fatalf("scenarios: %s\nnode a:\n%s\nnode b:\n%s", out, a.Log, b.Log)
	}
	t.Logf("pusher-js across two nodes: %v", r.Results)
}

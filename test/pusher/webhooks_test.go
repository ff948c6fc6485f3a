package pusher

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/herald-push/herald/internal/testutil"
)

// hookEvent is one webhook event as Pusher documents it.
type hookEvent struct {
	Name     string `json:"name"`
	Channel  string `json:"channel"`
	Event    string `json:"event,omitempty"`
	Data     string `json:"data,omitempty"`
	SocketID string `json:"socket_id,omitempty"`
	UserID   string `json:"user_id,omitempty"`
}

// The binary posts the webhooks of a pusher-js session, signed with the
// app's secret, to a receiver in this process given with --pusher-webhook.
func TestPusherJSWebhooks(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node is not installed: run `make test-deps` (or apt-get install nodejs npm)")
	}
	if _, err := os.Stat(filepath.Join("node", "node_modules", "pusher-js")); err != nil {
		t.Fatal("pusher-js is missing: run `make test-deps` (npm install in test/pusher/node)")
	}
	events := make(chan hookEvent, 100)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		m := hmac.New(sha256.New, []byte(appSecret))
		m.Write(body)
		if got, want := r.Header.Get("X-Pusher-Signature"), hex.EncodeToString(m.Sum(nil)); got != want {
			t.Errorf("X-Pusher-Signature %q, want %q (body %s)", got, want, body)
		}
		if r.Header.Get("X-Pusher-Key") != appKey || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("headers %v", r.Header)
		}
		var p struct {
			TimeMS int64       `json:"time_ms"`
			Events []hookEvent `json:"events"`
		}
		if err := json.Unmarshal(body, &p); err != nil || p.TimeMS == 0 || len(p.Events) == 0 {
			t.Errorf("body %s: %v", body, err)
		}
		for _, ev := range p.Events {
			events <- ev
		}
	}))
	defer recv.Close()

	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte(appSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := testutil.Binary(t, "herald")
	p := testutil.Start(t, bin, "serve", "--listen", "127.0.0.1:{port}", "--api-listen", "127.0.0.1:{port:api}", "--allow-anonymous",
		"--pusher-app-id", "1", "--pusher-key", appKey, "--pusher-secret-file", secret, "--pusher-webhook", recv.URL+"/pusher/webhooks", "--log-level=warn")
	host, port, _ := net.SplitHostPort(p.Addr)
	cmd := exec.Command("node", "webhooks.js", host, port, appKey, appSecret)
	cmd.Dir = "node"
	out, _ := cmd.Output()
	var r struct {
		OK     bool   `json:"ok"`
		Sender string `json:"sender"`
		Error  string `json:"error"`
	}
	if err := json.Unmarshal(out, &r); err != nil || !r.OK {
		t.Fatalf("node webhooks.js: %v %q\nserver log:\n%s", err, out, p.Log)
	}
	const ch = "presence-hooks"
	want := map[hookEvent]int{
		{Name: "channel_occupied", Channel: ch}:                                                                      1,
		{Name: "member_added", Channel: ch, UserID: "w1"}:                                                            1,
		{Name: "member_added", Channel: ch, UserID: "w2"}:                                                            1,
		{Name: "client_event", Channel: ch, Event: "client-wave", Data: `{"n":1}`, SocketID: r.Sender, UserID: "w2"}: 1,
		{Name: "member_removed", Channel: ch, UserID: "w2"}:                                                          1,
		{Name: "member_removed", Channel: ch, UserID: "w1"}:                                                          1,
		{Name: "channel_vacated", Channel: ch}:                                                                       1,
	}
	// Batches may be posted concurrently: the events are matched as a set
	// (channel_vacated comes after its debounce delay).
	deadline := time.After(15 * time.Second)
	for left := len(want); left > 0; {
		select {
		case ev := <-events:
			if want[ev] == 0 {
				t.Fatalf("unexpected or repeated webhook event %+v", ev)
			}
			want[ev]--
			left--
		case <-deadline:
			t.Fatalf("webhook events missing: %v\nserver log:\n%s", want, p.Log)
		}
	}
	t.Logf("pusher-js session: %d webhook events, signatures checked", 7)
}

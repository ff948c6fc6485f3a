package herald

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/herald-push/herald/namespace"
	"github.com/herald-push/herald/server"
)

// nsConfig is a node's config with the namespaces of js (the config
// file's form) and an API key, so the handler serves any Host.
func nsConfig(t *testing.T, js string) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen, cfg.APIListen, cfg.APIKey = "127.0.0.1:0", "127.0.0.1:0", "k"
	cfg.AllowAnonymous, cfg.Loops = true, 1
	if err := json.Unmarshal([]byte(js), &cfg.Namespaces); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestNamespacesAPI(t *testing.T) {
	t.Parallel()
	cfg := nsConfig(t, `[{"name": "small", "max_message_size": 8}, {"name": "nohist", "history_size": 0}]`)
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := n.APIHandler()
	cases := []struct {
		name, method, target, body string
		status                     int
		code                       string
	}{
		{"unknown namespace", "POST", "/api/publish?channel=nope:a", "1", 400, "unknown_namespace"},
		{"unknown in a broadcast", "POST", "/api/broadcast", `{"channels":["small:a","nope:a"],"data":1}`, 400, "unknown_namespace"},
		{"unknown history", "GET", "/api/history?channel=nope:a", "", 400, "unknown_namespace"},
		{"too large for the namespace", "POST", "/api/publish?channel=small:a", `"123456789"`, 413, "too_large"},
		{"fits the namespace", "POST", "/api/publish?channel=small:a", `"12345"`, 200, ""},
		{"unprefixed: top-level size", "POST", "/api/publish?channel=news", `"123456789"`, 200, ""},
		{"personal channel", "POST", "/api/publish?channel=user:alice", `1`, 200, ""},
	}
	for _, tc := range cases {
		r := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
		r.Header.Set("X-API-Key", "k")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, w.Code, w.Body, tc.status)
			continue
		}
		if tc.code != "" {
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			_ = json.Unmarshal(w.Body.Bytes(), &e)
			if e.Error.Code != tc.code {
				t.Errorf("%s: code %q (%s), want %q", tc.name, e.Error.Code, e.Error.Message, tc.code)
			}
			// Said once: the namespace's refusal, which names the
			// channel, then a broadcast's own context.
			const refusal = `unknown namespace "nope" (channel "nope:a")`
			if tc.code == "unknown_namespace" && (!strings.HasPrefix(e.Error.Message, refusal) || strings.Count(e.Error.Message, "unknown namespace") != 1 ||
				strings.Count(e.Error.Message, `"nope:a"`) != 1) {
				t.Errorf("%s: message %q, want it to start with %q and say unknown namespace and the channel once", tc.name, e.Error.Message, refusal)
			}
			if tc.code == "unknown_namespace" && tc.method == "POST" && !strings.Contains(tc.target, "broadcast") && e.Error.Message != refusal {
				t.Errorf("%s: message %q, want %q", tc.name, e.Error.Message, refusal)
			}
		}
	}
	if _, err := n.Publish("nohist:a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if info, ok := n.Hub().Info("nohist:a"); ok && info.HistoryLen != 0 {
		t.Errorf("nohist:a keeps %d messages, want none", info.HistoryLen)
	}
	if _, err := n.Publish("nope:a", []byte("1")); err == nil {
		t.Error("Node.Publish to an unknown namespace succeeded")
	}
	if got := n.Stats().UnknownNamespace; got != 4 {
		t.Errorf("unknown_namespace counted %d refusals, want 4", got)
	}
}

func TestNamespacesRefused(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, js, want string }{
		{"message over the output budget", `[{"name": "big", "max_message_size": 300000000}]`, "write_buffer_limit"},
		{"bad name", `[{"name": "a:b"}]`, "not allowed"},
		{"reserved", `[{"name": "user"}]`, "reserved"},
		{"the demo without its namespace", `[{"name": "chat"}]`, "demo"},
	}
	for _, tc := range cases {
		cfg := nsConfig(t, tc.js)
		cfg.Demo = tc.want == "demo"
		if err := Check(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Check = %v, want %q", tc.name, err, tc.want)
		}
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New = %v, want %q", tc.name, err, tc.want)
		}
	}
	if err := Check(nsConfig(t, `[{"name": "ok", "history_ttl": "72h"}]`)); err != nil {
		t.Errorf("Check of a good config: %v", err)
	}
}

func TestNamespaceRetention(t *testing.T) {
	t.Parallel()
	cfg := nsConfig(t, `[{"name": "long", "history_ttl": "72h", "history_size": 1000}, {"name": "big", "max_message_size": 500000}]`)
	tab, err := namespace.New(cfg.Namespaces)
	if err != nil {
		t.Fatal(err)
	}
	size, ttl, payload := cfg.retention(tab)
	if size != 1000 || ttl.Hours() != 72 || payload != 500000 {
		t.Errorf("retention = %d, %v, %d; want 1000, 72h, 500000", size, ttl, payload)
	}
	var zero Config
	zero.Config = server.Config{Listen: "x"}
	if size, ttl, payload := zero.retention(nil); size != 100 || ttl.Minutes() != 5 || payload != 256<<10 {
		t.Errorf("retention of a zero config = %d, %v, %d; want the hub's defaults", size, ttl, payload)
	}
}

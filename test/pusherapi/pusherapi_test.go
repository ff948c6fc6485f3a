// Package pusherapi_test drives herald's Pusher HTTP API with Pusher's
// official Node server library (npm `pusher`, pinned in node/package.json,
// installed by `make test-deps`): what the library sends must be signed,
// routed and answered as Pusher would, and arrive at the node as sent.
package pusherapi_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/herald-push/herald/api"
	"github.com/herald-push/herald/pusher"
	"github.com/herald-push/herald/pusherapi"
)

var app = pusher.App{ID: "4242", Key: "interop-key", Secret: "interop-secret"}

// service is a fake node: it records what arrives and answers from a
// fixed set of channels.
type service struct {
	mu         sync.Mutex
	triggered  []pusher.Event
	terminated []string
	prefixes   []string
}

func (s *service) App(id string) (pusher.App, bool) { return app, id == app.ID }

func (s *service) Trigger(appID string, ev pusher.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.triggered = append(s.triggered, ev)
	return nil
}

var channels = map[string]pusher.ChannelInfo{
	"news":          {Occupied: true, SubscriptionCount: 7},
	"presence-room": {Occupied: true, UserCount: 2, SubscriptionCount: 3},
	"presence-hall": {Occupied: true, UserCount: 1, SubscriptionCount: 1},
}

func (s *service) Channels(appID, prefix string) (map[string]pusher.ChannelInfo, error) {
	s.mu.Lock()
	s.prefixes = append(s.prefixes, prefix)
	s.mu.Unlock()
	out := map[string]pusher.ChannelInfo{}
	for name, ci := range channels {
		if len(name) >= len(prefix) && name[:len(prefix)] == prefix {
			out[name] = ci
		}
	}
	return out, nil
}

func (s *service) Channel(appID, name string) (pusher.ChannelInfo, error) {
	return channels[name], nil
}

func (s *service) Users(appID, channel string) ([]string, error) {
	if channel == "presence-room" {
		return []string{"alice", "bob"}, nil
	}
	return nil, nil
}

func (s *service) TerminateUser(appID, user string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.terminated = append(s.terminated, user)
	return nil
}

// backend is the rest of the API listener, unused here.
type backend struct{}

func (backend) Ready() (bool, string)                         { return true, "" }
func (backend) Publish(string, []byte) (api.Published, error) { return api.Published{}, nil }
func (backend) DisconnectUser(string, string) (int, error)    { return 0, nil }
func (backend) Channels(api.ChannelQuery) (any, string)       { return nil, "" }
func (backend) Stats() any                                    { return nil }

// result is what node/client.js prints.
type result struct {
	OK    bool `json:"ok"`
	Steps map[string]struct {
		Status int             `json:"status"`
		Body   json.RawMessage `json:"body"`
		Error  string          `json:"error"`
	} `json:"steps"`
	Error string `json:"error"`
}

func TestNodePusherLibrary(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatal("node is not installed: run `make test-deps` (or apt-get install nodejs npm)")
	}
	if _, err := os.Stat(filepath.Join("node", "node_modules", "pusher")); err != nil {
		t.Fatal("the Node pusher library is missing: run `make test-deps` (npm install in test/pusherapi/node)")
	}
	svc := &service{}
	// The API listener as herald builds it, with its own key set: the
	// Pusher API must not need it.
	h := api.NewHandler(backend{}, api.Options{APIKey: "herald-key", Pusher: pusherapi.NewHandler(svc, pusherapi.Options{})})
	srv := httptest.NewServer(h)
	defer srv.Close()
	u, _ := url.Parse(srv.URL)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "client.js", u.Hostname(), u.Port(), app.ID, app.Key, app.Secret)
	cmd.Dir = "node"
	cmd.Stderr = os.Stderr
	out, _ := cmd.Output() // the exit status repeats "ok"
	var r result
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("node client: %v, output %q", err, out)
	}
	if !r.OK {
		t.Fatalf("node client failed: %s", r.Error)
	}
	answers := map[string]string{
		"trigger":    `{"channels":{"news":{"subscription_count":7},"presence-room":{"subscription_count":3}}}`,
		"batch":      `{"batch":[{},{"subscription_count":3,"user_count":2}]}`,
		"sendToUser": `{}`,
		"channels":   `{"channels":{"presence-hall":{"subscription_count":1,"user_count":1},"presence-room":{"subscription_count":3,"user_count":2}}}`,
		"channel":    `{"occupied":true,"subscription_count":3,"user_count":2}`,
		"users":      `{"users":[{"id":"alice"},{"id":"bob"}]}`,
		"terminate":  `{}`,
	}
	for name, want := range answers {
		s, ok := r.Steps[name]
		if !ok || s.Status != 200 {
			t.Errorf("%s: %+v, want 200", name, s)
			continue
		}
		if !sameJSON(t, s.Body, want) {
			t.Errorf("%s: answer %s, want %s", name, s.Body, want)
		}
	}
	if s := r.Steps["wrongSecret"]; s.Status != 401 {
		t.Errorf("wrong secret: %+v, want 401", s)
	}

	svc.mu.Lock()
	defer svc.mu.Unlock()
	wantEvents := []pusher.Event{
		{Name: "greet", Channels: []string{"news", "presence-room"}, Data: `{"hello":"world"}`, SocketID: "123.456"},
		{Name: "one", Channels: []string{"news"}, Data: "first"},
		{Name: "two", Channels: []string{"presence-room"}, Data: `{"n":2}`},
		{Name: "note", Channels: []string{"#server-to-user-alice"}, Data: `{"for":"alice"}`},
	}
	if !reflect.DeepEqual(svc.triggered, wantEvents) {
		t.Errorf("the node received %+v,\nwant %+v", svc.triggered, wantEvents)
	}
	if !reflect.DeepEqual(svc.terminated, []string{"bob"}) {
		t.Errorf("terminated %v, want [bob]", svc.terminated)
	}
	if !reflect.DeepEqual(svc.prefixes, []string{"presence-"}) {
		t.Errorf("channel queries with prefixes %q, want [presence-]", svc.prefixes)
	}
	steps := make([]string, 0, len(r.Steps))
	for name := range r.Steps {
		steps = append(steps, name)
	}
	sort.Strings(steps)
	t.Logf("node pusher library: %v answered", steps)
}

// sameJSON compares two JSON texts as values.
func sameJSON(t *testing.T, got json.RawMessage, want string) bool {
	t.Helper()
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		return false
	}
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		t.Fatalf("bad expectation %s: %v", want, err)
	}
	return reflect.DeepEqual(a, b)
}

package push

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/herald-push/herald/hub"
	"github.com/herald-push/herald/namespace"
	"github.com/herald-push/herald/server"
)

// nsTable builds a namespace table from its config-file form.
func nsTable(t *testing.T, js string) *namespace.Table {
	t.Helper()
	var list []namespace.Config
	if err := json.Unmarshal([]byte(js), &list); err != nil {
		t.Fatal(err)
	}
	tab, err := namespace.New(list)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// TestNamespaces runs sub and pub against a node with namespaces: the
// harness's anonymous clients may subscribe and publish to "*", so every
// refusal here is the namespace's.
func TestNamespaces(t *testing.T) {
	t.Parallel()
	tab := nsTable(t, `[
		{"name": "open", "anonymous_publish": true, "max_message_size": 16},
		{"name": "closed"},
		{"name": "private", "anonymous_subscribe": false},
		{"name": "feed", "client_publish": false, "anonymous_publish": true},
		{"name": "nohist", "history_size": 0},
		{"name": "norec", "recovery": false}
	]`)
	n := startPush(t, hub.Config{Options: tab.HubOptions}, func(o *Options, _ *server.Config) {
		o.Namespaces = tab
		o.CommandRate = -1
	})
	tokenPath := "/ws?token=" + token(t, "alice", []string{"*"}, []string{"*"})
	cases := []struct {
		name string
		path string
		cmds []string
		want []string
	}{
		{name: "unknown namespace sub", cmds: []string{`{"op":"sub","channel":"nope:a","id":1}`},
			want: []string{`{"op":"error","code":"unknown_namespace","channel":"nope:a","id":1,"message":"unknown namespace \"nope\" (channel \"nope:a\")"}`}},
		{name: "unknown namespace in the URL", path: "/ws?channel=nope:a",
			want: []string{`{"op":"error","code":"unknown_namespace","channel":"nope:a","message":"unknown namespace \"nope\" (channel \"nope:a\")"}`}},
		{name: "unknown namespace pub", cmds: []string{`{"op":"pub","channel":"nope:a","data":1}`},
			want: []string{`{"op":"error","code":"unknown_namespace","channel":"nope:a","message":"unknown namespace \"nope\" (channel \"nope:a\")"}`}},
		{name: "unprefixed channels keep working", cmds: []string{`{"op":"sub","channel":"news"}`, `{"op":"pub","channel":"news","data":1}`},
			want: []string{`{"op":"subscribed","channel":"news"}`, `{"op":"published","channel":"news"}`}},
		{name: "anonymous publish where allowed", cmds: []string{`{"op":"pub","channel":"open:a","data":1}`},
			want: []string{`{"op":"published","channel":"open:a","offset":1}`}},
		{name: "anonymous publish refused by default", cmds: []string{`{"op":"pub","channel":"closed:a","data":1}`},
			want: []string{`{"op":"error","code":"forbidden","channel":"closed:a"}`}},
		{name: "token publish where anonymous may not", path: tokenPath, cmds: []string{`{"op":"pub","channel":"closed:a","data":1}`},
			want: []string{`{"op":"published","channel":"closed:a"}`}},
		{name: "anonymous subscribe refused", cmds: []string{`{"op":"sub","channel":"private:a"}`},
			want: []string{`{"op":"error","code":"forbidden","channel":"private:a"}`}},
		{name: "token subscribe where anonymous may not", path: tokenPath, cmds: []string{`{"op":"sub","channel":"private:a"}`},
			want: []string{`{"op":"subscribed","channel":"private:a"}`}},
		{name: "client publish off for tokens", path: tokenPath, cmds: []string{`{"op":"pub","channel":"feed:a","data":1}`},
			want: []string{`{"op":"error","code":"forbidden","channel":"feed:a"}`}},
		{name: "client publish off for anonymous", cmds: []string{`{"op":"pub","channel":"feed:a","data":1}`},
			want: []string{`{"op":"error","code":"forbidden","channel":"feed:a"}`}},
		{name: "message too large for the namespace", cmds: []string{`{"op":"pub","channel":"open:big","data":"` + strings.Repeat("x", 20) + `"}`},
			want: []string{`{"op":"error","code":"bad_request","channel":"open:big"}`}},
		{name: "the personal channel keeps the top level", path: "/ws?token=" + token(t, "alice", nil, []string{"user:alice"}), cmds: []string{`{"op":"pub","channel":"user:alice","data":1}`},
			want: []string{`{"op":"published","channel":"user:alice"}`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := tc.path
			if path == "" {
				path = "/ws"
			}
			c := n.dial(t, path)
			for _, cmd := range tc.cmds {
				send(c, cmd)
			}
			for _, w := range tc.want {
				expect(t, c, w)
			}
		})
	}
}

// TestNamespaceRecovery resubscribes with since in a namespace without
// history, one without recovery and one with the defaults.
func TestNamespaceRecovery(t *testing.T) {
	t.Parallel()
	tab := nsTable(t, `[{"name": "nohist", "history_size": 0}, {"name": "norec", "recovery": false}, {"name": "keep"}]`)
	n := startPush(t, hub.Config{Options: tab.HubOptions}, func(o *Options, _ *server.Config) {
		o.Namespaces = tab
		o.CommandRate = -1
	})
	cases := []struct {
		channel   string
		recovered bool
	}{
		{"nohist:a", false},
		{"norec:a", false},
		{"keep:a", true},
	}
	for _, tc := range cases {
		t.Run(tc.channel, func(t *testing.T) {
			t.Parallel()
			first := n.publish(t, tc.channel, `"1"`)
			n.publish(t, tc.channel, `"2"`)
			n.publish(t, tc.channel, `"3"`)
			c := n.dial(t, "/ws")
			send(c, `{"op":"sub","channel":"`+tc.channel+`","since":{"offset":`+"1"+`,"epoch":"`+first.Epoch+`"}}`)
			got := expect(t, c, `{"op":"subscribed","channel":"`+tc.channel+`","offset":3}`)
			if got["recovered"] != tc.recovered {
				t.Fatalf("recovered %v, want %v", got["recovered"], tc.recovered)
			}
			if tc.recovered {
				expect(t, c, `{"channel":"`+tc.channel+`","offset":2,"data":"2"}`)
				expect(t, c, `{"channel":"`+tc.channel+`","offset":3,"data":"3"}`)
			}
			// The next frame is the live message, not a backlog.
			n.publish(t, tc.channel, `"4"`)
			expect(t, c, `{"channel":"`+tc.channel+`","offset":4,"data":"4"}`)
		})
	}
}

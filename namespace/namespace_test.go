package namespace

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/herald-push/herald/hub"
)

// parse decodes a namespaces list as the config file writes it.
func parse(t *testing.T, js string) []Config {
	t.Helper()
	var list []Config
	dec := json.NewDecoder(strings.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&list); err != nil {
		t.Fatalf("decode %s: %v", js, err)
	}
	return list
}

func TestLookup(t *testing.T) {
	t.Parallel()
	tab, err := New(parse(t, `[
		{"name": "chat", "history_size": 0, "history_ttl": "2h", "history_bytes": 1024, "max_message_size": 512},
		{"name": "feed", "recovery": false, "anonymous_subscribe": false, "client_publish": false},
		{"name": "open", "anonymous_publish": true, "history_ttl": "-1s"}
	]`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		channel string
		ns      string // "" top level
		unknown bool
	}{
		{"news", "", false},
		{"user:alice", "", false},
		{"chat:room1", "chat", false},
		{"chat:", "chat", false},
		{"chat:a:b", "chat", false},
		{"feed:x", "feed", false},
		{"open:x", "open", false},
		{"nope:x", "", true},
		{":x", "", true},
		{"Chat:x", "", true},
	}
	for _, tc := range tests {
		ns, err := tab.Lookup(tc.channel)
		if tc.unknown {
			prefix, _, _ := strings.Cut(tc.channel, ":")
			if want := fmt.Sprintf("unknown namespace %q (channel %q)", prefix, tc.channel); !errors.Is(err, ErrUnknown) || err.Error() != want {
				t.Errorf("Lookup(%q) = %v, want ErrUnknown: %s", tc.channel, err, want)
			}
			continue
		}
		if err != nil || ns.Name != tc.ns {
			t.Errorf("Lookup(%q) = %v, %v; want namespace %q", tc.channel, ns, err, tc.ns)
		}
	}
	chat, _ := tab.Lookup("chat:x")
	if want := (hub.ChannelOptions{HistorySize: -1, HistoryTTL: 2 * time.Hour, HistoryChannelBytes: 1024, MaxPayload: 512}); chat.Hub != want {
		t.Errorf("chat: %+v, want %+v", chat.Hub, want)
	}
	if !chat.AnonymousSubscribe() || chat.AnonymousPublish() || !chat.ClientPublish() || chat.MaxMessageSize() != 512 {
		t.Errorf("chat permissions: sub %v pub %v client %v max %d, want true false true 512",
			chat.AnonymousSubscribe(), chat.AnonymousPublish(), chat.ClientPublish(), chat.MaxMessageSize())
	}
	feed, _ := tab.Lookup("feed:x")
	if !feed.Hub.NoRecovery || feed.AnonymousSubscribe() || feed.ClientPublish() {
		t.Errorf("feed: %+v sub %v client %v, want recovery off, anonymous subscribe off, client publish off", feed.Hub, feed.AnonymousSubscribe(), feed.ClientPublish())
	}
	open, _ := tab.Lookup("open:x")
	if !open.AnonymousPublish() || open.Hub.HistoryTTL != -1 {
		t.Errorf("open: anonymous publish %v ttl %v, want true and no age limit", open.AnonymousPublish(), open.Hub.HistoryTTL)
	}
	if top := Top(); !top.AnonymousSubscribe() || !top.AnonymousPublish() || !top.ClientPublish() || top.Hub != (hub.ChannelOptions{}) {
		t.Errorf("top level restricts something: %+v", top)
	}
	if got := strings.Join(tab.Names(), ","); got != "chat,feed,open" {
		t.Errorf("Names = %s", got)
	}
}

func TestNoNamespacesAllowsEverything(t *testing.T) {
	t.Parallel()
	empty, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tab := range []*Table{nil, empty} {
		for _, ch := range []string{"news", "any:thing", "user:a"} {
			if ns, err := tab.Lookup(ch); err != nil || ns != Top() {
				t.Errorf("Lookup(%q) without namespaces = %v, %v; want the top level", ch, ns, err)
			}
		}
	}
}

func TestNewRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		js   string
		want string
	}{
		{"empty name", `[{"name": ""}]`, "1 to 64"},
		{"long name", `[{"name": "` + strings.Repeat("a", 65) + `"}]`, "1 to 64"},
		{"colon", `[{"name": "a:b"}]`, "not allowed"},
		{"space", `[{"name": "a b"}]`, "not allowed"},
		{"user", `[{"name": "user"}]`, "reserved"},
		{"duplicate", `[{"name": "a"}, {"name": "a"}]`, "listed twice"},
		{"ttl zero", `[{"name": "a", "history_ttl": "0s"}]`, "history_ttl 0"},
		{"huge history", `[{"name": "a", "history_size": 2000000}]`, "at most"},
		{"negative size", `[{"name": "a", "max_message_size": -1}]`, "max_message_size"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(parse(t, tc.js))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New(%s) = %v, want an error containing %q", tc.js, err, tc.want)
			}
		})
	}
}

func TestUnknownField(t *testing.T) {
	t.Parallel()
	var list []Config
	dec := json.NewDecoder(strings.NewReader(`[{"name": "a", "presense": true}]`))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&list); err == nil {
		t.Fatal("an option that does not exist was accepted")
	}
}

func TestRetention(t *testing.T) {
	t.Parallel()
	tab, err := New(parse(t, `[
		{"name": "a", "history_size": 500, "history_ttl": "72h"},
		{"name": "b", "history_ttl": "-1s", "max_message_size": 1000000},
		{"name": "c", "history_size": 0}
	]`))
	if err != nil {
		t.Fatal(err)
	}
	size, ttl, payload := tab.Retention(Defaults{HistorySize: 100, HistoryTTL: 5 * time.Minute, MaxMessageSize: 1000})
	if size != 500 || ttl != 72*time.Hour || payload != 1000000 {
		t.Fatalf("Retention = %d, %v, %d; want 500, 72h, 1000000", size, ttl, payload)
	}
	size, ttl, payload = (*Table)(nil).Retention(Defaults{HistorySize: 100, HistoryTTL: 5 * time.Minute, MaxMessageSize: 1000})
	if size != 100 || ttl != 5*time.Minute || payload != 1000 {
		t.Fatalf("Retention without namespaces = %d, %v, %d; want the defaults", size, ttl, payload)
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	tab, err := New(parse(t, `[{"name": "chat"}, {"name": "feed"}]`))
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range []string{"news", "user:a", "chat:room", "feed:x"} {
		if n := testing.AllocsPerRun(100, func() { _, _ = tab.HubOptions(ch) }); n != 0 {
			t.Errorf("HubOptions(%q) allocates %v times, want 0", ch, n)
		}
	}
}

// BenchmarkPublish is a hub's publish to a channel of no subscribers,
// without namespaces and with a table of 16 (the lookup runs on each
// publish for the payload limit).
func BenchmarkPublish(b *testing.B) {
	var list []Config
	for i := range 16 {
		list = append(list, Config{Name: "ns" + string(rune('a'+i))})
	}
	tab, err := New(list)
	if err != nil {
		b.Fatal(err)
	}
	data := []byte(`{"symbol":"HRLD","price":42.5}`)
	for _, bc := range []struct {
		name    string
		channel string
		opts    func(string) (hub.ChannelOptions, error)
	}{
		{"no-namespaces", "nsp:bench", nil},
		{"namespaced", "nsp:bench", tab.HubOptions},
		{"top-level", "bench", tab.HubOptions},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := hub.New(hub.Config{Options: bc.opts})
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h.Publish(bc.channel, data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestPresenceOption(t *testing.T) {
	t.Parallel()
	tab, err := New(parse(t, `[{"name": "room", "presence": true}, {"name": "news"}]`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		channel string
		want    bool
	}{
		{channel: "room:1", want: true},
		{channel: "news:1", want: false},
		{channel: "plain", want: false},
		{channel: "user:alice", want: false},
	} {
		ns, err := tab.Lookup(tc.channel)
		if err != nil {
			t.Fatalf("%s: %v", tc.channel, err)
		}
		if got := ns.Presence(); got != tc.want {
			t.Errorf("%s: presence %v, want %v", tc.channel, got, tc.want)
		}
	}
}

package herald

import (
	"testing"

	"github.com/herald-push/herald/namespace"
)

func TestPresenceChannels(t *testing.T) {
	t.Parallel()
	tab, err := namespace.New([]namespace.Config{{Name: "room", Presence: true}, {Name: "news"}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{PresenceChannels: []string{"lobby", "team.*"}}
	has, err := presenceChannels(cfg, tab)
	if err != nil || has == nil {
		t.Fatalf("presenceChannels: %v, %v", has != nil, err)
	}
	for ch, want := range map[string]bool{
		"room:1": true, "news:1": false, "lobby": true, "team.a": true, "other": false,
		"nope:lobby": false, "user:alice": false,
	} {
		if got := has(ch); got != want {
			t.Errorf("presence(%q) = %v, want %v", ch, got, want)
		}
	}
	if has, err := presenceChannels(Config{}, nil); err != nil || has != nil {
		t.Fatal("a node without presence channels has a presence func")
	}
}

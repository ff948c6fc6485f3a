package api

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// presenceBackend is a fakeBackend with the presence API: channel "room"
// has three members, other channels no presence.
type presenceBackend struct{ fakeBackend }

func (b *presenceBackend) Presence(channel string, limit int) (Presence, error) {
	if channel != "room" {
		return Presence{}, fmt.Errorf("%w: channel %q has no presence", ErrBadRequest, channel)
	}
	users := []string{"alice", "bob", "carol"}
	return Presence{Count: len(users), Users: users[:min(limit, len(users))]}, nil
}

func TestPresence(t *testing.T) {
	t.Parallel()
	h := NewHandler(&presenceBackend{}, Options{APIKey: "k"})
	auth := map[string]string{"X-API-Key": "k"}
	cases := []struct {
		name, target string
		header       map[string]string
		status       int
		want         string // in the body
	}{
		{name: "members", target: "/api/presence?channel=room", header: auth, status: http.StatusOK,
			want: `{"channel":"room","count":3,"users":["alice","bob","carol"]}`},
		{name: "limited list, exact count", target: "/api/presence?channel=room&limit=1", header: auth, status: http.StatusOK,
			want: `{"channel":"room","count":3,"users":["alice"]}`},
		{name: "no presence", target: "/api/presence?channel=news", header: auth, status: http.StatusBadRequest, want: `"bad_request"`},
		{name: "no channel", target: "/api/presence", header: auth, status: http.StatusBadRequest, want: `?channel= is required`},
		{name: "bad limit", target: "/api/presence?channel=room&limit=1001", header: auth, status: http.StatusBadRequest, want: `limit`},
		{name: "no key", target: "/api/presence?channel=room", status: http.StatusUnauthorized, want: `"unauthorized"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := call(h, "GET", tc.target, "", tc.header)
			if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.want) {
				t.Fatalf("%d %s, want %d with %s", w.Code, w.Body, tc.status, tc.want)
			}
		})
	}
	if w := call(NewHandler(&fakeBackend{}, Options{}), "GET", "/api/presence?channel=room", "", nil); w.Code != http.StatusNotImplemented {
		t.Fatalf("without PresenceBackend: %d, want 501", w.Code)
	}
}

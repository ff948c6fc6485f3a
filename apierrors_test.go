package herald

import (
	"errors"
	"fmt"
	"testing"

	"github.com/herald-push/herald/api"
	"github.com/herald-push/herald/hub"
)

// TestAPIErrorsSayItOnce: the hub's refusals of a channel name or a
// payload's size reach the API as the client should read them, once,
// however many layers wrapped them (a broker adds its own), and keep the
// kind that picks the status.
func TestAPIErrorsSayItOnce(t *testing.T) {
	t.Parallel()
	h := hub.New(hub.Config{MaxPayload: 100})
	_, invalid := h.Publish("a b", []byte("x"))
	_, large := h.Publish("ab", make([]byte, 300))
	_, hist := h.History("a b", nil, 10)
	for _, tc := range []struct {
		err  error
		kind error
		want string
	}{
		{invalid, api.ErrBadRequest, `invalid channel name "a b"`},
		{fmt.Errorf("broker: %w", invalid), api.ErrBadRequest, `invalid channel name "a b"`},
		{large, api.ErrTooLarge, `message of 300 bytes over the limit of 100 bytes (channel "ab")`},
		{fmt.Errorf("broker: %w", large), api.ErrTooLarge, `message of 300 bytes over the limit of 100 bytes (channel "ab")`},
		{hist, api.ErrBadRequest, `invalid channel name "a b"`},
	} {
		if tc.err == nil {
			t.Fatalf("the hub accepted what it should refuse (want %q)", tc.want)
		}
		got := apiError(tc.err)
		if got.Error() != tc.want || !errors.Is(got, tc.kind) {
			t.Errorf("apiError(%q) = %q (is %v: %v), want %q", tc.err, got, tc.kind, errors.Is(got, tc.kind), tc.want)
		}
	}
}

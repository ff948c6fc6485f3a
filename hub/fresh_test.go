package hub

import (
	"errors"
	"testing"
)

// TestSubscribeNew checks SubscribeNew: past indexThreshold and below it,
// every subscriber gets each message once, Unsubscribe finds the
// subscription it made, and trusted skips the channel cap as
// SubscribeTrusted does while the client's form is refused at it.
func TestSubscribeNew(t *testing.T) {
	t.Parallel()
	h := New(Config{MaxChannels: 1})
	l := &inlineLoop{}
	recs := make([]*recorder, indexThreshold+5)
	for i := range recs {
		recs[i] = &recorder{}
		if _, _, _, _, err := h.SubscribeNew(l, "c", recs[i], nil, false); err != nil {
			t.Fatalf("SubscribeNew %d: %v", i, err)
		}
	}
	h.Unsubscribe(l, "c", recs[2])
	mustPublish(t, h, "c", "x")
	for i, r := range recs {
		want := 1
		if i == 2 {
			want = 0
		}
		if len(r.msgs) != want {
			t.Errorf("subscriber %d got %d messages, want %d", i, len(r.msgs), want)
		}
	}
	if _, _, _, _, err := h.SubscribeNew(l, "d", &recorder{}, nil, false); !errors.Is(err, ErrChannelLimit) {
		t.Errorf("a client's new channel past the cap: %v, want ErrChannelLimit", err)
	}
	if _, _, _, _, err := h.SubscribeNew(l, "user:u", &recorder{}, nil, true); err != nil {
		t.Errorf("a trusted new channel past the cap: %v", err)
	}
}

// TestSubscribeNewTwice checks that race builds catch a SubscribeNew of a
// pair already subscribed (which would get every message twice).
func TestSubscribeNewTwice(t *testing.T) {
	t.Parallel()
	if !checkFresh {
		t.Skip("the check is in race builds only (make test runs them)")
	}
	h := New(Config{})
	l := &inlineLoop{}
	r := &recorder{}
	h.SubscribeNew(l, "c", r, nil, false)
	defer func() {
		if recover() == nil {
			t.Error("SubscribeNew of a subscribed pair did not panic in a race build")
		}
	}()
	h.SubscribeNew(l, "c", r, nil, false)
}

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

// TestSubscriptionsCountedPerLoop: Stats.Subscriptions sums what each
// loop counts, and LoopSubscribers lists a loop's own subscribers of a
// channel, a copy the caller may unsubscribe from.
func TestSubscriptionsCountedPerLoop(t *testing.T) {
	t.Parallel()
	h := New(Config{})
	l0, l1 := &inlineLoop{idx: 0}, &inlineLoop{idx: 1}
	a, b, c := &recorder{}, &recorder{}, &recorder{}
	for _, s := range []struct {
		l   Loop
		ch  string
		sub Subscriber
	}{{l0, "x", a}, {l0, "x", b}, {l1, "x", c}, {l1, "y", c}} {
		if _, _, _, _, err := h.SubscribeNew(s.l, s.ch, s.sub, nil, false); err != nil {
			t.Fatal(err)
		}
	}
	if n := h.Stats().Subscriptions; n != 4 {
		t.Fatalf("Subscriptions = %d, want 4", n)
	}
	got := h.LoopSubscribers(l0, "x")
	if len(got) != 2 || got[0] == got[1] || (got[0] != a && got[0] != b) || (got[1] != a && got[1] != b) {
		t.Fatalf("loop 0's subscribers of x: %v, want a and b", got)
	}
	for _, s := range got {
		h.Unsubscribe(l0, "x", s)
	}
	if n := len(h.LoopSubscribers(l0, "x")); n != 0 {
		t.Fatalf("loop 0 still lists %d subscribers of x", n)
	}
	if got := h.LoopSubscribers(l1, "x"); len(got) != 1 || got[0] != c {
		t.Fatalf("loop 1's subscribers of x: %v, want c", got)
	}
	if n := len(h.LoopSubscribers(l1, "nothing")); n != 0 {
		t.Fatalf("subscribers of an unknown channel: %d", n)
	}
	if n := h.Stats().Subscriptions; n != 2 {
		t.Fatalf("Subscriptions = %d after two left, want 2", n)
	}
}

// TestLazyIndex: a storm of SubscribeNew builds no index of a loop's list
// (outside race builds, whose checks look every pair up); the first
// Unsubscribe builds it, and it stays right through more subscriptions
// and removals.
func TestLazyIndex(t *testing.T) {
	t.Parallel()
	h := New(Config{})
	l := &inlineLoop{}
	recs := make([]*recorder, 4*indexThreshold)
	for i := range recs {
		recs[i] = &recorder{}
	}
	for _, r := range recs[:2*indexThreshold] {
		h.SubscribeNew(l, "c", r, nil, false)
	}
	list := &h.chans["c"].local
	if !checkFresh && list.index != nil {
		t.Fatal("SubscribeNew alone built the list's index")
	}
	h.Unsubscribe(l, "c", recs[3])
	if list.index == nil {
		t.Fatal("Unsubscribe from a long list built no index")
	}
	for _, r := range recs[2*indexThreshold:] {
		h.SubscribeNew(l, "c", r, nil, false)
	}
	for _, i := range []int{0, 2*indexThreshold + 1, len(recs) - 1} {
		h.Unsubscribe(l, "c", recs[i])
	}
	mustPublish(t, h, "c", "x")
	for i, r := range recs {
		want := 1
		if i == 0 || i == 3 || i == 2*indexThreshold+1 || i == len(recs)-1 {
			want = 0
		}
		if len(r.msgs) != want {
			t.Errorf("subscriber %d got %d messages, want %d", i, len(r.msgs), want)
		}
	}
	if len(list.index) != int(list.live) || list.live != int32(len(recs)-4) {
		t.Errorf("index holds %d, list %d live; want %d", len(list.index), list.live, len(recs)-4)
	}
}

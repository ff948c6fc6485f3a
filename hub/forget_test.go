package hub

import (
	"fmt"
	"testing"
	"time"
)

// TestForgetOnLastUnsubscribe: a channel with no history and no
// reservation is forgotten when its last subscriber leaves, not at the
// next Sweep; one that holds history or a reservation stays. A later
// subscriber with since gets recovered=false, as after a Sweep.
func TestForgetOnLastUnsubscribe(t *testing.T) {
	t.Parallel()
	h := New(Config{})
	l := &inlineLoop{}
	a, b := &recorder{}, &recorder{}
	pos, _, _, _ := h.Subscribe(l, "empty", a, nil)
	h.Subscribe(l, "empty", b, nil)
	h.Unsubscribe(l, "empty", a)
	if _, ok := h.Info("empty"); !ok {
		t.Fatal("channel forgotten while it still has a subscriber")
	}
	h.Unsubscribe(l, "empty", b)
	if _, ok := h.Info("empty"); ok {
		t.Fatal("channel with no subscriber and no history kept after its last subscriber left")
	}
	again, _, ok, _ := h.Subscribe(l, "empty", a, &pos)
	if ok || again.Epoch == pos.Epoch {
		t.Fatalf("re-subscribed at %+v, recovered %v: want a new epoch (not %s) and recovered=false", again, ok, pos.Epoch)
	}
	h.Unsubscribe(l, "empty", a)

	// History keeps a channel until it expires.
	h.Subscribe(l, "kept", a, nil)
	mustPublish(t, h, "kept", "1")
	h.Unsubscribe(l, "kept", a)
	if _, ok := h.Info("kept"); !ok {
		t.Fatal("channel with history forgotten when its last subscriber left")
	}

	// A reservation keeps a channel until it is given back.
	if err := h.Reserve("held"); err != nil {
		t.Fatal(err)
	}
	h.Subscribe(l, "held", a, nil)
	h.Unsubscribe(l, "held", a)
	if n := h.Sweep(); n != 0 {
		t.Fatalf("Sweep forgot %d channels, want none (history, reservation)", n)
	}
	if _, ok := h.Info("held"); !ok {
		t.Fatal("reserved channel forgotten")
	}
	h.Unreserve("held")
	h.Unreserve("held") // a second one is a no-op
	if _, ok := h.Info("held"); ok {
		t.Fatal("idle channel kept after its reservation was given back")
	}
	if s := h.Stats(); s.Channels != 1 || s.ClientChannels != 1 || s.Subscriptions != 0 {
		t.Fatalf("stats %+v: want only kept", s)
	}
}

// TestForgetOnLastUnsubscribeWhileWalking: a subscriber that leaves its
// channel from Deliver (the loop is walking the channel's subscribers)
// has the channel forgotten too, and a message still queued for the old
// channel reaches nobody.
func TestForgetOnLastUnsubscribeWhileWalking(t *testing.T) {
	t.Parallel()
	h := New(Config{HistorySize: -1})
	l := newGoLoop(t, 0)
	var leaver *leaveOnDeliver
	l.do(t, func() {
		leaver = &leaveOnDeliver{h: h, l: l, ch: "walk"}
		h.Subscribe(l, "walk", leaver, nil)
	})
	mustPublish(t, h, "walk", "1")
	mustPublish(t, h, "walk", "2")
	l.do(t, func() {})
	if leaver.n != 1 {
		t.Fatalf("delivered %d messages, want 1 (it left on the first)", leaver.n)
	}
	if _, ok := h.Info("walk"); ok {
		t.Fatal("channel kept after its last subscriber left from Deliver")
	}
}

type leaveOnDeliver struct {
	h  *Hub
	l  Loop
	ch string
	n  int
}

func (s *leaveOnDeliver) Deliver(*Message) {
	s.n++
	s.h.Unsubscribe(s.l, s.ch, s)
}

// TestSweepBatches: Sweep holds the registry lock for sweepBatch channels
// at most, letting go between batches, so a publish to an existing
// channel (and the creation of a new one) proceeds during a sweep over
// many channels.
func TestSweepBatches(t *testing.T) {
	t.Parallel()
	clk := newClock()
	h := New(Config{HistoryTTL: time.Minute, Now: clk.Now})
	const n = 20 * sweepBatch
	for i := range n {
		mustPublish(t, h, fmt.Sprintf("c%d", i), "x")
	}
	l := &inlineLoop{}
	live := &recorder{}
	h.Subscribe(l, "live", live, nil)
	clk.Advance(2 * time.Minute)
	pauses := 0
	h.sweepPaused = func() {
		// With the lock held, these would deadlock: each runs under a
		// bounded wait.
		pauses++
		done := make(chan error, 1)
		go func() {
			_, err := h.Publish("live", []byte("during"))
			if err == nil {
				_, err = h.Publish(fmt.Sprintf("new%d", pauses), []byte("during"))
			}
			done <- err
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("publish during a sweep: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("publish blocked between two batches of Sweep: the lock is still held")
		}
	}
	forgot := h.Sweep()
	if forgot != n {
		t.Fatalf("swept %d channels, want %d", forgot, n)
	}
	if want := n / sweepBatch; pauses < want {
		t.Fatalf("Sweep let go of the lock %d times over %d channels, want at least %d (batches of %d)", pauses, n, want, sweepBatch)
	}
	if got := len(live.offsets()); got != pauses {
		t.Fatalf("live subscriber got %d messages, want %d (one per pause)", got, pauses)
	}
}

// BenchmarkSweepBatch is the registry lock's hold for one batch of Sweep
// over channels with history that does not expire: what a publish to an
// existing channel may wait for during a sweep.
func BenchmarkSweepBatch(b *testing.B) {
	h := New(Config{HistoryTTL: -1})
	for i := range 100 * sweepBatch {
		mustPublish(b, h, fmt.Sprintf("c%d", i), "x")
	}
	b.ResetTimer()
	for range b.N {
		h.Sweep()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/batch")
}

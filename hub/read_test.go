package hub

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// pageOffsets lists the offsets of a page's messages.
func pageOffsets(p HistoryPage) []uint64 { return backlogOffsets(p.Messages) }

func TestHistoryPaging(t *testing.T) {
	t.Parallel()
	clk := newClock()
	h := New(Config{HistorySize: 50, Now: clk.Now})
	for range 60 {
		mustPublish(t, h, "a", "x")
		clk.Advance(time.Millisecond)
	}
	// History keeps 11..60. Page through it by 20 from the oldest.
	var got []uint64
	var since *Position
	var epoch string
	for pages := 0; ; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		p, err := h.History("a", since, 20)
		if err != nil {
			t.Fatal(err)
		}
		if !p.Recovered || p.Offset != 60 || len(p.Epoch) != 8 {
			t.Fatalf("page %d: %+v: want recovered at offset 60 with an epoch", pages, p)
		}
		epoch = p.Epoch
		got = append(got, pageOffsets(p)...)
		if !p.More {
			break
		}
		last := p.Messages[len(p.Messages)-1]
		since = &Position{Offset: last.Offset, Epoch: p.Epoch}
	}
	if !slices.Equal(got, seq(11, 60)) {
		t.Fatalf("paged offsets %v, want 11..60", got)
	}

	// Times are when the hub took each message, oldest first.
	p, _ := h.History("a", &Position{Offset: 58, Epoch: epoch}, 10)
	if !slices.Equal(pageOffsets(p), []uint64{59, 60}) || p.More {
		t.Fatalf("after 58: %v more=%v, want [59 60] and no more", pageOffsets(p), p.More)
	}
	if d := p.Messages[1].Time.Sub(p.Messages[0].Time); d != time.Millisecond {
		t.Fatalf("times %v and %v: want the publish times, 1 ms apart", p.Messages[0].Time, p.Messages[1].Time)
	}
	// Since the last offset: recovered, nothing left.
	if p, _ := h.History("a", &Position{Offset: 60, Epoch: epoch}, 10); !p.Recovered || len(p.Messages) != 0 || p.More {
		t.Fatalf("at the end: %+v, want recovered and empty", p)
	}
	// An offset without an epoch continues in the channel's epoch.
	if p, _ := h.History("a", &Position{Offset: 30}, 5); !p.Recovered || !slices.Equal(pageOffsets(p), seq(31, 35)) || !p.More {
		t.Fatalf("since 30 without epoch: %v recovered=%v more=%v", pageOffsets(p), p.Recovered, p.More)
	}
}

func TestHistoryNotRecovered(t *testing.T) {
	t.Parallel()
	clk := newClock()
	h := New(Config{HistorySize: 5, HistoryTTL: time.Minute, Now: clk.Now})
	var epoch string
	for range 8 {
		epoch = mustPublish(t, h, "a", `{"n":1}`).Epoch
	}
	// History keeps 4..8.
	cases := []struct {
		name  string
		since Position
	}{
		{"other epoch", Position{Offset: 6, Epoch: "zzzzzzzz"}},
		{"older than history", Position{Offset: 2, Epoch: epoch}},
		{"ahead of the channel", Position{Offset: 9, Epoch: epoch}},
	}
	for _, tc := range cases {
		p, err := h.History("a", &tc.since, 100)
		if err != nil {
			t.Fatal(err)
		}
		if p.Recovered || !slices.Equal(pageOffsets(p), seq(4, 8)) || p.Epoch != epoch {
			t.Errorf("%s: %v recovered=%v epoch %q: want recovered=false from the oldest kept (4..8)", tc.name, pageOffsets(p), p.Recovered, p.Epoch)
		}
	}
	// The message right after since is still kept: recovered.
	if p, _ := h.History("a", &Position{Offset: 3, Epoch: epoch}, 100); !p.Recovered || !slices.Equal(pageOffsets(p), seq(4, 8)) {
		t.Fatalf("since 3: %v recovered=%v", pageOffsets(p), p.Recovered)
	}
	// Past the TTL, history is empty: an old position is not recovered.
	clk.Advance(2 * time.Minute)
	if p, _ := h.History("a", &Position{Offset: 5, Epoch: epoch}, 100); p.Recovered || len(p.Messages) != 0 || p.Offset != 8 {
		t.Fatalf("after the TTL: %+v, want recovered=false, no messages, offset 8", p)
	}
	if p, _ := h.History("a", &Position{Offset: 8, Epoch: epoch}, 100); !p.Recovered {
		t.Fatalf("after the TTL, since the last offset: %+v, want recovered", p)
	}
}

func TestHistoryUnknownChannel(t *testing.T) {
	t.Parallel()
	h := New(Config{})
	p, err := h.History("nobody", nil, 10)
	if err != nil || !p.Recovered || p.Epoch != "" || len(p.Messages) != 0 {
		t.Fatalf("unknown channel: %+v %v, want empty and recovered", p, err)
	}
	if p, _ := h.History("nobody", &Position{Offset: 3, Epoch: "abcdefgh"}, 10); p.Recovered {
		t.Fatal("unknown channel with a position: recovered")
	}
	if s := h.Stats(); s.Channels != 0 {
		t.Fatalf("reading history created %d channels", s.Channels)
	}
	if _, err := h.History("a b", nil, 10); !errors.Is(err, ErrInvalidChannel) {
		t.Fatalf("invalid name: %v", err)
	}
}

func TestRemoveHistory(t *testing.T) {
	t.Parallel()
	h := New(Config{})
	l := &inlineLoop{idx: 0}
	var r recorder
	if _, _, _, err := h.Subscribe(l, "a", &r, nil); err != nil {
		t.Fatal(err)
	}
	var old string
	for range 3 {
		old = mustPublish(t, h, "a", "x").Epoch
	}
	rm, err := h.RemoveHistory("a")
	if err != nil || rm.Messages != 3 || rm.Epoch == old || len(rm.Epoch) != 8 {
		t.Fatalf("remove: %+v %v, want 3 messages and a new epoch", rm, err)
	}
	if s := h.Stats(); s.HistoryMessages != 0 || s.HistoryBytes != 0 || s.Subscriptions != 1 {
		t.Fatalf("stats after remove %+v: want no history, the subscriber kept", s)
	}
	// A client with the old position is not recovered.
	var r2 recorder
	if _, _, ok, _ := h.Subscribe(&inlineLoop{idx: 1}, "a", &r2, &Position{Offset: 3, Epoch: old}); ok {
		t.Fatal("recovered across the removal")
	}
	// The subscriber stays and gets offset 1 of the new epoch.
	m := mustPublish(t, h, "a", "y")
	if m.Offset != 1 || m.Epoch != rm.Epoch {
		t.Fatalf("next publish at %d/%q, want 1/%q", m.Offset, m.Epoch, rm.Epoch)
	}
	if got := r.offsets(); !slices.Equal(got, []uint64{1, 2, 3, 1}) {
		t.Fatalf("subscriber got %v, want [1 2 3 1]", got)
	}
	if rm, err := h.RemoveHistory("nobody"); err != nil || rm != (Removed{}) {
		t.Fatalf("unknown channel: %+v %v", rm, err)
	}
}

// A message the broker stored earlier keeps its time, and ages from it.
func TestPublishStoredTime(t *testing.T) {
	t.Parallel()
	clk := newClock()
	h := New(Config{HistoryTTL: time.Minute, Now: clk.Now})
	at := clk.Now().Add(-50 * time.Second)
	m, err := h.PublishStored("a", 1, "abcdefgh", []byte("x"), at)
	if err != nil || !m.Time.Equal(at) {
		t.Fatalf("time %v (%v), want %v", m.Time, err, at)
	}
	if m, _ := h.PublishStored("a", 2, "abcdefgh", []byte("x"), clk.Now().Add(time.Hour)); !m.Time.Equal(clk.Now()) {
		t.Fatalf("a time in the future: %v, want now", m.Time)
	}
	clk.Advance(20 * time.Second)
	if p, _ := h.History("a", nil, 10); !slices.Equal(pageOffsets(p), []uint64{2}) || p.Recovered != true {
		t.Fatalf("after 20 s: %v, want message 1 expired by its stored time", pageOffsets(p))
	}
}

package hub

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestOffsetsAndEpochs(t *testing.T) {
	t.Parallel()
	h := New(Config{})
	var epoch string
	for i := uint64(1); i <= 5; i++ {
		m := mustPublish(t, h, "a", "x")
		if m.Offset != i {
			t.Fatalf("offset %d, want %d", m.Offset, i)
		}
		if i == 1 {
			epoch = m.Epoch
		}
		if m.Epoch != epoch || len(epoch) != 8 {
			t.Fatalf("epoch %q, want a stable 8-character epoch (first %q)", m.Epoch, epoch)
		}
	}
	b := mustPublish(t, h, "b", "x")
	if b.Offset != 1 {
		t.Fatalf("channel b starts at %d, want 1", b.Offset)
	}
	if b.Epoch == epoch {
		t.Fatalf("channels a and b share epoch %q", epoch)
	}
}

func TestPublishErrors(t *testing.T) {
	t.Parallel()
	h := New(Config{MaxPayload: 10})
	tests := []struct {
		name    string
		channel string
		size    int
		want    error
	}{
		{"invalid name", "a b", 1, ErrInvalidChannel},
		{"empty name", "", 1, ErrInvalidChannel},
		{"too large", "a", 11, ErrTooLarge},
		{"at limit", "a", 10, nil},
	}
	for _, tc := range tests {
		_, err := h.Publish(tc.channel, make([]byte, tc.size))
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
	}
	if s := h.Stats(); s.Published != 1 || s.Channels != 1 {
		t.Fatalf("stats %+v: want only the valid publish counted", s)
	}
}

// historyOf returns the offsets a fresh subscriber recovers from since
// offset 0 of the channel's epoch, or nil when it cannot.
func historyOf(t *testing.T, h *Hub, channel string) (first uint64, n int) {
	t.Helper()
	info, ok := h.Info(channel)
	if !ok {
		return 0, 0
	}
	return info.Offset - uint64(info.HistoryLen) + 1, info.HistoryLen
}

func TestHistoryBounds(t *testing.T) {
	t.Parallel()
	// Each message of 100 bytes costs its two frames plus the overhead.
	payload := strings.Repeat("p", 100)
	size := int64(New(Config{}).mustSize(t, payload))
	tests := []struct {
		name      string
		cfg       Config
		publish   []string // channel of each publish, in order, 1s apart
		channel   string   // channel to check
		wantFirst uint64   // oldest offset left in its history
		wantLen   int
	}{
		{name: "count", cfg: Config{HistorySize: 3}, publish: rep("a", 5), channel: "a", wantFirst: 3, wantLen: 3},
		{name: "count not reached", cfg: Config{HistorySize: 10}, publish: rep("a", 4), channel: "a", wantFirst: 1, wantLen: 4},
		{name: "none", cfg: Config{HistorySize: -1}, publish: rep("a", 4), channel: "a", wantFirst: 5, wantLen: 0},
		// Published at t=0..4s; checked at 4s: ages 4,3,2,1,0.
		{name: "ttl", cfg: Config{HistoryTTL: 2500 * time.Millisecond}, publish: rep("a", 5), channel: "a", wantFirst: 3, wantLen: 3},
		{name: "no ttl", cfg: Config{HistoryTTL: -1}, publish: rep("a", 5), channel: "a", wantFirst: 1, wantLen: 5},
		// Room for 4 messages in all: a1 a2 b1 b2 a3 b3 → a3 evicts a1
		// (a holds most), b3 evicts b1.
		{name: "bytes, largest channel first", cfg: Config{MaxHistoryBytes: 4 * size},
			publish: []string{"a", "a", "b", "b", "a", "b"}, channel: "a", wantFirst: 2, wantLen: 2},
		{name: "bytes, other channel", cfg: Config{MaxHistoryBytes: 4 * size},
			publish: []string{"a", "a", "b", "b", "a", "b"}, channel: "b", wantFirst: 2, wantLen: 2},
		// A big channel never evicts a small one: c1 stays while a floods.
		{name: "bytes, small channel kept", cfg: Config{MaxHistoryBytes: 4 * size},
			publish: append([]string{"c"}, rep("a", 10)...), channel: "c", wantFirst: 1, wantLen: 1},
		{name: "channel bytes", cfg: Config{HistoryChannelBytes: 2 * size},
			publish: []string{"a", "b", "a", "a", "a"}, channel: "a", wantFirst: 3, wantLen: 2},
		{name: "channel bytes, other channel", cfg: Config{HistoryChannelBytes: 2 * size},
			publish: []string{"a", "b", "a", "a", "a"}, channel: "b", wantFirst: 1, wantLen: 1},
		{name: "no byte cap", cfg: Config{MaxHistoryBytes: -1, HistorySize: 1000, HistoryTTL: -1},
			publish: rep("a", 500), channel: "a", wantFirst: 1, wantLen: 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clk := newClock()
			tc.cfg.Now = clk.Now
			h := New(tc.cfg)
			for i, ch := range tc.publish {
				if i > 0 {
					clk.Advance(time.Second)
				}
				mustPublish(t, h, ch, payload)
			}
			first, n := historyOf(t, h, tc.channel)
			if n != tc.wantLen || (n > 0 && first != tc.wantFirst) {
				t.Fatalf("history holds %d from offset %d, want %d from %d", n, first, tc.wantLen, tc.wantFirst)
			}
			// Recovery agrees with what history holds.
			info, _ := h.Info(tc.channel)
			l := &inlineLoop{}
			_, backlog, ok, _ := h.Subscribe(l, tc.channel, &recorder{}, &Position{Offset: tc.wantFirst - 1, Epoch: info.Epoch})
			if want := seq(tc.wantFirst, info.Offset); !ok || !slices.Equal(backlogOffsets(backlog), want) {
				t.Fatalf("recover from %d: %v %v, want true %v", tc.wantFirst-1, ok, backlogOffsets(backlog), want)
			}
			if tc.wantFirst > 1 {
				if _, _, ok, _ := h.Subscribe(l, tc.channel, &recorder{}, &Position{Offset: tc.wantFirst - 2, Epoch: info.Epoch}); ok {
					t.Fatalf("recovered from %d, beyond history", tc.wantFirst-2)
				}
			}
			s := h.Stats()
			var total int64
			var msgs int64
			for _, c := range h.Channels() {
				total += c.HistoryBytes
				msgs += int64(c.HistoryLen)
			}
			if s.HistoryBytes != total || s.HistoryMessages != msgs {
				t.Fatalf("stats count %d messages, %d bytes; channels hold %d, %d", s.HistoryMessages, s.HistoryBytes, msgs, total)
			}
			if tc.cfg.MaxHistoryBytes > 0 && total > tc.cfg.MaxHistoryBytes {
				t.Fatalf("history holds %d bytes, cap %d", total, tc.cfg.MaxHistoryBytes)
			}
		})
	}
}

// mustSize returns what one message of payload costs the history budget.
func (h *Hub) mustSize(t *testing.T, payload string) int64 {
	t.Helper()
	m, err := h.Publish("size", []byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	return m.size
}

// rep returns n copies of s.
func rep(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestRecover(t *testing.T) {
	t.Parallel()
	h := New(Config{HistorySize: 5})
	for range 8 {
		mustPublish(t, h, "news", "m")
	}
	// History holds offsets 4..8.
	info, _ := h.Info("news")
	epoch := info.Epoch
	tests := []struct {
		name    string
		since   *Position
		wantOK  bool
		backlog []uint64
	}{
		{name: "no since", since: nil, wantOK: false},
		{name: "in range", since: &Position{Offset: 5, Epoch: epoch}, wantOK: true, backlog: seq(6, 8)},
		{name: "oldest kept", since: &Position{Offset: 3, Epoch: epoch}, wantOK: true, backlog: seq(4, 8)},
		{name: "too old", since: &Position{Offset: 2, Epoch: epoch}, wantOK: false},
		{name: "from the start", since: &Position{Offset: 0, Epoch: epoch}, wantOK: false},
		{name: "up to date", since: &Position{Offset: 8, Epoch: epoch}, wantOK: true},
		{name: "ahead", since: &Position{Offset: 9, Epoch: epoch}, wantOK: false},
		{name: "wrong epoch", since: &Position{Offset: 7, Epoch: "zzzzzzzz"}, wantOK: false},
		{name: "empty epoch", since: &Position{Offset: 7}, wantOK: false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := &inlineLoop{idx: i}
			pos, backlog, ok, _ := h.Subscribe(l, "news", &recorder{}, tc.since)
			if pos != (Position{Offset: 8, Epoch: epoch}) {
				t.Fatalf("position %+v, want 8/%s", pos, epoch)
			}
			if ok != tc.wantOK || !slices.Equal(backlogOffsets(backlog), tc.backlog) {
				t.Fatalf("recovered %v %v, want %v %v", ok, backlogOffsets(backlog), tc.wantOK, tc.backlog)
			}
		})
	}
	// A new channel recovers from offset 0 of its epoch.
	l := &inlineLoop{idx: len(tests)}
	pos, _, _, _ := h.Subscribe(l, "fresh", &recorder{}, nil)
	mustPublish(t, h, "fresh", "1")
	_, backlog, ok, _ := h.Subscribe(l, "fresh", &recorder{}, &Position{Offset: 0, Epoch: pos.Epoch})
	if !ok || !slices.Equal(backlogOffsets(backlog), []uint64{1}) {
		t.Fatalf("fresh channel: recovered %v %v, want true [1]", ok, backlogOffsets(backlog))
	}
}

func TestSweep(t *testing.T) {
	t.Parallel()
	clk := newClock()
	h := New(Config{HistoryTTL: time.Minute, Now: clk.Now})
	l := &inlineLoop{}
	sub := &recorder{}
	old := mustPublish(t, h, "idle", "1")
	h.Subscribe(l, "watched", sub, nil)
	mustPublish(t, h, "watched", "1")
	clk.Advance(30 * time.Second)
	mustPublish(t, h, "recent", "1")

	if n := h.Sweep(); n != 0 {
		t.Fatalf("swept %d channels before any expiry", n)
	}
	clk.Advance(31 * time.Second) // idle and watched expire, recent does not
	if n := h.Sweep(); n != 1 {
		t.Fatalf("swept %d channels, want 1 (idle)", n)
	}
	var names []string
	for _, c := range h.Channels() {
		names = append(names, fmt.Sprintf("%s:%d/%d", c.Name, c.Subscribers, c.HistoryLen))
	}
	if want := []string{"recent:0/1", "watched:1/0"}; !slices.Equal(names, want) {
		t.Fatalf("channels %v, want %v", names, want)
	}
	// The forgotten channel comes back with a new epoch: an old position
	// no longer recovers.
	m := mustPublish(t, h, "idle", "2")
	if m.Offset != 1 || m.Epoch == old.Epoch {
		t.Fatalf("re-created channel at %d/%s, want 1 and an epoch other than %s", m.Offset, m.Epoch, old.Epoch)
	}
	if _, _, ok, _ := h.Subscribe(l, "idle", &recorder{}, &Position{Offset: 1, Epoch: old.Epoch}); ok {
		t.Fatal("recovered across a forgotten channel")
	}
	// Unsubscribing the last subscriber lets the channel go.
	h.Unsubscribe(l, "watched", sub)
	h.Sweep()
	if _, ok := h.Info("watched"); ok {
		t.Fatal("channel with no subscribers and no history survived Sweep")
	}
}

func TestPublishAt(t *testing.T) {
	t.Parallel()
	type step struct {
		offset  uint64
		epoch   string
		wantErr error
	}
	tests := []struct {
		name      string
		steps     []step
		wantPos   Position
		wantFirst uint64 // oldest offset in history
		wantLen   int
	}{
		{name: "in order", steps: []step{{1, "e1", nil}, {2, "e1", nil}, {3, "e1", nil}},
			wantPos: Position{3, "e1"}, wantFirst: 1, wantLen: 3},
		{name: "duplicate", steps: []step{{1, "e1", nil}, {2, "e1", nil}, {2, "e1", ErrStale}, {1, "e1", ErrStale}},
			wantPos: Position{2, "e1"}, wantFirst: 1, wantLen: 2},
		{name: "gap restarts history", steps: []step{{1, "e1", nil}, {2, "e1", nil}, {5, "e1", nil}, {6, "e1", nil}},
			wantPos: Position{6, "e1"}, wantFirst: 5, wantLen: 2},
		{name: "new epoch", steps: []step{{7, "e1", nil}, {8, "e1", nil}, {1, "e2", nil}},
			wantPos: Position{1, "e2"}, wantFirst: 1, wantLen: 1},
		{name: "zero offset", steps: []step{{0, "e1", ErrBadPosition}, {1, "", ErrBadPosition}},
			wantPos: Position{0, ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := New(Config{})
			l := &inlineLoop{}
			sub := &recorder{}
			h.Subscribe(l, "c", sub, nil)
			var delivered []uint64
			for _, s := range tc.steps {
				_, err := h.PublishAt("c", s.offset, s.epoch, []byte("x"))
				if !errors.Is(err, s.wantErr) {
					t.Fatalf("PublishAt(%d, %s): %v, want %v", s.offset, s.epoch, err, s.wantErr)
				}
				if err == nil {
					delivered = append(delivered, s.offset)
				}
			}
			if !slices.Equal(sub.offsets(), delivered) {
				t.Fatalf("subscriber got %v, want %v", sub.offsets(), delivered)
			}
			info, _ := h.Info("c")
			if tc.wantPos.Epoch == "" {
				if info.Offset != 0 {
					t.Fatalf("channel moved to %d", info.Offset)
				}
				return
			}
			if (Position{info.Offset, info.Epoch}) != tc.wantPos {
				t.Fatalf("channel at %d/%s, want %+v", info.Offset, info.Epoch, tc.wantPos)
			}
			first, n := historyOf(t, h, "c")
			if n != tc.wantLen || first != tc.wantFirst {
				t.Fatalf("history %d from %d, want %d from %d", n, first, tc.wantLen, tc.wantFirst)
			}
			_, backlog, ok, _ := h.Subscribe(l, "c", &recorder{}, &Position{Offset: first - 1, Epoch: info.Epoch})
			if !ok || len(backlog) != n {
				t.Fatalf("recover from %d: %v with %d messages, want %d", first-1, ok, len(backlog), n)
			}
		})
	}
}

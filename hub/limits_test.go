package hub

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestChannelLimit(t *testing.T) {
	t.Parallel()
	h := New(Config{MaxChannels: 2})
	l := &inlineLoop{}
	mustPublish(t, h, "a", "1")
	if _, _, _, err := h.Subscribe(l, "b", &recorder{}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Publish("c", []byte("1")); !errors.Is(err, ErrChannelLimit) {
		t.Fatalf("publish to a third channel: %v, want ErrChannelLimit", err)
	}
	if _, _, _, err := h.Subscribe(l, "d", &recorder{}, nil); !errors.Is(err, ErrChannelLimit) {
		t.Fatalf("subscribe to a third channel: %v, want ErrChannelLimit", err)
	}
	// Known channels still work.
	mustPublish(t, h, "b", "2")
	if _, _, _, err := h.Subscribe(l, "a", &recorder{}, nil); err != nil {
		t.Fatal(err)
	}
	s := h.Stats()
	if s.ChannelLimited != 2 || s.Channels != 2 || s.Subscriptions != 2 {
		t.Fatalf("stats %+v: want 2 refusals, 2 channels, 2 subscriptions", s)
	}
}

func TestFrameLimit(t *testing.T) {
	t.Parallel()
	const limit = 1000
	h := New(Config{MaxFrameBytes: limit})
	// The largest valid JSON payload MaxEnvelopeFrame admits is accepted.
	room := 0
	for MaxEnvelopeFrame(room+1) <= limit {
		room++
	}
	ok := `"` + strings.Repeat("x", room-2) + `"`
	name := strings.Repeat("n", MaxChannelLen)
	m, err := h.Publish(name, []byte(ok))
	if err != nil {
		t.Fatalf("payload of %d bytes within MaxEnvelopeFrame: %v", room, err)
	}
	if len(m.Envelope()) > limit || len(m.Raw()) > limit {
		t.Fatalf("frames of %d and %d bytes over the limit %d", len(m.Envelope()), len(m.Raw()), limit)
	}
	// Control characters escape to six bytes each: 200 of them do not fit.
	if _, err := h.Publish("a", make([]byte, 200)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("escaped payload: %v, want ErrTooLarge", err)
	}
	if err := h.Check("a", make([]byte, 200)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Check: %v, want ErrTooLarge", err)
	}
	if err := h.Check("a", make([]byte, 100)); err != nil {
		t.Fatalf("Check of 100 escaped bytes: %v", err)
	}
	if s := h.Stats(); s.TooLarge != 2 {
		t.Fatalf("TooLarge = %d, want 2", s.TooLarge)
	}
}

// TestFrameLenExact checks the bound against real encodings.
func TestFrameLenExact(t *testing.T) {
	t.Parallel()
	for _, data := range []string{"", "x", `{"a":1}`, "a\"b\\c\n\x01\xff\u00e9", strings.Repeat("\x00", 300)} {
		h := New(Config{})
		m := mustPublish(t, h, `q"\`, data)
		got := frameLen(`q"\`, []byte(data), json.Valid([]byte(data)))
		want := max(len(m.Envelope()), len(m.Raw()))
		if got < want || got > want+maxOffsetDigits {
			t.Errorf("%q: frameLen %d, frames %d", data, got, want)
		}
	}
}

// TestFloodKeepsOtherHistory: a publisher flooding channels of its own
// never takes a quiet channel's history, with either byte cap.
func TestFloodKeepsOtherHistory(t *testing.T) {
	t.Parallel()
	payload := strings.Repeat("p", 1000)
	size := New(Config{}).mustSize(t, payload)
	h := New(Config{MaxHistoryBytes: 40 * size, HistoryChannelBytes: 8 * size, HistorySize: 1000, HistoryTTL: -1})
	mustPublish(t, h, "quiet", payload)
	mustPublish(t, h, "quiet", payload)
	for range 20 {
		mustPublish(t, h, "demo:big", payload)
	}
	for i := range 200 {
		mustPublish(t, h, fmt.Sprint("demo:", i%10), payload)
	}
	if first, n := historyOf(t, h, "quiet"); first != 1 || n != 2 {
		t.Fatalf("quiet channel keeps %d messages from %d, want 2 from 1", n, first)
	}
	s := h.Stats()
	if s.HistoryBytes > 40*size {
		t.Fatalf("history holds %d bytes, cap %d", s.HistoryBytes, 40*size)
	}
	if s.EvictedChannelBytes == 0 || s.EvictedNodeBytes == 0 {
		t.Fatalf("evictions %+v: want both caps to have evicted", s)
	}
	if s.HistoryMessages < 30 {
		t.Fatalf("history holds %d messages, want the node cap used (about 40)", s.HistoryMessages)
	}
}

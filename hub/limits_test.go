package hub

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestChannelLimit: the cap counts only the channels clients create
// (Subscribe, PublishClient, Reserve); the backend's (Publish, PublishAt,
// Align, SubscribeTrusted, ReserveTrusted) are neither counted nor
// refused, and refusals are counted in Stats.ChannelLimited.
func TestChannelLimit(t *testing.T) {
	t.Parallel()
	h := New(Config{MaxChannels: 2})
	l := &inlineLoop{}
	if _, err := h.PublishClient("a", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := h.Subscribe(l, "b", &recorder{}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := h.PublishClient("c", []byte("1")); !errors.Is(err, ErrChannelLimit) {
		t.Fatalf("client publish to a third channel: %v, want ErrChannelLimit", err)
	}
	if _, _, _, err := h.Subscribe(l, "d", &recorder{}, nil); !errors.Is(err, ErrChannelLimit) {
		t.Fatalf("subscribe to a third channel: %v, want ErrChannelLimit", err)
	}
	if err := h.Reserve("e"); !errors.Is(err, ErrChannelLimit) {
		t.Fatalf("reserve a third channel: %v, want ErrChannelLimit", err)
	}
	// Known channels still work, the backend's too.
	mustPublish(t, h, "b", "2")
	if _, _, _, err := h.Subscribe(l, "a", &recorder{}, nil); err != nil {
		t.Fatal(err)
	}
	// The backend is never refused, and its channels are not counted.
	mustPublish(t, h, "api-news", "1")
	if _, err := h.PublishAt("broker-news", 1, "e1", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := h.Align("aligned", Position{Epoch: "e1"}); err != nil {
		t.Fatal(err)
	}
	if err := h.ReserveTrusted("watched"); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := h.SubscribeTrusted(l, "user:alice", &recorder{}, nil); err != nil {
		t.Fatalf("personal channel past the cap: %v", err)
	}
	// A client subscribing to a backend channel creates nothing.
	if _, _, _, err := h.Subscribe(l, "api-news", &recorder{}, nil); err != nil {
		t.Fatal(err)
	}
	s := h.Stats()
	if s.ChannelLimited != 3 || s.Channels != 7 || s.ClientChannels != 2 || s.Subscriptions != 4 {
		t.Fatalf("stats %+v: want 3 refusals, 7 channels (2 by clients), 4 subscriptions", s)
	}
}

// TestChannelLimitFreed: a client channel forgotten (its last subscriber
// left) gives its place back at once, with no Sweep.
func TestChannelLimitFreed(t *testing.T) {
	t.Parallel()
	h := New(Config{MaxChannels: 1})
	l := &inlineLoop{}
	for i := range 1000 {
		r := &recorder{}
		ch := fmt.Sprintf("flood-%d", i)
		if _, _, _, err := h.Subscribe(l, ch, r, nil); err != nil {
			t.Fatalf("subscribe %d: %v", i, err)
		}
		h.Unsubscribe(l, ch, r)
	}
	if s := h.Stats(); s.Channels != 0 || s.ClientChannels != 0 || s.ChannelLimited != 0 {
		t.Fatalf("after a subscribe-and-leave flood: %+v, want no channel and no refusal", s)
	}
}

// sizeEncoder is an Encoder that attaches a fixed-size frame and refuses
// payloads over max bytes, recording its calls.
type sizeEncoder struct {
	max, frame int
	mu         sync.Mutex
	checks     int
	encodes    int
}

type fakeFrames struct{ b []byte }

func (e *sizeEncoder) Check(_ string, data []byte) (uint32, error) {
	e.mu.Lock()
	e.checks++
	e.mu.Unlock()
	if len(data) > e.max {
		return 0, fmt.Errorf("frame of %d bytes: %w", len(data), ErrTooLarge)
	}
	return uint32(len(data)), nil
}

func (e *sizeEncoder) Encode(m *Message, note uint32) int {
	e.mu.Lock()
	e.encodes++
	e.mu.Unlock()
	if int(note) != len(m.Data) {
		panic("note lost between Check and Encode")
	}
	f := make([]byte, e.frame+len(m.Data))
	copy(f[e.frame:], m.Data)
	m.Data = f[e.frame:] // the payload lives in the frame
	m.Frames = &fakeFrames{b: f}
	return len(f)
}

// TestEncoderHook: the Encoder runs once per publish, its refusals reach
// Publish and Check as ErrTooLarge (counted), its frames are shared by
// every subscriber and history charges the bytes it reports.
func TestEncoderHook(t *testing.T) {
	t.Parallel()
	enc := &sizeEncoder{max: 100, frame: 1000}
	h := New(Config{Encoder: enc})
	l := &inlineLoop{}
	a, b := &recorder{}, &recorder{}
	h.Subscribe(l, "c", a, nil)
	h.Subscribe(l, "c", b, nil)
	data := []byte("payload")
	m := mustPublish(t, h, "c", string(data))
	if enc.encodes != 1 || len(a.msgs) != 1 || len(b.msgs) != 1 || a.msgs[0].Frames != b.msgs[0].Frames {
		t.Fatalf("encodes %d, deliveries %d/%d: want one encoding shared", enc.encodes, len(a.msgs), len(b.msgs))
	}
	if f := m.Frames.(*fakeFrames); &f.b[1000] != &m.Data[0] || string(m.Data) != "payload" {
		t.Fatalf("Data %q does not alias the encoder's copy", m.Data)
	}
	if s := h.Stats(); s.HistoryBytes != int64(1000+len(data)+messageOverhead) {
		t.Fatalf("history charged %d bytes, want the frame's %d + overhead", s.HistoryBytes, 1000+len(data))
	}
	if _, err := h.Publish("c", make([]byte, 101)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("publish refused by the encoder: %v, want ErrTooLarge", err)
	}
	if err := h.Check("c", make([]byte, 101)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Check: %v, want ErrTooLarge", err)
	}
	if s := h.Stats(); s.TooLarge != 2 || s.Published != 1 || enc.encodes != 1 {
		t.Fatalf("stats %+v, %d encodes: want 2 refusals, 1 message encoded once", s, enc.encodes)
	}
}

// TestNoEncoder: without an Encoder a message carries no frames, a copy
// of the payload, and history charges the payload.
func TestNoEncoder(t *testing.T) {
	t.Parallel()
	h := New(Config{})
	data := []byte("payload")
	m, err := h.Publish("c", data)
	if err != nil {
		t.Fatal(err)
	}
	data[0] = 'X'
	if m.Frames != nil || string(m.Data) != "payload" {
		t.Fatalf("frames %v, data %q: want none and a copy", m.Frames, m.Data)
	}
	if s := h.Stats(); s.HistoryBytes != int64(len(data)+messageOverhead) {
		t.Fatalf("history charged %d bytes", s.HistoryBytes)
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

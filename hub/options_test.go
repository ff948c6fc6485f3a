package hub

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

var errRefused = errors.New("refused namespace")

// prefixOptions gives each prefix options of its own: "off:" no history,
// "norec:" no recovery, "short:" 2 messages for 1 minute of at most 4
// bytes, "long:" an hour, "small:" a 1-byte cap; "bad:" is refused.
func prefixOptions(channel string) (ChannelOptions, error) {
	switch {
	case strings.HasPrefix(channel, "off:"):
		return ChannelOptions{HistorySize: -1}, nil
	case strings.HasPrefix(channel, "norec:"):
		return ChannelOptions{NoRecovery: true}, nil
	case strings.HasPrefix(channel, "short:"):
		return ChannelOptions{HistorySize: 2, HistoryTTL: time.Minute, MaxPayload: 4}, nil
	case strings.HasPrefix(channel, "long:"):
		return ChannelOptions{HistoryTTL: time.Hour}, nil
	case strings.HasPrefix(channel, "small:"):
		return ChannelOptions{HistoryChannelBytes: 1}, nil
	case strings.HasPrefix(channel, "bad:"):
		return ChannelOptions{}, errRefused
	}
	return ChannelOptions{}, nil
}

func TestChannelOptionsHistory(t *testing.T) {
	t.Parallel()
	clk := newClock()
	h := New(Config{Options: prefixOptions, Now: clk.Now, HistorySize: 10, HistoryTTL: 10 * time.Minute})
	l := &inlineLoop{}
	tests := []struct {
		name      string
		channel   string
		publish   int
		recovered bool
		backlog   []uint64
	}{
		{"defaults", "plain", 5, true, seq(2, 5)},
		{"history off", "off:a", 5, false, nil},
		{"recovery off", "norec:a", 5, false, nil},
		{"own size", "short:a", 5, false, nil}, // offsets 4 and 5 kept; 2 and 3 gone
		{"byte cap keeps the newest", "small:a", 5, false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var first Position
			for i := range tc.publish {
				m := mustPublish(t, h, tc.channel, "x")
				if i == 0 {
					first = Position{Offset: m.Offset, Epoch: m.Epoch}
				}
			}
			_, backlog, recovered, err := h.Subscribe(l, tc.channel, &recorder{}, &first)
			if err != nil {
				t.Fatal(err)
			}
			if recovered != tc.recovered || !slices.Equal(backlogOffsets(backlog), tc.backlog) {
				t.Fatalf("recovered %v backlog %v, want %v %v", recovered, backlogOffsets(backlog), tc.recovered, tc.backlog)
			}
		})
	}
	if info, _ := h.Info("short:a"); info.HistoryLen != 2 {
		t.Errorf("short:a keeps %d messages, want its own size 2", info.HistoryLen)
	}
	if info, _ := h.Info("small:a"); info.HistoryLen != 1 {
		t.Errorf("small:a keeps %d messages, want 1 under its 1-byte cap", info.HistoryLen)
	}
	if info, _ := h.Info("off:a"); info.HistoryLen != 0 {
		t.Errorf("off:a keeps %d messages, want none", info.HistoryLen)
	}
	// Recovery off still answers a client that missed nothing with
	// recovered=false: it cannot know.
	m := mustPublish(t, h, "norec:b", "x")
	if _, _, rec, _ := h.Subscribe(l, "norec:b", &recorder{}, &Position{Offset: m.Offset, Epoch: m.Epoch}); rec {
		t.Errorf("recovery off: recovered=true at the tip, want false")
	}
	// The API's read still sees a recovery-off channel's history.
	if page, err := h.History("norec:a", nil, 10); err != nil || len(page.Messages) != 5 {
		t.Errorf("History(norec:a) = %d messages, %v; want 5", len(page.Messages), err)
	}
}

func TestChannelOptionsSweepUsesEachTTL(t *testing.T) {
	t.Parallel()
	clk := newClock()
	h := New(Config{Options: prefixOptions, Now: clk.Now, HistoryTTL: 10 * time.Minute})
	for _, ch := range []string{"plain", "short:a", "long:a"} {
		mustPublish(t, h, ch, "x")
	}
	if got := h.HistoryTTL("long:a"); got != time.Hour {
		t.Errorf("HistoryTTL(long:a) = %v, want 1h", got)
	}
	if got := h.HistoryTTL("long:unknown"); got != time.Hour {
		t.Errorf("HistoryTTL of a channel not yet created = %v, want 1h", got)
	}
	if got := h.HistoryTTL("plain"); got != 10*time.Minute {
		t.Errorf("HistoryTTL(plain) = %v, want the hub's 10m", got)
	}
	steps := []struct {
		advance time.Duration
		gone    []string
		kept    []string
	}{
		{2 * time.Minute, []string{"short:a"}, []string{"plain", "long:a"}},
		{10 * time.Minute, []string{"short:a", "plain"}, []string{"long:a"}},
		{time.Hour, []string{"short:a", "plain", "long:a"}, nil},
	}
	for _, st := range steps {
		clk.Advance(st.advance)
		h.Sweep()
		for _, ch := range st.gone {
			if _, ok := h.Info(ch); ok {
				t.Errorf("after +%v: %s still known, want it swept", st.advance, ch)
			}
		}
		for _, ch := range st.kept {
			if info, ok := h.Info(ch); !ok || info.HistoryLen != 1 {
				t.Errorf("after +%v: %s = %+v (known %v), want its message kept", st.advance, ch, info, ok)
			}
		}
	}
}

func TestChannelOptionsRefuseAndPayload(t *testing.T) {
	t.Parallel()
	h := New(Config{Options: prefixOptions, MaxPayload: 100})
	l := &inlineLoop{}
	// The hook's refusal comes back as it is: it names the channel, and
	// a wrapping would say it twice.
	if _, err := h.Publish("bad:a", []byte("x")); err != errRefused {
		t.Errorf("Publish(bad:a) = %v, want the hook's error as it is", err)
	}
	if _, err := h.PublishAt("bad:a", 1, "e", []byte("x")); err != errRefused {
		t.Errorf("PublishAt(bad:a) = %v, want the hook's error as it is", err)
	}
	if err := h.Check("bad:a", []byte("x")); err != errRefused {
		t.Errorf("Check(bad:a) = %v, want the hook's error as it is", err)
	}
	if _, _, _, err := h.Subscribe(l, "bad:a", &recorder{}, nil); err != errRefused {
		t.Errorf("Subscribe(bad:a) = %v, want the hook's error as it is", err)
	}
	if err := h.Reserve("bad:a"); err != errRefused {
		t.Errorf("Reserve(bad:a) = %v, want the hook's error as it is", err)
	}
	if err := h.Align("bad:a", Position{Offset: 1, Epoch: "e"}); err != errRefused {
		t.Errorf("Align(bad:a) = %v, want the hook's error as it is", err)
	}
	if s := h.Stats(); s.Channels != 0 {
		t.Errorf("%d channels after refusals, want 0", s.Channels)
	}
	if _, err := h.Publish("short:a", []byte("12345")); !errors.Is(err, ErrTooLarge) {
		t.Errorf("5 bytes to short:a (limit 4) = %v, want ErrTooLarge", err)
	}
	if _, err := h.Publish("short:a", []byte("1234")); err != nil {
		t.Errorf("4 bytes to short:a: %v", err)
	}
	if _, err := h.Publish("plain", make([]byte, 100)); err != nil {
		t.Errorf("100 bytes to plain (hub limit 100): %v", err)
	}
	if _, err := h.Publish("plain", make([]byte, 101)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("101 bytes to plain = %v, want ErrTooLarge", err)
	}
}

func TestChannelOptionsShared(t *testing.T) {
	t.Parallel()
	h := New(Config{Options: prefixOptions})
	for _, ch := range []string{"short:a", "short:b", "long:a", "plain", "other"} {
		mustPublish(t, h, ch, "x")
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.chans["short:a"].opts != h.chans["short:b"].opts {
		t.Error("two channels of one options value hold two copies")
	}
	if h.chans["plain"].opts != h.defOpts || h.chans["other"].opts != h.defOpts {
		t.Error("channels without options of their own do not share the hub's")
	}
	if len(h.opts) != 2 {
		t.Errorf("%d distinct options kept, want 2", len(h.opts))
	}
}

func TestPayloadLimitDoesNotAllocate(t *testing.T) {
	h := New(Config{Options: prefixOptions})
	if n := testing.AllocsPerRun(100, func() { _, _ = h.payloadLimit("short:a") }); n != 0 {
		t.Errorf("payloadLimit allocates %v times, want 0", n)
	}
}

package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald/hub"
)

// The NATS broker's tests need an embedded NATS server: they are in the
// test module (test/broker), which keeps nats-server out of this module.

// quiet is a logger that drops everything.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestSubjectFor(t *testing.T) {
	t.Parallel()
	tests := []struct{ channel, want string }{
		{"news", "herald.ch.news"},
		{"user:alice", "herald.ch.user:alice"},
		{"chat.room-1", "herald.ch.chat%2Eroom-1"},
		{"a*b>c", "herald.ch.a%2Ab%3Ec"},
		{"100%", "herald.ch.100%25"},
		{"%2E", "herald.ch.%252E"}, // distinct from "."
		{".", "herald.ch.%2E"},
	}
	for _, tc := range tests {
		if got := subjectFor("herald.ch", tc.channel); got != tc.want {
			t.Errorf("subjectFor(%q) = %q, want %q", tc.channel, got, tc.want)
		}
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	h := hub.New(hub.Config{})
	tests := []struct {
		url     string
		memory  bool
		wantErr bool
	}{
		{"", true, false},
		{"memory", true, false},
		{"redis://x", false, true},
		{"nats://127.0.0.1:1", false, true}, // nothing listens on port 1
	}
	for _, tc := range tests {
		b, err := New(context.Background(), tc.url, h, NATSConfig{Log: quiet})
		if (err != nil) != tc.wantErr {
			t.Errorf("New(%q): err %v, want error %v", tc.url, err, tc.wantErr)
			continue
		}
		if _, ok := b.(*Memory); err == nil && ok != tc.memory {
			t.Errorf("New(%q) = %T", tc.url, b)
		}
	}
}

func TestMemory(t *testing.T) {
	t.Parallel()
	h := hub.New(hub.Config{})
	b := NewMemory(h)
	if !b.Acquire("a", nil, func() { t.Error("ready called") }) {
		t.Fatal("Acquire = false")
	}
	for want := uint64(1); want <= 3; want++ {
		pos, err := b.Publish(context.Background(), "a", []byte("x"))
		if err != nil || pos.Offset != want {
			t.Fatalf("Publish: %+v %v, want offset %d", pos, err, want)
		}
	}
	if _, err := b.Publish(context.Background(), "a b", nil); !errors.Is(err, hub.ErrInvalidChannel) {
		t.Fatalf("invalid channel: %v", err)
	}
}

// TestRetryable: NewNATS and NewRoster ask again only for a request NATS
// left unanswered (a cluster forming the stream for another node) or
// could not place yet (a peer offline, no meta leader), also through the
// errors that wrap it, never for another answer.
func TestRetryable(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"deadline", fmt.Errorf("broker: stream HERALD: %w", context.DeadlineExceeded), true},
		{"nats timeout", fmt.Errorf("broker: roster: bucket B: %w", nats.ErrTimeout), true},
		{"not found", fmt.Errorf("broker: stream HERALD: %w", jetstream.ErrStreamNotFound), false},
		{"no responders", nats.ErrNoResponders, false},
		{"no suitable peers", fmt.Errorf("broker: roster: bucket B: %w", &jetstream.APIError{Code: 400, ErrorCode: 10005, Description: "no suitable peers for placement, peer offline"}), true},
		{"temporarily unavailable", &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}, true},
		{"insufficient resources", &jetstream.APIError{Code: 503, ErrorCode: 10023, Description: "insufficient resources"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := retryable(tc.err); got != tc.want {
				t.Errorf("retryable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// TestConflictPause: a publish that lost the compare-and-set again waits
// less than attempt milliseconds, 8 at most.
func TestConflictPause(t *testing.T) {
	t.Parallel()
	for attempt := 1; attempt <= maxConflicts; attempt++ {
		for range 100 {
			if d := conflictPause(attempt); d < 0 || d >= time.Duration(min(attempt, 8))*time.Millisecond {
				t.Fatalf("conflictPause(%d) = %v", attempt, d)
			}
		}
	}
}

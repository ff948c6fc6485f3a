package broker

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/herald-push/herald/hub"
)

func TestDedup(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	d := NewDedup(time.Minute, 3, clock)
	var calls atomic.Int64
	pub := func(off uint64) func() (hub.Position, bool, error) {
		return func() (hub.Position, bool, error) {
			calls.Add(1)
			return hub.Position{Offset: off, Epoch: "e"}, false, nil
		}
	}
	pos, dup, err := d.Do("k", pub(1))
	if err != nil || dup || pos.Offset != 1 {
		t.Fatalf("first: %v %v %v", pos, dup, err)
	}
	pos, dup, _ = d.Do("k", pub(2))
	if !dup || pos.Offset != 1 || calls.Load() != 1 || d.Duplicates() != 1 {
		t.Fatalf("retry: %v dup=%v calls=%d: want the first result, not published", pos, dup, calls.Load())
	}
	// A failed first is forgotten: the retry publishes.
	boom := errors.New("boom")
	if _, _, err := d.Do("f", func() (hub.Position, bool, error) { return hub.Position{}, false, boom }); err != boom {
		t.Fatal(err)
	}
	if pos, dup, _ := d.Do("f", pub(3)); dup || pos.Offset != 3 {
		t.Fatalf("after a failure: %v dup=%v, want a publish", pos, dup)
	}
	// Past the window the key is forgotten.
	advance(2 * time.Minute)
	if _, dup, _ := d.Do("k", pub(4)); dup {
		t.Fatal("a key older than the window is a duplicate")
	}
	// At most 3 keys: the oldest goes first.
	for _, k := range []string{"a", "b", "c"} {
		d.Do(k, pub(5))
	}
	if n := d.Len(); n != 3 {
		t.Fatalf("%d keys remembered, want 3", n)
	}
	if _, dup, _ := d.Do("k", pub(6)); dup {
		t.Fatal("the oldest key survived the cap")
	}
	if _, dup, _ := d.Do("c", pub(7)); !dup {
		t.Fatal("a recent key was forgotten")
	}
}

// Concurrent publishes with one key publish once, and all answer with its
// position.
func TestDedupConcurrent(t *testing.T) {
	t.Parallel()
	d := NewDedup(0, 0, nil)
	var calls atomic.Int64
	release := make(chan struct{})
	var wg sync.WaitGroup
	var dups atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pos, dup, err := d.Do("k", func() (hub.Position, bool, error) {
				calls.Add(1)
				<-release
				return hub.Position{Offset: 9, Epoch: "e"}, false, nil
			})
			if err != nil || pos.Offset != 9 {
				t.Errorf("%v %v", pos, err)
			}
			if dup {
				dups.Add(1)
			}
		}()
	}
	close(release)
	wg.Wait()
	if calls.Load() != 1 || dups.Load() != 7 {
		t.Fatalf("%d publishes, %d duplicates: want 1 and 7", calls.Load(), dups.Load())
	}
}

func TestDedupKey(t *testing.T) {
	t.Parallel()
	first, again := DedupKey("a", "k"), DedupKey("a", string([]byte{'k'}))
	if first == DedupKey("b", "k") || first != again {
		t.Fatal("keys must differ per channel and be stable")
	}
	if len(DedupKey("a", string(make([]byte, MaxIdempotencyKey)))) > 64 {
		t.Fatal("message ID too long")
	}
}

package pool

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const workersTestTimeout = 10 * time.Second

func newTestWorkers(t *testing.T, cfg WorkersConfig) *Workers {
	t.Helper()
	w, err := NewWorkers(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), workersTestTimeout)
		defer cancel()
		if err := w.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return w
}

// wait receives from ch or fails the test after a timeout.
func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(workersTestTimeout):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestWorkersOrderPerKey(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		size       int
		keys       int
		goroutines int
		perKey     int
	}{
		{name: "fewer-workers-than-keys", size: 4, keys: 64, goroutines: 8, perKey: 100},
		{name: "more-workers-than-keys", size: 32, keys: 8, goroutines: 4, perKey: 200},
		{name: "one-worker", size: 1, keys: 16, goroutines: 4, perKey: 50},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newTestWorkers(t, WorkersConfig{Size: tc.size})
			// seen[k] is appended to by key k's tasks only, without a lock:
			// the race detector reports tasks of one key that overlap.
			seen := make([][]int, tc.keys)
			inFlight := make([]atomic.Int32, tc.keys)
			var overlaps atomic.Int64
			var wg sync.WaitGroup
			for g := range tc.goroutines {
				wg.Go(func() {
					// Goroutine g owns the keys k with k%goroutines == g, so
					// each key's submission order is well defined.
					for i := range tc.perKey {
						for k := g; k < tc.keys; k += tc.goroutines {
							err := w.Submit(uint64(k), func() {
								if inFlight[k].Add(1) != 1 {
									overlaps.Add(1)
								}
								seen[k] = append(seen[k], i)
								inFlight[k].Add(-1)
							})
							if err != nil {
								t.Errorf("submit: %v", err)
								return
							}
						}
					}
				})
			}
			wg.Wait()
			ctx, cancel := context.WithTimeout(context.Background(), workersTestTimeout)
			defer cancel()
			if err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if n := overlaps.Load(); n > 0 {
				t.Errorf("%d tasks ran while another of their key was running", n)
			}
			for k, s := range seen {
				if len(s) != tc.perKey {
					t.Fatalf("key %d ran %d tasks, want %d", k, len(s), tc.perKey)
				}
				for i, v := range s {
					if v != i {
						t.Fatalf("key %d: task %d ran in place %d", k, v, i)
					}
				}
			}
			w.mu.Lock()
			left := len(w.keys)
			w.mu.Unlock()
			if left != 0 {
				t.Errorf("%d keys still hold state after their tasks ran", left)
			}
		})
	}
}

func TestWorkersParallelAcrossKeys(t *testing.T) {
	t.Parallel()
	const size = 4
	w := newTestWorkers(t, WorkersConfig{Size: size})
	var started sync.WaitGroup
	started.Add(size)
	release := make(chan struct{})
	allStarted := make(chan struct{})
	for k := range size {
		if err := w.Submit(uint64(k), func() { started.Done(); <-release }); err != nil {
			t.Fatal(err)
		}
	}
	go func() { started.Wait(); close(allStarted) }()
	wait(t, allStarted, "tasks of different keys to run at once")

	// A further key waits for a free worker; a task of a busy key waits
	// for its key.
	ran := make(chan struct{}, 2)
	if err := w.Submit(100, func() { ran <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	if err := w.Submit(0, func() { ran <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ran:
		t.Fatal("a task started while all workers were busy")
	case <-time.After(50 * time.Millisecond):
	}
	if got := w.QueueDepth(); got != 2 {
		t.Errorf("QueueDepth() = %d, want 2", got)
	}
	close(release)
	for range 2 {
		select {
		case <-ran:
		case <-time.After(workersTestTimeout):
			t.Fatal("queued tasks did not run")
		}
	}
}

func TestWorkersQueueLimit(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		limit int
		keys  []uint64 // keys of the queued tasks
	}{
		{name: "same-key", limit: 3, keys: []uint64{1, 1, 1}},
		{name: "other-keys", limit: 2, keys: []uint64{2, 3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newTestWorkers(t, WorkersConfig{Size: 1, QueueLimit: tc.limit})
			started, release := make(chan struct{}), make(chan struct{})
			if err := w.Submit(1, func() { close(started); <-release }); err != nil {
				t.Fatal(err)
			}
			wait(t, started, "first task")
			var ran atomic.Int64
			for _, k := range tc.keys {
				if err := w.Submit(k, func() { ran.Add(1) }); err != nil {
					t.Fatalf("submit within the limit: %v", err)
				}
			}
			if err := w.Submit(99, func() {}); !errors.Is(err, ErrQueueFull) {
				t.Errorf("submit past the limit = %v, want ErrQueueFull", err)
			}
			if got := w.QueueDepth(); got != tc.limit {
				t.Errorf("QueueDepth() = %d, want %d", got, tc.limit)
			}
			close(release)
			ctx, cancel := context.WithTimeout(context.Background(), workersTestTimeout)
			defer cancel()
			if err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}
			if got := ran.Load(); got != int64(len(tc.keys)) {
				t.Errorf("queued tasks run = %d, want %d", got, len(tc.keys))
			}
		})
	}
}

func TestWorkersClose(t *testing.T) {
	t.Parallel()
	t.Run("waits-for-queued-tasks", func(t *testing.T) {
		t.Parallel()
		w := newTestWorkers(t, WorkersConfig{Size: 2})
		var ran atomic.Int64
		for i := range 20 {
			if err := w.Submit(uint64(i%3), func() { time.Sleep(time.Millisecond); ran.Add(1) }); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), workersTestTimeout)
		defer cancel()
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if got := ran.Load(); got != 20 {
			t.Errorf("tasks run before Close returned = %d, want 20", got)
		}
		if err := w.Submit(1, func() {}); !errors.Is(err, ErrClosed) {
			t.Errorf("Submit after Close = %v, want ErrClosed", err)
		}
	})
	t.Run("gives-up-with-ctx", func(t *testing.T) {
		t.Parallel()
		w, err := NewWorkers(WorkersConfig{Size: 1})
		if err != nil {
			t.Fatal(err)
		}
		release := make(chan struct{})
		defer close(release)
		if err := w.Submit(1, func() { <-release }); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if err := w.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close = %v, want DeadlineExceeded", err)
		}
	})
}

func TestWorkersPanic(t *testing.T) {
	t.Parallel()
	panics := make(chan uint64, 1)
	w := newTestWorkers(t, WorkersConfig{Size: 1, PanicHandler: func(key uint64, v any) {
		if v != "boom" {
			t.Errorf("panic value = %v", v)
		}
		panics <- key
	}})
	after := make(chan struct{})
	if err := w.Submit(7, func() { panic("boom") }); err != nil {
		t.Fatal(err)
	}
	if err := w.Submit(7, func() { close(after) }); err != nil {
		t.Fatal(err)
	}
	wait(t, after, "the task after a panic")
	if key := <-panics; key != 7 {
		t.Errorf("PanicHandler key = %d, want 7", key)
	}
}

func BenchmarkWorkersSubmit(b *testing.B) {
	w, err := NewWorkers(WorkersConfig{Size: 8})
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	task := func() { wg.Done() }
	b.ReportAllocs()
	i := uint64(0)
	for b.Loop() {
		wg.Add(1)
		for w.Submit(i%64, task) != nil {
		}
		i++
	}
	wg.Wait()
	_ = w.Close(context.Background())
}

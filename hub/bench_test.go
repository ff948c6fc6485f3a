package hub

import (
	"fmt"
	"testing"
)

// BenchmarkFanout publishes one message per op to a channel whose
// subscribers are spread over two loops that drain inline: the hub's whole
// cost of a fan-out (sequence, store, encode once, post, walk), without
// sockets. ns/sub is the cost per delivery; allocs/op must not grow with the
// number of subscribers.
func BenchmarkFanout(b *testing.B) {
	for _, subs := range []int{1_000, 10_000} {
		b.Run(fmt.Sprint("subs=", subs), func(b *testing.B) {
			h := New(Config{})
			loops := []*inlineLoop{{idx: 0}, {idx: 1}}
			counters := make([]counter, subs)
			for i := range counters {
				h.Subscribe(loops[i%2], "bench", &counters[i], nil)
			}
			data := []byte(`{"symbol":"HRLD","price":42.5}`)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := h.Publish("bench", data); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(subs), "ns/sub")
			if counters[0].n != b.N {
				b.Fatalf("subscriber 0 got %d of %d messages", counters[0].n, b.N)
			}
		})
	}
}

// BenchmarkPublishNoSubscribers is the fixed cost of a publish: sequence,
// store in history, encode both frames.
func BenchmarkPublishNoSubscribers(b *testing.B) {
	h := New(Config{})
	data := []byte(`{"symbol":"HRLD","price":42.5}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Publish("bench", data); err != nil {
			b.Fatal(err)
		}
	}
}

package hub

import (
	"fmt"
	"math/rand/v2"
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

// BenchmarkSubscribeMany is a storm onto one channel: per op, 10,000
// subscribers join it on one loop (SubscribeNew, as push's join does) and
// then leave it in a random order. ns/sub and B/sub are the cost of one
// subscription and its removal, its share of the list's and the index's
// growth included.
func BenchmarkSubscribeMany(b *testing.B) {
	const subs = 10_000
	l := &inlineLoop{}
	counters := make([]counter, subs)
	order := rand.Perm(subs)
	b.ReportAllocs()
	for b.Loop() {
		h := New(Config{})
		for i := range counters {
			if _, _, _, _, err := h.SubscribeNew(l, "bench", &counters[i], nil, true); err != nil {
				b.Fatal(err)
			}
		}
		for _, i := range order {
			h.Unsubscribe(l, "bench", &counters[i])
		}
		if s := h.Stats(); s.Subscriptions != 0 {
			b.Fatalf("%d subscriptions left", s.Subscriptions)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/subs, "ns/sub")
}

// BenchmarkSubscribeNewChannels is a storm of new users: per op, 10,000
// subscribers each join a channel of their own, which the hub creates
// (SubscribeNew), and then leave it, which forgets it. ns/sub and B/op
// are the cost of a channel's life with one subscriber.
func BenchmarkSubscribeNewChannels(b *testing.B) {
	const subs = 10_000
	l := &inlineLoop{}
	counters := make([]counter, subs)
	names := make([]string, subs)
	for i := range names {
		names[i] = fmt.Sprintf("user:u%d", i)
	}
	b.ReportAllocs()
	for b.Loop() {
		h := New(Config{})
		for i := range counters {
			if _, _, _, _, err := h.SubscribeNew(l, names[i], &counters[i], nil, true); err != nil {
				b.Fatal(err)
			}
		}
		for i := range counters {
			h.Unsubscribe(l, names[i], &counters[i])
		}
		if s := h.Stats(); s.Subscriptions != 0 || s.Channels != 0 {
			b.Fatalf("%d subscriptions, %d channels left", s.Subscriptions, s.Channels)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/subs, "ns/sub")
}

package push

import (
	"fmt"
	"testing"

	"github.com/herald-push/herald/hub"
)

// inlineLoop is a hub.Loop that runs each func at once on the caller's
// goroutine, for measuring a publish without sockets.
type inlineLoop struct{ idx int }

func (l *inlineLoop) Index() int          { return l.idx }
func (l *inlineLoop) Run(fn func()) error { fn(); return nil }

// frameCounter is a hub.Subscriber that picks the envelope as a Session
// does and counts its bytes.
type frameCounter struct{ n, bytes int }

func (c *frameCounter) Deliver(m *hub.Message) { c.n++; c.bytes += framesOf(m).Envelope.Len() }

// encodedHub is a hub with the App's Encoder and n counting subscribers of
// "c" spread over two inline loops.
func encodedHub(n int) (*hub.Hub, []frameCounter) {
	h := hub.New(hub.Config{Encoder: Encoder{MaxFrame: 1 << 20}})
	loops := []*inlineLoop{{idx: 0}, {idx: 1}}
	subs := make([]frameCounter, n)
	for i := range subs {
		_, _, _, _ = h.Subscribe(loops[i%2], "c", &subs[i], nil)
	}
	return h, subs
}

// TestEncodedFanoutAllocs: with the Encoder, a publish allocates the same
// whatever the number of subscribers (nothing per subscriber), and a
// fixed few: the message, its frames' bytes, their holder.
func TestEncodedFanoutAllocs(t *testing.T) {
	allocs := func(n int) float64 {
		h, _ := encodedHub(n)
		data := []byte(`{"price":42}`)
		for range 200 { // fill history and warm the mailboxes
			_, _ = h.Publish("c", data)
		}
		return testing.AllocsPerRun(200, func() { _, _ = h.Publish("c", data) })
	}
	small, large := allocs(10), allocs(5000)
	if small != large || large > 4 {
		t.Fatalf("allocs per publish: %v with 10 subscribers, %v with 5000; want equal and at most 4", small, large)
	}
}

// BenchmarkEncodedFanout is hub's BenchmarkFanout with the App's Encoder:
// the whole cost of a publish (check, sequence, encode once, store, post,
// walk) without sockets.
func BenchmarkEncodedFanout(b *testing.B) {
	for _, n := range []int{1_000, 10_000} {
		b.Run(fmt.Sprint("subs=", n), func(b *testing.B) {
			h, subs := encodedHub(n)
			data := []byte(`{"symbol":"HRLD","price":42.5}`)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h.Publish("c", data); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/sub")
			if subs[0].n != b.N {
				b.Fatalf("subscriber 0 got %d of %d messages", subs[0].n, b.N)
			}
		})
	}
}

package hub

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSubscribeRacesPublish subscribes on two loops while four goroutines
// publish to the same channel: every subscriber must see exactly the
// messages after its position (or after its since, when recovered), each
// once, in order.
func TestSubscribeRacesPublish(t *testing.T) {
	t.Parallel()
	const (
		publishers = 4
		perPub     = 300
		subsPerRun = 48
	)
	h := New(Config{HistorySize: 64})
	loops := []*goLoop{newGoLoop(t, 0), newGoLoop(t, 1)}

	type subscriber struct {
		rec       *recorder
		loop      *goLoop
		pos       Position
		since     *Position
		recovered bool
	}
	var (
		mu   sync.Mutex
		subs []*subscriber
		last Position // a position seen recently, for since
	)
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range perPub {
				if i%20 == 0 {
					time.Sleep(time.Millisecond) // let subscribers interleave
				}
				m, err := h.Publish("race", fmt.Appendf(nil, `{"p":%d,"i":%d}`, p, i))
				if err != nil {
					t.Error(err)
					return
				}
				if i%7 == 0 {
					mu.Lock()
					last = Position{Offset: m.Offset, Epoch: m.Epoch}
					mu.Unlock()
				}
				_, _ = h.Publish("other", []byte("noise"))
			}
		})
	}
	wg.Go(func() {
		for i := range subsPerRun {
			s := &subscriber{rec: &recorder{}, loop: loops[i%2]}
			mu.Lock()
			if i%3 == 1 && last.Epoch != "" {
				since := last
				since.Offset -= uint64(rand.IntN(int(min(since.Offset, 40))))
				s.since = &since
			}
			subs = append(subs, s)
			mu.Unlock()
			s.loop.do(t, func() {
				var backlog []*Message
				s.pos, backlog, s.recovered, _ = h.Subscribe(s.loop, "race", s.rec, s.since)
				s.rec.msgs = append(s.rec.msgs, backlog...) // written before live ones, as the server does
			})
			time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
		}
	})
	wg.Wait()
	for _, l := range loops {
		l.do(t, func() {}) // every drain queued by the publishes has run
	}

	const total = publishers * perPub
	recovered, midway := 0, 0
	for i, s := range subs {
		if s.pos.Offset > 0 && s.pos.Offset < total {
			midway++
		}
		from := s.pos.Offset + 1
		if s.recovered {
			recovered++
			from = s.since.Offset + 1
		}
		var got []uint64
		s.loop.do(t, func() { got = s.rec.offsets() })
		if want := seq(from, total); !slices.Equal(got, want) {
			t.Fatalf("subscriber %d (position %d, since %v, recovered %v): got %d messages %v..., want %d from %d",
				i, s.pos.Offset, s.since, s.recovered, len(got), got[:min(len(got), 5)], len(want), from)
		}
	}
	t.Logf("%d of %d subscribers joined mid-stream, %d recovered", midway, len(subs), recovered)
	st := h.Stats()
	if st.Published != 2*total || st.Subscriptions != subsPerRun {
		t.Fatalf("stats %+v", st)
	}
}

func TestUnsubscribeStopsDelivery(t *testing.T) {
	t.Parallel()
	h := New(Config{})
	l := &inlineLoop{}
	a, b := &recorder{}, &recorder{}
	h.Subscribe(l, "c", a, nil)
	h.Subscribe(l, "c", b, nil)
	mustPublish(t, h, "c", "1")
	h.Unsubscribe(l, "c", a)
	h.Unsubscribe(l, "c", a)                   // twice: no-op
	h.Unsubscribe(l, "nope", b)                // unknown channel: no-op
	h.Unsubscribe(&inlineLoop{idx: 9}, "c", b) // unknown loop: no-op
	mustPublish(t, h, "c", "2")
	if !slices.Equal(a.offsets(), []uint64{1}) || !slices.Equal(b.offsets(), []uint64{1, 2}) {
		t.Fatalf("a got %v, b got %v; want [1] and [1 2]", a.offsets(), b.offsets())
	}
	if s := h.Stats(); s.Subscriptions != 1 || s.Deliveries != 3 {
		t.Fatalf("stats %+v: want 1 subscription, 3 deliveries", s)
	}
	if info, _ := h.Info("c"); info.Subscribers != 1 {
		t.Fatalf("channel counts %d subscribers, want 1", info.Subscribers)
	}
}

// TestChangesDuringDeliver piles three messages into one drain while
// subscribers unsubscribe themselves and others, and subscribe newcomers,
// from Deliver.
func TestChangesDuringDeliver(t *testing.T) {
	t.Parallel()
	for _, n := range []int{8, 40} { // below and above indexThreshold
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			h := New(Config{})
			l := &manualLoop{}
			recs := make([]*recorder, n)
			for i := range recs {
				recs[i] = &recorder{}
			}
			late := &recorder{}
			recs[3].onDeliver = func(*Message) { h.Unsubscribe(l, "c", recs[3]) }
			recs[5].onDeliver = func(m *Message) {
				if m.Offset == 1 {
					h.Unsubscribe(l, "c", recs[n-1]) // not walked yet
					h.Unsubscribe(l, "c", recs[0])   // already walked
					h.Subscribe(l, "c", late, nil)
				}
			}
			for _, r := range recs {
				h.Subscribe(l, "c", r, nil)
			}
			for range 3 {
				mustPublish(t, h, "c", "x")
			}
			l.flush()
			mustPublish(t, h, "c", "x")
			l.flush()

			for i, r := range recs {
				want := seq(1, 4)
				switch i {
				case 0:
					want = seq(1, 1)
				case 3:
					want = seq(1, 1)
				case n - 1:
					want = nil
				}
				if !slices.Equal(r.offsets(), want) {
					t.Errorf("subscriber %d got %v, want %v", i, r.offsets(), want)
				}
			}
			if !slices.Equal(late.offsets(), []uint64{4}) {
				t.Errorf("late subscriber got %v, want [4]", late.offsets())
			}
			if s := h.Stats(); s.Subscriptions != int64(n-3+1) {
				t.Errorf("%d subscriptions, want %d", s.Subscriptions, n-3+1)
			}
		})
	}
}

func TestManySubscribersIndexed(t *testing.T) {
	t.Parallel()
	h := New(Config{})
	l := &inlineLoop{}
	recs := make([]*recorder, 200)
	for i := range recs {
		recs[i] = &recorder{}
		h.Subscribe(l, "c", recs[i], nil)
	}
	gone := map[int]bool{}
	for _, i := range rand.Perm(len(recs))[:120] {
		h.Unsubscribe(l, "c", recs[i])
		gone[i] = true
	}
	// Re-subscribing a remaining pair changes nothing.
	for i, r := range recs {
		if !gone[i] {
			h.Subscribe(l, "c", r, nil)
			break
		}
	}
	mustPublish(t, h, "c", "x")
	for i, r := range recs {
		if want := !gone[i]; (len(r.msgs) == 1) != want || len(r.msgs) > 1 {
			t.Fatalf("subscriber %d (unsubscribed %v) got %d messages", i, gone[i], len(r.msgs))
		}
	}
	if s := h.Stats(); s.Subscriptions != 80 || s.Deliveries != 80 {
		t.Fatalf("stats %+v: want 80 subscriptions and deliveries", s)
	}
}

// valueSub is a Subscriber that is not a pointer.
type valueSub struct{ id int }

func (valueSub) Deliver(*Message) {}

// TestSubscriberMustBePointer checks that a Subscriber which is not a
// pointer is refused: the index keys subscribers by address, and a value
// is boxed afresh each time it becomes an interface, so Unsubscribe would
// never find it.
func TestSubscriberMustBePointer(t *testing.T) {
	t.Parallel()
	h := New(Config{})
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "must be a pointer") {
			t.Fatalf("Subscribe of a value: recovered %v, want the pointer panic", r)
		}
		if s := h.Stats(); s.Subscriptions != 0 {
			t.Fatalf("%d subscriptions after the refusal, want 0", s.Subscriptions)
		}
	}()
	h.Subscribe(&inlineLoop{}, "c", valueSub{1}, nil)
}

func TestDeliverMayPublish(t *testing.T) {
	t.Parallel()
	h := New(Config{})
	l := &inlineLoop{}
	echo := &recorder{}
	echo.onDeliver = func(m *Message) {
		if _, err := h.Publish("echo", m.Data); err != nil {
			t.Error(err)
		}
	}
	out := &recorder{}
	h.Subscribe(l, "in", echo, nil)
	h.Subscribe(l, "echo", out, nil)
	done := make(chan struct{})
	go func() { mustPublish(t, h, "in", "ping"); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("publish from Deliver deadlocked")
	}
	if len(out.msgs) != 1 || string(out.msgs[0].Data) != "ping" {
		t.Fatalf("echo channel got %d messages", len(out.msgs))
	}
}

func TestStoppedLoopDrops(t *testing.T) {
	t.Parallel()
	h := New(Config{})
	h.Subscribe(&deadLoop{}, "c", &recorder{}, nil)
	for range 3 {
		mustPublish(t, h, "c", "x")
	}
	if s := h.Stats(); s.Dropped != 3 || s.Deliveries != 0 {
		t.Fatalf("stats %+v: want 3 dropped, 0 delivered", s)
	}
}

func TestLoopIndexClash(t *testing.T) {
	t.Parallel()
	h := New(Config{})
	h.Subscribe(&inlineLoop{idx: 1}, "c", &recorder{}, nil)
	defer func() {
		if recover() == nil {
			t.Fatal("a second loop with index 1 was accepted")
		}
	}()
	h.Subscribe(&inlineLoop{idx: 1}, "c", &recorder{}, nil)
}

// TestFanoutAllocs checks that a publish allocates the same whatever the
// number of subscribers: nothing per subscriber.
func TestFanoutAllocs(t *testing.T) {
	allocs := func(n int) float64 {
		h := New(Config{})
		loops := []*inlineLoop{{idx: 0}, {idx: 1}}
		for i := range n {
			h.Subscribe(loops[i%2], "c", &counter{}, nil)
		}
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

// TestConcurrentBudgetAndSweep publishes to many channels under a small
// byte cap while Sweep runs: the race detector watches the locks, and the
// accounting must end consistent, within the cap, and every subscriber
// complete.
func TestConcurrentBudgetAndSweep(t *testing.T) {
	t.Parallel()
	const (
		channels = 8
		perPub   = 400
	)
	h := New(Config{HistorySize: 50, MaxHistoryBytes: 20 << 10})
	loop := newGoLoop(t, 0)
	recs := make([]*recorder, channels)
	for i := range recs {
		recs[i] = &recorder{}
		loop.do(t, func() { h.Subscribe(loop, fmt.Sprint("c", i), recs[i], nil) })
	}
	stop := make(chan struct{})
	var sweeper sync.WaitGroup
	sweeper.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				h.Sweep()
				_ = h.Channels()
				time.Sleep(100 * time.Microsecond)
			}
		}
	})
	var wg sync.WaitGroup
	for p := range 4 {
		wg.Go(func() {
			for i := range perPub {
				ch := fmt.Sprint("c", (p+i)%channels)
				if _, err := h.Publish(ch, make([]byte, 50+i%200)); err != nil {
					t.Error(err)
					return
				}
				// Channels nobody subscribes to come and go.
				_, _ = h.Publish(fmt.Sprint("tmp", i%5), []byte("x"))
			}
		})
	}
	wg.Wait()
	close(stop)
	sweeper.Wait()
	loop.do(t, func() {})

	var got int
	for i, r := range recs {
		var offs []uint64
		loop.do(t, func() { offs = r.offsets() })
		if want := seq(1, uint64(len(offs))); !slices.Equal(offs, want) {
			t.Fatalf("channel c%d: offsets not 1..n: %v", i, offs)
		}
		got += len(offs)
	}
	if got != 4*perPub {
		t.Fatalf("%d deliveries, want %d", got, 4*perPub)
	}
	var bytes, msgs int64
	for _, c := range h.Channels() {
		bytes += c.HistoryBytes
		msgs += int64(c.HistoryLen)
	}
	s := h.Stats()
	if s.HistoryBytes != bytes || s.HistoryMessages != msgs {
		t.Fatalf("stats count %d messages, %d bytes; channels hold %d, %d", s.HistoryMessages, s.HistoryBytes, msgs, bytes)
	}
	if bytes > 20<<10 {
		t.Fatalf("history holds %d bytes, over the 20 KiB cap", bytes)
	}
	withHistory := 0
	for _, c := range h.Channels() {
		if c.HistoryLen > 0 {
			withHistory++
		}
	}
	if n := h.budget.len(); n != withHistory {
		t.Fatalf("budget heap holds %d channels, %d have history", n, withHistory)
	}
}

// TestHomeList follows a channel's subscribers on its home loop (the
// first to subscribe, whose list is the channel's own) and on another
// loop, in the loop's table: each loop gets what its subscribers are due,
// whichever leaves first; an emptied home list lets go of its subscribers
// and of the array it grew; a channel subscribed first on the other loop
// after the first one is forgotten takes that loop for its home.
func TestHomeList(t *testing.T) {
	t.Parallel()
	h := New(Config{HistorySize: 8}) // history keeps the channel known when it empties
	home, other := &inlineLoop{idx: 0}, &inlineLoop{idx: 3}
	a, b, c := &recorder{}, &recorder{}, &recorder{}
	h.Subscribe(home, "ch", a, nil)
	h.Subscribe(home, "ch", b, nil) // grows the home list out of its room for one
	h.Subscribe(other, "ch", c, nil)
	ch := h.chans["ch"]
	if got := ch.home.Load(); got != 1 {
		t.Fatalf("home = %d, want 1 (loop 0)", got)
	}
	if _, inTable := (*h.loops.Load())[0].subs[ch]; inTable {
		t.Fatal("the home loop's list is in its table too")
	}
	if (*h.loops.Load())[3].subs[ch] == nil {
		t.Fatal("the other loop's list is not in its table")
	}
	mustPublish(t, h, "ch", "1")
	h.Unsubscribe(home, "ch", a)
	mustPublish(t, h, "ch", "2")
	h.Unsubscribe(home, "ch", b)
	mustPublish(t, h, "ch", "3")
	if !slices.Equal(a.offsets(), []uint64{1}) || !slices.Equal(b.offsets(), []uint64{1, 2}) || !slices.Equal(c.offsets(), []uint64{1, 2, 3}) {
		t.Fatalf("a got %v, b %v, c %v; want [1], [1 2], [1 2 3]", a.offsets(), b.offsets(), c.offsets())
	}
	if ch.localFirst[0].sub != nil || cap(ch.local.entries) != 1 || ch.local.live != 0 {
		t.Fatalf("emptied home list holds %v, cap %d, %d live; want nothing, its room for one", ch.localFirst[0].sub, cap(ch.local.entries), ch.local.live)
	}
	// Back on the home loop after it emptied; the other loop leaves.
	h.Subscribe(home, "ch", a, nil)
	h.Unsubscribe(other, "ch", c)
	if (*h.loops.Load())[3].subs[ch] != nil {
		t.Fatal("the other loop's emptied list stays in its table")
	}
	mustPublish(t, h, "ch", "4")
	if !slices.Equal(a.offsets(), []uint64{1, 4}) || !slices.Equal(c.offsets(), []uint64{1, 2, 3}) {
		t.Fatalf("a got %v, c %v; want [1 4], [1 2 3]", a.offsets(), c.offsets())
	}
	if st := h.Stats(); st.Subscriptions != 1 || st.Deliveries != 7 {
		t.Fatalf("stats %+v: want 1 subscription, 7 deliveries", st)
	}
	// A channel without history is forgotten with its last subscriber;
	// the next one, on the other loop, makes it anew with that home.
	h.Subscribe(home, "gone", a, nil)
	h.Unsubscribe(home, "gone", a)
	h.Subscribe(other, "gone", c, nil)
	if got := h.chans["gone"].home.Load(); got != 4 {
		t.Fatalf("re-made channel's home = %d, want 4 (loop 3)", got)
	}
	mustPublish(t, h, "gone", "x")
	if got := len(c.offsets()); got != 4 {
		t.Fatalf("c got %v, want its three and the new channel's one", c.offsets())
	}
}

package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"
)

func run(t *testing.T, cfg Config) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

// TestDeliveryCounting checks exact counts, and loss and duplicates
// detected per connection, against servers that misbehave in known ways.
func TestDeliveryCounting(t *testing.T) {
	t.Parallel()
	const conns, count = 20, 5
	tests := []struct {
		name                   string
		policy                 fakePolicy
		procs                  int
		pubWS                  bool
		wantDeliveries         int64
		wantLost, wantDups     int64
		wantPublished          int64
		wantCompletionMessages int64
	}{
		{name: "faithful", wantDeliveries: conns * count, wantPublished: count, wantCompletionMessages: count},
		{
			name:   "drops seq 2 and repeats seq 3",
			policy: fakePolicy{drop: 2 + 1, dup: 3 + 1},
			// The dropped message is published (HTTP 200) but never sent.
			wantDeliveries: conns * (count - 1), wantLost: conns, wantDups: conns,
			wantPublished: count, wantCompletionMessages: count - 1,
		},
		{name: "published over a websocket", pubWS: true, wantDeliveries: conns * count, wantPublished: count, wantCompletionMessages: count},
		{name: "two worker processes", procs: 2, wantDeliveries: conns * count, wantPublished: count, wantCompletionMessages: count},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := newFakeServer(t, tc.policy)
			cfg := srv.baseConfig(ScenarioBroadcast)
			if tc.wantLost > 0 {
				// Messages lost by design never arrive: the drain waits its
				// whole bound, so keep that short.
				cfg.Drain = 2 * time.Second
			}
			if tc.pubWS {
				cfg.PubHTTP, cfg.PubWS, cfg.PubWSURL = "", "PUB {payload}", srv.wsURL()+"?publisher"
			}
			if tc.procs > 1 {
				cfg.Procs, cfg.Exe, cfg.ExeArgs = tc.procs, os.Args[0], []string{"-test.run=^$"}
			}
			res := run(t, cfg)
			if res.Connected != conns || res.SteadyConns != conns {
				t.Fatalf("connected %d, steady %d; want %d", res.Connected, res.SteadyConns, conns)
			}
			if res.Published != tc.wantPublished {
				t.Errorf("published %d, want %d", res.Published, tc.wantPublished)
			}
			if res.Deliveries != tc.wantDeliveries || res.Lost != tc.wantLost || res.Duplicates != tc.wantDups {
				t.Errorf("deliveries %d lost %d dups %d; want %d, %d, %d",
					res.Deliveries, res.Lost, res.Duplicates, tc.wantDeliveries, tc.wantLost, tc.wantDups)
			}
			if res.Latency.Count() != tc.wantDeliveries {
				t.Errorf("latency histogram holds %d values, want %d", res.Latency.Count(), tc.wantDeliveries)
			}
			if got := res.Completion.Count(); got != tc.wantCompletionMessages {
				t.Errorf("completion recorded for %d messages, want %d", got, tc.wantCompletionMessages)
			}
			if tc.procs > 1 && res.Procs != tc.procs {
				t.Errorf("procs %d, want %d", res.Procs, tc.procs)
			}
		})
	}
}

// TestLatencyMeasured checks the latency against a server that holds
// every message for a known time: the median must reflect the delay (and
// could not be mistaken for a fast path), without a tight wall-clock bound.
func TestLatencyMeasured(t *testing.T) {
	t.Parallel()
	const delay = 50 * time.Millisecond
	srv := newFakeServer(t, fakePolicy{delay: delay})
	res := run(t, srv.baseConfig(ScenarioBroadcast))
	p50 := res.Latency.Quantile(50)
	if p50 < delay*9/10 || p50 > 20*delay {
		t.Errorf("p50 latency %v; want about %v (between 0.9x and 20x)", p50, delay)
	}
	if c := res.Completion.Quantile(50); c < p50 {
		t.Errorf("completion p50 %v below delivery p50 %v", c, p50)
	}
}

func TestEchoAndSustained(t *testing.T) {
	t.Parallel()
	tests := []struct {
		scenario string
		want     func(r *Result) int64 // deliveries expected
	}{
		{ScenarioEcho, func(r *Result) int64 { return r.Sent }},
		{ScenarioSustained, func(r *Result) int64 { return r.Published * int64(r.Connected) }},
	}
	for _, tc := range tests {
		t.Run(tc.scenario, func(t *testing.T) {
			t.Parallel()
			srv := newFakeServer(t, fakePolicy{})
			cfg := srv.baseConfig(tc.scenario)
			cfg.Rate = 200
			res := run(t, cfg)
			want := tc.want(res)
			if want == 0 || res.Deliveries != want || res.Lost != 0 || res.Duplicates != 0 {
				t.Errorf("deliveries %d (want %d, > 0), lost %d, dups %d", res.Deliveries, want, res.Lost, res.Duplicates)
			}
			if res.DeliveriesPerSec <= 0 {
				t.Errorf("deliveries/s %v, want > 0", res.DeliveriesPerSec)
			}
		})
	}
}

func TestStormReconnectsAll(t *testing.T) {
	t.Parallel()
	srv := newFakeServer(t, fakePolicy{})
	res := run(t, srv.baseConfig(ScenarioStorm))
	if res.Reconnected != 20 || res.OpenAtEnd != 20 || res.RecoverySeconds <= 0 {
		t.Errorf("reconnected %d, open at end %d, recovery %v s; want 20, 20, > 0", res.Reconnected, res.OpenAtEnd, res.RecoverySeconds)
	}
	if len(res.Dropped) != 0 {
		t.Errorf("drops counted for the storm's own closes: %v", res.Dropped)
	}
}

// TestSlowConsumers checks that the connections that stop reading are
// reported, that the server's cutting them off is seen, and that the
// others still get everything.
func TestSlowConsumers(t *testing.T) {
	t.Parallel()
	srv := newFakeServer(t, fakePolicy{})
	cfg := srv.baseConfig(ScenarioSlow)
	// 100 messages of 64 KiB: more than the socket buffers hold.
	cfg.SlowShare, cfg.Rate, cfg.PayloadSize, cfg.Duration = 0.25, 200, 64<<10, 500*time.Millisecond
	// The drain ends as soon as every steady connection has every message;
	// the long bound only leaves room for a busy machine (the slow
	// consumers hold each broadcast up to fakeWriteTimeout before they are
	// cut).
	cfg.Drain, cfg.Deadline = 20*time.Second, time.Minute
	res := run(t, cfg)
	if res.SlowConns != 5 || res.SlowCut != 5 {
		t.Errorf("slow %d, cut %d; want 5, 5", res.SlowConns, res.SlowCut)
	}
	if res.SteadyConns != 15 || res.Lost != 0 || res.Deliveries != 15*res.Published || res.Published == 0 {
		t.Errorf("steady %d, lost %d, deliveries %d of %d published; want 15 steady, all delivered",
			res.SteadyConns, res.Lost, res.Deliveries, res.Published)
	}
}

func TestConnectFailuresByCause(t *testing.T) {
	t.Parallel()
	srv := newFakeServer(t, fakePolicy{})
	cfg := srv.baseConfig(ScenarioIdle)
	cfg.URL = srv.wsURL() + "-missing" // the mux answers 404
	cfg.Conns, cfg.Retries, cfg.Duration = 3, 1, 10*time.Millisecond
	res := run(t, cfg)
	if res.Connected != 0 || res.GaveUp != 3 || res.ConnectFailures["http-404"] != 6 || res.ConnectAttempts != 6 {
		t.Errorf("connected %d, gave up %d, failures %v, attempts %d; want 0, 3, http-404=6, 6",
			res.Connected, res.GaveUp, res.ConnectFailures, res.ConnectAttempts)
	}
}

// TestMerge checks that results combine exactly: counts add up,
// histograms merge value by value, per-message completion takes the
// latest, and the JSON form round-trips the histograms.
func TestMerge(t *testing.T) {
	t.Parallel()
	mk := func(deliv int64, lat []time.Duration, completion []int64) *Result {
		r := &Result{Scenario: ScenarioBroadcast, Procs: 1, ConnsTarget: 10, Connected: 10, SteadyConns: 10,
			Deliveries: deliv, SteadyDeliveries: deliv, CompletionBySeq: completion,
			ConnectFailures: map[string]int64{"refused": 1}}
		for _, d := range lat {
			r.Latency.Record(d)
		}
		return r
	}
	a := mk(20, []time.Duration{time.Millisecond, 2 * time.Millisecond}, []int64{100, 900})
	b := mk(19, []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 30 * time.Millisecond}, []int64{500, 200})
	pub := &Result{Published: 2}
	// Through JSON, as worker results travel.
	var parts []*Result
	for _, r := range []*Result{a, b, pub} {
		var buf bytes.Buffer
		if err := r.WriteJSON(&buf); err != nil {
			t.Fatal(err)
		}
		var back Result
		if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, &back)
	}
	m := Merge(parts...)
	checks := []struct {
		name      string
		got, want int64
	}{
		{"procs", int64(m.Procs), 2},
		{"connected", int64(m.Connected), 20},
		{"deliveries", m.Deliveries, 39},
		{"expected", m.Expected, 40},
		{"lost", m.Lost, 1},
		{"refused", m.ConnectFailures["refused"], 2},
		{"latency count", m.Latency.Count(), 5},
		{"latency max ms", m.Latency.Max().Milliseconds(), 30},
		{"latency p50 ms", m.Latency.Quantile(50).Milliseconds(), 10},
		{"completion seq 0", m.CompletionBySeq[0], 500},
		{"completion seq 1", m.CompletionBySeq[1], 900},
		{"completion count", m.Completion.Count(), 2},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
	_ = Merge(a, b)
	if a.Deliveries != 20 || a.ConnectFailures["refused"] != 1 || a.CompletionBySeq[0] != 100 {
		t.Error("Merge modified its input")
	}
}

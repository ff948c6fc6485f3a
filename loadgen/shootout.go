package loadgen

import (
	"context"
	"math"
	"sync"
	"time"
)

// ShootoutStep is one client count of the shootout. Latencies are of
// every delivery of the step's broadcasts, in microseconds.
type ShootoutStep struct {
	Clients    int   `json:"clients"`
	Open       int64 `json:"open"`
	Published  int64 `json:"published"`
	Expected   int64 `json:"expected"`
	Deliveries int64 `json:"deliveries"`
	P50        int64 `json:"p50_us"`
	P95        int64 `json:"p95_us"`
	P99        int64 `json:"p99_us"`
	Max        int64 `json:"max_us"`
	// Pass: every client open, every delivery made, p95 within the bound.
	Pass bool `json:"pass"`
}

// ShootoutResult is the shootout's account: MaxPassing is the largest
// client count whose step passed (0 if none did), the websocket-shootout
// metric. Stop says why the steps ended: "p95" (over the bound), "loss"
// (deliveries missing after the drain), "connect" (clients that would not
// open), "publish" (publishes failed), "max" (Conns, or the open-file
// limit FDLimit, reached) or "canceled".
type ShootoutResult struct {
	BoundMicros int64          `json:"p95_bound_us"`
	FDLimit     int            `json:"fd_limit"`
	Steps       []ShootoutStep `json:"steps"`
	MaxPassing  int            `json:"max_passing"`
	Stop        string         `json:"stop"`

	latency Hist // every step's deliveries, for Result.Latency
}

// shootout steps the client count up from ShootoutStart by
// ShootoutFactor: at each step it opens the new clients, waits
// ShootoutSettle, broadcasts Count
// messages Interval apart, waits up to Drain for every delivery and takes
// the step's percentiles; it stops at the first step that fails.
func shootout(ctx context.Context, cfg Config, m *localMember, pub publisher, ps *pubStats) *ShootoutResult {
	f := m.f
	res := &ShootoutResult{BoundMicros: cfg.P95Bound.Microseconds(), FDLimit: fdLimit()}
	delivered := func() int64 {
		var n int64
		for _, ls := range f.loops {
			n += ls.deliveries.Load()
		}
		return n
	}
	n := cfg.ShootoutStart
	// dialed is the number of connection indices handed out (the first
	// ramp's by Run): new clients take new indices, hence new tokens.
	dialed := n
	var seq uint64
	for {
		if open := int(f.open.Load()); open < n {
			f.ramp(ctx, dialed, n-open)
			dialed += n - open
		}
		// Every step follows a ramp (the first one Run's).
		sleepCtx(ctx, cfg.ShootoutSettle)
		step := ShootoutStep{Clients: n, Open: f.open.Load()}
		before := delivered()
		var sp pubStats
		broadcast(ctx, pub, seq, cfg.Count, cfg.Interval, cfg.PayloadSize, &sp)
		seq += uint64(cfg.Count)
		step.Published = sp.published
		step.Expected = sp.published * step.Open
		end := time.Now().Add(cfg.Drain)
		for delivered()-before < step.Expected && time.Now().Before(end) && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		// The loops' queued funcs run after the messages they have read,
		// so the histograms hold every delivery counted above.
		var mu sync.Mutex
		var h Hist
		f.onLoops(ctx, func(ls *loopState) {
			mu.Lock()
			h.Merge(ls.lat)
			mu.Unlock()
			ls.lat = newHist()
		})
		step.Deliveries = delivered() - before
		step.P50, step.P95, step.P99 = h.Quantile(50).Microseconds(), h.Quantile(95).Microseconds(), h.Quantile(99).Microseconds()
		step.Max = h.Max().Microseconds()
		res.latency.Merge(h)
		ps.merge(&sp)
		switch {
		case ctx.Err() != nil:
			res.Stop = "canceled"
		case step.Open < int64(n):
			res.Stop = "connect"
		case sp.published < int64(cfg.Count):
			res.Stop = "publish"
		case step.Deliveries < step.Expected:
			res.Stop = "loss"
		case step.P95 > res.BoundMicros:
			res.Stop = "p95"
		default:
			step.Pass = true
			res.MaxPassing = n
		}
		res.Steps = append(res.Steps, step)
		if !step.Pass {
			return res
		}
		if n >= cfg.Conns {
			res.Stop = "max"
			return res
		}
		n = min(cfg.Conns, int(math.Ceil(float64(n)*cfg.ShootoutFactor)))
	}
}

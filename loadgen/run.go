package loadgen

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Run performs the run cfg describes and returns what it measured. It
// returns when the scenario is over, ctx ends or cfg.Deadline passes; in
// the last two cases the result holds what was measured so far. An error
// means the run could not start (bad config, workers that would not run).
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Deadline)
	defer cancel()
	started := time.Now()

	var members []member
	if cfg.Procs > 1 {
		members, err = startWorkers(ctx, cfg)
	} else {
		var m *localMember
		m, err = newLocalMember(cfg)
		members = []member{m}
	}
	if err != nil {
		return nil, err
	}

	prog := newProgress(cfg, members, started)
	go prog.run(ctx)

	var pub publisher
	switch cfg.Scenario {
	case ScenarioBroadcast, ScenarioSustained, ScenarioSlow, ScenarioJitter, ScenarioDeploy, ScenarioShootout:
		if cfg.PubWS != "" {
			u := cfg.PubWSURL
			if u == "" {
				u = cfg.URL
			}
			pub, err = newWSPublisher(ctx, u, cfg.PubWS, cfg.Headers)
		} else {
			pub = newHTTPPublisher(cfg.PubHTTP, cfg.PubWorkers)
		}
	}
	var runErr error
	if err != nil {
		runErr = err
	}

	runErr = errors.Join(runErr, all(ctx, members, member.ramp))
	if cfg.Ready != nil {
		cfg.Ready(int(prog.sum().Open))
	}
	runErr = errors.Join(runErr, all(ctx, members, member.begin))

	lm, _ := members[0].(*localMember)
	var ps pubStats
	var shoot *ShootoutResult
	var deployAt float64
	var deployErr error
	switch cfg.Scenario {
	case ScenarioIdle:
		sleepCtx(ctx, cfg.Duration)
	case ScenarioEcho, ScenarioStorm:
		runErr = errors.Join(runErr, all(ctx, members, member.act))
	case ScenarioBroadcast:
		if pub != nil {
			broadcast(ctx, pub, 0, cfg.Count, cfg.Interval, cfg.PayloadSize, &ps)
		}
	case ScenarioSustained, ScenarioSlow:
		if pub != nil {
			sustained(ctx, pub, cfg.Rate, cfg.Duration, cfg.PubWorkers, cfg.PayloadSize, &ps)
		}
	case ScenarioJitter, ScenarioDeploy:
		var wg sync.WaitGroup
		if cfg.Scenario == ScenarioDeploy {
			start := time.Now()
			wg.Go(func() { deployAt, deployErr = runDeploy(ctx, cfg, start) })
		}
		if pub != nil {
			sustained(ctx, pub, cfg.Rate, cfg.Duration, cfg.PubWorkers, cfg.PayloadSize, &ps)
		}
		wg.Wait()
		lm.f.endPhase()
	case ScenarioShootout:
		if pub != nil {
			shoot = shootout(ctx, cfg, lm, pub, &ps)
		}
	}
	if pub != nil {
		pub.close()
	}
	drain(ctx, cfg, prog, &ps)

	if lm != nil {
		ps.mu.Lock()
		lm.published = ps.published
		lm.failedSeqs = slices.Clone(ps.failedSeqs)
		ps.mu.Unlock()
	}
	// Collect even when ctx has ended: members answer at once then.
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer fcancel()
	parts := make([]*Result, len(members))
	var wg sync.WaitGroup
	var mu sync.Mutex
	for i, m := range members {
		wg.Go(func() {
			r, err := m.finish(fctx)
			mu.Lock()
			defer mu.Unlock()
			parts[i] = r
			runErr = errors.Join(runErr, err)
		})
	}
	wg.Wait()
	prog.stop()

	pr := &Result{}
	ps.into(pr)
	if shoot != nil {
		pr.Latency.Merge(shoot.latency)
	}
	res := Merge(append(parts, pr)...)
	res.Scenario, res.URL, res.Procs = cfg.Scenario, cfg.URL, cfg.Procs
	if cfg.TokenSecret != "" {
		res.TokenChannels = cfg.TokenChannels
	}
	res.Started = started
	res.Elapsed = time.Since(started).Seconds()
	res.Timeline = prog.timeline()
	res.Shootout = shoot
	if res.Recovery != nil && cfg.Scenario == ScenarioDeploy {
		res.Recovery.DeployAt, res.Recovery.DeployCmd = deployAt, cfg.DeployCmd
		if deployErr != nil {
			res.Recovery.DeployErr = deployErr.Error()
		}
	}
	return res, runErr
}

// all runs fn on every member at once and joins their errors.
func all(ctx context.Context, members []member, fn func(member, context.Context) error) error {
	errs := make([]error, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Go(func() { errs[i] = fn(m, ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// drain waits, after publishing, until every open connection has had every
// message (and, for jitter and deploy, every client is connected again) or
// cfg.Drain has passed.
func drain(ctx context.Context, cfg Config, prog *progress, ps *pubStats) {
	switch cfg.Scenario {
	case ScenarioIdle, ScenarioStorm, ScenarioShootout:
		return
	}
	began := time.Now()
	end := began.Add(cfg.Drain)
	for time.Now().Before(end) && ctx.Err() == nil {
		s := prog.sum()
		if s.At < began.UnixNano() {
			// A worker's counters predate the end of its sending.
			time.Sleep(50 * time.Millisecond)
			continue
		}
		ps.mu.Lock()
		want := ps.published * s.Open
		if cfg.Scenario == ScenarioJitter || cfg.Scenario == ScenarioDeploy {
			want = ps.published * int64(cfg.Conns)
		}
		ps.mu.Unlock()
		if cfg.Scenario == ScenarioEcho {
			want = s.Sent
		}
		// Recovering clients also have to be back: one cut after the last
		// message would otherwise count as never returned.
		if s.Deliveries >= want && s.Down == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// progress samples the members every second, prints a line and keeps the
// timeline. Its methods are safe for concurrent use.
type progress struct {
	cfg     Config
	members []member
	started time.Time
	done    chan struct{}
	once    sync.Once

	mu      sync.Mutex // guards samples
	samples []Sample
}

func newProgress(cfg Config, members []member, started time.Time) *progress {
	return &progress{cfg: cfg, members: members, started: started, done: make(chan struct{})}
}

func (p *progress) sum() liveStats {
	var s liveStats
	for _, m := range p.members {
		s = s.add(m.live())
	}
	return s
}

func (p *progress) run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last liveStats
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.done:
			return
		case <-tick.C:
		}
		s := p.sum()
		t := time.Since(p.started).Seconds()
		p.mu.Lock()
		p.samples = append(p.samples, Sample{T: t, Conns: s.Open, Deliveries: s.Deliveries, Failures: s.Failed})
		p.mu.Unlock()
		if p.cfg.Progress != nil {
			_, _ = fmt.Fprintf(p.cfg.Progress, "[%4.0fs] conns %d/%d  failed %d  deliveries %d (+%d/s)  dup %d  p50 %v  p99 %v\n",
				t, s.Open, p.cfg.Conns, s.Failed, s.Deliveries, s.Deliveries-last.Deliveries, s.Dups,
				time.Duration(s.P50)*time.Microsecond, time.Duration(s.P99)*time.Microsecond)
		}
		last = s
	}
}

func (p *progress) stop() { p.once.Do(func() { close(p.done) }) }

func (p *progress) timeline() []Sample {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Sample(nil), p.samples...)
}

package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"
)

// Result is what a run measured. Worker processes report one each and the
// coordinator combines them with Merge; counts are exact sums and
// histograms are merged value by value. Durations in JSON are seconds
// (fields named _s) or microseconds (_us).
type Result struct {
	Scenario string    `json:"scenario"`
	URL      string    `json:"url"`
	Procs    int       `json:"procs"`
	Started  time.Time `json:"started"`
	Elapsed  float64   `json:"elapsed_s"`
	// TokenChannels are the channels granted by the connections' own
	// tokens (Config.TokenSecret); nil without.
	TokenChannels []string `json:"token_channels,omitempty"`

	// ConnsTarget is the number of receiving connections asked for.
	ConnsTarget int `json:"conns_target"`
	// Connected is the number open when the ramp ended; OpenAtEnd when
	// the run ended.
	Connected int `json:"connected"`
	OpenAtEnd int `json:"open_at_end"`
	// RampSeconds is how long the ramp took (the slowest worker's).
	RampSeconds float64 `json:"ramp_s"`
	// HandshakesPerSec is Connected / RampSeconds.
	HandshakesPerSec float64 `json:"handshakes_per_s"`
	// ConnectAttempts counts every attempt, retries included;
	// ConnectFailures counts failed attempts by cause ("refused",
	// "timeout", "http-503", ...), and GaveUp the connections still not
	// open after every retry.
	ConnectAttempts int64            `json:"connect_attempts"`
	ConnectFailures map[string]int64 `json:"connect_failures,omitempty"`
	GaveUp          int64            `json:"gave_up"`
	// Handshake is the time from the start of an attempt to the 101
	// response, for attempts that succeeded.
	Handshake Hist `json:"handshake"`
	// Dropped counts established connections that closed during the run
	// (not by the load generator), by cause.
	Dropped map[string]int64 `json:"dropped,omitempty"`

	// Published counts messages the publisher sent successfully;
	// PublishFailures the failed ones by cause; PublishLatency is the time
	// each publish request took.
	Published       int64            `json:"published"`
	PublishFailures map[string]int64 `json:"publish_failures,omitempty"`
	PublishLatency  Hist             `json:"publish_latency"`
	// Sent counts messages connections sent (echo).
	Sent int64 `json:"sent"`

	// Deliveries counts stamped messages received, each (connection,
	// message) once; Duplicates the repeats; Other the messages without
	// a stamp (subscription replies and the like).
	Deliveries int64 `json:"deliveries"`
	Duplicates int64 `json:"duplicates"`
	Other      int64 `json:"other"`
	// SteadyConns are the connections open from the start of the main
	// phase to the end of the run, and SteadyDeliveries their deliveries;
	// SteadySent is what they sent (echo). Loss is counted on them only.
	SteadyConns      int64 `json:"steady_conns"`
	SteadyDeliveries int64 `json:"steady_deliveries"`
	SteadySent       int64 `json:"steady_sent"`
	// Expected is the deliveries the steady connections should have had
	// (Published × SteadyConns, or SteadySent for echo); Lost is Expected
	// minus SteadyDeliveries.
	Expected int64 `json:"expected"`
	Lost     int64 `json:"lost"`

	// Latency is publish-to-receive (echo: round trip) latency per
	// delivery, from the intended send time.
	Latency Hist `json:"latency"`
	// CompletionBySeq is, per broadcast message, the latency of its last
	// delivery; Completion is their histogram.
	CompletionBySeq []int64 `json:"completion_by_seq_us,omitempty"`
	Completion      Hist    `json:"completion"`
	// FirstSendNano and LastRecvNano (Unix nanoseconds) bound the delivery
	// phase; DeliveriesPerSec is Deliveries over it.
	FirstSendNano    int64   `json:"first_send_ns,omitempty"`
	LastRecvNano     int64   `json:"last_recv_ns,omitempty"`
	DeliveriesPerSec float64 `json:"deliveries_per_s"`

	// RecoverySeconds is, for storm, the time from the drop until every
	// connection was open again (or the run ended).
	RecoverySeconds float64 `json:"recovery_s,omitempty"`
	Reconnected     int     `json:"reconnected,omitempty"`
	// SlowConns are the connections that stopped reading (slow) and
	// SlowCut those the server closed.
	SlowConns int64 `json:"slow_conns,omitempty"`
	SlowCut   int64 `json:"slow_cut,omitempty"`

	// Recovery is the jitter and deploy scenarios' per-client account;
	// Shootout the shootout's steps.
	Recovery *RecoveryResult `json:"recovery,omitempty"`
	Shootout *ShootoutResult `json:"shootout,omitempty"`

	// Timeline has one sample per second.
	Timeline []Sample `json:"timeline"`
	// LatencyCurve is Latency's percentile curve, for plots.
	LatencyCurve []CurvePoint `json:"latency_curve,omitempty"`
}

// Sample is the state of a run at one second.
type Sample struct {
	T          float64 `json:"t"`
	Conns      int64   `json:"conns"`
	Deliveries int64   `json:"deliveries"`
	Failures   int64   `json:"failures"`
}

// Merge combines the results of parts of one run (worker processes, or a
// fleet and its publisher) into a new Result and derives its totals
// (expected, lost, rates). The inputs are not modified.
func Merge(parts ...*Result) *Result {
	out := &Result{}
	for _, r := range parts {
		if r == nil {
			continue
		}
		if out.Scenario == "" {
			out.Scenario, out.URL = r.Scenario, r.URL
		}
		if out.Started.IsZero() || (!r.Started.IsZero() && r.Started.Before(out.Started)) {
			out.Started = r.Started
		}
		out.Procs += r.Procs
		out.Elapsed = max(out.Elapsed, r.Elapsed)
		out.ConnsTarget += r.ConnsTarget
		out.Connected += r.Connected
		out.OpenAtEnd += r.OpenAtEnd
		out.RampSeconds = max(out.RampSeconds, r.RampSeconds)
		out.ConnectAttempts += r.ConnectAttempts
		out.ConnectFailures = addCounts(out.ConnectFailures, r.ConnectFailures)
		out.GaveUp += r.GaveUp
		out.Handshake.Merge(r.Handshake)
		out.Dropped = addCounts(out.Dropped, r.Dropped)
		out.Published += r.Published
		out.PublishFailures = addCounts(out.PublishFailures, r.PublishFailures)
		out.PublishLatency.Merge(r.PublishLatency)
		out.Sent += r.Sent
		out.Deliveries += r.Deliveries
		out.Duplicates += r.Duplicates
		out.Other += r.Other
		out.SteadyConns += r.SteadyConns
		out.SteadyDeliveries += r.SteadyDeliveries
		out.SteadySent += r.SteadySent
		out.Latency.Merge(r.Latency)
		if len(r.CompletionBySeq) > len(out.CompletionBySeq) {
			out.CompletionBySeq = append(out.CompletionBySeq, make([]int64, len(r.CompletionBySeq)-len(out.CompletionBySeq))...)
		}
		for i, v := range r.CompletionBySeq {
			out.CompletionBySeq[i] = max(out.CompletionBySeq[i], v)
		}
		if r.FirstSendNano != 0 && (out.FirstSendNano == 0 || r.FirstSendNano < out.FirstSendNano) {
			out.FirstSendNano = r.FirstSendNano
		}
		out.LastRecvNano = max(out.LastRecvNano, r.LastRecvNano)
		out.RecoverySeconds = max(out.RecoverySeconds, r.RecoverySeconds)
		out.Reconnected += r.Reconnected
		out.SlowConns += r.SlowConns
		out.SlowCut += r.SlowCut
		if r.Recovery != nil {
			out.Recovery = mergeRecovery(out.Recovery, r.Recovery)
		}
		if r.Shootout != nil {
			out.Shootout = r.Shootout
		}
		for i, s := range r.Timeline {
			if i >= len(out.Timeline) {
				out.Timeline = append(out.Timeline, Sample{T: s.T})
			}
			o := &out.Timeline[i]
			o.Conns += s.Conns
			o.Deliveries += s.Deliveries
			o.Failures += s.Failures
		}
	}
	out.derive()
	return out
}

// derive computes the fields that follow from the others.
func (r *Result) derive() {
	if r.RampSeconds > 0 {
		r.HandshakesPerSec = float64(r.Connected) / r.RampSeconds
	}
	if r.Scenario == ScenarioEcho {
		r.Expected = r.SteadySent
	} else {
		r.Expected = r.Published * r.SteadyConns
	}
	r.Lost = max(0, r.Expected-r.SteadyDeliveries)
	if r.Recovery != nil {
		// Every client is expected to have every message, whatever
		// connections it took.
		r.Recovery.derive(r.Published)
		r.Expected = r.Recovery.Expected
		r.Lost = max(0, r.Expected-r.Recovery.Delivered)
	}
	if r.Shootout != nil {
		// Every step's clients are expected to have that step's messages.
		r.Expected, r.Lost = 0, 0
		for _, st := range r.Shootout.Steps {
			r.Expected += st.Expected
			r.Lost += max(0, st.Expected-st.Deliveries)
		}
	}
	r.Completion = Hist{}
	for _, us := range r.CompletionBySeq {
		if us > 0 {
			r.Completion.Record(time.Duration(us) * time.Microsecond)
		}
	}
	r.DeliveriesPerSec = 0
	if r.FirstSendNano > 0 && r.LastRecvNano > r.FirstSendNano {
		r.DeliveriesPerSec = float64(r.Deliveries) / (float64(r.LastRecvNano-r.FirstSendNano) / 1e9)
	}
	r.LatencyCurve = r.Latency.Curve()
}

// mergeRecovery adds b to a (which may be nil) and returns the sum.
func mergeRecovery(a, b *RecoveryResult) *RecoveryResult {
	if a == nil {
		c := *b
		c.ReplayLatency, c.Downtime = Hist{}, Hist{}
		c.ReplayLatency.Merge(b.ReplayLatency)
		c.Downtime.Merge(b.Downtime)
		c.OpenByNode = append([]int64(nil), b.OpenByNode...)
		return &c
	}
	a.Clients += b.Clients
	a.Delivered += b.Delivered
	a.Duplicates += b.Duplicates
	a.CompleteClients += b.CompleteClients
	a.Cuts += b.Cuts
	a.Drops += b.Drops
	a.Reconnects += b.Reconnects
	a.ReconnectFailures += b.ReconnectFailures
	a.ReconnectedClients += b.ReconnectedClients
	a.Recovered += b.Recovered
	a.NotRecovered += b.NotRecovered
	a.AffectedClients += b.AffectedClients
	a.RecoveredClients += b.RecoveredClients
	a.NeverReturned += b.NeverReturned
	a.ReplayLatency.Merge(b.ReplayLatency)
	a.Replayed += b.Replayed
	a.Downtime.Merge(b.Downtime)
	for i, v := range b.OpenByNode {
		if i >= len(a.OpenByNode) {
			a.OpenByNode = append(a.OpenByNode, 0)
		}
		a.OpenByNode[i] += v
	}
	return a
}

func addCounts(dst, src map[string]int64) map[string]int64 {
	if len(src) == 0 {
		return dst
	}
	if dst == nil {
		dst = make(map[string]int64, len(src))
	}
	for k, v := range src {
		dst[k] += v
	}
	return dst
}

// WriteJSON writes r as indented JSON.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("loadgen: write result: %w", err)
	}
	return nil
}

// WriteSummary writes a human summary of r.
func (r *Result) WriteSummary(w io.Writer) error {
	p := &errWriter{w: w}
	p.printf("scenario %s against %s, %d process(es), %.1f s\n", r.Scenario, r.URL, max(r.Procs, 1), r.Elapsed)
	if r.TokenChannels != nil {
		p.printf("tokens: one per connection (sub u<index>), channels %q\n", r.TokenChannels)
	}
	p.printf("connections: %d/%d open after the ramp (%.2f s, %.0f handshakes/s), %d at the end, %d attempts, %d gave up\n",
		r.Connected, r.ConnsTarget, r.RampSeconds, r.HandshakesPerSec, r.OpenAtEnd, r.ConnectAttempts, r.GaveUp)
	if r.Handshake.Count() > 0 {
		p.printf("handshake: p50 %v  p99 %v  max %v\n", r.Handshake.Quantile(50), r.Handshake.Quantile(99), r.Handshake.Max())
	}
	p.counts("connect failures", r.ConnectFailures)
	p.counts("dropped connections", r.Dropped)
	if r.Published > 0 || len(r.PublishFailures) > 0 {
		p.printf("published: %d (request p50 %v, p99 %v)\n", r.Published, r.PublishLatency.Quantile(50), r.PublishLatency.Quantile(99))
		p.counts("publish failures", r.PublishFailures)
	}
	if r.Sent > 0 {
		p.printf("sent: %d\n", r.Sent)
	}
	switch {
	case r.Recovery != nil:
		p.printf("deliveries: %d (%.0f/s), expected %d on %d clients, lost %d, duplicated %d, other messages %d\n",
			r.Deliveries, r.DeliveriesPerSec, r.Expected, r.Recovery.Clients, r.Lost, r.Duplicates, r.Other)
	case r.Shootout != nil:
		p.printf("deliveries: %d (%.0f/s), expected %d over the steps, lost %d, duplicated %d, other messages %d\n",
			r.Deliveries, r.DeliveriesPerSec, r.Expected, r.Lost, r.Duplicates, r.Other)
	case r.Expected > 0 || r.Deliveries > 0:
		p.printf("deliveries: %d (%.0f/s), expected %d on %d steady connections, lost %d, duplicated %d, other messages %d\n",
			r.Deliveries, r.DeliveriesPerSec, r.Expected, r.SteadyConns, r.Lost, r.Duplicates, r.Other)
	}
	if r.Latency.Count() > 0 {
		p.printf("latency: p50 %v  p90 %v  p99 %v  p99.9 %v  max %v\n",
			r.Latency.Quantile(50), r.Latency.Quantile(90), r.Latency.Quantile(99), r.Latency.Quantile(99.9), r.Latency.Max())
	}
	if r.Completion.Count() > 0 {
		p.printf("broadcast completion (last receiver) over %d messages: p50 %v  max %v\n",
			r.Completion.Count(), r.Completion.Quantile(50), r.Completion.Max())
	}
	if r.Scenario == ScenarioStorm {
		p.printf("storm: %d reconnected in %.2f s\n", r.Reconnected, r.RecoverySeconds)
	}
	if rc := r.Recovery; rc != nil {
		p.printf("recovery: %d clients, delivered %.3f%% (%d of %d), %d duplicates, %d complete\n",
			rc.Clients, rc.DeliveredPct, rc.Delivered, rc.Expected, rc.Duplicates, rc.CompleteClients)
		p.printf("  %d cuts, %d drops, %d reconnects (%d failed attempts), %d clients reconnected; since answered recovered %d, not recovered %d\n",
			rc.Cuts, rc.Drops, rc.Reconnects, rc.ReconnectFailures, rc.ReconnectedClients, rc.Recovered, rc.NotRecovered)
		p.printf("  affected %d, recovered %d (%.2f%%), never returned %d, open by node %v\n",
			rc.AffectedClients, rc.RecoveredClients, rc.RecoveredPct, rc.NeverReturned, rc.OpenByNode)
		if rc.ReplayLatency.Count() > 0 {
			p.printf("  replay (%d reconnections, %d messages): p50 %v  p99 %v  max %v\n", rc.ReplayLatency.Count(), rc.Replayed,
				rc.ReplayLatency.Quantile(50), rc.ReplayLatency.Quantile(99), rc.ReplayLatency.Max())
		}
		if rc.Downtime.Count() > 0 {
			p.printf("  downtime: p50 %v  p99 %v  max %v\n", rc.Downtime.Quantile(50), rc.Downtime.Quantile(99), rc.Downtime.Max())
		}
		if rc.DeployCmd != "" || rc.DeployAt > 0 {
			p.printf("  deploy at %.2f s %q %s\n", rc.DeployAt, rc.DeployCmd, rc.DeployErr)
		}
	}
	if sh := r.Shootout; sh != nil {
		p.printf("shootout (p95 bound %v): largest passing %d clients, stopped: %s\n", time.Duration(sh.BoundMicros)*time.Microsecond, sh.MaxPassing, sh.Stop)
		for _, st := range sh.Steps {
			p.printf("  %6d clients (%d open): %d/%d delivered  p50 %v  p95 %v  p99 %v  pass %v\n", st.Clients, st.Open, st.Deliveries, st.Expected,
				time.Duration(st.P50)*time.Microsecond, time.Duration(st.P95)*time.Microsecond, time.Duration(st.P99)*time.Microsecond, st.Pass)
		}
	}
	if r.SlowConns > 0 {
		p.printf("slow: %d connections stopped reading, %d cut off by the server\n", r.SlowConns, r.SlowCut)
	}
	return p.err
}

type errWriter struct {
	w   io.Writer
	err error
}

func (p *errWriter) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func (p *errWriter) counts(title string, m map[string]int64) {
	if len(m) == 0 {
		return
	}
	p.printf("%s:", title)
	for _, k := range slices.Sorted(maps.Keys(m)) {
		p.printf(" %s=%d", k, m[k])
	}
	p.printf("\n")
}

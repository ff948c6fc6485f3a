package herald

import "github.com/herald-push/herald/hook"

// Help texts of the hook metrics (nodeMetrics).
const (
	helpHookConnect   = "Connect hook calls by outcome (a timeout is not counted as unavailable)."
	helpHookSubscribe = "Subscribe hook calls by outcome."
	helpHookPublish   = "Publish hook calls by outcome."
	helpHookRefresh   = "Refresh hook calls by outcome."
	helpHookSeconds   = "Seconds spent in hook calls that reached the backend, by event (with the _total counters: mean latency)."
	helpHookBreaker   = "Hook circuit breaker by event: 0 closed, 1 half-open, 2 open (refusing)."
)

// hookOf reads one hook counter of event e (0 when e has no hook).
func hookOf(s *Stats, e hook.Event, f func(*hook.Stats) float64) float64 {
	h, ok := s.Hooks[e]
	if !ok {
		return 0
	}
	return f(&h)
}

// breakerState is a breaker's state as a number.
func breakerState(h *hook.Stats) float64 {
	switch h.Breaker {
	case "half-open":
		return 1
	case "open":
		return 2
	}
	return 0
}

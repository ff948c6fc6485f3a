package herald

import (
	"errors"
	"fmt"
	"slices"

	"github.com/herald-push/herald/hook"
	"github.com/herald-push/herald/server"
)

// newHooks builds the hook client. A connect hook must answer within the
// handshake timeout, which closes an upgrade still waiting unanswered:
// the client would see a dropped connection instead of the 503 it can
// retry.
func newHooks(cfg Config) (*hook.Client, error) {
	hc, err := hook.New(cfg.Hooks)
	if err != nil {
		return nil, err
	}
	hs := cfg.HandshakeTimeout.D()
	if hs <= 0 {
		hs = server.DefaultHandshakeTimeout
	}
	if t := hc.Config().Timeout.D(); cfg.Hooks.ConnectURL != "" && t >= hs {
		return nil, fmt.Errorf("hooks: timeout %v must be shorter than handshake_timeout %v, or a slow connect hook drops clients unanswered", t, hs)
	}
	if cfg.Hooks.ConnectURL != "" && len(cfg.Hooks.Cookies) > 0 && slices.Contains(cfg.AllowedOrigins, "*") {
		return nil, errors.New("hooks: a connect hook given cookies needs an Origin check: with allowed_origins \"*\" any web page could connect with its visitors' cookies; list your pages' origins instead")
	}
	return hc, nil
}

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

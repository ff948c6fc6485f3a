package hook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/herald-push/herald/server"
)

// Defaults of Config's zero fields.
const (
	// DefaultTimeout bounds one call: well inside the handshake timeout,
	// so a slow backend gets its client a 503 rather than a dropped
	// connection.
	DefaultTimeout = 3 * time.Second
	// DefaultMaxConcurrent is the default bound on calls in flight.
	DefaultMaxConcurrent = 256
	// DefaultBreakerFailures is how many failed calls in a row open an
	// event's breaker.
	DefaultBreakerFailures = 5
	// DefaultBreakerOpen is how long an open breaker refuses before one
	// call is let through to probe the backend.
	DefaultBreakerOpen = 5 * time.Second
	// MaxAnswerBytes caps the body read from the backend.
	MaxAnswerBytes = 64 << 10
)

// Config configures a Client. An empty URL turns that event's hook off;
// the zero value turns every hook off.
type Config struct {
	// ConnectURL, SubscribeURL, PublishURL and RefreshURL are the http(s)
	// URLs each event's Request is POSTed to.
	ConnectURL   string `json:"connect_url"`
	SubscribeURL string `json:"subscribe_url"`
	PublishURL   string `json:"publish_url"`
	RefreshURL   string `json:"refresh_url"`
	// SubscribeAll asks the subscribe hook about every channel, even
	// those the connection's credentials grant (never the personal
	// user: channel).
	SubscribeAll bool `json:"subscribe_all"`
	// Timeout bounds one call, connecting included (0: DefaultTimeout).
	Timeout server.Duration `json:"timeout"`
	// MaxConcurrent bounds the calls in flight; one more is refused as
	// unavailable at once rather than queued (0: DefaultMaxConcurrent).
	MaxConcurrent int `json:"max_concurrent"`
	// Headers names the upgrade request's header fields forwarded to
	// the backend (Request.Headers); no other field is.
	Headers []string `json:"headers"`
	// Cookies names the cookies forwarded (Request.Cookies); no other
	// cookie is.
	Cookies []string `json:"cookies"`
	// BreakerFailures is how many failed calls in a row (timeouts, errors,
	// non-2xx answers) open an event's circuit breaker, which then refuses
	// at once for BreakerOpen (0: DefaultBreakerFailures).
	BreakerFailures int `json:"breaker_failures"`
	// BreakerOpen is how long an open breaker refuses before it lets one
	// call probe the backend (0: DefaultBreakerOpen).
	BreakerOpen server.Duration `json:"breaker_open"`
	// HTTPClient sends the requests; nil: a client of the package's own
	// (no redirects followed, idle connections kept for MaxConcurrent).
	HTTPClient *http.Client `json:"-"`
	// Logger receives a line when a breaker changes state and, at most
	// once a second per event, when the backend gives no usable answer;
	// nil: slog.Default().
	Logger *slog.Logger `json:"-"`
}

// URL is the configured URL of event e ("" when its hook is off).
func (c *Config) URL(e Event) string {
	switch e {
	case EventConnect:
		return c.ConnectURL
	case EventSubscribe:
		return c.SubscribeURL
	case EventPublish:
		return c.PublishURL
	case EventRefresh:
		return c.RefreshURL
	}
	return ""
}

// Enabled reports whether any hook is configured.
func (c *Config) Enabled() bool {
	for _, e := range events {
		if c.URL(e) != "" {
			return true
		}
	}
	return false
}

// Validate checks the URLs and limits.
func (c *Config) Validate() error {
	for _, e := range events {
		u := c.URL(e)
		if u == "" {
			continue
		}
		p, err := url.Parse(u)
		if err != nil {
			return fmt.Errorf("hooks: %s_url: %w", e, err)
		}
		if (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("hooks: %s_url %q: want an http(s) URL", e, u)
		}
	}
	if c.Timeout < 0 || c.MaxConcurrent < 0 || c.BreakerFailures < 0 || c.BreakerOpen < 0 {
		return errors.New("hooks: timeout, max_concurrent, breaker_failures and breaker_open must not be negative")
	}
	return nil
}

// Outcome is how a call ended, for the metrics.
type Outcome int

// The outcomes.
const (
	// OutcomeAccepted: a Result.
	OutcomeAccepted Outcome = iota
	// OutcomeRejected: a Rejection.
	OutcomeRejected
	// OutcomeUnavailable: no usable answer other than a timeout (errors,
	// non-2xx, malformed, the concurrency bound, the breaker).
	OutcomeUnavailable
	// OutcomeTimeout: no answer within Config.Timeout.
	OutcomeTimeout
	numOutcomes
)

// Client calls the hooks. Safe for concurrent use.
type Client struct {
	cfg   Config
	http  *http.Client
	slots chan struct{} // one per call in flight
	ends  [len(events)]*endpoint
}

// endpoint is one event's URL, breaker and counters.
type endpoint struct {
	url      string
	breaker  *gobreaker.CircuitBreaker[*Result]
	outcomes [numOutcomes]atomic.Uint64
	// nanos sums the latency of the calls that reached the backend.
	nanos atomic.Int64
	// logged is when the last failure was logged (unix nanoseconds).
	logged atomic.Int64
}

// New builds a Client; it refuses a Config that fails Validate.
func New(cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = server.Duration(DefaultTimeout)
	}
	if cfg.MaxConcurrent == 0 {
		cfg.MaxConcurrent = DefaultMaxConcurrent
	}
	if cfg.BreakerFailures == 0 {
		cfg.BreakerFailures = DefaultBreakerFailures
	}
	if cfg.BreakerOpen == 0 {
		cfg.BreakerOpen = server.Duration(DefaultBreakerOpen)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Client{cfg: cfg, http: cfg.HTTPClient, slots: make(chan struct{}, cfg.MaxConcurrent)}
	if c.http == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = cfg.MaxConcurrent
		c.http = &http.Client{
			Transport: tr,
			// A hook answers; it does not send herald elsewhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	failures := uint32(cfg.BreakerFailures)
	for i, e := range events {
		u := cfg.URL(e)
		if u == "" {
			continue
		}
		c.ends[i] = &endpoint{url: u, breaker: gobreaker.NewCircuitBreaker[*Result](gobreaker.Settings{
			Name:    string(e),
			Timeout: cfg.BreakerOpen.D(),
			OnStateChange: func(name string, from, to gobreaker.State) {
				cfg.Logger.Warn("hook circuit breaker", "event", name, "from", from.String(), "to", to.String())
			},
			ReadyToTrip: func(n gobreaker.Counts) bool { return n.ConsecutiveFailures >= failures },
			// A rejection is an answer: the backend is up.
			IsSuccessful: func(err error) bool {
				var r *Rejection
				return err == nil || errors.As(err, &r)
			},
		})}
	}
	return c, nil
}

// Config is the client's configuration, defaults applied.
func (c *Client) Config() Config { return c.cfg }

// Enabled reports whether e's hook is configured. A nil Client has none.
func (c *Client) Enabled(e Event) bool {
	if c == nil {
		return false
	}
	i := e.index()
	return i >= 0 && c.ends[i] != nil
}

// Call POSTs req to the URL of req.Event and returns the backend's
// Result, a *Rejection, or an error wrapping ErrUnavailable (ErrTimeout
// when it did not answer in time); ErrDisabled when the event has no
// hook. It blocks up to Config.Timeout: never call it on an event loop.
func (c *Client) Call(ctx context.Context, req *Request) (*Result, error) {
	if !c.Enabled(req.Event) {
		return nil, ErrDisabled
	}
	ep := c.ends[req.Event.index()]
	select {
	case c.slots <- struct{}{}:
	default:
		ep.outcomes[OutcomeUnavailable].Add(1)
		return nil, fmt.Errorf("%w: %d calls in flight (max_concurrent)", ErrUnavailable, cap(c.slots))
	}
	defer func() { <-c.slots }()
	start := time.Now()
	res, err := ep.breaker.Execute(func() (*Result, error) { return c.post(ctx, ep.url, req) })
	var rej *Rejection
	switch {
	case err == nil:
		ep.outcomes[OutcomeAccepted].Add(1)
	case errors.As(err, &rej):
		ep.outcomes[OutcomeRejected].Add(1)
	case errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests):
		ep.outcomes[OutcomeUnavailable].Add(1)
		return nil, fmt.Errorf("%w: %s hook: circuit breaker open", ErrUnavailable, req.Event)
	case errors.Is(err, ErrTimeout):
		ep.outcomes[OutcomeTimeout].Add(1)
		c.logFailure(ep, req.Event, err)
	default:
		ep.outcomes[OutcomeUnavailable].Add(1)
		c.logFailure(ep, req.Event, err)
	}
	ep.nanos.Add(int64(time.Since(start)))
	return res, err
}

// logFailure logs a call the backend did not answer usably, at most
// once a second per event.
func (c *Client) logFailure(ep *endpoint, e Event, err error) {
	now := time.Now().UnixNano()
	last := ep.logged.Load()
	if now-last < int64(time.Second) || !ep.logged.CompareAndSwap(last, now) {
		return
	}
	c.cfg.Logger.Warn("hook unavailable", "event", string(e), "err", err)
}

// post sends one request and reads its answer.
func (c *Client) post(ctx context.Context, u string, req *Request) (*Result, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding the request: %w", ErrUnavailable, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout.D())
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("User-Agent", "herald-hook")
	resp, err := c.http.Do(hr)
	if err != nil {
		return nil, c.failure(ctx, req.Event, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswerBytes+1))
	if err != nil {
		return nil, c.failure(ctx, req.Event, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%w: %s hook answered %s", ErrUnavailable, req.Event, resp.Status)
	}
	if len(raw) > MaxAnswerBytes {
		return nil, fmt.Errorf("%w: %s hook's answer is over %d bytes", ErrUnavailable, req.Event, MaxAnswerBytes)
	}
	var a answer
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("%w: %s hook's answer: %w", ErrUnavailable, req.Event, err)
	}
	switch {
	case a.Error != nil:
		return nil, a.Error
	case a.Result != nil:
		return a.Result, nil
	}
	return nil, fmt.Errorf("%w: %s hook's answer has neither result nor error", ErrUnavailable, req.Event)
}

// failure classifies a transport error: ErrTimeout once the call's time
// is up, else ErrUnavailable.
func (c *Client) failure(ctx context.Context, e Event, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: %s hook, after %v", ErrTimeout, e, c.cfg.Timeout)
	}
	return fmt.Errorf("%w: %s hook: %w", ErrUnavailable, e, err)
}

// Stats are one event's counters, a snapshot.
type Stats struct {
	// Accepted, Rejected, Unavailable and Timeout count the calls by
	// outcome (Outcome).
	Accepted    uint64 `json:"accepted"`
	Rejected    uint64 `json:"rejected"`
	Unavailable uint64 `json:"unavailable"`
	Timeout     uint64 `json:"timeout"`
	// Seconds sums the time of the calls that reached the breaker.
	Seconds float64 `json:"seconds"`
	// Breaker is "closed", "half-open" or "open".
	Breaker string `json:"breaker"`
}

// Stats returns the counters of each configured event. Safe from any
// goroutine; nil for a nil Client.
func (c *Client) Stats() map[Event]Stats {
	if c == nil {
		return nil
	}
	out := map[Event]Stats{}
	for i, ep := range c.ends {
		if ep == nil {
			continue
		}
		out[events[i]] = Stats{
			Accepted:    ep.outcomes[OutcomeAccepted].Load(),
			Rejected:    ep.outcomes[OutcomeRejected].Load(),
			Unavailable: ep.outcomes[OutcomeUnavailable].Load(),
			Timeout:     ep.outcomes[OutcomeTimeout].Load(),
			Seconds:     time.Duration(ep.nanos.Load()).Seconds(),
			Breaker:     ep.breaker.State().String(),
		}
	}
	return out
}

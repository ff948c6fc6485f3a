// Package webhook posts Pusher Channels webhooks: batches of events
// (`{"time_ms":..,"events":[...]}`) signed with the app's secret
// (X-Pusher-Key, X-Pusher-Signature: hex HMAC-SHA256 of the body).
//
// Send never blocks: it appends to a bounded queue per URL and drops (and
// counts) what does not fit. One goroutine per URL gathers the queue into
// batches, within Window or up to MaxBatch events, and posts them, at most
// Concurrency at once, retrying 5xx answers, 408, 429 and transport errors
// (timeouts included) with exponential backoff and jitter, MaxAttempts in
// all; other answers and exhausted retries count the batch's events as
// failed.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Event names.
const (
	ChannelOccupied = "channel_occupied"
	ChannelVacated  = "channel_vacated"
	MemberAdded     = "member_added"
	MemberRemoved   = "member_removed"
	ClientEvent     = "client_event"
)

// Event is one webhook event, as Pusher writes it.
type Event struct {
	Name     string `json:"name"`
	Channel  string `json:"channel"`
	Event    string `json:"event,omitempty"`     // client_event
	Data     string `json:"data,omitempty"`      // client_event
	SocketID string `json:"socket_id,omitempty"` // client_event
	UserID   string `json:"user_id,omitempty"`   // member_*, client_event on presence
}

// Payload is a POST's body.
type Payload struct {
	TimeMS int64   `json:"time_ms"`
	Events []Event `json:"events"`
}

// Defaults of Config's zero fields.
const (
	DefaultWindow      = 250 * time.Millisecond
	DefaultMaxBatch    = 100
	DefaultQueueSize   = 10000
	DefaultMaxAttempts = 5
	DefaultBackoff     = 250 * time.Millisecond
	DefaultMaxBackoff  = 10 * time.Second
	DefaultConcurrency = 4
	DefaultTimeout     = 10 * time.Second
)

// Config configures a Dispatcher: Key, Secret and URLs are required,
// every other zero field means its default.
type Config struct {
	Key, Secret string
	URLs        []string
	// Client posts the webhooks (default: DefaultTimeout per request).
	Client *http.Client
	// Window is how long a batch waits for more events after its first.
	Window time.Duration
	// MaxBatch caps the events of one POST.
	MaxBatch int
	// QueueSize bounds the events waiting per URL; past it Send drops.
	QueueSize int
	// MaxAttempts bounds the tries of one batch.
	MaxAttempts int
	// Backoff is the wait before the first retry, doubled after each
	// (with jitter: a random half to all of it), up to MaxBackoff.
	Backoff, MaxBackoff time.Duration
	// Concurrency caps the POSTs in flight per URL.
	Concurrency int
	// Logger reports failed batches (default slog.Default).
	Logger *slog.Logger
}

// Counters are the outcomes of every Dispatcher sharing them; the zero
// value is ready. Safe for concurrent use.
type Counters struct {
	sent, failed, dropped, posts, retries atomic.Uint64
}

// Stats are Counters' snapshot.
type Stats struct {
	// Sent, Failed and Dropped count events: delivered (2xx), given up
	// (refused, or out of attempts), dropped on a full queue.
	Sent    uint64 `json:"sent"`
	Failed  uint64 `json:"failed"`
	Dropped uint64 `json:"dropped"`
	// Posts counts POSTs answered 2xx, Retries the tries after a first.
	Posts   uint64 `json:"posts"`
	Retries uint64 `json:"retries"`
}

// Stats returns the counters.
func (c *Counters) Stats() Stats {
	return Stats{Sent: c.sent.Load(), Failed: c.failed.Load(), Dropped: c.dropped.Load(), Posts: c.posts.Load(), Retries: c.retries.Load()}
}

// CheckURL refuses a URL that is not absolute http or https.
func CheckURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("webhook %q: %w", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("webhook %q: want an http:// or https:// URL", s)
	}
	return nil
}

// Sign is the X-Pusher-Signature of body: hex HMAC-SHA256 with secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Dispatcher posts one app's webhooks to its URLs.
type Dispatcher struct {
	cfg     Config
	c       *Counters
	senders []*sender
	done    chan struct{} // closed by Close: senders flush and stop
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	once    sync.Once
}

// sender is one URL's queue and batcher.
type sender struct {
	d   *Dispatcher
	url string
	q   chan Event
	sem chan struct{}
}

// New starts a Dispatcher; c (nil: its own) receives the counts.
func New(cfg Config, c *Counters) (*Dispatcher, error) {
	if cfg.Key == "" || cfg.Secret == "" || len(cfg.URLs) == 0 {
		return nil, errors.New("webhook: key, secret and a URL are required")
	}
	for _, u := range cfg.URLs {
		if err := CheckURL(u); err != nil {
			return nil, err
		}
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: DefaultTimeout}
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defD := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.MaxBatch, DefaultMaxBatch)
	def(&cfg.QueueSize, DefaultQueueSize)
	def(&cfg.MaxAttempts, DefaultMaxAttempts)
	def(&cfg.Concurrency, DefaultConcurrency)
	defD(&cfg.Window, DefaultWindow)
	defD(&cfg.Backoff, DefaultBackoff)
	defD(&cfg.MaxBackoff, DefaultMaxBackoff)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if c == nil {
		c = &Counters{}
	}
	d := &Dispatcher{cfg: cfg, c: c, done: make(chan struct{})}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	for _, u := range cfg.URLs {
		s := &sender{d: d, url: u, q: make(chan Event, cfg.QueueSize), sem: make(chan struct{}, cfg.Concurrency)}
		d.senders = append(d.senders, s)
		d.wg.Add(1)
		go s.run()
	}
	return d, nil
}

// Send queues ev for every URL; it never blocks: a full queue drops ev
// (counted). Safe from any goroutine, the event loops included.
func (d *Dispatcher) Send(ev Event) {
	for _, s := range d.senders {
		select {
		case s.q <- ev:
		default:
			d.c.dropped.Add(1)
		}
	}
}

// Close posts what is queued and waits for the POSTs in flight; when ctx
// ends first, it abandons them (their events count as failed).
func (d *Dispatcher) Close(ctx context.Context) error {
	d.once.Do(func() { close(d.done) })
	stopped := make(chan struct{})
	go func() { d.wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
		d.cancel()
		return nil
	case <-ctx.Done():
		d.cancel()
		<-stopped
		return ctx.Err()
	}
}

// run gathers batches and posts them, until Close.
func (s *sender) run() {
	defer s.d.wg.Done()
	var posts sync.WaitGroup
	defer posts.Wait()
	max := s.d.cfg.MaxBatch
	for {
		var batch []Event
		select {
		case ev := <-s.q:
			batch = append(make([]Event, 0, min(max, 16)), ev)
		case <-s.d.done:
			s.flush(&posts)
			return
		}
		timer := time.NewTimer(s.d.cfg.Window)
		closing := false
	gather:
		for len(batch) < max {
			select {
			case ev := <-s.q:
				batch = append(batch, ev)
			case <-timer.C:
				break gather
			case <-s.d.done:
				closing = true
				break gather
			}
		}
		timer.Stop()
		s.post(&posts, batch)
		if closing {
			s.flush(&posts)
			return
		}
	}
}

// flush posts what the queue holds, without waiting for more.
func (s *sender) flush(posts *sync.WaitGroup) {
	for {
		var batch []Event
	take:
		for len(batch) < s.d.cfg.MaxBatch {
			select {
			case ev := <-s.q:
				batch = append(batch, ev)
			default:
				break take
			}
		}
		if len(batch) == 0 {
			return
		}
		s.post(posts, batch)
	}
}

// post hands a batch to a goroutine of its own once fewer than
// Concurrency are in flight.
func (s *sender) post(posts *sync.WaitGroup, batch []Event) {
	s.sem <- struct{}{}
	posts.Add(1)
	go func() {
		defer func() { <-s.sem; posts.Done() }()
		s.deliver(batch)
	}()
}

// deliver posts one batch, retrying as the package doc says.
func (s *sender) deliver(batch []Event) {
	d := s.d
	body, err := json.Marshal(Payload{TimeMS: time.Now().UnixMilli(), Events: batch})
	if err != nil {
		d.c.failed.Add(uint64(len(batch)))
		return
	}
	sig := Sign(d.cfg.Secret, body)
	wait := d.cfg.Backoff
	var why string
	for attempt := 1; ; attempt++ {
		retry, reason := s.try(body, sig)
		if reason == "" {
			d.c.posts.Add(1)
			d.c.sent.Add(uint64(len(batch)))
			return
		}
		why = reason
		if !retry || attempt >= d.cfg.MaxAttempts {
			break
		}
		// Full jitter over the upper half: [wait/2, wait).
		sleep := wait/2 + time.Duration(rand.Int64N(int64(wait/2)+1))
		t := time.NewTimer(sleep)
		select {
		case <-t.C:
		case <-d.ctx.Done():
			t.Stop()
			d.c.failed.Add(uint64(len(batch)))
			return
		}
		d.c.retries.Add(1)
		wait = min(2*wait, d.cfg.MaxBackoff)
	}
	d.c.failed.Add(uint64(len(batch)))
	d.cfg.Logger.Warn("pusher webhook failed", "url", redact(s.url), "events", len(batch), "error", why)
}

// try posts once: reason is empty on success; retry says whether
// another try may succeed.
func (s *sender) try(body []byte, sig string) (retry bool, reason string) {
	req, err := http.NewRequestWithContext(s.d.ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return false, err.Error()
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Pusher-Key", s.d.cfg.Key)
	req.Header.Set("X-Pusher-Signature", sig)
	resp, err := s.d.cfg.Client.Do(req)
	if err != nil {
		return s.d.ctx.Err() == nil, err.Error()
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch c := resp.StatusCode; {
	case c >= 200 && c < 300:
		return false, ""
	case c >= 500 || c == http.StatusRequestTimeout || c == http.StatusTooManyRequests:
		return true, resp.Status
	default:
		return false, resp.Status
	}
}

// redact drops a URL's user information and query for the log.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(invalid URL)"
	}
	u.User, u.RawQuery = nil, ""
	return u.String()
}

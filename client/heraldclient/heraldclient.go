// Package heraldclient is a Go client of herald's client protocol v1
// (docs/protocol.md): one WebSocket to a node's /ws endpoint that
// reconnects by itself and recovers what it missed.
//
//	c, err := heraldclient.Dial(ctx, "ws://localhost:8080/ws", heraldclient.Options{Token: jwt})
//	if err != nil { ... }
//	defer c.Close()
//	if _, err := c.Subscribe(ctx, "news"); err != nil { ... }
//	for ev := range c.Events() {
//		switch ev := ev.(type) {
//		case heraldclient.Message:
//			fmt.Println(ev.Channel, ev.Offset, string(ev.Data))
//		case heraldclient.Subscribed:
//			if ev.Resubscribed && !ev.Recovered {
//				// messages were lost while disconnected: refetch ev.Channel's state
//			}
//		}
//	}
//
// What the client does for you:
//
//   - Recovery: for every channel subscribed with Subscribe it keeps the
//     position (offset and epoch) of the last message delivered, and after
//     a reconnect resubscribes with `since`, so that the messages published
//     meanwhile arrive once and in order. The Subscribed event of a
//     resubscription says whether the server could fill the gap
//     (Recovered); when it could not (history too short, or a new epoch
//     after the node lost its history) the client counts on from the
//     channel's new position and the application must refetch.
//   - Dedupe: per channel an offset is delivered at most once and never
//     after a larger one (a new epoch restarts the count).
//   - Reconnects with exponential backoff and full jitter (Backoff),
//     following the close codes of docs/protocol.md: 4003 (disconnected
//     by the backend) stops the client; 4001 (token expired) asks
//     Options.RefreshToken for a new token and reconnects at once (without
//     RefreshToken it stops); a close whose reason carries reconnect
//     advice ("reconnect_after_ms=N", a draining server's 1001) reconnects
//     after N ms plus a jitter in [0, Backoff.Min); 1001, 1008, 1013, a
//     network failure, a refused handshake and every other code reconnect
//     after the backoff.
//   - Liveness: it answers the server's pings, and sends its own
//     {"op":"ping"} after Options.PingInterval of silence; a connection
//     silent for PongTimeout more is dropped and replaced.
//
// Goroutines: Dial starts one goroutine that owns the connection (dialing,
// reading, reconnecting); it ends when the client stops (Close, 4003, an
// expired token without RefreshToken, MaxAttempts failed dials, or the
// context given to Dial ending), after which Events is closed and Err says
// why. Every event is sent on the channel Events returns, in the order the
// server sent them, from that goroutine: the application must keep reading
// it, since while it does not, the client reads nothing more from the
// server (the server may then drop the connection as a slow consumer,
// after which the client reconnects and recovers). The methods are safe
// for concurrent use from any goroutine, but must not be called from
// code that blocks the reading of Events (they may wait for a reply that
// the reading goroutine can only deliver after the pending event is taken).
package heraldclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/herald-push/herald/internal/reconnect"
)

// Close codes of docs/protocol.md.
const (
	CloseNormal        = 1000
	CloseGoingAway     = 1001 // drain, or no answer to the server's ping
	ClosePolicy        = 1008 // slow consumer by policy, command rate, output budget
	CloseTryAgainLater = 1013 // slow consumer, server busy
	CloseTokenExpired  = 4001
	CloseKicked        = 4003 // disconnected by the backend: not reconnected
	// ClosePingTimeout is the code this client closes with when the server
	// stopped answering.
	ClosePingTimeout = 4000
)

var (
	// ErrClosed is Err after Close, and what calls return once the client
	// stopped for that reason.
	ErrClosed = errors.New("heraldclient: client closed")
	// ErrDisconnected is returned by a call whose connection dropped before
	// the server answered: a Publish may or may not have been published.
	ErrDisconnected = errors.New("heraldclient: connection lost before the reply")
	// ErrTokenExpired is Err after a 4001 close without Options.RefreshToken.
	ErrTokenExpired = errors.New("heraldclient: token expired and no RefreshToken")
)

// Backoff is the reconnect schedule: attempt n (from 0) waits a random
// duration in [0, min(Max, Min·Factorⁿ)) ("full jitter"). The attempt count
// restarts once a connection has stayed open for StableAfter.
type Backoff struct {
	Min    time.Duration // default 250ms
	Max    time.Duration // default 30s
	Factor float64       // default 2
	// StableAfter is how long a connection must live to reset the count
	// (default 5s).
	StableAfter time.Duration
	// MaxAttempts stops the client after that many dials in a row failed
	// (0: never stop). Err then returns the last dial error.
	MaxAttempts int
}

// Delay returns the wait before attempt n (from 0), random in [0, base).
func (b Backoff) Delay(n int) time.Duration {
	b = b.withDefaults()
	base := float64(b.Min) * math.Pow(b.Factor, float64(n))
	if base > float64(b.Max) || math.IsInf(base, 0) || math.IsNaN(base) {
		base = float64(b.Max)
	}
	if base < 1 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(base)))
}

// jitter is the random wait added to a server's reconnect advice, in
// [0, Min).
func (b Backoff) jitter() time.Duration {
	b = b.withDefaults()
	return time.Duration(rand.Int64N(int64(b.Min)))
}

func (b Backoff) withDefaults() Backoff {
	if b.Min <= 0 {
		b.Min = 250 * time.Millisecond
	}
	if b.Max <= 0 {
		b.Max = 30 * time.Second
	}
	if b.Max < b.Min {
		b.Max = b.Min
	}
	if b.Factor < 1 {
		b.Factor = 2
	}
	if b.StableAfter <= 0 {
		b.StableAfter = 5 * time.Second
	}
	return b
}

// Options configure a Client. The zero value connects anonymously with
// the defaults.
type Options struct {
	// Token is the JWT, sent as "Authorization: Bearer" (or as ?token= with
	// TokenInQuery).
	Token string
	// TokenInQuery sends the token as ?token= instead of in a header.
	TokenInQuery bool
	// RefreshToken, when set, gives a new token after a 4001 close (token
	// expired) and after a handshake refused with HTTP 401. It runs on the
	// client's goroutine with the context given to Dial.
	RefreshToken func(ctx context.Context) (string, error)
	// Header holds more headers for the upgrade request (e.g. Origin).
	Header http.Header
	// Backoff is the reconnect schedule.
	Backoff Backoff
	// PingInterval is the silence after which the client sends a ping
	// (default 20s; negative: never). PongTimeout is how long it then
	// waits for any frame before dropping the connection (default 10s).
	PingInterval time.Duration
	PongTimeout  time.Duration
	// WriteTimeout bounds every write (default 10s).
	WriteTimeout time.Duration
	// DialTimeout bounds each connection attempt, handshake included
	// (default 10s).
	DialTimeout time.Duration
	// EventBuffer is the capacity of the Events channel (default 256).
	EventBuffer int
}

// Position is a place in a channel: the offset of a message and the epoch
// of the channel's history it belongs to.
type Position struct {
	Offset uint64 `json:"offset"`
	Epoch  string `json:"epoch"`
}

// Event is what Events delivers: Message, Subscribed, Error, AppMessage,
// Connected or Disconnected.
type Event interface{ event() }

// Message is a published message of a channel.
type Message struct {
	Channel string
	Offset  uint64
	// Epoch is the channel's epoch, empty for channels not subscribed with
	// Subscribe (the personal user:<sub> channel).
	Epoch string
	// Data is the payload as JSON: the published JSON, or a JSON string
	// when the payload was not JSON.
	Data json.RawMessage
}

// Subscribed is the server's confirmation of a subscription.
type Subscribed struct {
	Channel string
	// Offset and Epoch are the channel's latest position at the moment of
	// subscribing; messages delivered afterwards have larger offsets.
	Offset uint64
	Epoch  string
	// Resubscribed is true when the subscription was sent with `since`
	// (after a reconnect, or with SubscribeSince).
	Resubscribed bool
	// Recovered is the server's answer to `since`: true when every message
	// after it follows; false when some were lost (refetch the state).
	Recovered bool
}

// Error is an error reply of the server (docs/protocol.md: forbidden,
// bad_request, not_subscribed, unavailable, limit, ...). Calls return it
// as their error; replies that answer no call arrive as events.
type Error struct {
	Code    string
	Message string
	Channel string
}

func (e *Error) Error() string {
	if e.Channel != "" {
		return fmt.Sprintf("herald: %s: %s (channel %s)", e.Code, e.Message, e.Channel)
	}
	return fmt.Sprintf("herald: %s: %s", e.Code, e.Message)
}

// AppMessage is an application message {"op":"msg"} from the server's
// handler (herald as a library).
type AppMessage struct{ Data json.RawMessage }

// Connected says a connection opened; its resubscriptions are sent.
type Connected struct {
	// Reconnected is false for the first connection.
	Reconnected bool
	// At is when the connection opened.
	At time.Time
}

// Disconnected says a connection ended.
type Disconnected struct {
	// Code and Reason are the close frame's, or 0 when the connection
	// ended without one (network failure, ClosePingTimeout for a silent
	// server). Err is the underlying error.
	Code   int
	Reason string
	Err    error
	// Retry is the wait before the next attempt, which begins once the
	// application has taken this event: the attempt comes no sooner than
	// Retry after At. WillReconnect is false when the client stops.
	Retry         time.Duration
	WillReconnect bool
	// At is when the connection ended, or the attempt failed.
	At time.Time
}

func (Message) event()      {}
func (Subscribed) event()   {}
func (*Error) event()       {}
func (AppMessage) event()   {}
func (Connected) event()    {}
func (Disconnected) event() {}

// CloseError is a close frame from the server, the error of a Disconnected
// event and, for 4003, of Err.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("heraldclient: closed by the server: %d %s", e.Code, e.Reason)
}

// HandshakeError is a refused upgrade: the HTTP status (401, 403, 429,
// 503, ...).
type HandshakeError struct{ Status int }

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("heraldclient: upgrade refused: HTTP %d", e.Status)
}

// Client is a connection to herald that reconnects by itself. Its methods
// are safe for concurrent use.
type Client struct {
	url    string
	opts   Options
	ctx    context.Context // Dial's, ended by Close too
	stop   context.CancelFunc
	closed atomic.Bool // Close was called

	events chan Event
	done   chan struct{}
	err    error // why it stopped, set before done closes

	mu       sync.Mutex
	token    string
	conn     *conn // nil while disconnected
	ready    chan struct{}
	channels map[string]*channel // subscribed with Subscribe
	seen     map[string]uint64   // last offset of other channels
	pending  map[uint64]chan frame
	nextID   uint64
}

type channel struct {
	pos   Position
	known bool // pos holds a position
	asked bool // the last sub carried since
}

// conn is one WebSocket.
type conn struct {
	nc  net.Conn
	src io.Reader // handshake's buffered bytes, then nc
	wmu sync.Mutex
}

// frame is any server → client message.
type frame struct {
	Op        string          `json:"op"`
	Channel   string          `json:"channel"`
	Offset    *uint64         `json:"offset"`
	Epoch     string          `json:"epoch"`
	Recovered bool            `json:"recovered"`
	Data      json.RawMessage `json:"data"`
	Code      string          `json:"code"`
	Message   string          `json:"message"`
	ID        json.RawMessage `json:"id"`

	sub Subscribed // for a subscribed reply: what it means for the client
}

// Dial connects to herald's /ws endpoint (ws:// or wss://) and returns
// once the first connection is open; when that fails it returns the error
// (a *HandshakeError for a refused upgrade) and no client. After that the
// client reconnects by itself until Close, or until ctx ends.
func Dial(ctx context.Context, rawURL string, opts Options) (*Client, error) {
	if _, err := url.Parse(rawURL); err != nil {
		return nil, fmt.Errorf("heraldclient: %w", err)
	}
	if opts.PingInterval == 0 {
		opts.PingInterval = 20 * time.Second
	}
	if opts.PongTimeout <= 0 {
		opts.PongTimeout = 10 * time.Second
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 10 * time.Second
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 10 * time.Second
	}
	if opts.EventBuffer <= 0 {
		opts.EventBuffer = 256
	}
	opts.Backoff = opts.Backoff.withDefaults()
	cctx, stop := context.WithCancel(ctx)
	c := &Client{
		url: rawURL, opts: opts, ctx: cctx, stop: stop,
		events:   make(chan Event, opts.EventBuffer),
		done:     make(chan struct{}),
		token:    opts.Token,
		ready:    make(chan struct{}),
		channels: map[string]*channel{},
		seen:     map[string]uint64{},
		pending:  map[uint64]chan frame{},
	}
	cn, err := c.dial()
	if err != nil {
		stop()
		return nil, err
	}
	c.attach(cn)
	go c.run(cn)
	return c, nil
}

// Events returns the channel of events; it is closed when the client
// stops. Read it without pause (see the package documentation).
func (c *Client) Events() <-chan Event { return c.events }

// Done is closed when the client has stopped; Err then says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the client stopped (ErrClosed, a *CloseError with code
// 4003, ErrTokenExpired, the last dial error after MaxAttempts, or the
// context's error), or nil while it runs.
func (c *Client) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Close closes the connection with 1000 and stops the client; it waits
// for the client's goroutine to end. Events is closed afterwards.
func (c *Client) Close() error {
	c.closed.Store(true)
	c.stop()
	<-c.done
	return nil
}

// Position returns the position of the last message delivered on channel
// (or of its subscription), the one a resubscription sends as `since`.
func (c *Client) Position(channelName string) (Position, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := c.channels[channelName]
	if ch == nil || !ch.known {
		return Position{}, false
	}
	return ch.pos, true
}

// Subscribe subscribes to channel and returns the server's reply. The
// subscription lasts across reconnects (each one resubscribes with
// `since`) until Unsubscribe; a Subscribe that returned ErrDisconnected
// is resubscribed too. The reply also arrives as a Subscribed event.
func (c *Client) Subscribe(ctx context.Context, channelName string) (Subscribed, error) {
	return c.subscribe(ctx, channelName, nil)
}

// SubscribeSince subscribes from a position the application stored: the
// server sends every message after it that it still has, and says in
// Recovered whether that was all of them.
func (c *Client) SubscribeSince(ctx context.Context, channelName string, since Position) (Subscribed, error) {
	return c.subscribe(ctx, channelName, &since)
}

func (c *Client) subscribe(ctx context.Context, name string, since *Position) (Subscribed, error) {
	r, err := c.call(ctx, func(id uint64) map[string]any {
		ch := c.channels[name]
		if ch == nil {
			ch = &channel{}
			c.channels[name] = ch
		}
		if since != nil && !ch.known {
			ch.pos, ch.known = *since, true
		}
		return c.subCommand(name, ch, id)
	})
	if err != nil {
		var herr *Error
		if errors.As(err, &herr) {
			c.mu.Lock()
			delete(c.channels, name)
			c.mu.Unlock()
		}
		return Subscribed{}, err
	}
	if r.sub.Channel == "" {
		r.sub = subscribedOf(r, false) // unsubscribed meanwhile
	}
	return r.sub, nil
}

// Unsubscribe ends a subscription and forgets its position.
func (c *Client) Unsubscribe(ctx context.Context, channelName string) error {
	_, err := c.call(ctx, func(id uint64) map[string]any {
		delete(c.channels, channelName)
		return map[string]any{"op": "unsub", "channel": channelName, "id": id}
	})
	return err
}

// Publish publishes data, marshalled to JSON (a json.RawMessage or []byte
// of JSON goes as it is), to channel where the token allows it, and
// returns the message's offset. A refusal is an *Error; ErrDisconnected
// means the connection dropped first and it may or may not be published.
// While the client is reconnecting Publish waits for the connection.
func (c *Client) Publish(ctx context.Context, channelName string, data any) (uint64, error) {
	raw, err := marshal(data)
	if err != nil {
		return 0, err
	}
	r, err := c.call(ctx, func(id uint64) map[string]any {
		return map[string]any{"op": "pub", "channel": channelName, "data": raw, "id": id}
	})
	if err != nil {
		return 0, err
	}
	if r.Offset == nil {
		return 0, nil
	}
	return *r.Offset, nil
}

// Ping sends {"op":"ping"} and returns the time until the pong.
func (c *Client) Ping(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	_, err := c.call(ctx, func(id uint64) map[string]any {
		return map[string]any{"op": "ping", "id": id}
	})
	return time.Since(start), err
}

// Send sends an application message {"op":"msg"} to the server's handler
// (herald as a library); answers arrive as AppMessage events. It returns
// once the frame is written, waiting for a connection while reconnecting.
func (c *Client) Send(ctx context.Context, data any) error {
	raw, err := marshal(data)
	if err != nil {
		return err
	}
	for {
		cn, ready, err := c.current(ctx)
		if err != nil {
			return err
		}
		if cn == nil {
			if err := c.wait(ctx, ready); err != nil {
				return err
			}
			continue
		}
		return c.write(cn, map[string]any{"op": "msg", "data": raw})
	}
}

func marshal(data any) (json.RawMessage, error) {
	switch d := data.(type) {
	case json.RawMessage:
		if !json.Valid(d) {
			return nil, errors.New("heraldclient: data is not valid JSON")
		}
		return d, nil
	case []byte:
		if !json.Valid(d) {
			return nil, errors.New("heraldclient: data is not valid JSON")
		}
		return d, nil
	}
	b, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("heraldclient: %w", err)
	}
	return b, nil
}

// call sends the command build makes (under c.mu, with a connection) and
// waits for the reply with its id.
func (c *Client) call(ctx context.Context, build func(id uint64) map[string]any) (frame, error) {
	for {
		c.mu.Lock()
		if err := c.stopped(); err != nil {
			c.mu.Unlock()
			return frame{}, err
		}
		cn, ready := c.conn, c.ready
		if cn == nil {
			c.mu.Unlock()
			if err := c.wait(ctx, ready); err != nil {
				return frame{}, err
			}
			continue
		}
		c.nextID++
		id := c.nextID
		reply := make(chan frame, 1)
		c.pending[id] = reply
		cmd := build(id)
		c.mu.Unlock()
		// The reader resolves the reply only after this write, whose
		// frame is the command: a failed write drops the connection.
		if err := c.write(cn, cmd); err != nil {
			c.forget(id)
			return frame{}, ErrDisconnected
		}
		select {
		case r, ok := <-reply:
			if !ok {
				return frame{}, ErrDisconnected
			}
			if r.Op == "error" {
				return r, &Error{Code: r.Code, Message: r.Message, Channel: r.Channel}
			}
			return r, nil
		case <-ctx.Done():
			c.forget(id)
			return frame{}, ctx.Err()
		case <-c.done:
			return frame{}, c.err
		}
	}
}

func (c *Client) forget(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

func (c *Client) current(ctx context.Context) (*conn, chan struct{}, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.stopped(); err != nil {
		return nil, nil, err
	}
	return c.conn, c.ready, ctx.Err()
}

// stopped returns the stop reason once the client stopped (c.mu held).
func (c *Client) stopped() error {
	select {
	case <-c.done:
		return c.err
	default:
	}
	if c.ctx.Err() != nil {
		return ErrClosed
	}
	return nil
}

func (c *Client) wait(ctx context.Context, ready chan struct{}) error {
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		return c.err
	}
}

// subCommand is the sub command for ch, with since when its position is
// known (c.mu held).
func (c *Client) subCommand(name string, ch *channel, id uint64) map[string]any {
	cmd := map[string]any{"op": "sub", "channel": name}
	if id != 0 {
		cmd["id"] = id
	}
	ch.asked = ch.known && ch.pos.Epoch != ""
	if ch.asked {
		cmd["since"] = ch.pos
	}
	return cmd
}

func subscribedOf(r frame, asked bool) Subscribed {
	s := Subscribed{Channel: r.Channel, Epoch: r.Epoch, Resubscribed: asked, Recovered: asked && r.Recovered}
	if r.Offset != nil {
		s.Offset = *r.Offset
	}
	return s
}

func (c *Client) write(cn *conn, cmd map[string]any) error {
	b, err := json.Marshal(cmd)
	if err != nil {
		return fmt.Errorf("heraldclient: %w", err)
	}
	cn.wmu.Lock()
	defer cn.wmu.Unlock()
	cn.nc.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout))
	if err := wsutil.WriteClientText(cn.nc, b); err != nil {
		cn.nc.Close() // the reader sees it and reconnects
		return err
	}
	return nil
}

// --- the connection's goroutine -------------------------------------------

// dial opens one WebSocket.
func (c *Client) dial() (*conn, error) {
	c.mu.Lock()
	token := c.token
	c.mu.Unlock()
	u := c.url
	hdr := http.Header{}
	for k, v := range c.opts.Header {
		hdr[k] = v
	}
	if token != "" {
		if c.opts.TokenInQuery {
			pu, _ := url.Parse(u)
			q := pu.Query()
			q.Set("token", token)
			pu.RawQuery = q.Encode()
			u = pu.String()
		} else {
			hdr.Set("Authorization", "Bearer "+token)
		}
	}
	d := ws.Dialer{Header: ws.HandshakeHeaderHTTP(hdr), Timeout: c.opts.DialTimeout}
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.DialTimeout)
	defer cancel()
	nc, br, _, err := d.Dial(ctx, u)
	if err != nil {
		var se ws.StatusError
		if errors.As(err, &se) {
			return nil, &HandshakeError{Status: int(se)}
		}
		return nil, fmt.Errorf("heraldclient: dial: %w", err)
	}
	cn := &conn{nc: nc, src: nc}
	if br != nil && br.Buffered() > 0 {
		cn.src = io.MultiReader(io.LimitReader(br, int64(br.Buffered())), nc)
	} else if br != nil {
		ws.PutReader(br)
	}
	return cn, nil
}

// attach makes cn the current connection and sends the resubscriptions
// before any caller can write on it.
func (c *Client) attach(cn *conn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn = cn
	for name, ch := range c.channels {
		if err := c.write(cn, c.subCommand(name, ch, 0)); err != nil {
			break // the reader sees the closed connection
		}
	}
	close(c.ready)
}

// detach ends cn: pending calls fail with ErrDisconnected.
func (c *Client) detach(cn *conn) {
	cn.nc.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn == cn {
		c.conn = nil
		c.ready = make(chan struct{})
	}
	for id, ch := range c.pending {
		close(ch)
		delete(c.pending, id)
	}
}

func (c *Client) run(cn *conn) {
	defer func() {
		c.mu.Lock()
		close(c.done)
		c.mu.Unlock()
		close(c.events)
	}()
	attempt := 0
	reconnected := false
	var lastErr error
	for {
		if cn != nil {
			opened := time.Now()
			if !c.emit(Connected{Reconnected: reconnected, At: opened}) {
				c.detach(cn)
				c.finish(ErrClosed)
				return
			}
			reconnected = true
			err := c.read(cn)
			ended := time.Now()
			c.detach(cn)
			cn = nil
			if c.ctx.Err() != nil {
				c.finish(ErrClosed)
				return
			}
			if time.Since(opened) >= c.opts.Backoff.StableAfter {
				attempt = 0
			}
			d := Disconnected{Err: err, At: ended}
			var ce *CloseError
			if errors.As(err, &ce) {
				d.Code, d.Reason = ce.Code, ce.Reason
			}
			switch {
			case d.Code == CloseKicked:
				c.emit(d)
				c.finish(ce)
				return
			case d.Code == CloseTokenExpired:
				if c.opts.RefreshToken == nil {
					c.emit(d)
					c.finish(ErrTokenExpired)
					return
				}
				if err := c.refresh(); err != nil {
					lastErr = err
					d.Retry = c.opts.Backoff.Delay(attempt)
					attempt++
				}
			default:
				if after, ok := reconnect.Parse(d.Reason); ok {
					// The server said when to come back (a drain's
					// 1001): that, plus a jitter of our own, instead of
					// the backoff.
					d.Retry = after + c.opts.Backoff.jitter()
					attempt = 0
					break
				}
				d.Retry = c.opts.Backoff.Delay(attempt)
				attempt++
			}
			d.WillReconnect = true
			if !c.emit(d) || !c.sleep(d.Retry) {
				c.finish(ErrClosed)
				return
			}
		}
		var err error
		cn, err = c.dial()
		if err == nil {
			c.attach(cn)
			continue
		}
		failed := time.Now()
		if c.ctx.Err() != nil {
			c.finish(ErrClosed)
			return
		}
		lastErr = err
		if m := c.opts.Backoff.MaxAttempts; m > 0 && attempt >= m {
			c.emit(Disconnected{Err: err, At: failed})
			c.finish(lastErr)
			return
		}
		var he *HandshakeError
		if errors.As(err, &he) && he.Status == http.StatusUnauthorized && c.opts.RefreshToken != nil {
			if rerr := c.refresh(); rerr != nil {
				err = rerr
			}
		}
		retry := c.opts.Backoff.Delay(attempt)
		attempt++
		if !c.emit(Disconnected{Err: err, Retry: retry, WillReconnect: true, At: failed}) || !c.sleep(retry) {
			c.finish(ErrClosed)
			return
		}
	}
}

func (c *Client) refresh() error {
	tok, err := c.opts.RefreshToken(c.ctx)
	if err != nil {
		return fmt.Errorf("heraldclient: RefreshToken: %w", err)
	}
	c.mu.Lock()
	c.token = tok
	c.mu.Unlock()
	return nil
}

func (c *Client) finish(err error) {
	if err == ErrClosed && !c.closed.Load() && c.ctx.Err() != nil {
		err = context.Cause(c.ctx) // Dial's context ended
	}
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
}

func (c *Client) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// emit hands ev to the application; false when the client was closed
// meanwhile.
func (c *Client) emit(ev Event) bool {
	select {
	case c.events <- ev:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// read reads cn until it fails; it returns a *CloseError for a close frame.
func (c *Client) read(cn *conn) error {
	// Close ends the read at once: the reader closes the socket after
	// sending 1000.
	stopWatch := context.AfterFunc(c.ctx, func() {
		cn.wmu.Lock()
		cn.nc.SetWriteDeadline(time.Now().Add(time.Second))
		_ = ws.WriteFrame(cn.nc, ws.MaskFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(CloseNormal, ""))))
		cn.wmu.Unlock()
		cn.nc.Close()
	})
	defer stopWatch()

	var (
		lmu      sync.Mutex
		lastRead = time.Now()
	)
	if c.opts.PingInterval > 0 {
		done := make(chan struct{})
		defer close(done)
		go c.pinger(cn, done, &lmu, &lastRead)
	}
	ctrl := func(h ws.Header, r io.Reader) error {
		cn.wmu.Lock()
		defer cn.wmu.Unlock()
		cn.nc.SetWriteDeadline(time.Now().Add(c.opts.WriteTimeout))
		if h.OpCode != ws.OpClose {
			return wsutil.ControlFrameHandler(cn.nc, ws.StateClientSide)(h, r)
		}
		// Close frames by hand: gobwas refuses codes such as 1013 that
		// herald sends.
		body := make([]byte, h.Length)
		if _, err := io.ReadFull(r, body); err != nil {
			return err
		}
		code, reason := ws.StatusNoStatusRcvd, ""
		if len(body) >= 2 {
			code, reason = ws.ParseCloseFrameData(body)
		}
		echo := ws.NewCloseFrameBody(ws.StatusNormalClosure, "")
		if len(body) >= 2 {
			echo = body[:2]
		}
		_ = ws.WriteFrame(cn.nc, ws.MaskFrame(ws.NewCloseFrame(echo)))
		return &CloseError{Code: int(code), Reason: reason}
	}
	rd := &wsutil.Reader{Source: cn.src, State: ws.StateClientSide, CheckUTF8: true, OnIntermediate: ctrl}
	for {
		if c.opts.PingInterval > 0 {
			cn.nc.SetReadDeadline(time.Now().Add(c.opts.PingInterval + c.opts.PongTimeout))
		}
		h, err := rd.NextFrame()
		if err != nil {
			return c.readErr(err)
		}
		lmu.Lock()
		lastRead = time.Now()
		lmu.Unlock()
		if h.OpCode.IsControl() {
			if err := ctrl(h, rd); err != nil {
				return c.readErr(err)
			}
			continue
		}
		if h.OpCode != ws.OpText && h.OpCode != ws.OpBinary {
			if err := rd.Discard(); err != nil {
				return c.readErr(err)
			}
			continue
		}
		b, err := io.ReadAll(rd)
		if err != nil {
			return c.readErr(err)
		}
		if !c.handle(b) {
			return ErrClosed
		}
	}
}

func (c *Client) readErr(err error) error {
	if _, ok := err.(*CloseError); ok {
		return err
	}
	var ce wsutil.ClosedError
	if errors.As(err, &ce) {
		return &CloseError{Code: int(ce.Code), Reason: ce.Reason}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &CloseError{Code: ClosePingTimeout, Reason: "pong timeout"}
	}
	return err
}

// pinger sends {"op":"ping"} after PingInterval of silence.
func (c *Client) pinger(cn *conn, done chan struct{}, lmu *sync.Mutex, lastRead *time.Time) {
	t := time.NewTicker(max(min(c.opts.PingInterval, c.opts.PongTimeout)/4, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			lmu.Lock()
			silent := time.Since(*lastRead)
			lmu.Unlock()
			if silent >= c.opts.PingInterval {
				if c.write(cn, map[string]any{"op": "ping"}) != nil {
					return
				}
			}
		}
	}
}

// handle processes one server message; false when the client was closed.
func (c *Client) handle(b []byte) bool {
	var f frame
	if err := json.Unmarshal(b, &f); err != nil {
		return c.emit(&Error{Code: "bad_frame", Message: "frame is not JSON: " + err.Error()})
	}
	var id uint64
	if len(f.ID) > 0 {
		id, _ = strconv.ParseUint(string(f.ID), 10, 64)
	}
	switch f.Op {
	case "":
		if f.Channel == "" || f.Offset == nil {
			return true
		}
		c.mu.Lock()
		m, ok := c.deliver(f)
		c.mu.Unlock()
		if !ok {
			return true // seen already
		}
		return c.emit(m)
	case "subscribed":
		c.mu.Lock()
		s, ok := c.onSubscribed(f)
		f.sub = s
		reply := c.take(id)
		c.mu.Unlock()
		if reply != nil {
			reply <- f
		}
		if !ok {
			return true
		}
		return c.emit(s)
	case "error":
		c.mu.Lock()
		reply := c.take(id)
		if reply == nil && f.Channel != "" && f.Code == "forbidden" {
			// A resubscription refused: the channel is no longer ours.
			delete(c.channels, f.Channel)
		}
		c.mu.Unlock()
		if reply != nil {
			reply <- f
			return true
		}
		return c.emit(&Error{Code: f.Code, Message: f.Message, Channel: f.Channel})
	case "msg":
		if id == 0 {
			return c.emit(AppMessage{Data: f.Data})
		}
	}
	// published, pong, unsubscribed, a handler's reply with an id, and
	// ops of later versions.
	c.mu.Lock()
	reply := c.take(id)
	c.mu.Unlock()
	if reply != nil {
		reply <- f
	} else if f.Op == "msg" {
		return c.emit(AppMessage{Data: f.Data})
	}
	return true
}

func (c *Client) take(id uint64) chan frame {
	if id == 0 {
		return nil
	}
	r := c.pending[id]
	delete(c.pending, id)
	return r
}

// deliver dedupes a message and advances its channel's position (c.mu held).
func (c *Client) deliver(f frame) (Message, bool) {
	off := *f.Offset
	m := Message{Channel: f.Channel, Offset: off, Data: f.Data}
	if ch := c.channels[f.Channel]; ch != nil {
		if ch.known && off <= ch.pos.Offset {
			return m, false
		}
		ch.pos.Offset, ch.known = off, true
		m.Epoch = ch.pos.Epoch
		return m, true
	}
	if last, ok := c.seen[f.Channel]; ok && off <= last {
		return m, false
	}
	c.seen[f.Channel] = off
	return m, true
}

// onSubscribed updates the channel's position from a subscribed reply
// (c.mu held).
func (c *Client) onSubscribed(f frame) (Subscribed, bool) {
	ch := c.channels[f.Channel]
	if ch == nil {
		return Subscribed{}, false // unsubscribed meanwhile
	}
	asked := ch.asked
	ch.asked = false
	s := subscribedOf(f, asked)
	if s.Recovered {
		// The backlog follows; offsets keep their meaning.
		ch.pos.Epoch = f.Epoch
	} else {
		// Fresh, or a gap the server could not fill: count from the
		// channel's current position (a new epoch restarts offsets).
		ch.pos, ch.known = Position{Offset: s.Offset, Epoch: s.Epoch}, true
	}
	return s, true
}

package broker

import (
	"context"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/herald-push/herald/hub"
)

// Headers of the messages herald stores in JetStream.
const (
	// HeaderOffset is the message's offset in its channel; 0 marks an
	// epoch's empty start (a marker, never delivered).
	HeaderOffset = "Herald-Offset"
	// HeaderEpoch is the epoch the offset belongs to.
	HeaderEpoch = "Herald-Epoch"
)

// Defaults of NATSConfig's zero fields.
const (
	DefaultStream         = "HERALD"
	DefaultSubjectPrefix  = "herald.ch"
	DefaultMaxAge         = 24 * time.Hour
	DefaultLinger         = 30 * time.Second
	DefaultWarmTimeout    = 3 * time.Second
	DefaultPublishTimeout = 5 * time.Second
)

// NATSConfig configures the NATS broker. The zero value (with a URL) is
// valid: every zero field takes its default.
type NATSConfig struct {
	// URL is the NATS server, nats://HOST:PORT; several, comma-separated,
	// name the members of a NATS cluster.
	URL string
	// Name is the client connection's name, shown by NATS monitoring.
	Name string
	// Optional starts the broker even when NATS is unreachable: it keeps
	// trying, and Ready says why it is not ready meanwhile. Otherwise
	// NewNATS fails.
	Optional bool
	// Stream is the JetStream stream holding every channel (default
	// HERALD), on subjects SubjectPrefix.> (default herald.ch). NewNATS
	// creates it when missing; one that exists is used as it is.
	Stream        string
	SubjectPrefix string
	// HistorySize is how many messages the stream keeps per channel (one
	// more, for the epoch marker); 0 means hub.DefaultHistorySize. Use the
	// hub's value, so a node that did not see a message recovers as much
	// as one that did.
	HistorySize int
	// HistoryTTL is the hub's top-level history TTL, the least MaxAge
	// (0 means hub.DefaultHistoryTTL). A replayed message older than its
	// channel's TTL (hub.Hub.HistoryTTL: a namespace may set its own)
	// only moves the channel's position and does not enter the hub's
	// history.
	HistoryTTL time.Duration
	// MaxAge bounds the age of the stream's messages (default 24 h, and
	// at least HistoryTTL): give it the longest TTL of any namespace, so
	// that recovery on another node still finds their history. A channel
	// silent for longer loses its epoch.
	MaxAge time.Duration
	// MaxBytes bounds the bytes the stream holds (0: no bound); past it
	// JetStream drops the oldest messages of any channel. With long
	// MaxAge it is what bounds the stream's disk.
	MaxBytes int64
	// Replicas is the stream's replication factor in a NATS cluster
	// (default 1).
	Replicas int
	// MaxPayload is the largest payload Publish accepts; 0 means the
	// hub's (hub.Hub.MaxPayload), so the two are configured in one place.
	// Publish also refuses what the hub would (hub.Hub.Check) before
	// storing anything.
	MaxPayload int
	// MaxWatches caps the channels this node watches at once (one
	// ordered consumer and one goroutine each); 0 means the hub's channel
	// cap (hub.Hub.MaxChannels), negative no cap. The push app reserves a
	// channel in the hub before it acquires a watch, so the hub's cap
	// bounds the watches; this cap is the backstop: past it a lingering
	// watch is dropped to make room, and with none, the subscription
	// proceeds unwatched (counted in Stats.WatchRefused).
	MaxWatches int
	// Linger is how long a node keeps watching a channel after its last
	// local subscriber left, so that reconnecting clients find it current
	// (default 30 s; negative: stop at once).
	Linger time.Duration
	// WarmTimeout bounds how long a first subscription waits for the
	// node's copy of a channel (default 3 s); past it the subscription
	// proceeds with what the node has.
	WarmTimeout time.Duration
	// PublishTimeout bounds a Publish (default 5 s).
	PublishTimeout time.Duration
	// DuplicateWindow is the duplicate window of the stream NewNATS
	// creates (JetStream's de-duplication by Nats-Msg-Id, which
	// PublishOnce relies on): default DefaultIdempotencyWindow, at most
	// MaxAge. A stream that exists keeps its own (a warning says so when
	// it is shorter).
	DuplicateWindow time.Duration
	// Log receives connection events (default slog.Default()).
	Log *slog.Logger
}

// withDefaults returns cfg with its zero fields set to their defaults.
func (cfg NATSConfig) withDefaults() NATSConfig {
	if cfg.Stream == "" {
		cfg.Stream = DefaultStream
	}
	if cfg.SubjectPrefix == "" {
		cfg.SubjectPrefix = DefaultSubjectPrefix
	}
	if cfg.HistorySize == 0 {
		cfg.HistorySize = hub.DefaultHistorySize
	}
	if cfg.HistoryTTL == 0 {
		cfg.HistoryTTL = hub.DefaultHistoryTTL
	}
	if cfg.MaxAge == 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	cfg.MaxAge = max(cfg.MaxAge, cfg.HistoryTTL)
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.Linger == 0 {
		cfg.Linger = DefaultLinger
	}
	if cfg.WarmTimeout <= 0 {
		cfg.WarmTimeout = DefaultWarmTimeout
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = DefaultPublishTimeout
	}
	if cfg.DuplicateWindow <= 0 {
		cfg.DuplicateWindow = DefaultIdempotencyWindow
	}
	cfg.DuplicateWindow = min(cfg.DuplicateWindow, cfg.MaxAge)
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return cfg
}

// NATS is the multi-node broker over NATS JetStream (see the package
// documentation). Its methods are safe for concurrent use.
type NATS struct {
	cfg NATSConfig
	h   *hub.Hub
	nc  *nats.Conn
	js  jetstream.JetStream

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	inited chan struct{} // closed once nc and js are set

	stream    atomic.Pointer[jetstream.Stream] // nil until the stream is known
	streamErr atomic.Pointer[string]           // why it is not, for Ready
	ensuring  atomic.Bool

	mu      sync.Mutex        // guards watches, last and the watches' fields
	watches map[string]*watch // channels with local interest
	last    map[string]tip    // last known message per channel, for Publish
	pubLock [64]sync.Mutex    // serialises a node's publishes per channel (by hash)

	published atomic.Uint64
	conflicts atomic.Uint64
	refused   atomic.Uint64

	watchRefused atomic.Uint64
}

// tip is a channel's last message: its stream sequence and position.
type tip struct {
	seq uint64
	pos hub.Position
}

// maxTips bounds NATS.last; past it the cache starts over.
const maxTips = 4096

// NewNATS connects to NATS, makes sure the stream exists and returns the
// broker feeding h. Unless cfg.Optional, it fails when NATS or JetStream
// is unreachable.
func NewNATS(ctx context.Context, h *hub.Hub, cfg NATSConfig) (*NATS, error) {
	cfg = cfg.withDefaults()
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = h.MaxPayload()
	}
	if cfg.MaxWatches == 0 {
		cfg.MaxWatches = h.MaxChannels()
	}
	if cfg.URL == "" {
		return nil, errors.New("broker: nats: no URL")
	}
	b := &NATS{cfg: cfg, h: h, watches: map[string]*watch{}, last: map[string]tip{}, inited: make(chan struct{})}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	defer close(b.inited)
	why := "connecting to " + cfg.URL
	b.streamErr.Store(&why)
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		nats.Timeout(2 * time.Second),
		nats.RetryOnFailedConnect(cfg.Optional),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if b.ctx.Err() != nil {
				return // Close ended the connection: nothing was lost
			}
			cfg.Log.Warn("broker: lost NATS; local delivery goes on, publishes are refused until it is back", "url", cfg.URL, "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			cfg.Log.Info("broker: NATS is back", "server", nc.ConnectedUrlRedacted())
			go b.ensureStream()
		}),
		nats.ConnectHandler(func(*nats.Conn) { go b.ensureStream() }),
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		b.cancel()
		return nil, fmt.Errorf("broker: connect to NATS at %s: %w (start NATS with JetStream, or set --broker-optional to start degraded)", cfg.URL, err)
	}
	b.nc = nc
	b.js, err = jetstream.New(nc)
	if err != nil {
		nc.Close()
		b.cancel()
		return nil, fmt.Errorf("broker: jetstream: %w", err)
	}
	if nc.IsConnected() {
		if err := initRetry(ctx, b.initStream); err != nil && !cfg.Optional {
			nc.Close()
			b.cancel()
			return nil, err
		}
	}
	return b, nil
}

// initTries bounds NewNATS's and NewRoster's attempts at a stream
// lookup or creation that NATS left unanswered or could not place yet;
// initPause is the wait before the second, twice that before the third,
// and so on.
const (
	initTries = 4
	initPause = 500 * time.Millisecond
)

// initRetry runs init, the stream's (or the bucket's) lookup or
// creation, and again while its error is worth another try (retryable),
// initTries times at most. It returns init's last error.
func initRetry(ctx context.Context, init func(context.Context) error) error {
	err := init(ctx)
	for try := 1; retryable(err) && try < initTries; try++ {
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(try) * initPause):
		}
		err = init(ctx)
	}
	return err
}

// JetStream's error codes for a cluster that cannot place a stream's
// replicas yet: no suitable peers (one is offline, or the cluster is still
// forming) and JetStream temporarily unavailable (no meta leader). The
// jetstream package names neither.
const (
	jsNoSuitablePeers        jetstream.ErrorCode = 10005
	jsTemporarilyUnavailable jetstream.ErrorCode = 10008
)

// retryable reports a JetStream request worth sending again: one that
// timed out, as a NATS cluster leaves a stream lookup unanswered while
// another node's creation of the stream is under way (its replicas elect a
// leader; nodes that start together) and answers it once the stream has a
// leader; or one the cluster refused for want of peers or of a meta
// leader, as it does while a server is briefly offline (a busy machine
// misses heartbeats) or the cluster is still forming.
func retryable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
		return true
	}
	var api *jetstream.APIError
	return errors.As(err, &api) && (api.ErrorCode == jsNoSuitablePeers || api.ErrorCode == jsTemporarilyUnavailable)
}

// maxBytes is the stream's byte bound in JetStream's terms (-1: none).
func (b *NATS) maxBytes() int64 {
	if b.cfg.MaxBytes > 0 {
		return b.cfg.MaxBytes
	}
	return -1
}

// ensureStream retries initStream until it succeeds, the connection is
// lost again or the broker closes. One runs at a time.
func (b *NATS) ensureStream() {
	<-b.inited
	if b.js == nil {
		return // NewNATS failed
	}
	if !b.ensuring.CompareAndSwap(false, true) {
		return
	}
	defer b.ensuring.Store(false)
	for wait := 100 * time.Millisecond; b.ctx.Err() == nil && b.nc.IsConnected(); wait = min(2*wait, 5*time.Second) {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		err := b.initStream(ctx)
		cancel()
		if err == nil {
			return
		}
		b.cfg.Log.Warn("broker: stream not available", "stream", b.cfg.Stream, "err", err)
		select {
		case <-b.ctx.Done():
		case <-time.After(wait):
		}
	}
}

// initStream looks the stream up, creating it when missing.
func (b *NATS) initStream(ctx context.Context) error {
	s, err := b.js.Stream(ctx, b.cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = b.js.CreateStream(ctx, jetstream.StreamConfig{
			Name:              b.cfg.Stream,
			Description:       "herald channels: one subject per channel, offsets and epochs in headers",
			Subjects:          []string{b.cfg.SubjectPrefix + ".>"},
			Storage:           jetstream.FileStorage,
			Replicas:          b.cfg.Replicas,
			MaxMsgsPerSubject: int64(max(b.cfg.HistorySize, 0) + 1),
			MaxAge:            b.cfg.MaxAge,
			MaxBytes:          b.maxBytes(),
			Discard:           jetstream.DiscardOld,
			Duplicates:        b.cfg.DuplicateWindow,
			AllowDirect:       true,
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			s, err = b.js.Stream(ctx, b.cfg.Stream) // another node won the race
		}
	}
	if err != nil {
		why := fmt.Sprintf("stream %s: %v", b.cfg.Stream, err)
		b.streamErr.Store(&why)
		return fmt.Errorf("broker: stream %s: %w", b.cfg.Stream, err)
	}
	if sc := s.CachedInfo().Config; (sc.MaxAge > 0 && sc.MaxAge < b.cfg.MaxAge) || (sc.MaxMsgsPerSubject > 0 && sc.MaxMsgsPerSubject < int64(max(b.cfg.HistorySize, 0)+1)) {
		b.cfg.Log.Warn("broker: the stream keeps less than this node's history needs (another node created it, or the configuration grew): recovery reads only what it kept",
			"stream", b.cfg.Stream, "max_age", sc.MaxAge, "want_max_age", b.cfg.MaxAge,
			"max_msgs_per_subject", sc.MaxMsgsPerSubject, "want_max_msgs_per_subject", max(b.cfg.HistorySize, 0)+1)
	}
	if d := s.CachedInfo().Config.Duplicates; d < b.cfg.DuplicateWindow {
		b.cfg.Log.Warn("broker: the stream's duplicate window is shorter than the idempotency window: a retry reaching another node after it is stored again",
			"stream", b.cfg.Stream, "duplicates", d, "idempotency_window", b.cfg.DuplicateWindow)
	}
	if err := b.awaitDirect(ctx, s); err != nil {
		why := fmt.Sprintf("stream %s: %v", b.cfg.Stream, err)
		b.streamErr.Store(&why)
		return fmt.Errorf("broker: stream %s: %w", b.cfg.Stream, err)
	}
	b.stream.Store(&s)
	return nil
}

// awaitDirect waits (5 s at most) until the stream answers direct gets,
// which is how a publish and a watch read a channel's last message. A
// replicated stream just created answers them with "no responders" for
// a moment (up to a few hundred ms here, on every server of the
// cluster) while its replicas start, so until then the node is not
// ready.
func (b *NATS) awaitDirect(ctx context.Context, s jetstream.Stream) error {
	if !s.CachedInfo().Config.AllowDirect {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	subj := b.cfg.SubjectPrefix + ".%ready" // no channel's: subjectFor writes every % as %25
	for {
		_, err := s.GetLastMsgForSubject(ctx, subj)
		switch {
		case errors.Is(err, nats.ErrNoResponders):
		case ctx.Err() != nil:
			return fmt.Errorf("no replica answers direct gets: %w", ctx.Err())
		default:
			return nil // an answer (not found, surely): the replicas serve direct gets
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no replica answers direct gets: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Ready reports whether NATS is connected and the stream known.
func (b *NATS) Ready() (bool, string) {
	switch {
	case b.ctx.Err() != nil:
		return false, "broker: closed"
	case !b.nc.IsConnected():
		return false, "broker: NATS disconnected (" + b.nc.Status().String() + ")"
	case b.stream.Load() == nil:
		return false, "broker: " + *b.streamErr.Load()
	}
	return true, ""
}

// Stats are the broker's counters, for /api/stats.
type Stats struct {
	Watched   int    `json:"watched_channels"`
	Published uint64 `json:"published"`
	Conflicts uint64 `json:"conflicts"`
	Refused   uint64 `json:"refused"`
	// WatchRefused counts subscriptions that proceeded unwatched because
	// MaxWatches channels were watched already, none of them lingering.
	WatchRefused uint64 `json:"watch_refused"`
}

// Stats returns the broker's counters.
func (b *NATS) Stats() Stats {
	b.mu.Lock()
	n := len(b.watches)
	b.mu.Unlock()
	return Stats{Watched: n, Published: b.published.Load(), Conflicts: b.conflicts.Load(), Refused: b.refused.Load(), WatchRefused: b.watchRefused.Load()}
}

// Publish stores data as channel's next message in JetStream and returns
// its position once JetStream acknowledged it. Every node watching the
// channel, this one included, then delivers it. When NATS is unreachable
// it fails at once with ErrUnavailable.
func (b *NATS) Publish(ctx context.Context, channel string, data []byte) (hub.Position, error) {
	pos, _, err := b.publish(ctx, channel, data, "")
	return pos, err
}

// PublishOnce is Publish with id as the message's Nats-Msg-Id: JetStream
// stores one message per id within the stream's duplicate window
// (NATSConfig.DuplicateWindow), whatever node the publish reaches. A
// publish whose id JetStream has seen returns the position of the message
// stored first and duplicate=true, and stores nothing (the position is
// zero when that message has left the stream).
func (b *NATS) PublishOnce(ctx context.Context, channel string, data []byte, id string) (pos hub.Position, duplicate bool, err error) {
	return b.publish(ctx, channel, data, id)
}

// publish implements Publish (id "": a fresh message ID, which
// de-duplicates only this call's own retries) and PublishOnce.
func (b *NATS) publish(ctx context.Context, channel string, data []byte, id string) (hub.Position, bool, error) {
	if !hub.ValidChannel(channel) {
		return hub.Position{}, false, fmt.Errorf("broker: publish to %.300q: %w", channel, hub.ErrInvalidChannel)
	}
	if len(data) > b.cfg.MaxPayload {
		return hub.Position{}, false, fmt.Errorf("broker: publish %d bytes to %q (limit %d): %w", len(data), channel, b.cfg.MaxPayload, hub.ErrTooLarge)
	}
	if err := b.h.Check(channel, data); err != nil {
		return hub.Position{}, false, fmt.Errorf("broker: %w", err)
	}
	sp := b.stream.Load()
	if ok, why := b.Ready(); !ok || sp == nil {
		b.refused.Add(1)
		return hub.Position{}, false, fmt.Errorf("%w: %s", ErrUnavailable, why)
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.PublishTimeout)
	defer cancel()
	subj := subjectFor(b.cfg.SubjectPrefix, channel)
	lock := &b.pubLock[fnv32(channel)%uint32(len(b.pubLock))]
	lock.Lock()
	defer lock.Unlock()

	last, known := b.cachedTip(channel)
	if id == "" {
		id = nuid.Next()
	}
	for attempt := 0; ; attempt++ {
		if !known {
			var err error
			if last, err = b.lastOf(ctx, *sp, subj); err != nil {
				b.refused.Add(1)
				return hub.Position{}, false, fmt.Errorf("%w: %q: reading the last message: %w", ErrUnavailable, channel, err)
			}
		}
		next := hub.Position{Offset: last.pos.Offset + 1, Epoch: last.pos.Epoch}
		if last.seq == 0 {
			next = hub.Position{Offset: 1, Epoch: newEpoch()} // a new epoch starts
		}
		msg := &nats.Msg{Subject: subj, Data: data, Header: nats.Header{}}
		msg.Header.Set(HeaderOffset, strconv.FormatUint(next.Offset, 10))
		msg.Header.Set(HeaderEpoch, next.Epoch)
		ack, err := b.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(last.seq), jetstream.WithMsgID(id))
		switch {
		case err == nil && ack.Duplicate:
			// JetStream stored this id before (a retry, maybe through
			// another node): answer with that message's position.
			return b.positionAt(ctx, *sp, ack.Sequence), true, nil
		case err == nil:
			b.published.Add(1)
			b.noteTip(channel, tip{seq: ack.Sequence, pos: next})
			return next, false, nil
		case isWrongLastSeq(err) && attempt < maxConflicts:
			b.conflicts.Add(1) // another node published in between: reread
			known = false
			if attempt == 0 {
				continue
			}
			// Conflicts in a row: the node that won holds the channel's
			// tip in its cache and publishes again at once, before this
			// one has reread it (and in a NATS cluster the reread may be
			// answered by a replica behind the leader). A random pause
			// lets the others' writes land.
			select {
			case <-ctx.Done():
				err = ctx.Err()
			case <-time.After(conflictPause(attempt)):
				continue
			}
		}
		b.refused.Add(1)
		return hub.Position{}, false, fmt.Errorf("%w: publish to %q: %w", ErrUnavailable, channel, err)
	}
}

// maxConflicts bounds a publish's attempts lost to other writers; the
// publish's timeout bounds them too, and is what ends a long contention
// first (at 8 ms a pause, 1,000 attempts take seconds): a publish is
// refused for contention only after trying for that long.
const maxConflicts = 1000

// conflictPause is how long a publish waits after its attempt-th
// conflict in a row (attempt >= 1): random, up to attempt milliseconds
// (8 at most), so writers that collided do not collide again in step.
func conflictPause(attempt int) time.Duration {
	return rand.N(time.Duration(min(attempt, 8)) * time.Millisecond)
}

// RemoveHistory purges channel's subject from the stream (JetStream purge
// with a subject filter), so every node agrees, and starts a new epoch
// with a marker: every node watching the channel applies it (hub.Align
// drops its copy of the history), a node that watches it later replays
// only the marker, and clients holding old positions are told
// recovered=false. Removed.Messages is how many messages (markers aside)
// the purge removed; Removed.Epoch is the channel's epoch afterwards (a
// publish racing with the removal may have started it).
func (b *NATS) RemoveHistory(ctx context.Context, channel string) (hub.Removed, error) {
	if !hub.ValidChannel(channel) {
		return hub.Removed{}, fmt.Errorf("broker: remove history of %.300q: %w", channel, hub.ErrInvalidChannel)
	}
	sp := b.stream.Load()
	if ok, why := b.Ready(); !ok || sp == nil {
		return hub.Removed{}, fmt.Errorf("%w: %s", ErrUnavailable, why)
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.PublishTimeout)
	defer cancel()
	subj := subjectFor(b.cfg.SubjectPrefix, channel)
	lock := &b.pubLock[fnv32(channel)%uint32(len(b.pubLock))]
	lock.Lock()
	defer lock.Unlock()
	last, err := b.lastOf(ctx, *sp, subj)
	if err != nil {
		return hub.Removed{}, fmt.Errorf("%w: %q: reading the last message: %w", ErrUnavailable, channel, err)
	}
	purged, err := b.purge(ctx, subj)
	if err != nil {
		return hub.Removed{}, fmt.Errorf("%w: purging %q: %w", ErrUnavailable, channel, err)
	}
	b.mu.Lock()
	delete(b.last, channel)
	b.mu.Unlock()
	t, err := b.mark(ctx, *sp, subj)
	if err != nil {
		return hub.Removed{}, fmt.Errorf("%w: %q: starting an epoch: %w", ErrUnavailable, channel, err)
	}
	// The subject holds one epoch's messages, ending at last and maybe
	// starting with its marker.
	return hub.Removed{Messages: int(min(purged, last.pos.Offset)), Epoch: t.pos.Epoch}, nil
}

// purge removes every message of subj from the stream and says how many.
func (b *NATS) purge(ctx context.Context, subj string) (uint64, error) {
	req, _ := json.Marshal(map[string]string{"filter": subj})
	resp, err := b.nc.RequestWithContext(ctx, "$JS.API.STREAM.PURGE."+b.cfg.Stream, req)
	if err != nil {
		return 0, err
	}
	var out struct {
		Success bool   `json:"success"`
		Purged  uint64 `json:"purged"`
		Error   *struct {
			Code        int    `json:"code"`
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &out); err != nil {
		return 0, fmt.Errorf("purge answer: %w", err)
	}
	if out.Error != nil || !out.Success {
		if out.Error != nil {
			return 0, fmt.Errorf("purge: %s (%d)", out.Error.Description, out.Error.Code)
		}
		return 0, errors.New("purge refused")
	}
	return out.Purged, nil
}

// positionAt reads the position of the stream's message seq (zero when
// it is gone).
func (b *NATS) positionAt(ctx context.Context, s jetstream.Stream, seq uint64) hub.Position {
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		return hub.Position{}
	}
	pos, _ := parsePosition(m.Header)
	return pos
}

// lastOf reads the last message of subj from the stream (seq 0: none).
func (b *NATS) lastOf(ctx context.Context, s jetstream.Stream, subj string) (tip, error) {
	m, err := s.GetLastMsgForSubject(ctx, subj)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return tip{}, nil
	}
	if err != nil {
		return tip{}, err
	}
	pos, ok := parsePosition(m.Header)
	if !ok {
		return tip{}, fmt.Errorf("message %d on %s has no herald position", m.Sequence, subj)
	}
	return tip{seq: m.Sequence, pos: pos}, nil
}

// cachedTip returns the last message this node knows of channel.
func (b *NATS) cachedTip(channel string) (tip, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t, ok := b.last[channel]
	return t, ok
}

// noteTip records t as channel's last message if it is newer than what
// the cache holds.
func (b *NATS) noteTip(channel string, t tip) {
	b.mu.Lock()
	b.noteTipLocked(channel, t)
	b.mu.Unlock()
}

// noteTipLocked is noteTip; Lock should be held.
func (b *NATS) noteTipLocked(channel string, t tip) {
	if old, ok := b.last[channel]; ok && old.seq >= t.seq {
		return
	}
	if len(b.last) >= maxTips {
		clear(b.last)
	}
	b.last[channel] = t
}

// Close stops watching, closes the connection and makes Publish fail.
func (b *NATS) Close() error {
	b.cancel()
	b.mu.Lock()
	ws := b.watches
	b.watches = map[string]*watch{}
	b.mu.Unlock()
	for _, w := range ws {
		w.stop()
	}
	b.nc.Close()
	return nil
}

// parsePosition reads a message's position from its headers.
func parsePosition(h nats.Header) (hub.Position, bool) {
	off, err := strconv.ParseUint(h.Get(HeaderOffset), 10, 64)
	ep := h.Get(HeaderEpoch)
	if err != nil || ep == "" {
		return hub.Position{}, false
	}
	return hub.Position{Offset: off, Epoch: ep}, true
}

// isWrongLastSeq reports a JetStream refusal of an expected-last-sequence
// check: someone else wrote to the subject first. Replicated streams
// report it with another code.
func isWrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	return apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}

// epochEncoding spells epochs like the hub does: lower-case base32.
var epochEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newEpoch mints a random 8-character epoch (40 bits).
func newEpoch() string {
	var buf [8]byte
	binary.LittleEndian.PutUint64(buf[:], rand.Uint64())
	return epochEncoding.EncodeToString(buf[:5])
}

// fnv32 hashes s (FNV-1a), to pick a publish lock.
func fnv32(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

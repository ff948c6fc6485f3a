package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-push/herald/hub"
)

// watch is a node's interest in one channel: while it lives, an ordered
// consumer replays the channel's subject into the hub and then follows it.
// Fields below mu are guarded by NATS.mu.
type watch struct {
	channel string
	subject string
	ctx     context.Context // ends when the watch stops
	cancel  context.CancelFunc

	refs    int         // local subscriptions (and pending ones)
	linger  *time.Timer // running while refs == 0
	target  uint64      // warm once applied through this stream sequence
	started bool        // target is set
	warm    bool
	applied tip // the last message handed to the hub
	waiters []*waiter
	cc      jetstream.ConsumeContext
}

// waiter is a subscription held back until the watch is current.
type waiter struct {
	since *hub.Position
	ready func()
	once  sync.Once
	timer *time.Timer
}

// fire lets the subscription proceed (once).
func (wt *waiter) fire() {
	wt.once.Do(func() {
		if wt.timer != nil {
			wt.timer.Stop()
		}
		wt.ready()
	})
}

// stop ends the watch's consumer. Any goroutine.
func (w *watch) stop() {
	w.cancel()
}

// satisfies reports whether a subscription wanting the messages after
// since may begin. Lock should be held.
func (w *watch) satisfies(since *hub.Position) bool {
	if !w.warm {
		return false
	}
	// A client coming from another node may have seen messages this
	// node has not applied yet: wait for them, so it recovers.
	return since == nil || since.Epoch != w.applied.pos.Epoch || since.Offset <= w.applied.pos.Offset
}

// Acquire counts a local subscriber of channel (push.Interest). The
// first one starts watching the channel; the subscription proceeds once
// the node has applied every message stored before it asked, and every
// message since.Offset names.
func (b *NATS) Acquire(channel string, since *hub.Position, ready func()) bool {
	b.mu.Lock()
	if b.ctx.Err() != nil {
		b.mu.Unlock()
		return true
	}
	w := b.watches[channel]
	if w == nil {
		if !b.roomLocked() {
			b.mu.Unlock()
			b.watchRefused.Add(1)
			b.cfg.Log.Warn("broker: too many watched channels; subscription proceeds with this node's messages only", "channel", channel, "max_watches", b.cfg.MaxWatches)
			return true
		}
		w = b.newWatch(channel)
	}
	w.refs++
	if w.linger != nil {
		w.linger.Stop()
		w.linger = nil
	}
	if w.satisfies(since) {
		b.mu.Unlock()
		return true
	}
	wt := &waiter{since: since, ready: ready}
	w.waiters = append(w.waiters, wt)
	wt.timer = time.AfterFunc(b.cfg.WarmTimeout, func() { b.timeout(w, wt) })
	b.mu.Unlock()
	return false
}

// roomLocked reports whether one more watch fits MaxWatches, dropping a
// lingering watch (no local subscriber) to make room when needed. Lock
// should be held.
func (b *NATS) roomLocked() bool {
	if b.cfg.MaxWatches < 0 || len(b.watches) < b.cfg.MaxWatches {
		return true
	}
	for _, w := range b.watches {
		if w.refs == 0 {
			if w.linger != nil {
				w.linger.Stop()
				w.linger = nil
			}
			b.dropLocked(w)
			return true
		}
	}
	return false
}

// timeout lets a waiter proceed with what the node has.
func (b *NATS) timeout(w *watch, wt *waiter) {
	b.mu.Lock()
	for i, x := range w.waiters {
		if x == wt {
			w.waiters = append(w.waiters[:i], w.waiters[i+1:]...)
			break
		}
	}
	b.mu.Unlock()
	b.cfg.Log.Warn("broker: subscription proceeds before the channel is current", "channel", w.channel, "waited", b.cfg.WarmTimeout)
	wt.fire()
}

// Release uncounts a local subscriber of channel; the last one leaves the
// watch running for Linger before it stops.
func (b *NATS) Release(channel string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	w := b.watches[channel]
	if w == nil || w.refs == 0 {
		return
	}
	w.refs--
	if w.refs > 0 {
		return
	}
	if b.cfg.Linger < 0 {
		b.dropLocked(w)
		return
	}
	w.linger = time.AfterFunc(b.cfg.Linger, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if w.refs == 0 && b.watches[w.channel] == w {
			b.dropLocked(w)
		}
	})
}

// dropLocked forgets w and stops it. Lock should be held.
func (b *NATS) dropLocked(w *watch) {
	delete(b.watches, w.channel)
	w.stop()
	b.h.Unreserve(w.channel)
	for _, wt := range w.waiters {
		go wt.fire()
	}
	w.waiters = nil
}

// newWatch registers a watch of channel and starts it. It holds the
// channel in the hub (ReserveTrusted) until dropLocked, so that the
// position the watch applies outlives the channel's last local subscriber
// while the watch lingers. Lock should be held.
func (b *NATS) newWatch(channel string) *watch {
	channel = strings.Clone(channel)
	_ = b.h.ReserveTrusted(channel) // fails only for an invalid name, which nobody subscribes to
	w := &watch{channel: channel, subject: subjectFor(b.cfg.SubjectPrefix, channel)}
	w.ctx, w.cancel = context.WithCancel(b.ctx)
	b.watches[channel] = w
	go b.run(w)
	return w
}

// run starts w's consumer, retrying until it runs or w stops, and stops
// the consumer when w stops. Its own goroutine.
func (b *NATS) run(w *watch) {
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		err := b.start(w)
		if err == nil {
			break
		}
		if w.ctx.Err() != nil {
			return
		}
		b.cfg.Log.Warn("broker: cannot watch channel yet", "channel", w.channel, "err", err)
		select {
		case <-w.ctx.Done():
			return
		case <-time.After(wait):
		}
	}
	<-w.ctx.Done()
	b.mu.Lock()
	cc := w.cc
	b.mu.Unlock()
	if cc != nil {
		cc.Stop()
	}
}

// start finds where the channel ends now (the target of warming up),
// writing an epoch marker into an empty channel, then starts an ordered
// consumer replaying the channel's subject from its first message.
func (b *NATS) start(w *watch) error {
	sp := b.stream.Load()
	if sp == nil {
		return errors.New("stream not available")
	}
	ctx, cancel := context.WithTimeout(w.ctx, 5*time.Second)
	defer cancel()
	last, err := b.lastOf(ctx, *sp, w.subject)
	if err != nil {
		return fmt.Errorf("reading the last message: %w", err)
	}
	if last.seq == 0 {
		if last, err = b.mark(ctx, *sp, w.subject); err != nil {
			return fmt.Errorf("starting an epoch: %w", err)
		}
	}
	b.mu.Lock()
	w.target, w.started = last.seq, true
	b.mu.Unlock()
	cons, err := (*sp).OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{w.subject},
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { b.apply(w, m) },
		jetstream.PullExpiry(5*time.Second),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if w.ctx.Err() == nil {
				b.cfg.Log.Debug("broker: consumer", "channel", w.channel, "err", err)
			}
		}))
	if err != nil {
		return fmt.Errorf("consume: %w", err)
	}
	b.mu.Lock()
	w.cc = cc
	b.mu.Unlock()
	if w.ctx.Err() != nil {
		cc.Stop()
	}
	return nil
}

// mark writes the epoch marker of an empty subject (offset 0, a fresh
// epoch), unless someone else wrote to it first, and returns the
// subject's last message afterwards.
func (b *NATS) mark(ctx context.Context, s jetstream.Stream, subj string) (tip, error) {
	pos := hub.Position{Epoch: newEpoch()}
	msg := &nats.Msg{Subject: subj, Header: nats.Header{}}
	msg.Header.Set(HeaderOffset, "0")
	msg.Header.Set(HeaderEpoch, pos.Epoch)
	ack, err := b.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(0))
	if isWrongLastSeq(err) {
		return b.lastOf(ctx, s, subj)
	}
	if err != nil {
		return tip{}, err
	}
	return tip{seq: ack.Sequence, pos: pos}, nil
}

// apply hands one replayed or live message to the hub and lets the
// subscriptions it satisfies proceed. It runs on the consumer's goroutine,
// in stream order.
func (b *NATS) apply(w *watch, m jetstream.Msg) {
	meta, err := m.Metadata()
	if err != nil {
		return
	}
	pos, ok := parsePosition(m.Headers())
	if !ok {
		b.cfg.Log.Warn("broker: message without a herald position ignored", "subject", m.Subject(), "seq", meta.Sequence.Stream)
		return
	}
	ttl := b.h.HistoryTTL(w.channel)
	expired := ttl > 0 && time.Since(meta.Timestamp) > ttl
	switch {
	case pos.Offset == 0 || expired:
		// A marker, or a message too old for history: only the position.
		err = b.h.Align(w.channel, pos)
	default:
		_, err = b.h.PublishStored(w.channel, pos.Offset, pos.Epoch, m.Data(), meta.Timestamp)
	}
	if err != nil && !errors.Is(err, hub.ErrStale) {
		b.cfg.Log.Warn("broker: message not applied", "channel", w.channel, "offset", pos.Offset, "err", err)
	}
	t := tip{seq: meta.Sequence.Stream, pos: pos}
	var fire []*waiter
	b.mu.Lock()
	w.applied = t
	b.noteTipLocked(w.channel, t)
	if !w.warm && w.started && t.seq >= w.target {
		w.warm = true
	}
	if w.warm && len(w.waiters) > 0 {
		kept := w.waiters[:0]
		for _, wt := range w.waiters {
			if w.satisfies(wt.since) {
				fire = append(fire, wt)
			} else {
				kept = append(kept, wt)
			}
		}
		clear(w.waiters[len(kept):])
		w.waiters = kept
	}
	b.mu.Unlock()
	for _, wt := range fire {
		wt.fire()
	}
}

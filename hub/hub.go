package hub

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Config's zero fields.
const (
	DefaultHistorySize     = 100
	DefaultHistoryTTL      = 5 * time.Minute
	DefaultMaxHistoryBytes = 256 << 20
	DefaultMaxPayload      = 256 << 10
	// DefaultHistoryChannelBytes is the default of
	// Config.HistoryChannelBytes.
	DefaultHistoryChannelBytes = 4 << 20
	// DefaultMaxChannels is the default of Config.MaxChannels.
	DefaultMaxChannels = 1_000_000
)

// Config configures a Hub. The zero value is valid: every zero field takes
// its default.
type Config struct {
	// HistorySize is how many messages each channel keeps for recovery:
	// 0 means DefaultHistorySize (100), a negative value keeps none (a
	// client then recovers only when it missed nothing).
	HistorySize int
	// HistoryTTL is the age past which a message leaves history: 0 means
	// DefaultHistoryTTL (5 minutes), a negative value sets no age limit.
	HistoryTTL time.Duration
	// MaxHistoryBytes caps the memory held by the history of all channels
	// together, counting what each message holds (the bytes of the frames
	// the Encoder built, or the payload without one) plus a fixed
	// overhead: 0 means DefaultMaxHistoryBytes (256 MiB), a negative value
	// sets no cap (then only HistorySize, HistoryChannelBytes and
	// HistoryTTL bound it). Past the cap the channel holding the most
	// bytes loses its oldest messages until the total fits (see
	// budget.go), and a client that missed them is told recovered=false.
	MaxHistoryBytes int64
	// HistoryChannelBytes caps one channel's history, counted like
	// MaxHistoryBytes: a publish past it drops that channel's oldest
	// messages (never another channel's), keeping at least the newest. 0
	// means DefaultHistoryChannelBytes (4 MiB), a negative value sets no
	// cap.
	HistoryChannelBytes int64
	// MaxPayload is the largest payload Publish accepts: 0 or less means
	// DefaultMaxPayload (256 KiB).
	MaxPayload int
	// Encoder, when set, builds each message's wire frames once per
	// publish (Message.Frames) and may refuse payloads it cannot deliver
	// (see Encoder); the push protocol supplies one. Nil: messages carry
	// no frames.
	Encoder Encoder
	// MaxChannels caps the channels that clients create (Subscribe,
	// PublishClient and Reserve to a channel the hub does not know): past
	// it, those fail with ErrChannelLimit. Channels the backend creates
	// (Publish, PublishAt, Align, SubscribeTrusted, ReserveTrusted: the
	// API, the broker, a user's personal channel) are not counted and
	// never refused: they are bounded where they come from. 0 means
	// DefaultMaxChannels (one million), a negative value sets no cap.
	MaxChannels int
	// Now tells the time, for message timestamps and history ages; nil
	// means time.Now. Tests set it to move time by hand.
	Now func() time.Time
	// ObserveFanout, when set, is told how long each loop took to walk one
	// batch of messages (a metric's histogram). It runs on the loop
	// goroutine and must not block.
	ObserveFanout func(time.Duration)
	// Options, when set, gives a channel's own settings (a namespace's
	// history, recovery and payload limit) from its name, or refuses the
	// name: Publish, Subscribe and the other calls that would create the
	// channel then fail with the error it returned, as it is (it is to
	// name the channel; the hub adds nothing that would say it twice). The
	// hub asks once when it creates a channel, and on each publish for
	// the payload limit, so it must be cheap, must not allocate on
	// success and must always answer the same for one name. Nil: every
	// channel takes Config's values.
	Options func(channel string) (ChannelOptions, error)
}

// withDefaults returns cfg with its zero fields set to their defaults.
func (cfg Config) withDefaults() Config {
	if cfg.HistorySize == 0 {
		cfg.HistorySize = DefaultHistorySize
	}
	if cfg.HistoryTTL == 0 {
		cfg.HistoryTTL = DefaultHistoryTTL
	}
	if cfg.MaxHistoryBytes == 0 {
		cfg.MaxHistoryBytes = DefaultMaxHistoryBytes
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = DefaultMaxPayload
	}
	if cfg.HistoryChannelBytes == 0 {
		cfg.HistoryChannelBytes = DefaultHistoryChannelBytes
	}
	if cfg.MaxChannels == 0 {
		cfg.MaxChannels = DefaultMaxChannels
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg
}

// Hub routes published messages to the subscribers of their channel. It
// owns the channels, their offsets, epochs and history, and each event
// loop's share of the subscriptions. Publish, PublishAt, Channels, Info,
// Stats and Sweep are safe for concurrent use; Subscribe and Unsubscribe
// must be called on the goroutine of the loop they name.
type Hub struct {
	cfg Config

	mu    sync.RWMutex // guards chans, all, clients, opts and the channels' registry fields
	chans map[string]*channel
	// opts holds one copy of each distinct channel options value
	// (Config.Options, resolved), shared by the channels that have it;
	// defOpts is Config's own.
	opts    map[chanOpts]*chanOpts
	defOpts *chanOpts
	// all lists the channels of chans (channel.idx is each one's place),
	// so that Sweep can walk them in batches, letting go of mu between.
	all []*channel
	// clients counts the channels of chans that clients created
	// (channel.client), which Config.MaxChannels caps.
	clients int
	// sweepPaused, when set (tests), runs between two batches of Sweep,
	// with no lock held.
	sweepPaused func()

	loopsMu sync.Mutex                   // serialises growth of loops
	loops   atomic.Pointer[[]*loopState] // indexed by Loop.Index; copied on growth

	budget   budget
	evicting atomic.Bool

	channelLimited atomic.Uint64 // client channel creations refused by MaxChannels
	tooLarge       atomic.Uint64 // publishes refused by MaxPayload or the Encoder (ErrTooLarge)
	evictedChannel atomic.Uint64 // messages trimmed by HistoryChannelBytes
	evictedNode    atomic.Uint64 // messages evicted by MaxHistoryBytes
	published      atomic.Uint64
	deliveries     atomic.Uint64
	dropped        atomic.Uint64
	histBytes      atomic.Int64
	histMsgs       atomic.Int64
	lastFanout     atomic.Int64
}

// New returns a Hub configured by cfg. A Hub needs no goroutine of its
// own; call Sweep now and then to expire history and forget the channels
// whose history expired.
func New(cfg Config) *Hub {
	h := &Hub{cfg: cfg.withDefaults(), chans: make(map[string]*channel), opts: make(map[chanOpts]*chanOpts)}
	def := h.cfg.resolve(ChannelOptions{})
	h.defOpts = &def
	h.loops.Store(new([]*loopState))
	return h
}

// Publish gives data the next offset of channel, stores it in the
// channel's history, has the Encoder encode its frames once and hands the message to each
// event loop that has subscribers of the channel, once per loop. It copies
// data, never blocks on subscribers, and is safe for concurrent use. It
// fails, with an error wrapping ErrInvalidChannel or ErrTooLarge, when the
// channel name is invalid, data is larger than Config.MaxPayload or the
// Encoder refuses it (its frames would not fit a subscriber's output
// budget). Publish is the backend's: a new channel it creates is not
// counted against Config.MaxChannels, and it is never refused for the
// cap; a client's publish goes through PublishClient.
func (h *Hub) Publish(channel string, data []byte) (*Message, error) {
	return h.publish(channel, data, nil, false, time.Time{})
}

// PublishClient is Publish for a client's message: a channel it creates
// counts against Config.MaxChannels, and past the cap it fails with an
// error wrapping ErrChannelLimit (counted in Stats.ChannelLimited) when
// the channel is new.
func (h *Hub) PublishClient(channel string, data []byte) (*Message, error) {
	return h.publish(channel, data, nil, true, time.Time{})
}

// PublishAt is Publish for a message sequenced elsewhere: the broker of a
// multi-node deployment assigns offsets and epochs once for every node and
// calls PublishAt on each node with what it assigned. The message is stored
// and delivered locally as by Publish, at the given position:
//   - an epoch other than the channel's replaces it, and drops the
//     channel's history (which belonged to the old epoch);
//   - an offset the channel already has in that epoch is a duplicate:
//     PublishAt returns an error wrapping ErrStale and does nothing;
//   - an offset beyond the next one leaves a gap; history restarts at the
//     message, so nobody recovers across the gap.
//
// Subscribers receive the message whatever its offset, so after a gap or an
// epoch change they see offsets jump. Safe for concurrent use; calls for
// one channel must come in the broker's order.
func (h *Hub) PublishAt(channel string, offset uint64, epoch string, data []byte) (*Message, error) {
	if offset == 0 || epoch == "" {
		return nil, fmt.Errorf("hub: publish to %q at %d/%q: %w", channel, offset, epoch, ErrBadPosition)
	}
	return h.PublishStored(channel, offset, epoch, data, time.Time{})
}

// PublishStored is PublishAt for a message whose time is known (when the
// broker stored it): Message.Time is at rather than the hub's clock, and
// the history's age limit counts from it. A zero at means now.
func (h *Hub) PublishStored(channel string, offset uint64, epoch string, data []byte, at time.Time) (*Message, error) {
	if offset == 0 || epoch == "" {
		return nil, fmt.Errorf("hub: publish to %q at %d/%q: %w", channel, offset, epoch, ErrBadPosition)
	}
	return h.publish(channel, data, &Position{Offset: offset, Epoch: epoch}, false, at)
}

// publish implements Publish (at == nil: the next offset in the channel's
// own epoch), PublishClient (client: the channel counts against the cap)
// and PublishAt (stored: the message's time when known). It splits into sequencing and storing, under the
// channel's lock, and local delivery: posting to loops' mailboxes happens
// under the lock too, so each mailbox receives a channel's messages in
// order, but the wakeups happen after it is released.
func (h *Hub) publish(name string, data []byte, at *Position, client bool, stored time.Time) (*Message, error) {
	note, err := h.check(name, data)
	if err != nil {
		return nil, err
	}

	var wakeBuf [16]*loopState
	wake := wakeBuf[:0]
	var m *Message
	for {
		c, err := h.channel(name, client)
		if err != nil {
			return nil, inContext(err, "publish to", name)
		}
		c.mu.Lock()
		if c.gone {
			c.mu.Unlock()
			continue
		}
		if at != nil {
			if err := h.position(c, *at); err != nil {
				c.mu.Unlock()
				return nil, err
			}
		}
		c.offset++
		c.seq++
		now := h.cfg.Now()
		when := now
		if !stored.IsZero() && stored.Before(now) {
			when = stored
		}
		m = newMessage(c, name, c.offset, c.epoch, data, h.cfg.Encoder, note, when)
		m.seq = c.seq
		h.freed(c.expire(now, c.opts.ttl))
		if c.opts.size > 0 {
			h.histBytes.Add(m.size)
			h.histMsgs.Add(1)
			h.freed(c.store(m, c.opts.size))
			if limit := c.opts.bytes; limit > 0 && c.histBytes() > limit {
				bytes, n := c.trimTo(limit)
				h.evictedChannel.Add(uint64(n))
				h.freed(bytes, n)
			}
		} else {
			c.setFirst()
		}
		h.rebudget(c)
		loops := *h.loops.Load()
		if c.homeSubs > 0 {
			if home := loops[c.home.Load()-1]; home.post(m) {
				wake = append(wake, home)
			}
		}
		for idx, n := range c.loopSubs {
			if n > 0 && loops[idx].post(m) {
				wake = append(wake, loops[idx])
			}
		}
		c.mu.Unlock()
		break
	}
	for i, ls := range wake {
		ls.wake()
		wake[i] = nil
	}
	h.published.Add(1)
	if h.cfg.MaxHistoryBytes > 0 && h.histBytes.Load() > h.cfg.MaxHistoryBytes {
		h.evict()
	}
	return m, nil
}

// position moves c to at, for PublishAt: it switches epoch or leaves a gap
// as needed so that c.offset+1 == at.Offset afterwards. Lock should be held.
func (h *Hub) position(c *channel, at Position) error {
	switch {
	case at.Epoch != c.epoch:
		h.freed(c.clear())
		h.rebudget(c)
		c.epoch = at.Epoch
	case at.Offset <= c.offset:
		return fmt.Errorf("hub: publish to %q at %d/%q (channel at %d): %w", c.name, at.Offset, at.Epoch, c.offset, ErrStale)
	case at.Offset > c.offset+1:
		h.freed(c.clear())
		h.rebudget(c)
	}
	c.offset = at.Offset - 1
	return nil
}

// freed accounts for history a channel dropped.
func (h *Hub) freed(bytes int64, msgs int) {
	if msgs > 0 {
		h.histBytes.Add(-bytes)
		h.histMsgs.Add(-int64(msgs))
	}
}

// rebudget tells the history budget what c holds now, after a change of
// its history. c's lock should be held.
func (h *Hub) rebudget(c *channel) {
	if p := c.past; h.cfg.MaxHistoryBytes > 0 && p != nil && p.budgeted != p.bytes {
		p.budgeted = p.bytes
		h.budget.update(c, p.bytes)
	}
}

// Subscribe registers sub for channel on loop l, creating the channel if
// needed, and returns the channel's position: its last offset (0 before the
// first message) and epoch. Every message published after that position is
// delivered to sub, exactly once and in order, by sub.Deliver on l's
// goroutine; that includes messages already queued to l but not yet
// walked, which are filtered so nothing is repeated or skipped.
//
// With since != nil, Subscribe also returns the messages published after
// since that history still holds, oldest first, and recovered=true, when
// since.Epoch is the channel's epoch and history holds every message from
// since.Offset+1 to the position (so since equal to the position recovers
// with an empty backlog). Otherwise it returns no backlog and
// recovered=false, and the client must refetch its state by other means.
// The caller writes the backlog before any live delivery, by writing it in
// the same loop callback as the Subscribe: live messages come in later
// callbacks. The backlog is shared with the channel's other recoveries
// (one flat copy of history serves them all): the caller must not write
// to it.
//
// Subscribe must be called on l's goroutine. channel should be valid
// (ValidChannel); an invalid one is subscribed to but never published to.
// Subscribing a pair that is already subscribed changes nothing and returns
// the position with no backlog and recovered=false. Subscribe is a
// client's: it fails, subscribing nothing, with an error wrapping
// ErrChannelLimit when the channel is new and clients already created
// Config.MaxChannels channels (counted in Stats.ChannelLimited).
func (h *Hub) Subscribe(l Loop, channel string, sub Subscriber, since *Position) (pos Position, backlog []*Message, recovered bool, err error) {
	_, pos, backlog, recovered, err = h.subscribe(l, channel, sub, since, true, false)
	return pos, backlog, recovered, err
}

// SubscribeTrusted is Subscribe for a subscription the backend vouches
// for, such as a user's personal channel named by a signed token: a
// channel it creates is not counted against Config.MaxChannels, and it is
// never refused for the cap.
func (h *Hub) SubscribeTrusted(l Loop, channel string, sub Subscriber, since *Position) (pos Position, backlog []*Message, recovered bool, err error) {
	_, pos, backlog, recovered, err = h.subscribe(l, channel, sub, since, false, false)
	return pos, backlog, recovered, err
}

// SubscribeNew is Subscribe, or with trusted SubscribeTrusted, for a pair
// the caller knows is not subscribed, because it keeps its own record of
// its subscriptions (push's sessions do): it does not look for an existing
// subscription, which on a channel of many subscribers on the loop is a
// lookup in their index, in every handshake of a storm. A pair subscribed
// twice this way would get every message twice; race builds check. It
// also returns name, the hub's own copy of channel's name, which the
// caller may keep instead of a copy of its own: channel may be a view of
// the caller's input, valid only for the call.
func (h *Hub) SubscribeNew(l Loop, channel string, sub Subscriber, since *Position, trusted bool) (name string, pos Position, backlog []*Message, recovered bool, err error) {
	return h.subscribe(l, channel, sub, since, !trusted, true)
}

// subscribe implements the Subscribe methods: client counts a channel it
// creates against the cap (Subscribe), fresh skips the look for an
// existing subscription (SubscribeNew).
func (h *Hub) subscribe(l Loop, channel string, sub Subscriber, since *Position, client, fresh bool) (name string, pos Position, backlog []*Message, recovered bool, err error) {
	mustBePointer(sub)
	ls := h.loopState(l)
	for {
		c, err := h.channel(channel, client)
		if err != nil {
			return "", Position{}, nil, false, inContext(err, "subscribe to", channel)
		}
		list := ls.list(c)
		already := false
		if !fresh || checkFresh {
			already = list != nil && list.find(sub) >= 0
			if fresh && already {
				panic(fmt.Sprintf("hub: SubscribeNew of a pair already subscribed to %q", channel))
			}
		}
		c.mu.Lock()
		if c.gone {
			c.mu.Unlock()
			continue
		}
		if c.histLen() > 0 { // the clock only for a history to expire
			h.freed(c.expire(h.cfg.Now(), c.opts.ttl))
		}
		h.rebudget(c)
		pos = Position{Offset: c.offset, Epoch: c.epoch}
		if already {
			c.mu.Unlock()
			return c.name, pos, nil, false, nil
		}
		if since != nil && c.opts.recovery {
			backlog, recovered = c.recover(*since)
		}
		c.addSub(l.Index())
		after := c.seq
		c.mu.Unlock()
		ls.add(list, c, sub, after)
		ls.subscriptions.Add(1)
		return c.name, pos, backlog, recovered, nil
	}
}

// Unsubscribe ends sub's subscription to channel on loop l: once it
// returns, sub gets no more of the channel's messages. It must be called on
// l's goroutine (from Deliver too); a pair that is not subscribed is a
// no-op. When sub was the channel's last subscriber and the channel holds
// no history and no reservation, the hub forgets it at once (as Sweep
// would later): a channel subscribed to again afterwards starts a new
// epoch, so a subscriber with since gets recovered=false.
func (h *Hub) Unsubscribe(l Loop, channel string, sub Subscriber) {
	loops := *h.loops.Load()
	idx := l.Index()
	if idx >= len(loops) || loops[idx] == nil {
		return
	}
	h.mu.RLock()
	c := h.chans[channel]
	h.mu.RUnlock()
	if c == nil || !loops[idx].remove(c, sub) {
		return
	}
	c.mu.Lock()
	c.removeSub(idx)
	idle := c.idle()
	c.mu.Unlock()
	loops[idx].subscriptions.Add(-1)
	if idle {
		h.forgetIdle(c)
	}
}

// LoopSubscribers returns the subscribers of channel on loop l, a copy the
// caller may keep (unsubscribing them as it goes: DisconnectUser closes
// the connections of a user's personal channel). It must be called on l's
// goroutine.
func (h *Hub) LoopSubscribers(l Loop, channel string) []Subscriber {
	loops := *h.loops.Load()
	idx := l.Index()
	if idx >= len(loops) || loops[idx] == nil {
		return nil
	}
	h.mu.RLock()
	c := h.chans[channel]
	h.mu.RUnlock()
	if c == nil {
		return nil
	}
	if s := loops[idx].list(c); s != nil {
		return s.subscribers()
	}
	return nil
}

// forgetIdle forgets c if it is still known and idle (channel.idle).
func (h *Hub) forgetIdle(c *channel) {
	h.mu.Lock()
	c.mu.Lock()
	if !c.gone && c.idle() {
		h.remove(c)
	}
	c.mu.Unlock()
	h.mu.Unlock()
}

// remove forgets c: it marks it gone and takes it out of the registry.
// h.mu and c's lock should be held, and c known.
func (h *Hub) remove(c *channel) {
	c.forget()
	delete(h.chans, c.name)
	last := len(h.all) - 1
	if i := int(c.idx); i != last {
		h.all[i] = h.all[last]
		h.all[i].idx = int32(i)
	}
	h.all[last] = nil
	h.all = h.all[:last]
	if c.client {
		h.clients--
	}
}

// channel returns the channel called name, creating it when missing. A
// channel a client creates (client) counts against Config.MaxChannels: it
// fails with ErrChannelLimit (counted) when the channel is missing and
// clients created Config.MaxChannels already. The result may be gone by
// the time the caller locks it; callers check.
func (h *Hub) channel(name string, client bool) (*channel, error) {
	h.mu.RLock()
	c := h.chans[name]
	h.mu.RUnlock()
	if c != nil {
		return c, nil
	}
	opts, err := h.options(name)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if c = h.chans[name]; c == nil {
		if client && h.cfg.MaxChannels > 0 && h.clients >= h.cfg.MaxChannels {
			h.channelLimited.Add(1)
			return nil, fmt.Errorf("%d client channels: %w", h.clients, ErrChannelLimit)
		}
		// The caller's name may be a view of its input (an upgrade
		// request, a command): the table keys by the channel's copy.
		c = newChannel(name, opts)
		name = c.name
		c.client, c.idx = client, int32(len(h.all))
		h.chans[name] = c
		h.all = append(h.all, c)
		if client {
			h.clients++
		}
	}
	return c, nil
}

// loopState returns l's state, creating it on l's first subscription. It
// panics when another Loop already holds l's index: indexes must be unique
// per Hub.
func (h *Hub) loopState(l Loop) *loopState {
	idx := l.Index()
	if idx < 0 {
		panic(fmt.Sprintf("hub: loop index %d is negative", idx))
	}
	if loops := *h.loops.Load(); idx < len(loops) && loops[idx] != nil {
		if loops[idx].loop != l {
			panic(fmt.Sprintf("hub: two loops share index %d", idx))
		}
		return loops[idx]
	}
	h.loopsMu.Lock()
	defer h.loopsMu.Unlock()
	old := *h.loops.Load()
	if idx < len(old) && old[idx] != nil {
		if old[idx].loop != l {
			panic(fmt.Sprintf("hub: two loops share index %d", idx))
		}
		return old[idx]
	}
	grown := make([]*loopState, max(len(old), idx+1))
	copy(grown, old)
	grown[idx] = newLoopState(h, l)
	h.loops.Store(&grown)
	return grown[idx]
}

// Package hub routes published messages to subscribers: it owns channels,
// their offsets and epochs, a bounded history per channel for recovery, and
// the fan-out to event loops. It knows nothing of the wire format: an
// Encoder (Config.Encoder; the client protocol's push.Encoder) builds each
// message's frames, and the hub carries them opaquely in Message.Frames.
//
// Where to start: New a Hub; the protocol calls Subscribe and Unsubscribe
// from its connections' event loops with a Subscriber per connection, and
// the HTTP API and clients allowed to publish call Publish. The broker of a
// multi-node deployment calls PublishAt with positions it assigned. Sweep,
// called now and then, expires history and forgets idle channels.
//
// # The way of a message
//
// Publish checks the message (its name, Config.MaxPayload and the
// Encoder's Check, outside any lock), gives it the channel's next offset,
// has the Encoder build its frames once (Message.Frames) and stores it in
// the channel's history, whose byte caps charge the bytes the Encoder
// reports (the payload without one) plus a fixed overhead. It then appends
// the message to the mailbox of each event loop that has subscribers of
// the channel (once per loop, not per subscriber) and wakes the loop only when its mailbox was empty, so a burst
// costs one wakeup. The loop swaps its mailbox out and, for each message,
// walks its own subscribers of the channel calling Deliver with the shared
// message: no allocation and no handoff between goroutines per subscriber.
// Because a poller loop flushes each connection's writes once per callback,
// the messages of a burst reach a connection in one write.
//
// # Offsets, epochs and recovery
//
// Offsets count a channel's messages from 1, with no gaps. The epoch, a
// random string minted when a channel is created, names one unbroken
// history: when the hub forgets a channel (no subscribers, no history, no
// reservation) and later re-creates it, the new channel has a new epoch, so
// a client holding an old position learns its history is gone. The hub
// forgets such a channel as soon as its last subscriber leaves (or its last
// reservation is given back), not at the next Sweep, so clients that come
// and go leave nothing behind; a later subscriber with since on it gets
// recovered=false, exactly as after a Sweep.
//
// # The channel cap
//
// Config.MaxChannels counts only the channels clients create (Subscribe,
// PublishClient, Reserve). The backend's (Publish, PublishAt, Align,
// SubscribeTrusted for a user's personal channel, ReserveTrusted for a
// broker's watch) are never counted nor refused: they are bounded where
// they come from. Sweep walks the channels in batches, letting go of the
// registry lock between them, so publishes are not held up by a sweep over
// a million channels. A client that reconnects
// passes its last Position to Subscribe and gets exactly the messages it
// missed, or recovered=false when history no longer holds them all (too
// old, evicted by the byte budget, or another epoch).
//
// # Per-channel options
//
// Config.Options, when set, gives each channel settings of its own from
// its name (herald's namespaces): history size, age and bytes, the
// payload limit, recovery off; or refuses the name, and every call that
// would create the channel fails with its error. The hub asks once when it
// creates a channel and keeps one shared copy per distinct value (a
// channel holds a pointer), and asks again on each publish for the
// payload limit, so the hook must be cheap. Sweep and every read expire a
// channel by its own TTL; Config.MaxHistoryBytes stays one cap for all.
//
// # Concurrency
//
// A Message is immutable once Publish returns it and may be kept as long
// as anyone likes (history holds it until evicted). Publish, PublishAt,
// Channels, Info, Stats and Sweep are safe for concurrent use. Subscribe and Unsubscribe run on the goroutine of the
// loop they name, which owns that loop's subscriptions; Deliver runs there
// too. Locks, always taken in this order (a lock is never held while
// taking one listed before it):
//
//  1. Hub.mu (the channel registry), read-locked on lookups
//  2. channel.mu (offset, epoch, history, per-loop subscriber counts)
//  3. loopState.mu (a loop's mailbox) or budget.mu (the history budget
//     queue), never both
//
// Hub.loopsMu only serialises adding a loop and is taken alone. Loop.Run
// and Deliver are never called with a lock held; Encoder.Check runs with
// none, Encoder.Encode with channel.mu alone.
package hub

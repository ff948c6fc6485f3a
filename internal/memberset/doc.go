// Package memberset keeps the member set of presence channels, for both
// client protocols that have them (herald's own, package push, and the
// Pusher protocol, package pusher): who is in each channel, one member
// per user id however many connections it has on whatever nodes, counted
// from this node's connections and the other nodes' entries in the
// cluster's roster, with the leave delay and the per-channel member cap.
//
// Where to start: New a Set with the protocol's Events; the protocol
// calls Join and Leave from its connections' event loops as their
// subscriptions to presence channels begin and end, and Remote with the
// roster's changes of the other nodes. The Set tells the protocol, through
// Events, when a user becomes a member of a channel and when a member
// leaves it; what the protocol then tells its clients (the frames, a
// cached member list, webhooks) is its own.
//
// # Members
//
// A member is in its channel while it has a connection here (a
// subscriber joined with its user id) or an entry of another node, and
// for the leave delay after it had neither: a reload, or a reconnection
// that lands on another node, within it is no leave. A subscriber joined
// without a user id (an anonymous client) is told of members but is none.
// The first connection of a user on this node writes its roster entry,
// the last one's leave removes it.
//
// # Bounds
//
// A channel takes at most the limit of members that Join is given; a new
// user past it is refused with ErrFull, nothing changed. Members that come
// through the roster are not refused (their own node admitted them), so
// a channel may hold more than the limit only while nodes disagree. A
// channel is forgotten once it has no member and no subscriber.
//
// # Locking
//
// A Set is safe for concurrent use: the event loops, the API's readers,
// the roster's goroutine and the leave timers meet under one mutex. The
// Events methods, the Roster's methods and the View and data callbacks
// run with it held: they must not block, and must not call the Set. A
// protocol hands what it has to write to its loops (Loop.Run) from there,
// which keeps the events of one channel in the order the Set decided
// them. The Channel and Member values they are given, and the Data they
// carry, may be touched only under the lock.
package memberset

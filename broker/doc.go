// Package broker carries publishes between herald nodes. A Broker
// sequences each publish (gives it the channel's offset and epoch) and
// makes it reach the hub of every node that has subscribers of the
// channel; it also tells the push app when a node's copy of a channel is
// current enough for a subscription to begin (push.Interest).
//
// Where to start: NewMemory for one node (the default: the hub sequences
// its own messages and nothing else runs), New for a deployment given a
// URL ("memory" or nats://HOST:PORT), NewNATS for the multi-node broker.
//
// # The NATS broker
//
// Every channel is one subject of one JetStream stream (subjects
// herald.ch.<channel>, bounded per subject by count and by age). A publish
// reads the channel's last message, then stores the next one with its
// offset and epoch in headers and Nats-Expected-Last-Subject-Sequence set
// to the last message's stream sequence: JetStream refuses it if another
// node published in between, and the publisher retries. Offsets are thus
// gapless per channel and the same on every node. A node that has local
// subscribers of a channel watches its subject with an ordered consumer,
// which first replays the retained history and then follows live
// messages, and hands each to Hub.PublishAt; a node with no subscribers
// of a channel does not receive it. The epoch of a channel is minted by
// whoever writes its first message, or an empty marker message when a
// node watches an empty channel, and is carried by every message after.
// docs/architecture.md, "Scale-out", explains why this is sound.
//
// # What a node spends per channel
//
// A watch costs one ordered consumer and one goroutine per channel, never
// per subscription: any number of local subscribers of a channel share
// one. Watches are thus bounded by the channels a node's clients may
// subscribe to: the push app caps subscriptions per connection and
// reserves each channel in the hub (capped by the hub's channel limit)
// before it acquires a watch, and NATSConfig.MaxWatches (default: the
// hub's channel cap) is the hard backstop. A watch whose last subscriber
// left lingers (NATSConfig.Linger) and is the first dropped at the cap.
//
// # Concurrency
//
// A Broker's methods are safe for concurrent use. Acquire and Release run
// on event loops and never block; Publish blocks until the message is
// stored (or refused).
package broker

package herald

import (
	"github.com/herald-push/herald/api"
	"github.com/herald-push/herald/auth"
	"github.com/herald-push/herald/broker"
	"github.com/herald-push/herald/hook"
	"github.com/herald-push/herald/hub"
	"github.com/herald-push/herald/push"
	"github.com/herald-push/herald/pusher"
	"github.com/herald-push/herald/server"
)

// Stats is one snapshot of a node: each package's own snapshot, side by
// side. It is what GET /api/stats returns and what /metrics is computed
// from (metrics.go maps it to Prometheus, once), so the two never
// disagree. A plain value: keep it, compare two of them, encode it.
type Stats struct {
	// Server is the WebSocket transport: connections, handshakes, limits
	// at accept, inbound memory, the closes it decided, compression, TLS.
	Server server.Stats `json:"server"`
	// Push is the client protocol: commands, slow consumers, kicks,
	// subscription and command-rate limits, paged recoveries.
	Push push.Stats `json:"push"`
	// Hub is routing and history: channels, subscriptions, publishes,
	// deliveries, history size and evictions.
	Hub hub.Stats `json:"hub"`
	// Broker is set with the NATS broker only.
	Broker *broker.Stats `json:"broker,omitempty"`
	// API counts the API requests refused.
	API api.Refusals `json:"api_refused"`
	// WorkerQueue is the number of tasks waiting for the worker pool.
	WorkerQueue int `json:"worker_queue"`
	// IdempotentDuplicates counts publishes answered as duplicates of an
	// earlier one with the same idempotency_key (cumulative).
	IdempotentDuplicates uint64 `json:"idempotent_duplicates"`
	// Pusher is set when the node serves Pusher apps.
	Pusher *pusher.Stats `json:"pusher,omitempty"`
	// UnknownNamespace counts the subscriptions, publishes and history
	// reads refused because the channel's prefix names no configured
	// namespace (cumulative).
	UnknownNamespace uint64 `json:"unknown_namespace"`
	// Hooks has an entry per configured backend hook (docs/hooks.md).
	Hooks map[hook.Event]hook.Stats `json:"hooks,omitempty"`
	// TokenCache is the cache of verified tokens (--jwt-cache-size).
	TokenCache auth.CacheStats `json:"token_cache"`
	// PusherCluster is set when Pusher apps run on several nodes (NATS):
	// the Pusher hub's broker and the presence roster.
	PusherCluster *PusherClusterStats `json:"pusher_cluster,omitempty"`
}

// PusherClusterStats are the counters of the Pusher apps' cluster side.
type PusherClusterStats struct {
	Broker broker.Stats       `json:"broker"`
	Roster broker.RosterStats `json:"roster"`
}

// Stats takes a snapshot of the node's counters and gauges. Safe from any
// goroutine.
func (n *Node) Stats() Stats {
	st := Stats{
		Server:      n.srv.Stats(),
		Push:        n.push.Stats(),
		Hub:         n.hub.Stats(),
		API:         n.apiStats.Snapshot(),
		WorkerQueue: n.workers.QueueDepth(),

		IdempotentDuplicates: n.dedup.Duplicates(),
		UnknownNamespace:     n.ns.Unknown(),
		Hooks:                n.hooks.Stats(),
	}
	if n.verifier != nil {
		st.TokenCache = n.verifier.CacheStats()
	}
	if n.pusher != nil {
		ps := n.pusher.Stats()
		st.Pusher = &ps
	}
	if nb, ok := n.broker.(*broker.NATS); ok {
		bs := nb.Stats()
		st.Broker = &bs
	}
	if nb, ok := n.pusherBroker.(*broker.NATS); ok && n.roster != nil {
		st.PusherCluster = &PusherClusterStats{Broker: nb.Stats(), Roster: n.roster.Stats()}
	}
	return st
}

package herald

import (
	"github.com/herald-push/herald/broker"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/herald-push/herald/hook"
	"github.com/herald-push/herald/pusher"
	"github.com/herald-push/herald/pusher/webhook"
	"github.com/herald-push/herald/server"
)

// registerMetrics exposes the node on reg: the Go and process collectors,
// the fan-out histogram (observed once per loop batch), and every counter
// and gauge of the node's Stats through one collector that takes a
// snapshot per scrape (nodeMetrics). Nothing is counted twice: the hot
// paths keep their atomics, and a scrape reads them once.
func registerMetrics(reg *prometheus.Registry, n *Node) error {
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		n.fanout,
		newNodeCollector(n.Stats),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// metric is one time series computed from a Stats snapshot. Series of one
// name share its help text and differ by the value of one label (label,
// value); label is empty for a series of its own.
type metric struct {
	name, help   string
	kind         prometheus.ValueType
	label, value string
	of           func(*Stats) float64
}

const (
	counter = prometheus.CounterValue
	gauge   = prometheus.GaugeValue
)

// The help texts of the families with several series.
const (
	helpHandshakes     = "WebSocket upgrades by outcome."
	helpDisconnects    = "Connections closed by the server, by reason."
	helpRefusals       = "Connections or requests refused by a limit."
	helpEvictions      = "Messages evicted from history by a byte cap, by cap."
	helpAPIRefused     = "API requests refused, by reason."
	helpTLS            = "TLS handshakes by outcome."
	helpCertReloads    = "TLS certificate reloads (SIGHUP) by outcome: ok, or error (the old pair kept)."
	helpPusherRefusals = "Pusher presence joins refused with pusher:subscription_error LimitReached: the channel's member cap (max_presence_members), a user_id over 128 bytes or user_info over 1 KB."
	helpWebhooks       = "Pusher webhook events by outcome: sent (2xx), failed (refused or out of attempts), dropped (queue full)."
	helpTokenCache     = "Lookups of connection tokens in the cache of verified ones: hit (no signature check) or miss (checked in full; a token is kept from its second acceptance on)."
)

// u and i turn a snapshot field into a sample value.
func u(v uint64) float64 { return float64(v) }
func i(v int64) float64  { return float64(v) }

// nodeMetrics maps Stats to Prometheus: the one place where a snapshot
// field becomes a series (namespace herald).
var nodeMetrics = []metric{
	{"connections", "Open WebSocket connections.", gauge, "", "", func(s *Stats) float64 { return i(s.Server.Connections) }},
	{"handshakes_in_progress", "Connections accepted and not yet upgraded (plain and TLS).", gauge, "", "", func(s *Stats) float64 { return i(s.Server.HandshakesInProgress) }},
	{"inbound_buffered_bytes", "Bytes held for incomplete client input (partial frames, unfinished messages).", gauge, "", "", func(s *Stats) float64 { return i(s.Server.InboundBuffered) }},
	{"handshakes_total", helpHandshakes, counter, "outcome", "ok", func(s *Stats) float64 { return u(s.Server.HandshakesOK) }},
	{"handshakes_total", helpHandshakes, counter, "outcome", "refused", func(s *Stats) float64 { return u(s.Server.HandshakesFailed) }},
	{"handshakes_total", helpHandshakes, counter, "outcome", "timeout", func(s *Stats) float64 { return u(s.Server.HandshakeTimeouts) }},
	{"sse_streams_total", "Server-Sent Events streams opened (among the ok handshakes).", counter, "", "", func(s *Stats) float64 { return u(s.Server.Streams) }},
	{"first_byte_timeouts_total", "Connections closed for sending nothing within first_byte_timeout.", counter, "", "", func(s *Stats) float64 { return u(s.Server.FirstByteTimeouts) }},
	{"messages_in_total", "Messages received from clients.", counter, "", "", func(s *Stats) float64 { return u(s.Server.MessagesIn) }},
	{"messages_out_total", "Messages queued to clients.", counter, "", "", func(s *Stats) float64 { return u(s.Server.MessagesOut) }},
	{"bytes_in_total", "Bytes received from clients after the handshake.", counter, "", "", func(s *Stats) float64 { return u(s.Server.BytesIn) }},

	{"disconnects_total", helpDisconnects, counter, "reason", "protocol_error", func(s *Stats) float64 { return u(s.Server.ProtocolErrors) }},
	{"disconnects_total", helpDisconnects, counter, "reason", "ping_timeout", func(s *Stats) float64 { return u(s.Server.PingTimeouts) }},
	{"disconnects_total", helpDisconnects, counter, "reason", "token_expired", func(s *Stats) float64 { return u(s.Server.TokenExpired) }},
	{"disconnects_total", helpDisconnects, counter, "reason", "output_budget", func(s *Stats) float64 { return u(s.Server.OutputBudget) }},
	{"disconnects_total", helpDisconnects, counter, "reason", "inbound_memory", func(s *Stats) float64 { return u(s.Server.InboundMemory) }},
	{"disconnects_total", helpDisconnects, counter, "reason", "message_timeout", func(s *Stats) float64 { return u(s.Server.MessageTimeouts) }},
	{"disconnects_total", helpDisconnects, counter, "reason", "slow_consumer", func(s *Stats) float64 { return u(s.Push.SlowClosed) }},
	{"disconnects_total", helpDisconnects, counter, "reason", "api_disconnect", func(s *Stats) float64 { return u(s.Push.Kicked) }},
	{"disconnects_total", helpDisconnects, counter, "reason", "command_rate", func(s *Stats) float64 { return u(s.Push.CommandRateClosed) }},

	{"limit_refusals_total", helpRefusals, counter, "limit", "handshakes", func(s *Stats) float64 { return u(s.Server.RefusedHandshakes) }},
	{"limit_refusals_total", helpRefusals, counter, "limit", "handshakes_per_ip", func(s *Stats) float64 { return u(s.Server.RefusedHandshakesPerIP) }},
	{"limit_refusals_total", helpRefusals, counter, "limit", "conns_per_ip", func(s *Stats) float64 { return u(s.Server.RefusedConnsPerIP) }},
	{"limit_refusals_total", helpRefusals, counter, "limit", "max_conns", func(s *Stats) float64 { return u(s.Server.RefusedMaxConns) }},
	{"limit_refusals_total", helpRefusals, counter, "limit", "accept_rate", func(s *Stats) float64 { return u(s.Server.RefusedAcceptRate) }},
	{"limit_refusals_total", helpRefusals, counter, "limit", "fds", func(s *Stats) float64 { return u(s.Server.RefusedFds) }},
	{"limit_refusals_total", helpRefusals, counter, "limit", "subscriptions", func(s *Stats) float64 { return u(s.Push.SubscriptionLimited) }},
	{"limit_refusals_total", helpRefusals, counter, "limit", "channels", func(s *Stats) float64 { return u(s.Hub.ChannelLimited) }},
	{"limit_refusals_total", helpRefusals, counter, "limit", "publish_size", func(s *Stats) float64 { return u(s.Hub.TooLarge) }},
	{"limit_refusals_total", helpRefusals, counter, "limit", "presence_members", func(s *Stats) float64 { return u(s.Push.PresenceLimited) }},
	{"unknown_namespace_total", "Subscriptions, publishes and history reads refused: the channel's prefix names no configured namespace.", counter, "", "", func(s *Stats) float64 { return u(s.UnknownNamespace) }},
	{"pusher_limit_refusals_total", helpPusherRefusals, counter, "limit", "presence_members", func(s *Stats) float64 {
		return pusherOf(s, func(p *pusher.Stats) uint64 { return p.PresenceMembersLimited })
	}},
	{"pusher_limit_refusals_total", helpPusherRefusals, counter, "limit", "user_info", func(s *Stats) float64 { return pusherOf(s, func(p *pusher.Stats) uint64 { return p.UserInfoLimited }) }},

	{"api_refused_total", helpAPIRefused, counter, "reason", "cross_site", func(s *Stats) float64 { return u(s.API.CrossSite) }},
	{"api_refused_total", helpAPIRefused, counter, "reason", "unauthorized", func(s *Stats) float64 { return u(s.API.Unauthorized) }},
	{"api_refused_total", helpAPIRefused, counter, "reason", "foreign_host", func(s *Stats) float64 { return u(s.API.ForeignHost) }},

	{"token_cache_tokens", "Verified tokens the node remembers (--jwt-cache-size bounds them).", gauge, "", "", func(s *Stats) float64 { return float64(s.TokenCache.Tokens) }},
	{"token_cache_lookups_total", helpTokenCache, counter, "result", "hit", func(s *Stats) float64 { return u(s.TokenCache.Hits) }},
	{"token_cache_lookups_total", helpTokenCache, counter, "result", "miss", func(s *Stats) float64 { return u(s.TokenCache.Misses) }},

	{"recovery_pages_total", "Recovery backlogs larger than the output budget, sent in pages.", counter, "", "", func(s *Stats) float64 { return u(s.Push.PagedBacklogs) }},
	{"dropped_messages_total", "Messages dropped for slow subscribers (drop policy).", counter, "", "", func(s *Stats) float64 { return u(s.Push.Dropped) }},
	{"presence_members", "Members of herald's presence channels this node knows (with NATS, the cluster's), one per user and channel.", gauge, "", "", func(s *Stats) float64 { return i(s.Push.PresenceMembers) }},
	{"presence_events_total", "Join and leave events of herald's presence channels decided on this node.", counter, "", "", func(s *Stats) float64 { return u(s.Push.PresenceEvents) }},
	{"commands_total", "Client protocol commands received.", counter, "", "", func(s *Stats) float64 { return u(s.Push.Commands) }},
	{"command_errors_total", "Client protocol commands answered with an error.", counter, "", "", func(s *Stats) float64 { return u(s.Push.CommandErrors) }},

	{"published_total", "Messages published on this node.", counter, "", "", func(s *Stats) float64 { return u(s.Hub.Published) }},
	{"idempotent_duplicates_total", "Publishes with an idempotency_key seen within the window, answered with the first result and not published.", counter, "", "", func(s *Stats) float64 { return u(s.IdempotentDuplicates) }},
	{"deliveries_total", "Messages handed to subscribers.", counter, "", "", func(s *Stats) float64 { return u(s.Hub.Deliveries) }},
	{"channels", "Channels with subscribers or history.", gauge, "", "", func(s *Stats) float64 { return float64(s.Hub.Channels) }},
	{"client_channels", "Channels that clients created (the ones max_channels caps).", gauge, "", "", func(s *Stats) float64 { return float64(s.Hub.ClientChannels) }},
	{"subscriptions", "Subscriptions on this node.", gauge, "", "", func(s *Stats) float64 { return i(s.Hub.Subscriptions) }},
	{"history_messages", "Messages held in channel history.", gauge, "", "", func(s *Stats) float64 { return i(s.Hub.HistoryMessages) }},
	{"history_bytes", "Bytes held in channel history.", gauge, "", "", func(s *Stats) float64 { return i(s.Hub.HistoryBytes) }},
	{"history_evictions_total", helpEvictions, counter, "reason", "channel_bytes", func(s *Stats) float64 { return u(s.Hub.EvictedChannelBytes) }},
	{"history_evictions_total", helpEvictions, counter, "reason", "node_bytes", func(s *Stats) float64 { return u(s.Hub.EvictedNodeBytes) }},
	{"pusher_webhook_events_total", helpWebhooks, counter, "outcome", "sent", func(s *Stats) float64 { return webhooks(s, func(w *webhookStats) uint64 { return w.Sent }) }},
	{"pusher_webhook_events_total", helpWebhooks, counter, "outcome", "failed", func(s *Stats) float64 { return webhooks(s, func(w *webhookStats) uint64 { return w.Failed }) }},
	{"pusher_webhook_events_total", helpWebhooks, counter, "outcome", "dropped", func(s *Stats) float64 { return webhooks(s, func(w *webhookStats) uint64 { return w.Dropped }) }},
	{"pusher_webhook_posts_total", "Pusher webhook POSTs answered 2xx.", counter, "", "", func(s *Stats) float64 { return webhooks(s, func(w *webhookStats) uint64 { return w.Posts }) }},
	{"pusher_webhook_retries_total", "Pusher webhook POSTs tried again after a 5xx, 408, 429 or transport error.", counter, "", "", func(s *Stats) float64 { return webhooks(s, func(w *webhookStats) uint64 { return w.Retries }) }},
	{"pusher_cluster_nodes", "Live nodes serving the Pusher apps, this one included, as its presence roster knows them (0 without NATS).", gauge, "", "", func(s *Stats) float64 {
		return pusherCluster(s, func(c *PusherClusterStats) float64 { return float64(c.Roster.Nodes) })
	}},
	{"pusher_roster_writes_total", "Presence roster keys (members, subscription counts) this node wrote or removed in NATS.", counter, "", "", func(s *Stats) float64 {
		return pusherCluster(s, func(c *PusherClusterStats) float64 { return u(c.Roster.Writes) })
	}},
	{"pusher_roster_remote_total", "Other nodes' presence roster changes this node applied.", counter, "", "", func(s *Stats) float64 {
		return pusherCluster(s, func(c *PusherClusterStats) float64 { return u(c.Roster.Remote) })
	}},
	{"pusher_watched_channels", "Pusher channels this node follows on NATS (those with local subscribers, and lingering ones).", gauge, "", "", func(s *Stats) float64 {
		return pusherCluster(s, func(c *PusherClusterStats) float64 { return float64(c.Broker.Watched) })
	}},
	// The NATS broker's; 0 with the memory broker.
	{"broker_publishes_total", "Publishes this node stored in the NATS stream.", counter, "", "", func(s *Stats) float64 { return brokerOf(s, func(b *broker.Stats) float64 { return u(b.Published) }) }},
	{"broker_conflicts_total", "Publish attempts lost to another node's publish to the same channel (each retried after rereading the channel's tip, until the publish timeout).", counter, "", "", func(s *Stats) float64 { return brokerOf(s, func(b *broker.Stats) float64 { return u(b.Conflicts) }) }},
	{"broker_publishes_refused_total", "Publishes refused by the NATS broker: not ready, NATS unreachable, or contention past the publish timeout.", counter, "", "", func(s *Stats) float64 { return brokerOf(s, func(b *broker.Stats) float64 { return u(b.Refused) }) }},
	{"broker_watched_channels", "Channels this node follows on NATS (those with local subscribers, and lingering ones).", gauge, "", "", func(s *Stats) float64 {
		return brokerOf(s, func(b *broker.Stats) float64 { return float64(b.Watched) })
	}},
	{"broker_watch_refused_total", "Subscriptions that proceeded unwatched because the node watched its maximum of channels already.", counter, "", "", func(s *Stats) float64 { return brokerOf(s, func(b *broker.Stats) float64 { return u(b.WatchRefused) }) }},
	{"worker_queue_depth", "Tasks waiting for the worker pool.", gauge, "", "", func(s *Stats) float64 { return float64(s.WorkerQueue) }},

	// Compression and TLS read 0 when they are off.
	{"deflate_negotiated_total", "Connections that negotiated permessage-deflate.", counter, "", "", func(s *Stats) float64 { return deflate(s, func(c *compression) uint64 { return c.Negotiated }) }},
	{"deflate_compressed_total", "Payloads compressed (once per publish, shared by subscribers).", counter, "", "", func(s *Stats) float64 { return deflate(s, func(c *compression) uint64 { return c.Compressed }) }},
	{"deflate_bytes_in_total", "Bytes given to the compressor.", counter, "", "", func(s *Stats) float64 { return deflate(s, func(c *compression) uint64 { return c.BytesIn }) }},
	{"deflate_bytes_out_total", "Compressed bytes produced.", counter, "", "", func(s *Stats) float64 { return deflate(s, func(c *compression) uint64 { return c.BytesOut }) }},
	{"inflate_errors_total", "Client messages that were not valid deflate data or inflated past the limit.", counter, "", "", func(s *Stats) float64 { return deflate(s, func(c *compression) uint64 { return c.InflateErrors }) }},
	{"tls_connections", "Open connections bridged from the TLS listener.", gauge, "", "", func(s *Stats) float64 { return tlsOf(s, func(t *tlsStats) float64 { return i(t.Active) }) }},
	{"tls_loop_connections", "Open TLS connections whose records the event loops carry (loop engine).", gauge, "", "", func(s *Stats) float64 { return tlsOf(s, func(t *tlsStats) float64 { return i(t.OnLoop) }) }},
	{"tls_fallback_total", "TLS connections bridged under the loop engine (TLS 1.2 clients).", counter, "", "", func(s *Stats) float64 { return tlsOf(s, func(t *tlsStats) float64 { return u(t.Fallback) }) }},
	{"tls_record_errors_total", "Loop-engine TLS connections closed for a bad record or a fatal alert.", counter, "", "", func(s *Stats) float64 { return tlsOf(s, func(t *tlsStats) float64 { return u(t.RecordErrors) }) }},
	{"tls_cert_reloads_total", helpCertReloads, counter, "outcome", "ok", func(s *Stats) float64 { return tlsOf(s, func(t *tlsStats) float64 { return u(t.CertReloads) }) }},
	{"tls_cert_reloads_total", helpCertReloads, counter, "outcome", "error", func(s *Stats) float64 { return tlsOf(s, func(t *tlsStats) float64 { return u(t.CertReloadErrors) }) }},
	{"tls_handshakes_total", helpTLS, counter, "outcome", "ok", func(s *Stats) float64 { return tlsOf(s, func(t *tlsStats) float64 { return u(t.Handshakes) }) }},
	{"tls_handshakes_total", helpTLS, counter, "outcome", "error", func(s *Stats) float64 { return tlsOf(s, func(t *tlsStats) float64 { return u(t.HandshakeErrors) }) }},
	{"tls_handshakes_total", helpTLS, counter, "outcome", "timeout", func(s *Stats) float64 { return tlsOf(s, func(t *tlsStats) float64 { return u(t.HandshakeTimeouts) }) }},

	// Backend hooks (docs/hooks.md); 0 for an event without a hook.
	{"hook_connect_total", helpHookConnect, counter, "outcome", "accepted", func(s *Stats) float64 {
		return hookOf(s, hook.EventConnect, func(h *hook.Stats) float64 { return u(h.Accepted) })
	}},
	{"hook_connect_total", helpHookConnect, counter, "outcome", "rejected", func(s *Stats) float64 {
		return hookOf(s, hook.EventConnect, func(h *hook.Stats) float64 { return u(h.Rejected) })
	}},
	{"hook_connect_total", helpHookConnect, counter, "outcome", "unavailable", func(s *Stats) float64 {
		return hookOf(s, hook.EventConnect, func(h *hook.Stats) float64 { return u(h.Unavailable) })
	}},
	{"hook_connect_total", helpHookConnect, counter, "outcome", "timeout", func(s *Stats) float64 {
		return hookOf(s, hook.EventConnect, func(h *hook.Stats) float64 { return u(h.Timeout) })
	}},
	{"hook_subscribe_total", helpHookSubscribe, counter, "outcome", "accepted", func(s *Stats) float64 {
		return hookOf(s, hook.EventSubscribe, func(h *hook.Stats) float64 { return u(h.Accepted) })
	}},
	{"hook_subscribe_total", helpHookSubscribe, counter, "outcome", "rejected", func(s *Stats) float64 {
		return hookOf(s, hook.EventSubscribe, func(h *hook.Stats) float64 { return u(h.Rejected) })
	}},
	{"hook_subscribe_total", helpHookSubscribe, counter, "outcome", "unavailable", func(s *Stats) float64 {
		return hookOf(s, hook.EventSubscribe, func(h *hook.Stats) float64 { return u(h.Unavailable) })
	}},
	{"hook_subscribe_total", helpHookSubscribe, counter, "outcome", "timeout", func(s *Stats) float64 {
		return hookOf(s, hook.EventSubscribe, func(h *hook.Stats) float64 { return u(h.Timeout) })
	}},
	{"hook_publish_total", helpHookPublish, counter, "outcome", "accepted", func(s *Stats) float64 {
		return hookOf(s, hook.EventPublish, func(h *hook.Stats) float64 { return u(h.Accepted) })
	}},
	{"hook_publish_total", helpHookPublish, counter, "outcome", "rejected", func(s *Stats) float64 {
		return hookOf(s, hook.EventPublish, func(h *hook.Stats) float64 { return u(h.Rejected) })
	}},
	{"hook_publish_total", helpHookPublish, counter, "outcome", "unavailable", func(s *Stats) float64 {
		return hookOf(s, hook.EventPublish, func(h *hook.Stats) float64 { return u(h.Unavailable) })
	}},
	{"hook_publish_total", helpHookPublish, counter, "outcome", "timeout", func(s *Stats) float64 {
		return hookOf(s, hook.EventPublish, func(h *hook.Stats) float64 { return u(h.Timeout) })
	}},
	{"hook_refresh_total", helpHookRefresh, counter, "outcome", "accepted", func(s *Stats) float64 {
		return hookOf(s, hook.EventRefresh, func(h *hook.Stats) float64 { return u(h.Accepted) })
	}},
	{"hook_refresh_total", helpHookRefresh, counter, "outcome", "rejected", func(s *Stats) float64 {
		return hookOf(s, hook.EventRefresh, func(h *hook.Stats) float64 { return u(h.Rejected) })
	}},
	{"hook_refresh_total", helpHookRefresh, counter, "outcome", "unavailable", func(s *Stats) float64 {
		return hookOf(s, hook.EventRefresh, func(h *hook.Stats) float64 { return u(h.Unavailable) })
	}},
	{"hook_refresh_total", helpHookRefresh, counter, "outcome", "timeout", func(s *Stats) float64 {
		return hookOf(s, hook.EventRefresh, func(h *hook.Stats) float64 { return u(h.Timeout) })
	}},
	{"hook_seconds_total", helpHookSeconds, counter, "event", "connect", func(s *Stats) float64 {
		return hookOf(s, hook.EventConnect, func(h *hook.Stats) float64 { return h.Seconds })
	}},
	{"hook_seconds_total", helpHookSeconds, counter, "event", "subscribe", func(s *Stats) float64 {
		return hookOf(s, hook.EventSubscribe, func(h *hook.Stats) float64 { return h.Seconds })
	}},
	{"hook_seconds_total", helpHookSeconds, counter, "event", "publish", func(s *Stats) float64 {
		return hookOf(s, hook.EventPublish, func(h *hook.Stats) float64 { return h.Seconds })
	}},
	{"hook_seconds_total", helpHookSeconds, counter, "event", "refresh", func(s *Stats) float64 {
		return hookOf(s, hook.EventRefresh, func(h *hook.Stats) float64 { return h.Seconds })
	}},
	{"hook_breaker_state", helpHookBreaker, gauge, "event", "connect", func(s *Stats) float64 { return hookOf(s, hook.EventConnect, breakerState) }},
	{"hook_breaker_state", helpHookBreaker, gauge, "event", "subscribe", func(s *Stats) float64 { return hookOf(s, hook.EventSubscribe, breakerState) }},
	{"hook_breaker_state", helpHookBreaker, gauge, "event", "publish", func(s *Stats) float64 { return hookOf(s, hook.EventPublish, breakerState) }},
	{"hook_breaker_state", helpHookBreaker, gauge, "event", "refresh", func(s *Stats) float64 { return hookOf(s, hook.EventRefresh, breakerState) }},
}

// nodeCollector is a prometheus.Collector over nodeMetrics: each scrape
// takes one snapshot and reports every series from it.
type nodeCollector struct {
	snapshot func() Stats
	descs    []*prometheus.Desc // one per nodeMetrics entry, shared by a family
}

func newNodeCollector(snapshot func() Stats) *nodeCollector {
	c := &nodeCollector{snapshot: snapshot}
	families := map[string]*prometheus.Desc{}
	for _, m := range nodeMetrics {
		d, ok := families[m.name]
		if !ok {
			var labels []string
			if m.label != "" {
				labels = []string{m.label}
			}
			d = prometheus.NewDesc(prometheus.BuildFQName("herald", "", m.name), m.help, labels, nil)
			families[m.name] = d
		}
		c.descs = append(c.descs, d)
	}
	return c
}

// Describe sends every family's description once.
func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	seen := map[*prometheus.Desc]bool{}
	for _, d := range c.descs {
		if !seen[d] {
			seen[d] = true
			ch <- d
		}
	}
}

// Collect reports every series from one snapshot.
func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.snapshot()
	for k, m := range nodeMetrics {
		var labels []string
		if m.label != "" {
			labels = []string{m.value}
		}
		ch <- prometheus.MustNewConstMetric(c.descs[k], m.kind, m.of(&st), labels...)
	}
}

// compression and tlsStats are the transport's optional snapshots.
type (
	compression = server.CompressionStats
	tlsStats    = server.TLSStats
)

// deflate reads one compression counter (0 when compression is off).
func deflate(s *Stats, f func(*compression) uint64) float64 {
	if c := s.Server.Compression; c != nil {
		return float64(f(c))
	}
	return 0
}

// tlsOf reads one TLS counter (0 without a TLS listener).
func tlsOf(s *Stats, f func(*tlsStats) float64) float64 {
	if t := s.Server.TLS; t != nil {
		return f(t)
	}
	return 0
}

// webhookStats are the Pusher webhooks' counters.
type webhookStats = webhook.Stats

// webhooks reads one webhook counter (0 without Pusher apps).
func webhooks(s *Stats, f func(*webhookStats) uint64) float64 {
	if p := s.Pusher; p != nil {
		return float64(f(&p.Webhooks))
	}
	return 0
}

// pusherCluster reads one value of the Pusher apps' cluster side (0 on
// one node).
func pusherCluster(s *Stats, f func(*PusherClusterStats) float64) float64 {
	if c := s.PusherCluster; c != nil {
		return f(c)
	}
	return 0
}

// brokerOf reads one NATS broker figure (0 with the memory broker).
func brokerOf(s *Stats, f func(*broker.Stats) float64) float64 {
	if b := s.Broker; b != nil {
		return f(b)
	}
	return 0
}

// pusherOf reads one Pusher counter (0 without Pusher apps).
func pusherOf(s *Stats, f func(*pusher.Stats) uint64) float64 {
	if p := s.Pusher; p != nil {
		return float64(f(p))
	}
	return 0
}

// newFanoutHistogram measures how long a loop takes to walk one batch of
// published messages over its subscribers.
func newFanoutHistogram() prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: "herald", Name: "fanout_duration_seconds",
		Help:    "Time one event loop spent writing a batch of published messages to its subscribers.",
		Buckets: prometheus.ExponentialBuckets(10e-6, 4, 10),
	})
}

// observeFanout is the hub's hook.
func (n *Node) observeFanout(d time.Duration) { n.fanout.Observe(d.Seconds()) }

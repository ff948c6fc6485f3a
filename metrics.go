package herald

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/herald-push/herald/server"
)

// registerMetrics exposes the node's counters on reg. Counters are read
// from the atomics the hot paths already keep (CounterFunc/GaugeFunc), so
// metrics cost nothing per message; the fan-out histogram is observed once
// per loop batch.
func registerMetrics(reg *prometheus.Registry, n *Node) error {
	s := n.srv.Stats()
	counter := func(name, help string, labels prometheus.Labels, f func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "herald", Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(f()) })
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "herald", Name: name, Help: help}, f)
	}
	outcome := func(o string) prometheus.Labels { return prometheus.Labels{"outcome": o} }
	reason := func(r string) prometheus.Labels { return prometheus.Labels{"reason": r} }
	limit := func(l string) prometheus.Labels { return prometheus.Labels{"limit": l} }
	cs := []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		gauge("connections", "Open WebSocket connections.", func() float64 { return float64(n.srv.Conns()) }),
		counter("handshakes_total", "WebSocket upgrades by outcome.", outcome("ok"), s.HandshakesOK.Load),
		counter("handshakes_total", "WebSocket upgrades by outcome.", outcome("refused"), s.HandshakesFailed.Load),
		counter("handshakes_total", "WebSocket upgrades by outcome.", outcome("timeout"), s.HandshakeTimeouts.Load),
		counter("messages_in_total", "Messages received from clients.", nil, n.srv.MessagesIn),
		counter("messages_out_total", "Messages queued to clients.", nil, n.srv.MessagesOut),
		counter("bytes_in_total", "Bytes received from clients after the handshake.", nil, n.srv.BytesIn),
		counter("disconnects_total", "Connections closed by the server, by reason.", reason("protocol_error"), s.ProtocolErrors.Load),
		counter("disconnects_total", "Connections closed by the server, by reason.", reason("ping_timeout"), s.PingTimeouts.Load),
		counter("disconnects_total", "Connections closed by the server, by reason.", reason("slow_consumer"), func() uint64 { return n.push.Stats().SlowClosed }),
		counter("disconnects_total", "Connections closed by the server, by reason.", reason("token_expired"), s.TokenExpired.Load),
		counter("disconnects_total", "Connections closed by the server, by reason.", reason("api_disconnect"), func() uint64 { return n.push.Stats().Kicked }),
		counter("api_refused_total", "API requests refused, by reason.", reason("cross_site"), n.apiStats.CrossSite.Load),
		counter("api_refused_total", "API requests refused, by reason.", reason("unauthorized"), n.apiStats.Unauthorized.Load),
		counter("disconnects_total", "Connections closed by the server, by reason.", reason("output_budget"), s.OutputBudget.Load),
		counter("disconnects_total", "Connections closed by the server, by reason.", reason("inbound_memory"), s.InboundMemory.Load),
		counter("disconnects_total", "Connections closed by the server, by reason.", reason("message_timeout"), s.MessageTimeouts.Load),
		counter("limit_refusals_total", "Connections or requests refused by a limit.", limit("handshakes"), s.RefusedHandshakes.Load),
		counter("limit_refusals_total", "Connections or requests refused by a limit.", limit("handshakes_per_ip"), s.RefusedHandshakesPerIP.Load),
		counter("limit_refusals_total", "Connections or requests refused by a limit.", limit("conns_per_ip"), s.RefusedConnsPerIP.Load),
		counter("limit_refusals_total", "Connections or requests refused by a limit.", limit("max_conns"), s.RefusedMaxConns.Load),
		counter("first_byte_timeouts_total", "Connections closed for sending nothing within first_byte_timeout.", nil, s.FirstByteTimeouts.Load),
		gauge("inbound_buffered_bytes", "Bytes held for incomplete client input (partial frames, unfinished messages).", func() float64 { return float64(n.srv.InboundBuffered()) }),
		gauge("handshakes_in_progress", "Connections accepted and not yet upgraded (plain and TLS).", func() float64 { return float64(n.srv.HandshakesInProgress()) }),
		counter("disconnects_total", "Connections closed by the server, by reason.", reason("command_rate"), func() uint64 { return n.push.Stats().CommandRateClosed }),
		counter("limit_refusals_total", "Connections or requests refused by a limit.", limit("subscriptions"), func() uint64 { return n.push.Stats().SubscriptionLimited }),
		counter("limit_refusals_total", "Connections or requests refused by a limit.", limit("channels"), func() uint64 { return n.hub.Stats().ChannelLimited }),
		counter("limit_refusals_total", "Connections or requests refused by a limit.", limit("publish_size"), func() uint64 { return n.hub.Stats().TooLarge }),
		counter("history_evictions_total", "Messages evicted from history by a byte cap, by cap.", reason("channel_bytes"), func() uint64 { return n.hub.Stats().EvictedChannelBytes }),
		counter("history_evictions_total", "Messages evicted from history by a byte cap, by cap.", reason("node_bytes"), func() uint64 { return n.hub.Stats().EvictedNodeBytes }),
		counter("recovery_pages_total", "Recovery backlogs larger than the output budget, sent in pages.", nil, func() uint64 { return n.push.Stats().PagedBacklogs }),
		counter("dropped_messages_total", "Messages dropped for slow subscribers (drop policy).", nil, func() uint64 { return n.push.Stats().Dropped }),
		counter("commands_total", "Client protocol commands received.", nil, func() uint64 { return n.push.Stats().Commands }),
		counter("command_errors_total", "Client protocol commands answered with an error.", nil, func() uint64 { return n.push.Stats().CommandErrors }),
		counter("published_total", "Messages published on this node.", nil, func() uint64 { return n.hub.Stats().Published }),
		counter("deliveries_total", "Messages handed to subscribers.", nil, func() uint64 { return n.hub.Stats().Deliveries }),
		gauge("channels", "Channels with subscribers or history.", func() float64 { return float64(n.hub.Stats().Channels) }),
		gauge("subscriptions", "Subscriptions on this node.", func() float64 { return float64(n.hub.Stats().Subscriptions) }),
		gauge("history_messages", "Messages held in channel history.", func() float64 { return float64(n.hub.Stats().HistoryMessages) }),
		gauge("history_bytes", "Bytes held in channel history.", func() float64 { return float64(n.hub.Stats().HistoryBytes) }),
		gauge("worker_queue_depth", "Tasks waiting for the worker pool.", func() float64 { return float64(n.workers.QueueDepth()) }),
		n.fanout,
		counter("deflate_negotiated_total", "Connections that negotiated permessage-deflate.", nil, func() uint64 { return deflateStat(n, func(c *server.CompressionStats) uint64 { return c.Negotiated }) }),
		counter("deflate_compressed_total", "Payloads compressed (once per publish, shared by subscribers).", nil, func() uint64 { return deflateStat(n, func(c *server.CompressionStats) uint64 { return c.Compressed }) }),
		counter("deflate_bytes_in_total", "Bytes given to the compressor.", nil, func() uint64 { return deflateStat(n, func(c *server.CompressionStats) uint64 { return c.BytesIn }) }),
		counter("deflate_bytes_out_total", "Compressed bytes produced.", nil, func() uint64 { return deflateStat(n, func(c *server.CompressionStats) uint64 { return c.BytesOut }) }),
		counter("inflate_errors_total", "Client messages that were not valid deflate data or inflated past the limit.", nil, func() uint64 {
			return deflateStat(n, func(c *server.CompressionStats) uint64 { return c.InflateErrors })
		}),
		gauge("tls_connections", "Open connections bridged from the TLS listener.", func() float64 { return float64(tlsStat(n, func(t *server.TLSStats) int64 { return t.Active })) }),
		counter("tls_handshakes_total", "TLS handshakes by outcome.", outcome("ok"), func() uint64 {
			return uint64(tlsStat(n, func(t *server.TLSStats) int64 { return int64(t.Handshakes) }))
		}),
		counter("tls_handshakes_total", "TLS handshakes by outcome.", outcome("error"), func() uint64 {
			return uint64(tlsStat(n, func(t *server.TLSStats) int64 { return int64(t.HandshakeErrors) }))
		}),
		counter("tls_handshakes_total", "TLS handshakes by outcome.", outcome("timeout"), func() uint64 {
			return uint64(tlsStat(n, func(t *server.TLSStats) int64 { return int64(t.HandshakeTimeouts) }))
		}),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// deflateStat reads one compression counter (0 when compression is off).
func deflateStat(n *Node, f func(*server.CompressionStats) uint64) uint64 {
	if st := n.srv.DeflateStats(); st != nil {
		return f(st)
	}
	return 0
}

// tlsStat reads one TLS counter (0 without a TLS listener).
func tlsStat(n *Node, f func(*server.TLSStats) int64) int64 {
	if st := n.srv.TLSStats(); st != nil {
		return f(st)
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

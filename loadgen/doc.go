// Package loadgen is herald's load generator: it holds many WebSocket client
// connections on a few event loops (poller's client role, no goroutine per
// connection), publishes timestamped messages through an HTTP endpoint or a
// WebSocket message, and measures what every connection receives: exact
// delivery counts, lost and duplicated messages per connection, and
// publish-to-receive latency in HDR histograms. It works against any RFC 6455
// server, not only herald.
//
// Where to start: fill a Config (the zero value of each field is documented)
// and call Run; it returns a *Result, which WriteJSON, WriteSummary and
// WritePlots render. Config.Procs > 1 spreads the connections over worker
// processes (the same executable, re-run with LOADGEN_WORKER=1, which must
// call ServeWorker), so a run may hold more connections than one process's
// open-file limit allows; their results are combined with Merge, histograms
// included.
//
// # Scenarios
//
//   - idle: open Conns connections at ConnectRate and hold them for Duration.
//   - broadcast: publish Count messages, Interval apart; every connection
//     should receive each once. Reports per-delivery latency and, per
//     message, the time until the last connection had it (completion).
//   - sustained: publish at Rate messages/s for Duration on an open-loop
//     schedule; latency is measured from each message's intended send time,
//     so a server (or publisher) that falls behind is charged for it
//     (coordinated omission corrected).
//   - echo: every connection sends messages that the server echoes, Rate in
//     total per second; latency is the round trip from the intended send
//     time.
//   - storm: after the ramp, every connection drops at once and reconnects;
//     reports the time until all are back.
//   - slow: like sustained, but SlowShare of the connections stop reading
//     after the handshake; reports how the others fared and how many slow
//     ones the server cut off.
//   - jitter: publish at Rate for Duration while every client is cut at
//     random (every JitterEvery on average), stays away Offline and
//     reconnects, resubscribing with since (its last offset and epoch).
//     Result.Recovery counts, per client, every message received exactly
//     once, and the replay latency from the reconnection to the last
//     missed message; Result.Latency holds the live deliveries.
//   - deploy: the same clients spread over several nodes (URLs); at
//     DeployAt, DeployCmd (or Deploy) takes one away, and its clients
//     reconnect to the next nodes and recover: downtime, recovered share,
//     replay latency, clients that never returned.
//   - shootout: broadcast round trips with the client count stepped up
//     from ShootoutStart until a step's p95 exceeds P95Bound (or loses
//     deliveries, or Conns or the open-file limit is reached): the largest
//     passing count, in Result.Shootout, with each step's percentiles.
//
// # Tokens
//
// With Config.TokenSecret every connection presents its own HS256 token
// (sub "u<i>" for connection i), so that a server which caches verified
// tokens still verifies one per user, as in a reconnect storm of distinct
// users; a reconnection presents its connection's token again.
//
// # Messages
//
// Publishers send JSON payloads {"t":UNIXNANO,"seq":N} (padded to
// PayloadSize). A receiver looks for the "t" and "seq" fields anywhere in a
// text or binary message, so an envelope around the payload (herald's
// {"channel":..,"offset":..,"data":{...}}) is fine. Messages without them
// are counted as Other.
//
// # Concurrency
//
// Run and ServeWorker may be called from any goroutine; a Config must not be
// changed while a run uses it. Each event loop owns its connections and its
// own counters and histograms, which are merged when the run ends; the
// progress reporter reads only atomics and values the loops publish to it.
package loadgen

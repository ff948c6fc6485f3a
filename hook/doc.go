// Package hook asks an application's own backend whether a client may
// connect, subscribe, publish or keep its session (docs/hooks.md): herald
// POSTs a JSON [Request] to the URL configured for the event and applies
// the answer, a [Result] (accept, possibly rewriting the data) or a
// [*Rejection] (refuse, with the backend's code and message).
//
// Start with [New] and [Client.Call]. A call may block for up to
// Config.Timeout, so it never runs on an event loop: the push app calls it
// on the worker pool and finishes on the connection's loop. Whatever keeps
// the backend from answering (a timeout, a refused connection, a non-2xx
// status, a malformed answer, Config.MaxConcurrent calls already in
// flight, the circuit breaker open after Config.BreakerFailures failures
// in a row) is [ErrUnavailable]: the client is told to retry, never left
// waiting.
package hook

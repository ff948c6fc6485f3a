// Package pool owns the resources that are shared between connections but
// must not be allocated per frame or per message:
//
//   - a bounded worker pool for work that may block (user handlers, auth
//     callbacks), which keeps the order of tasks submitted for one key
//     (one connection) and never runs two of them at once (workers.go);
//   - byte-buffer pools by size class, used for reassembling fragmented
//     messages and for outbound data that outlives a callback (bytes.go).
//
// Everything in this package is safe for concurrent use.
package pool

// Package sse holds end-to-end tests of herald's Server-Sent Events
// endpoint (GET /sse) against the real herald binary on loopback: the
// browser's EventSource in headless Chromium and the eventsource npm
// client, receiving live messages, resuming after a cut with exactly the
// messages they missed (Last-Event-ID), and told `recovered` false when
// the node lost its history. Chromium and the npm client come from `make
// test-deps`; without them the tests fail and say so.
package sse

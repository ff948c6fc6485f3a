// Package browser holds end-to-end tests of herald's browser side against
// the real herald binary on loopback: the demo page in headless Chromium
// (two tabs sharing the counter), herald.js recovering what it missed after
// its connection is cut, and herald.js under Node (reconnect with backoff,
// recovery with since, dedupe, close codes 4001 and 4003, dead-connection
// detection). Chromium and Node's ws package come from `make test-deps`;
// without them the tests fail and say so.
package browser

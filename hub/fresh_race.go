//go:build race

package hub

// checkFresh makes race builds (the test suites' -race runs) check that
// SubscribeNew is never given a pair already subscribed, which would
// otherwise get every message twice.
const checkFresh = true

// Package reconnect is the reconnect advice of herald's protocol: the
// "reconnect_after_ms=N" a draining server puts in its 1001 close reason
// (docs/protocol.md), written by the server and read by the Go client. It
// has no dependencies, so the client links nothing of the server's for it.
// Its functions are pure and safe for concurrent use.
package reconnect

import (
	"strconv"
	"strings"
	"time"
)

// Key names the advice in a close reason.
const Key = "reconnect_after_ms"

// maxAdvice bounds what Parse accepts: a longer wait is not advice anyone
// should follow.
const maxAdvice = time.Hour

// Append adds the advice for d to reason ("reason; reconnect_after_ms=N",
// or the advice alone after an empty reason).
func Append(reason string, d time.Duration) string {
	if reason != "" {
		reason += "; "
	}
	return reason + Key + "=" + strconv.FormatInt(d.Milliseconds(), 10)
}

// Parse reads the advice of a close reason: the delay and true, or false
// when the reason has none (or a delay over an hour).
func Parse(reason string) (time.Duration, bool) {
	i := strings.Index(reason, Key+"=")
	if i < 0 {
		return 0, false
	}
	v := reason[i+len(Key)+1:]
	end := 0
	for end < len(v) && v[end] >= '0' && v[end] <= '9' {
		end++
	}
	ms, err := strconv.ParseInt(v[:end], 10, 64)
	if err != nil || ms > int64(maxAdvice/time.Millisecond) {
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}

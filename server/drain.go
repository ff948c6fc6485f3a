package server

import (
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/herald-push/herald/codec"
	"github.com/herald-push/herald/internal/reconnect"
)

// drainReason is the reason of the 1001 sent when draining.
const drainReason = "server shutting down"

// ReconnectAfterKey names the reconnect advice in a drain's 1001 close
// reason: "server shutting down; reconnect_after_ms=1234" asks the client
// to wait that many milliseconds before it reconnects (docs/protocol.md).
const ReconnectAfterKey = reconnect.Key

// drainClose closes pc for a graceful shutdown. A 1001 gets the
// connection's reconnect advice appended to its reason.
func (s *Server) drainClose(pc interface{ Context() any }) (uint16, string) {
	code, reason := codec.CloseGoingAway, drainReason
	if c, _ := pc.Context().(*Conn); c != nil && c.state == stateStream {
		// An event stream has no close reason: its reconnect advice is
		// the reconnection time EventSource waits before coming back.
		if d := s.reconnectDelay(); d >= 0 {
			b := strconv.AppendInt([]byte("retry: "), d.Milliseconds(), 10)
			c.WriteStream(append(b, "\n\n"...))
		}
		return code, reason
	}
	if d, ok := s.app.(DrainingApp); ok {
		if c, _ := pc.Context().(*Conn); c != nil && c.state == stateOpen {
			code, reason = d.OnDrain(c)
		}
	}
	if code == codec.CloseGoingAway {
		reason = withReconnectAdvice(reason, s.reconnectDelay())
	}
	return code, reason
}

// reconnectDelay picks one connection's reconnect advice, uniform in
// [0, Config.ReconnectSpread); negative when the server gives none.
func (s *Server) reconnectDelay() time.Duration {
	spread := s.cfg.ReconnectSpread.D()
	if spread < 0 {
		return -1
	}
	if spread == 0 {
		spread = DefaultReconnectSpread
	}
	return time.Duration(rand.Int64N(int64(spread)))
}

// withReconnectAdvice appends "; reconnect_after_ms=N" to reason, unless
// d is negative or the reason would no longer fit a close frame.
func withReconnectAdvice(reason string, d time.Duration) string {
	if d < 0 {
		return reason
	}
	r := reconnect.Append(reason, d)
	if len(r) > maxCloseReason {
		return reason
	}
	return r
}

// maxCloseReason is the longest reason a close frame carries (125 bytes
// of control payload less the code).
const maxCloseReason = 123

// ParseReconnectAfter reads the reconnect advice of a close reason: the
// delay of "reconnect_after_ms=N" and true, or false when the reason has
// none.
func ParseReconnectAfter(reason string) (time.Duration, bool) { return reconnect.Parse(reason) }

package push

import (
	"time"

	"github.com/herald-push/herald/codec"
	"github.com/herald-push/herald/server"
)

// Defaults of Options' zero limits.
const (
	// DefaultMaxSubscriptions is the default of Options.MaxSubscriptions.
	DefaultMaxSubscriptions = 128
	// DefaultCommandRate is the default of Options.CommandRate.
	DefaultCommandRate = 50
)

// Session flags.
const (
	// flagPersonal: the session is subscribed to its own user: channel,
	// which MaxSubscriptions does not count.
	flagPersonal uint8 = 1 << iota
	// flagPaging: a recovery backlog of the session waits for room in its
	// output budget (appLoop.pagers).
	flagPaging
	// flagStream: the session is an event stream (Server-Sent Events),
	// not a WebSocket (appLoop.streams).
	flagStream
)

// indexFrom is the number of subscriptions from which a session's channels
// are indexed (appLoop.index): below it a scan of the slice is as fast,
// and most sessions hold a channel or two.
const indexFrom = 8

// find returns the position of ch in s.channels, or -1. O(1) for sessions
// with many channels. s's loop only.
func (a *App) find(s *Session, ch string) int {
	if idx := a.loops[s.conn.Loop().Index()].index[s]; idx != nil {
		if i, ok := idx[ch]; ok {
			return int(i)
		}
		return -1
	}
	for i, have := range s.channels {
		if have == ch {
			return i
		}
	}
	return -1
}

// addChannel records a subscription of s to ch (not already there). s's
// loop only.
func (a *App) addChannel(s *Session, ch string) {
	s.channels = append(s.channels, ch)
	if s.owns(ch) {
		s.flags |= flagPersonal
	}
	pl := &a.loops[s.conn.Loop().Index()]
	switch idx := pl.index[s]; {
	case idx != nil:
		idx[ch] = int32(len(s.channels) - 1)
	case len(s.channels) >= indexFrom:
		if pl.index == nil {
			pl.index = map[*Session]map[string]int32{}
		}
		idx = make(map[string]int32, 2*len(s.channels))
		for i, have := range s.channels {
			idx[have] = int32(i)
		}
		pl.index[s] = idx
	}
}

// removeChannel forgets s's subscription to ch and reports whether there
// was one: the last channel moves into its place, so order is not kept.
// s's loop only.
func (a *App) removeChannel(s *Session, ch string) bool {
	i := a.find(s, ch)
	if i < 0 {
		return false
	}
	idx := a.loops[s.conn.Loop().Index()].index[s]
	last := len(s.channels) - 1
	if i != last {
		s.channels[i] = s.channels[last]
		if idx != nil {
			idx[s.channels[i]] = int32(i)
		}
	}
	s.channels[last] = ""
	s.channels = s.channels[:last]
	if idx != nil {
		delete(idx, ch)
		if len(s.channels) < indexFrom/2 {
			delete(a.loops[s.conn.Loop().Index()].index, s)
		}
	}
	if s.owns(ch) {
		s.flags &^= flagPersonal
	}
	return true
}

// subscriptions is the number of s's subscriptions MaxSubscriptions counts:
// all but the personal channel.
func (s *Session) subscriptions() int {
	n := len(s.channels)
	if s.flags&flagPersonal != 0 {
		n--
	}
	return n
}

// clock is the time base of the command buckets: monotonic nanoseconds
// since the process started, so a bucket is one int64.
var clockStart = time.Now()

func monotonic() int64 { return int64(time.Since(clockStart)) }

// allowCommand takes one command from s's bucket and reports whether it
// was there. The bucket is a GCRA (generic cell rate algorithm): s.tat is
// the theoretical arrival time of the next command; a command that finds
// tat more than burst−1 intervals ahead of now is over the rate. Eight
// bytes per session, nothing to refill while idle. s's loop only.
func (a *App) allowCommand(s *Session) bool {
	if a.interval <= 0 {
		return true
	}
	now := monotonic()
	tat := max(s.tat, now)
	if tat-now > a.tolerance {
		return false
	}
	s.tat = tat + a.interval
	return true
}

// overflow applies the slow-consumer policy to c, whose output budget
// cannot take what is due. c's loop only.
func (a *App) overflow(c *server.Conn) {
	switch a.o.Slow {
	case SlowDrop:
		a.dropped.Add(1)
	case SlowClosePolicy:
		a.slowClosed.Add(1)
		c.Close(codec.ClosePolicyViolation, "slow consumer")
	default:
		a.slowClosed.Add(1)
		c.Close(codec.CloseTryAgainLater, "slow consumer")
	}
}

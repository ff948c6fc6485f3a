package push

import (
	"strconv"

	"github.com/herald-push/herald/codec"
	"github.com/herald-push/herald/hub"
)

// subscribedLen bounds a subscribed reply's bytes besides the channel's
// and the epoch's (escaped, each at most twice their length).
const subscribedLen = len(`{"op":"subscribed","channel":,"offset":18446744073709551615,"epoch":,"recovered":false}`) + 4

// replySubscribed writes the subscribed reply of a subscription without
// an id, as reply does with {"op":"subscribed",...}, built in the loop's
// scratch memory instead of through a map and encoding/json: every
// subscription of an upgrade URL answers one, so it is on the handshake's
// path. Replies are client-caused output: past the budget the connection
// is closed with 1008. s's loop only.
func (a *App) replySubscribed(s *Session, ch string, pos hub.Position, withRecovered, recovered bool) {
	b := s.conn.Loop().Scratch(subscribedLen + 2*len(ch) + 2*len(pos.Epoch))
	b = appendSubscribed(b, ch, pos, withRecovered, recovered)
	s.conn.WriteMessage(codec.OpText, b)
}

// appendSubscribed appends {"op":"subscribed","channel":ch,"offset":N,
// "epoch":E} and, with withRecovered, "recovered".
func appendSubscribed(b []byte, ch string, pos hub.Position, withRecovered, recovered bool) []byte {
	b = append(b, `{"op":"subscribed","channel":`...)
	b = appendJSONName(b, ch)
	b = append(b, `,"offset":`...)
	b = strconv.AppendUint(b, pos.Offset, 10)
	b = append(b, `,"epoch":`...)
	b = appendJSONString(b, []byte(pos.Epoch))
	if withRecovered {
		b = append(b, `,"recovered":`...)
		b = strconv.AppendBool(b, recovered)
	}
	return append(b, '}')
}

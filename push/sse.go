package push

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/herald-push/herald/codec"
	"github.com/herald-push/herald/hub"
	"github.com/herald-push/herald/server"
)

// Server-Sent Events (docs/protocol.md, "Server-Sent Events"): the same
// sessions, subscriptions, recovery and fan-out as the WebSocket, over a
// text/event-stream response that server.StreamApp serves on the loops.
//
// Each published message is one event: a line `id:` of the stream's
// position, written for this connection, then the message's shared text,
// `event: message` and its envelope as `data:`, built once per message
// (Frames.sse) for every stream subscriber. The id carries the position
// of every channel of the stream, `ch:offset:epoch` separated by spaces
// (channel names have no spaces), so that the Last-Event-ID of a
// reconnecting EventSource resumes every channel, exactly after what was
// dispatched: the id is committed by the client with the event it
// precedes, never without it.

// DefaultStreamPath is the event-stream endpoint of Options.StreamPath.
const DefaultStreamPath = "/sse"

// StreamRetry is the reconnection time, in milliseconds, a stream
// advises at its start (`retry:`).
const StreamRetry = 3000

// streamPadding is the size of the comment a stream starts with: proxies
// and old browsers that buffer the first kilobytes of a response then
// pass the stream's first events on at once.
const streamPadding = 2048

// streamPrelude is what every stream starts with: the padding comment and
// the retry advice.
var streamPrelude = server.NewFrame([]byte(":" + strings.Repeat(" ", streamPadding) + "\n" +
	"retry: " + strconv.Itoa(StreamRetry) + "\n\n"))

// stream is the state of an event-stream session, in its loop's table
// (appLoop.streams): the position of each of its channels as last
// dispatched, from which each event's id is built.
type stream struct {
	pos map[string]hub.Position
}

// streaming reports whether s is an event stream.
func (s *Session) streaming() bool { return s.flags&flagStream != 0 }

// AcceptStream serves the event-stream endpoint (server.StreamApp): a
// plain GET of StreamPath, authenticated as the WebSocket's upgrade is,
// subscribing to the channels of the URL from the positions of
// Last-Event-ID (or ?lastEventId=, for polyfills that cannot set it, or
// since=), like since. Other paths are not claimed.
func (a *App) AcceptStream(c *server.Conn, req *codec.Request) (bool, error) {
	if req.Path != a.o.StreamPath {
		return false, nil
	}
	q := parseQuery(req.RawQuery).scan()
	sess, err := a.authenticate(c, req, q.token)
	if err != nil {
		return false, err
	}
	sess.flags |= flagStream
	ps := q.pending(&a.loops[c.Loop().Index()].one)
	if ps == nil {
		ps = &pendingSubs{}
	}
	last := req.LastEventID
	if last == "" {
		last = q.lastEID
	}
	for _, p := range strings.Fields(last) {
		ch, pos, ok := parsePosition(p)
		if !ok {
			continue
		}
		if ps.since == nil {
			ps.since = map[string]hub.Position{}
		}
		ps.since[ch] = pos
	}
	if sess.claims == nil {
		return false, a.askConnect(c, req, sess, ps)
	}
	a.admit(c, sess, ps)
	return true, nil
}

// streamOf is s's stream state. s's loop only.
func (a *App) streamOf(s *Session) *stream {
	return a.loops[s.conn.Loop().Index()].streams[s]
}

// appendStreamID appends the id line of s's stream: every channel's
// position. s's loop only.
func (st *stream) appendID(dst []byte, channels []string) []byte {
	dst = append(dst, "id: "...)
	first := true
	for _, ch := range channels {
		p, ok := st.pos[ch]
		if !ok {
			continue
		}
		if !first {
			dst = append(dst, ' ')
		}
		first = false
		dst = append(dst, ch...)
		dst = append(dst, ':')
		dst = strconv.AppendUint(dst, p.Offset, 10)
		dst = append(dst, ':')
		dst = append(dst, p.Epoch...)
	}
	return append(dst, '\n')
}

// writeMessage queues m for s, in s's transport, within the output
// budget; false when it does not fit (or s is closed). s's loop only.
func (s *Session) writeMessage(m *hub.Message) bool {
	c := s.conn
	if !s.streaming() {
		return c.WriteFrame(s.frameOf(m))
	}
	pl := &s.app.loops[c.Loop().Index()]
	st := pl.streams[s]
	f := framesOf(m).streamEvent()
	was, had := st.pos[m.Channel]
	st.pos[m.Channel] = hub.Position{Offset: m.Offset, Epoch: m.Epoch}
	// Built in the loop's buffer: no allocation per delivery.
	pl.idBuf = st.appendID(pl.idBuf[:0], s.channels)
	id := pl.idBuf
	if !c.Open() || len(id)+f.Len() > c.Room() {
		if had {
			st.pos[m.Channel] = was
		} else {
			delete(st.pos, m.Channel)
		}
		return false
	}
	c.WriteStream(id)
	return c.WriteFrame(f)
}

// streamJoined records where a stream's subscription to ch starts: after
// since when it recovered (its backlog follows), else at pos, and then
// tells a stream that asked to recover and could not. s's loop only.
func (a *App) streamJoined(s *Session, ch string, pos hub.Position, since *hub.Position, recovered bool) {
	st := a.streamOf(s)
	if st == nil {
		return
	}
	if since != nil && recovered {
		st.pos[ch] = *since
		return
	}
	st.pos[ch] = pos
	if since != nil {
		a.streamNotRecovered(s, ch, pos)
	}
}

// streamNotRecovered sends the event `recovered` of a channel whose
// messages since the client's position are gone: the client must refetch
// its state; live messages follow. Its id carries the channel's new
// position. s's loop only.
func (a *App) streamNotRecovered(s *Session, ch string, pos hub.Position) {
	st := a.streamOf(s)
	if st == nil {
		return
	}
	st.pos[ch] = pos
	b, err := json.Marshal(map[string]any{"channel": ch, "recovered": false, "offset": pos.Offset, "epoch": pos.Epoch})
	if err != nil {
		return
	}
	ev := st.appendID(make([]byte, 0, 64+len(b)), s.channels)
	ev = append(ev, "event: recovered\ndata: "...)
	ev = append(append(ev, b...), "\n\n"...)
	if !s.conn.WriteStream(ev) && s.conn.Open() {
		a.overflow(s.conn)
	}
}

// streamReply writes a reply to a stream: only errors are sent, as the
// event `error` with the reply's JSON. s's loop only.
func (a *App) streamReply(s *Session, r map[string]any, b []byte) {
	if r["op"] != "error" {
		return
	}
	ev := append(make([]byte, 0, len(b)+32), "event: error\ndata: "...)
	ev = append(append(ev, b...), "\n\n"...)
	if !s.conn.WriteStream(ev) && s.conn.Open() {
		a.overflow(s.conn)
	}
}

// streamEvent is the event-stream text of the message, shared by every
// stream subscriber, built on first use:
//
//	event: message
//	data: {"channel":"news","offset":42,"data":...}
//
// The envelope's line breaks (whitespace of a payload that is JSON) each
// start a new data: line, which the client joins with "\n".
func (f *Frames) streamEvent() *server.Frame {
	f.sseOnce.Do(func() {
		env := framePayload(f.Envelope.Bytes())
		buf := make([]byte, 0, len(env)+32)
		buf = append(buf, "event: message\ndata: "...)
		for {
			i := bytes.IndexAny(env, "\r\n")
			if i < 0 {
				break
			}
			buf = append(append(buf, env[:i]...), "\ndata: "...)
			if env[i] == '\r' && i+1 < len(env) && env[i+1] == '\n' {
				i++
			}
			env = env[i+1:]
		}
		buf = append(append(buf, env...), "\n\n"...)
		f.sse.Set(buf)
	})
	return &f.sse
}

// framePayload is the payload of an unmasked, uncompressed frame.
func framePayload(frame []byte) []byte {
	switch n := frame[1] & 0x7F; n {
	case 126:
		return frame[4:]
	case 127:
		return frame[10:]
	default:
		return frame[2:]
	}
}

// parsePosition parses channel:offset:epoch; the channel may itself
// contain ':'.
func parsePosition(s string) (string, hub.Position, bool) {
	i := strings.LastIndexByte(s, ':')
	if i <= 0 {
		return "", hub.Position{}, false
	}
	j := strings.LastIndexByte(s[:i], ':')
	if j <= 0 {
		return "", hub.Position{}, false
	}
	off, err := strconv.ParseUint(s[j+1:i], 10, 64)
	if err != nil {
		return "", hub.Position{}, false
	}
	return s[:j], hub.Position{Offset: off, Epoch: s[i+1:]}, true
}

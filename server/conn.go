package server

import (
	"errors"
	"net"
	"time"

	"github.com/herald-push/herald/codec"
	"github.com/herald-push/herald/poller"
)

// App decides what an upgraded WebSocket does. Every method runs on the
// connection's own event loop and must not block: hand blocking work to a
// worker pool and come back with Loop.Run.
type App interface {
	// Attach runs once, in New, before the server serves: the app learns
	// the server it runs on (its loops, through Loops and NumLoops, and
	// its Config). It runs on New's goroutine.
	Attach(s *Server)
	// Accept sees the parsed upgrade request before the 101 is sent. It
	// returns the subprotocol to select ("" for none), or a
	// *codec.HandshakeError to refuse the upgrade with that HTTP status,
	// or ErrDeferred to answer later (Conn.Complete, Conn.Refuse) once
	// work off the loop has decided. req and its strings are a view of
	// the loop's input (codec.ParseHTTPRequestView), valid until the
	// upgrade's OnOpen returns (or, deferred, until Accept returns): what
	// the App keeps past that it copies (strings.Clone, req.Clone). The
	// server keeps its own copy of a deferred request.
	Accept(c *Conn, req *codec.Request) (protocol string, err error)
	// OnOpen runs right after the 101 response is queued; for an upgrade
	// answered at once, the request Accept saw is still valid.
	OnOpen(c *Conn)
	// OnMessage receives each complete text or binary message. payload is
	// valid only during the call.
	OnMessage(c *Conn, op codec.OpCode, payload []byte)
	// OnClose runs once when the connection is gone, whatever the cause.
	OnClose(c *Conn)
}

// WritableApp is an optional interface of an App: OnWritable runs on the
// connection's loop once every byte queued for it has been taken by the
// kernel, after some had to wait (Buffered was above what one write
// sends). An App that stopped queueing at the output budget (Room) resumes
// there, e.g. to page a history backlog larger than the budget. It is not
// called for a connection that is closing.
type WritableApp interface {
	OnWritable(c *Conn)
}

// StreamApp is an optional interface of an App that serves event streams
// (Server-Sent Events) on the WebSocket listener: a plain GET (no upgrade
// fields, codec.Request.Plain) is offered to AcceptStream instead of being
// refused with 400. The App claims the request (ok) or lets the server
// refuse it as a WebSocket endpoint does; a *codec.HandshakeError refuses
// it with that status. req is valid as long as it is for Accept. A claimed stream is answered 200 with
// Content-Type: text/event-stream, then OnOpen runs and the connection
// carries only what the App queues (WriteFrame, WriteStream), within the
// same output budget as a WebSocket; the server sends a comment
// ": ping" every PingInterval for liveness, closes the connection when
// the client sends anything after its request, and never calls
// OnMessage. Close ends the response (the stream is delimited by the
// connection's close). Every other callback is as for a WebSocket.
type StreamApp interface {
	AcceptStream(c *Conn, req *codec.Request) (ok bool, err error)
}

// Conn.flags bits.
const (
	// flagAwaitingPong: the server pinged and has heard nothing since.
	flagAwaitingPong uint8 = 1 << iota
	// flagHandshakeSlot: the connection counts among the handshakes in
	// progress (Config.MaxHandshakes).
	flagHandshakeSlot
	// flagIPHeld: the connection holds per-address slots, recorded in its
	// loop's ips table.
	flagIPHeld
	// flagSawByte: the first byte has arrived.
	flagSawByte
	// flagPartial: a message is incomplete since the time recorded in the
	// loop's partial table.
	flagPartial
	// flagDecoding: OnData is decoding; a message handed to the App may
	// point into the reassembly buffer, which must outlive the call.
	flagDecoding
	// Bits 6 and 7 hold the connection's Mux route (routeMask).
	flagLast = flagDecoding
)

// The flag bits must stay clear of the Mux's route bits.
var _ = [1]struct{}{}[flagLast>>routeShift]

// connection states
const (
	stateHandshake uint8 = iota
	stateOpen
	stateClosing // close frame sent; waiting for the TCP close
	// stateStream: an event stream's 200 is sent; the connection carries
	// what the App queues, and reads nothing more.
	stateStream
)

// Conn is one client connection's WebSocket state. It lives on its event
// loop: every method must be called from that loop's goroutine.
type Conn struct {
	pc    *poller.Conn
	srv   *Server
	dec   codec.Decoder
	state uint8
	// flags are the connection's flag bits (flagAwaitingPong, ...).
	flags uint8
	// z is what permessage-deflate negotiated; zero when it was not.
	z codec.DeflateParams
	// li indexes Server.loops: the poller loop's index, shifted past the
	// plain listener's loops for connections that came in over TLS.
	li int32
	// expiresAt is when the connection's credentials expire (unix seconds;
	// 0 = never); the liveness timer closes it with 4001 then.
	expiresAt int64
	// App is free for the App's own per-connection state.
	App any
}

// ID is a process-unique connection id (for logs).
func (c *Conn) ID() uint64 { return c.pc.ID() }

// Loop is the event loop that owns the connection.
func (c *Conn) Loop() *poller.Loop { return c.pc.Loop() }

// RemoteAddr is the peer's address (for a TLS connection, the address of
// the TLS client, not of the bridge in between).
func (c *Conn) RemoteAddr() net.Addr {
	if p := c.tlsPeer(); p != nil && p.remote != nil {
		return p.remote
	}
	return c.pc.RemoteAddr()
}

// TLS reports whether the connection came in over TLS (wss://).
func (c *Conn) TLS() bool { return c.tlsPeer() != nil }

// tlsPeer is the TLS session of a connection bridged from the TLS
// listener, nil for plain connections. It lives in the loop's table rather
// than in Conn, which every plain connection would pay for.
func (c *Conn) tlsPeer() *tlsPeer {
	if c.srv.tls == nil || int(c.li) < c.srv.tls.offset {
		return nil
	}
	return c.srv.loops[c.li].tlsPeers[c]
}

// scratch returns a zero-length slice with capacity n for bytes to be
// queued on this or any connection of the same loop during the current
// callback: it stays valid until the callback's writes have been flushed
// (see poller.Loop.Scratch). Loop goroutine only.
func (c *Conn) scratch(n int) []byte { return c.pc.Loop().Scratch(n) }

// Open reports whether the connection can still be written to.
func (c *Conn) Open() bool {
	return (c.state == stateOpen || c.state == stateStream) && !c.pc.Closed()
}

// Stream reports whether the connection is an event stream (StreamApp)
// rather than a WebSocket.
func (c *Conn) Stream() bool { return c.state == stateStream }

// WriteStream queues p, bytes of an event stream, copied: it returns false
// and queues nothing when the connection is not an open stream or p does
// not fit Room (the caller decides what that means, as for WriteFrame).
// Loop goroutine only.
func (c *Conn) WriteStream(p []byte) bool {
	if c.state != stateStream || c.pc.Closed() || len(p) > c.Room() {
		return false
	}
	c.pc.Write(append(c.scratch(len(p)), p...))
	return true
}

// Buffered is the number of bytes queued for the peer and not yet sent.
func (c *Conn) Buffered() int { return c.pc.Buffered() }

// Room is the number of bytes that may still be queued for the peer
// within the output budget (Config.WriteBufferLimit minus Buffered, never
// below 0). Every byte herald queues counts against it; close frames are
// always let through past it. Loop goroutine only.
func (c *Conn) Room() int { return max(c.srv.cfg.WriteBufferLimit-c.pc.Buffered(), 0) }

// WriteMessage encodes payload as one frame and queues it, compressed when
// the connection negotiated permessage-deflate and the payload is worth
// it. The payload is copied; the caller may reuse it at once. The frame
// must fit in Room: past the output budget the connection is closed with
// 1008 "output budget exceeded" and WriteMessage returns false (it also
// returns false when the connection is not open). Loop goroutine only.
func (c *Conn) WriteMessage(op codec.OpCode, payload []byte) bool {
	if c.state != stateOpen {
		return false
	}
	room := c.Room()
	if !c.z.Enabled() && codec.FrameHeaderLen(len(payload), false)+len(payload) > room {
		c.srv.budgetExceeded(c)
		return false
	}
	buf := c.scratch(codec.FrameHeaderLen(len(payload), false) + len(payload))
	if c.z.Enabled() {
		buf = c.srv.deflate.AppendFrame(buf, op, payload, c.z.ServerWindowBits)
	} else {
		buf = codec.AppendFrame(buf, op, true, payload)
	}
	if len(buf) > room {
		c.srv.budgetExceeded(c)
		return false
	}
	c.writePrepared(buf)
	return true
}

// budgetExceeded closes c for output it caused (replies, pongs) past the
// output budget.
func (s *Server) budgetExceeded(c *Conn) {
	s.stats.OutputBudget.Add(1)
	code, reason := uint16(codec.ClosePolicyViolation), "output budget exceeded"
	if b, ok := s.app.(BudgetApp); ok {
		code, reason = b.OnBudget(c)
	}
	s.closeConn(c.pc, code, reason)
}

// writePrepared queues an encoded frame as one message sent, whatever the
// budget; the bytes must stay unchanged until the loop has flushed them.
func (c *Conn) writePrepared(frame []byte) {
	c.pc.Write(frame)
	c.srv.loops[c.li].counted.messagesOut.Add(1)
}

// ExpireAt makes the server close the connection with CloseTokenExpired
// (4001) at t, e.g. when its token expires.
func (c *Conn) ExpireAt(t time.Time) {
	c.expiresAt = max(t.Unix(), 1)
	c.srv.armTimer(c)
}

// Close sends a close frame with code and reason and closes the TCP
// connection once it is flushed.
func (c *Conn) Close(code uint16, reason string) {
	c.srv.closeConn(c.pc, code, reason)
}

// closeConn sends a close frame (if the WebSocket is open) and closes pc.
func (s *Server) closeConn(pc *poller.Conn, code uint16, reason string) {
	c, _ := pc.Context().(*Conn)
	if c != nil && c.state == stateStream {
		c.state = stateClosing // the close ends the response
	}
	if c != nil && c.state == stateOpen {
		buf := c.scratch(codec.FrameHeaderLen(125, false) + 125)
		pc.Write(codec.AppendClose(buf, code, reason))
		c.state = stateClosing
		if c.flags&flagDecoding == 0 {
			s.dropReassembly(c) // else OnData drops it once decoding ends
		}
	}
	pc.Close()
}

// CloseTokenExpired is the close code sent when a connection's token
// expires: the client should fetch a fresh token and reconnect.
const CloseTokenExpired = 4001

// armTimer sets the connection's one deadline to the next ping or the
// credentials' expiry, whichever comes first.
func (s *Server) armTimer(c *Conn) {
	d := time.Duration(0)
	if s.cfg.PingInterval > 0 {
		d = s.cfg.PingInterval.D()
	}
	s.armTimerFor(c, d)
}

// armTimerFor sets the deadline to d from now (0: none), or earlier when
// the credentials expire sooner.
func (s *Server) armTimerFor(c *Conn, d time.Duration) {
	if c.expiresAt != 0 {
		left := time.Unix(c.expiresAt, 0).Sub(c.Loop().Now())
		if left < time.Second {
			left = time.Second
		}
		if d == 0 || left < d {
			d = left
		}
	}
	if c.flags&flagPartial != 0 {
		left := max(s.messageDeadline(c)-time.Duration(time.Now().UnixNano()), time.Millisecond)
		if d == 0 || left < d {
			d = left
		}
	}
	if d == 0 {
		c.pc.StopTimer()
		return
	}
	c.pc.SetTimer(d)
}

// handler adapts Server to poller.Handler; a separate type keeps the
// callbacks out of Server's exported method set.
type handler Server

var (
	_ poller.Handler         = (*handler)(nil)
	_ poller.WritableHandler = (*handler)(nil)
)

func (h *handler) srv() *Server { return (*Server)(h) }

// OnOpen starts the handshake deadline.
func (h *handler) OnOpen(pc *poller.Conn) { h.srv().open(pc, int32(pc.Loop().Index()), nil) }

// open sets up a new connection on loop state li; peer is non-nil for a
// connection bridged from the TLS listener.
func (s *Server) open(pc *poller.Conn, li int32, peer *tlsPeer) {
	n := s.conns.Add(1)
	c := &Conn{pc: pc, srv: s, li: li}
	if peer != nil {
		ls := &s.loops[li]
		if ls.tlsPeers == nil {
			ls.tlsPeers = map[*Conn]*tlsPeer{}
		}
		ls.tlsPeers[c] = peer
	}
	pc.SetContext(c)
	if s.draining.Load() {
		s.stats.HandshakesFailed.Add(1)
		s.refuse(pc, 503, "server is draining")
		return
	}
	// TLS connections were paced by the TLS listener (tlsSide.admit).
	if peer == nil && s.paced() {
		s.refusePaced(c)
		return
	}
	if s.cfg.MaxConns > 0 && n > int64(s.cfg.MaxConns) {
		s.stats.HandshakesFailed.Add(1)
		s.stats.RefusedMaxConns.Add(1)
		s.logRefusal(c, 503, "max_conns")
		s.refuse(pc, 503, "server is at capacity")
		return
	}
	if peer == nil {
		// Plain connections are admitted here, as they are accepted;
		// TLS ones were admitted by the TLS listener (see tlsSide.admit).
		ip, hasIP := s.adm.peerOf(pc)
		hold, status, reason := s.admit(ip, hasIP)
		if status != 0 {
			s.stats.HandshakesFailed.Add(1)
			s.logRefusal(c, status, reason)
			s.refuse(pc, status, reason)
			return
		}
		s.hold(c, hold)
	}
	pc.SetTimer(s.cfg.FirstByteTimeout.D())
}

// OnData runs the handshake and then the frame decoder over what is
// buffered.
func (h *handler) OnData(pc *poller.Conn, in []byte) int {
	s := h.srv()
	c, _ := pc.Context().(*Conn)
	if c == nil || pc.Closed() {
		return len(in)
	}
	consumed := 0
	if c.state == stateHandshake && s.isDeferred(c) {
		// The client sent more before the upgrade's answer (RFC 6455
		// 4.1: it must wait for it; an event stream sends nothing).
		s.refuseHandshake(c, errEarlyData, 400)
		return len(in)
	}
	if c.state == stateHandshake {
		if c.flags&flagSawByte == 0 {
			// The first-byte deadline is met; the request has the
			// handshake timeout from now.
			c.flags |= flagSawByte
			pc.SetTimer(s.cfg.HandshakeTimeout.D())
		}
		n, ok := s.handshake(c, in)
		if !ok {
			return len(in)
		}
		if n == 0 {
			return 0 // header incomplete
		}
		consumed, in = n, in[n:]
		if c.state == stateHandshake {
			return consumed // deferred: the App answers later
		}
	}
	if c.state == stateStream {
		// An event stream's request has no body and is the last: anything
		// more is not an EventSource's, and ends the stream.
		if len(in) > 0 {
			s.closeConn(pc, 0, "")
		}
		return consumed + len(in)
	}
	if c.state == stateClosing {
		return consumed + len(in) // ignore anything after our close
	}
	s.loops[c.li].counted.bytesIn.Add(uint64(len(in)))
	if len(in) > 0 && (s.cfg.PingInterval > 0 || c.flags&flagAwaitingPong != 0) {
		c.flags &^= flagAwaitingPong
		s.armTimer(c)
	}
	held := c.dec.Buffered()
	c.flags |= flagDecoding
	n, framed, completed := s.decode(c, in)
	c.flags &^= flagDecoding
	consumed, in = consumed+n, in[n:]
	if c.state != stateOpen {
		s.dropReassembly(c)
		return consumed + len(in)
	}
	s.countReassembly(c)
	s.boundInput(c, len(in)+s.loops[c.li].recordRest, c.dec.Buffered() > held, framed, completed)
	return consumed
}

// countReassembly brings Server.inbound up to date with what c's decoder
// holds for an unfinished message.
func (s *Server) countReassembly(c *Conn) {
	ls := &s.loops[c.li]
	now := int64(c.dec.Buffered())
	was := ls.reassembly[c]
	if now == was {
		return
	}
	s.inbound.Add(now - was)
	if now == 0 {
		delete(ls.reassembly, c)
		return
	}
	if ls.reassembly == nil {
		ls.reassembly = map[*Conn]int64{}
	}
	ls.reassembly[c] = now
}

// dropReassembly frees c's unfinished message, if any, and uncounts it:
// once a connection is closing, nothing it sent will be read again.
func (s *Server) dropReassembly(c *Conn) {
	ls := &s.loops[c.li]
	if was, ok := ls.reassembly[c]; ok {
		s.inbound.Add(-was)
		delete(ls.reassembly, c)
	}
	c.dec.Reset()
}

// decode runs the frame decoder over in while the connection is open and
// returns the bytes consumed and whether a complete message or a control
// frame was decoded.
func (s *Server) decode(c *Conn, in []byte) (consumed int, framed, completed bool) {
	for c.state == stateOpen {
		msg, n, err := c.dec.Next(in)
		consumed, in = consumed+n, in[n:]
		if err != nil {
			s.protocolError(c, err)
			return consumed + len(in), framed, completed
		}
		if msg.Op == 0 {
			break
		}
		framed = true
		if msg.Op == codec.OpText || msg.Op == codec.OpBinary {
			completed = true
		}
		s.frame(c, &msg)
	}
	return consumed, framed, completed
}

// boundInput applies the inbound limits once OnData has decoded what it
// could: rest bytes stay unconsumed (a partial frame, or a partial TLS
// record), grew tells whether the reassembly buffer grew and framed
// whether a complete message or a control frame was decoded, completed
// whether a data message was. Input held past the node's
// MaxInboundBuffered closes the connection with 1013; a message that stays
// incomplete starts the MessageTimeout clock, which only a decoded message
// or control frame with nothing left pending stops: a TLS record that
// completes without carrying one (padding, an empty record) leaves it
// running, and so do control frames between a message's fragments. What
// is pending after a completed data message belongs to a later message,
// whose clock starts then: a client streaming messages whose reads each
// end inside a frame is not timed as one endless message.
func (s *Server) boundInput(c *Conn, rest int, grew, framed, completed bool) {
	if max := s.cfg.MaxInboundBuffered; max > 0 && (rest > 0 || grew) && s.inboundBuffered()+int64(rest) > max {
		s.stats.InboundMemory.Add(1)
		s.closeConn(c.pc, codec.CloseTryAgainLater, "server busy")
		return
	}
	if s.cfg.MessageTimeout <= 0 {
		return
	}
	incomplete := rest > 0 || c.dec.InMessage()
	switch partial := c.flags&flagPartial != 0; {
	case incomplete && !partial:
		c.flags |= flagPartial
		ls := &s.loops[c.li]
		if ls.partial == nil {
			ls.partial = map[*Conn]int64{}
		}
		ls.partial[c] = time.Now().UnixNano()
		s.armTimer(c)
	case !incomplete && partial && framed:
		s.endPartial(c)
		s.armTimer(c)
	case incomplete && partial && completed:
		s.loops[c.li].partial[c] = time.Now().UnixNano()
		s.armTimer(c)
	}
}

// endPartial forgets when c's incomplete message started.
func (s *Server) endPartial(c *Conn) {
	if c.flags&flagPartial != 0 {
		c.flags &^= flagPartial
		delete(s.loops[c.li].partial, c)
	}
}

// messageDeadline is when c's incomplete message runs out of time, in
// unix nanoseconds.
func (s *Server) messageDeadline(c *Conn) time.Duration {
	return time.Duration(s.loops[c.li].partial[c]) + s.cfg.MessageTimeout.D()
}

// handshake parses the upgrade request. It returns the bytes consumed (0
// while the header is incomplete) and false if the connection was refused.
//
// The request is parsed in place into the loop's request (no copy of the
// header, no allocation: the upgrade path of a reconnect storm), so it
// is a view of in, valid until handshake returns; a deferred upgrade
// keeps a copy.
func (s *Server) handshake(c *Conn, in []byte) (int, bool) {
	req := &s.loops[c.li].req
	n, err := codec.ParseHTTPRequestView(req, in, s.hsLimit)
	if checkViews && n > 0 {
		// Race builds scribble over the header once it is consumed, so
		// that an App keeping a view of it fails its tests.
		defer scribble(in[:n])
	}
	if errors.Is(err, codec.ErrIncomplete) {
		return 0, true
	}
	if err != nil {
		return s.refuseHandshake(c, err, 400)
	}
	if req.Plain {
		return s.acceptStream(c, req, n, len(in))
	}
	protocol, err := s.app.Accept(c, req)
	if errors.Is(err, ErrDeferred) {
		return s.deferUpgrade(c, req, n, len(in))
	}
	if err != nil {
		return s.refuseHandshake(c, err, 403)
	}
	s.upgrade(c, req, protocol)
	return n, true
}

// upgrade answers an accepted upgrade with 101 and opens the WebSocket.
func (s *Server) upgrade(c *Conn, req *codec.Request, protocol string) {
	ext := ""
	dec := &s.decCfg
	if s.deflate != nil {
		if z, ok := codec.NegotiateDeflate(req.Extensions); ok {
			c.z = z
			ext = z.Response()
			s.stats.HandshakesDeflate.Add(1)
			dec = &s.decCfgDeflate
		}
	}
	resp := codec.AppendAccept(c.scratch(256+len(protocol)+len(ext)), req, protocol, ext)
	c.pc.Write(resp)
	c.state = stateOpen
	s.releaseHandshake(c)
	c.dec.Init(dec)
	s.loops[c.li].counted.handshakesOK.Add(1)
	s.armTimer(c)
	s.app.OnOpen(c)
}

// refuseHandshake answers a refused upgrade (or stream request) with the
// status err carries (a *codec.HandshakeError), else status, counts and
// logs it (rate-limited), and closes. It returns as handshake does.
func (s *Server) refuseHandshake(c *Conn, err error, status int) (int, bool) {
	s.stats.HandshakesFailed.Add(1)
	reason := err.Error()
	var he *codec.HandshakeError
	if errors.As(err, &he) {
		status, reason = he.Status, he.Reason
	}
	s.logRefusal(c, status, reason)
	s.refuse(c.pc, status, reason)
	return 0, false
}

// streamResponse is the head of an event stream's response: no length, so
// the body runs until the connection closes; no caching and no buffering
// by proxies (X-Accel-Buffering is nginx's).
const streamResponse = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n" +
	"Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\nConnection: close\r\n"

// acceptStream offers a plain GET to a StreamApp and, when it claims it,
// answers 200 and opens the stream; avail is the bytes buffered, the
// request's n among them. It returns as handshake does.
func (s *Server) acceptStream(c *Conn, req *codec.Request, n, avail int) (int, bool) {
	var ok bool
	var err error = codec.ErrNotUpgrade
	if sa, is := s.app.(StreamApp); is {
		if ok, err = sa.AcceptStream(c, req); err == nil && !ok {
			err = codec.ErrNotUpgrade
		}
	}
	if errors.Is(err, ErrDeferred) {
		return s.deferUpgrade(c, req, n, avail)
	}
	if err != nil {
		return s.refuseHandshake(c, err, 403)
	}
	s.openStream(c, req)
	return n, true
}

// openStream answers a claimed event-stream request with 200 and opens
// the stream.
func (s *Server) openStream(c *Conn, req *codec.Request) {
	resp := append(c.scratch(len(streamResponse)+64+len(req.Origin)), streamResponse...)
	if req.Origin != "" {
		// The App accepted the Origin: let the page read the stream.
		resp = append(resp, "Access-Control-Allow-Origin: "...)
		resp = append(resp, req.Origin...)
		resp = append(resp, "\r\nVary: Origin\r\n"...)
	}
	c.pc.Write(append(resp, "\r\n"...))
	c.state = stateStream
	s.releaseHandshake(c)
	s.loops[c.li].counted.handshakesOK.Add(1)
	s.stats.Streams.Add(1)
	s.armTimer(c)
	s.app.OnOpen(c)
}

// streamPing is the heartbeat of an event stream: a comment, which
// EventSource ignores.
const streamPing = ": ping\n\n"

// writeControl queues an uncompressed control frame (ping, pong, close)
// built in the loop's scratch memory.
func (s *Server) writeControl(c *Conn, op codec.OpCode, payload []byte) {
	buf := c.scratch(codec.FrameHeaderLen(len(payload), false) + len(payload))
	c.pc.Write(codec.AppendFrame(buf, op, true, payload))
}

// refuse answers an HTTP error and closes.
func (s *Server) refuse(pc *poller.Conn, status int, reason string) {
	buf := pc.Loop().Scratch(256 + len(reason))
	pc.Write(codec.AppendHTTPError(buf, status, reason))
	pc.Close()
}

// frame handles one decoded message or control frame.
func (s *Server) frame(c *Conn, msg *codec.Message) {
	switch msg.Op {
	case codec.OpText, codec.OpBinary:
		s.loops[c.li].counted.messagesIn.Add(1)
		if !msg.Compressed {
			s.app.OnMessage(c, msg.Op, msg.Payload)
			return
		}
		buf, err := s.deflate.Inflate(msg.Payload, msg.Op == codec.OpText)
		if err != nil {
			s.protocolError(c, err)
			return
		}
		s.app.OnMessage(c, msg.Op, *buf)
		s.deflate.Release(buf)
	case codec.OpPing:
		// A pong is output the client asks for: it counts against the
		// budget, or a client that pings and never reads grows its queue
		// without bound.
		if codec.FrameHeaderLen(len(msg.Payload), false)+len(msg.Payload) > c.Room() {
			s.budgetExceeded(c)
			return
		}
		s.writeControl(c, codec.OpPong, msg.Payload)
	case codec.OpPong:
		// Liveness was already refreshed by the arrival of bytes.
	case codec.OpClose:
		code := msg.CloseCode
		if code == codec.CloseNoStatus {
			// RFC 6455 5.5.1: echo the status code received; with none, send none.
			s.writeControl(c, codec.OpClose, nil)
			c.state = stateClosing
			c.pc.Close()
			return
		}
		s.closeConn(c.pc, code, "")
	}
}

// protocolError closes the connection with the code the decoder chose.
func (s *Server) protocolError(c *Conn, err error) {
	s.stats.ProtocolErrors.Add(1)
	code, reason := uint16(codec.CloseProtocolError), err.Error()
	var ce *codec.CloseError
	if errors.As(err, &ce) {
		code, reason = ce.Code, ce.Reason
	}
	if ok, left := s.errorLog.allow(); ok {
		s.log.Debug("protocol error", "conn", c.ID(), "remote", c.RemoteAddr(), "code", code, "reason", reason, "suppressed", left)
	}
	s.closeConn(c.pc, code, reason)
}

// OnTimer enforces the handshake deadline and the ping/pong liveness check.
func (h *handler) OnTimer(pc *poller.Conn) {
	s := h.srv()
	c, _ := pc.Context().(*Conn)
	if c == nil {
		pc.Close()
		return
	}
	switch c.state {
	case stateHandshake:
		s.stats.HandshakeTimeouts.Add(1)
		if c.flags&flagSawByte == 0 {
			s.stats.FirstByteTimeouts.Add(1)
		}
		s.log.Debug("handshake timeout", "conn", c.ID(), "remote", c.RemoteAddr())
		pc.Close()
	case stateStream:
		if c.expiresAt != 0 && time.Now().Unix() >= c.expiresAt {
			s.stats.TokenExpired.Add(1)
			s.closeConn(pc, CloseTokenExpired, "token expired")
			return
		}
		if len(streamPing) > c.Room() {
			// The client reads nothing: what waits for it already fills
			// its budget.
			s.budgetExceeded(c)
			return
		}
		pc.Write([]byte(streamPing))
		s.armTimer(c)
	case stateOpen:
		if c.flags&flagPartial != 0 && time.Duration(time.Now().UnixNano()) >= s.messageDeadline(c) {
			s.stats.MessageTimeouts.Add(1)
			s.closeConn(pc, codec.ClosePolicyViolation, "message timeout")
			return
		}
		if c.expiresAt != 0 && time.Now().Unix() >= c.expiresAt {
			s.stats.TokenExpired.Add(1)
			s.log.Debug("credentials expired", "conn", c.ID())
			s.closeConn(pc, CloseTokenExpired, "token expired")
			return
		}
		if s.cfg.PingInterval <= 0 {
			// No pings: the timer was for a deadline that has not come
			// (a partial message's, completed since, or the expiry).
			s.armTimer(c)
			return
		}
		if c.flags&flagAwaitingPong != 0 {
			s.stats.PingTimeouts.Add(1)
			s.log.Debug("ping timeout", "conn", c.ID(), "remote", c.RemoteAddr())
			s.closeConn(pc, codec.CloseGoingAway, "ping timeout")
			return
		}
		s.writeControl(c, codec.OpPing, nil)
		c.flags |= flagAwaitingPong
		s.armTimerFor(c, s.cfg.PongTimeout.D())
	default:
		pc.Close()
	}
}

// OnWritable passes the poller's news on to a WritableApp.
func (h *handler) OnWritable(pc *poller.Conn) {
	w, ok := h.srv().app.(WritableApp)
	if !ok {
		return
	}
	if c, _ := pc.Context().(*Conn); c != nil && c.Open() {
		w.OnWritable(c)
	}
}

// OnClose releases the connection's state.
func (h *handler) OnClose(pc *poller.Conn, err error) {
	s := h.srv()
	s.conns.Add(-1)
	c, _ := pc.Context().(*Conn)
	if c == nil {
		return
	}
	if c.state != stateHandshake {
		s.app.OnClose(c)
	}
	s.undefer(c)
	s.releaseAll(c)
	s.endPartial(c)
	s.dropReassembly(c)
	c.state = stateClosing
	if m := s.loops[c.li].tlsPeers; m != nil {
		delete(m, c)
	}
}

// EchoApp is the RFC 6455 echo server: every text or binary message comes
// back with the same opcode, on any path.
type EchoApp struct{}

// Attach does nothing.
func (EchoApp) Attach(*Server) {}

// Accept takes every well-formed upgrade.
func (EchoApp) Accept(*Conn, *codec.Request) (string, error) { return "", nil }

// OnOpen does nothing.
func (EchoApp) OnOpen(*Conn) {}

// OnMessage echoes the message.
func (EchoApp) OnMessage(c *Conn, op codec.OpCode, payload []byte) { c.WriteMessage(op, payload) }

// OnClose does nothing.
func (EchoApp) OnClose(*Conn) {}

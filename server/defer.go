package server

import (
	"errors"

	"github.com/herald-push/herald/codec"
)

// ErrDeferred, returned by App.Accept or StreamApp.AcceptStream, holds
// the upgrade back while the App decides off the loop (a backend hook):
// nothing is answered yet, and the App later calls Conn.Complete or
// Conn.Refuse on the connection's loop (from Loop.Run). Meanwhile the
// connection stays in its handshake: it keeps its handshake slots (so
// Config.MaxHandshakes bounds the upgrades waiting), the handshake timeout
// still runs and closes it unanswered when it passes, and a byte from
// the client before the answer (which RFC 6455 4.1 forbids, and an event
// stream never sends) refuses it with 400. OnClose is not called for a
// connection whose upgrade never completed: the App keeps its pending
// state in the deferred work, not in per-connection tables.
var ErrDeferred = errors.New("server: upgrade deferred")

// errEarlyData refuses a deferred upgrade whose client did not wait for
// the answer.
var errEarlyData = &codec.HandshakeError{Status: 400, Reason: "data sent before the upgrade's answer"}

// deferUpgrade records a deferred upgrade; avail is the bytes buffered,
// the request's n among them. It returns as handshake does.
func (s *Server) deferUpgrade(c *Conn, req *codec.Request, n, avail int) (int, bool) {
	if avail > n {
		return s.refuseHandshake(c, errEarlyData, 400)
	}
	// req is a view of the input, which the loop reuses once this
	// returns.
	own, err := req.Clone()
	if err != nil {
		return s.refuseHandshake(c, err, 400)
	}
	ls := &s.loops[c.li]
	if ls.deferred == nil {
		ls.deferred = map[*Conn]*codec.Request{}
	}
	ls.deferred[c] = own
	s.stats.HandshakesDeferred.Add(1)
	return n, true
}

// isDeferred reports whether c's upgrade waits for the App's answer.
func (s *Server) isDeferred(c *Conn) bool {
	_, ok := s.loops[c.li].deferred[c]
	return ok
}

// undefer forgets c's deferred upgrade and returns its request, or nil
// when there is none (never deferred, already answered, or closed).
func (s *Server) undefer(c *Conn) *codec.Request {
	ls := &s.loops[c.li]
	req, ok := ls.deferred[c]
	if !ok {
		return nil
	}
	delete(ls.deferred, c)
	if c.pc.Closed() {
		return nil
	}
	return req
}

// Deferred reports whether the connection's upgrade waits for the App's
// answer (ErrDeferred): Complete or Refuse would act. Loop goroutine only.
func (c *Conn) Deferred() bool {
	return c.state == stateHandshake && c.srv.isDeferred(c) && !c.pc.Closed()
}

// Complete answers a deferred upgrade as accepted: 101 with protocol
// (the subprotocol to select, "" for none) for a WebSocket, 200 for an
// event stream, then OnOpen runs as for an upgrade accepted at once. It
// returns false and does nothing when the upgrade no longer waits (the
// connection closed or timed out, or was answered already), and refuses
// it with 503 and returns false once the server is draining. Loop
// goroutine only.
func (c *Conn) Complete(protocol string) bool {
	req := c.srv.undefer(c)
	if req == nil {
		return false
	}
	if c.srv.draining.Load() {
		// Answered after the drain began: come back to another node.
		c.srv.stats.HandshakesFailed.Add(1)
		c.srv.refuse(c.pc, 503, "server is draining")
		return false
	}
	if req.Plain {
		c.srv.openStream(c, req)
	} else {
		c.srv.upgrade(c, req, protocol)
	}
	return true
}

// Refuse answers a deferred upgrade as refused, with the status of err
// (a *codec.HandshakeError; else 403 and err's text, or "forbidden" for
// nil), and closes the
// connection; 503 and 429 carry Retry-After. It returns false and does
// nothing when the upgrade no longer waits. Loop goroutine only.
func (c *Conn) Refuse(err error) bool {
	if c.srv.undefer(c) == nil {
		return false
	}
	if err == nil {
		err = &codec.HandshakeError{Status: 403, Reason: "forbidden"}
	}
	c.srv.refuseHandshake(c, err, 403)
	return true
}

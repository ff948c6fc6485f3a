package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync/atomic"

	"github.com/herald-push/herald/poller"
	"github.com/herald-push/herald/tlsbridge"
	"github.com/herald-push/herald/tlsrec"
)

// The wss:// path. tlsbridge accepts TLS connections and runs each
// handshake with crypto/tls on a goroutine, under a deadline and a bound
// on the handshakes in flight. Then, with the loop engine (the default),
// a TLS 1.3 connection's socket itself is enrolled in a poller.Client
// whose loops run this server's handler behind a TLS record layer
// (tlsrec): OnData opens records in place before the handler sees the
// plaintext, and Seal (poller.Sealer) turns what the handler wrote into
// records at each flush. The handshake goroutine is gone by then: an idle
// connection costs its tlsrec.Conn (keys and sequence numbers) and one
// descriptor. TLS 1.2 connections, and every connection with the bridge
// engine, are bridged instead: two goroutines pump plaintext through a
// Unix socket pair whose loop end is enrolled in the same loops. Either
// way, from the upgrade request on, a TLS connection goes through exactly
// the state machine, hub and backpressure of a plain one. The TLS loops
// are numbered after the plain loops (poller.Config.FirstIndex), so one
// index serves Server.loops, the push app's tables and the hub.

// tlsPeer is what a TLS connection's Conn knows of its client.
type tlsPeer struct {
	remote  net.Addr
	version uint16
	// rec is the record layer of a connection on the loop engine; nil for
	// a bridged one.
	rec *tlsrec.Conn
}

// directOpen is the context of a loop-engine connection from its enroll
// to its OnOpen.
type directOpen struct {
	peer tlsbridge.Peer
	rec  *tlsrec.Conn
}

// tlsSide is the TLS listener, its bridge and the loops it feeds.
type tlsSide struct {
	srv    *Server
	client *poller.Client
	bridge *tlsbridge.Bridge
	offset int // index in Server.loops of the first TLS loop's state
	ln     net.Listener
	// certs is the certificate pair new handshakes get (see ReloadTLS).
	certs *certStore
	// onLoop counts the open loop-engine connections; recordErrors the
	// connections closed for a bad record or a fatal alert.
	onLoop       atomic.Int64
	recordErrors atomic.Uint64
}

// newTLSSide loads the certificate and prepares (without starting) the
// TLS loops and bridge; plainLoops is the number of plain loops.
func newTLSSide(s *Server, plainLoops int) (*tlsSide, error) {
	certs, err := newCertStore(s.cfg.TLSCert, s.cfg.TLSKey)
	if err != nil {
		return nil, err
	}
	t := &tlsSide{srv: s, offset: plainLoops, certs: certs}
	t.client, err = poller.NewClient(poller.Config{
		Backend:     s.cfg.PollerBackend,
		Loops:       plainLoops,
		FirstIndex:  plainLoops, // their state follows the plain loops' in Server.loops
		HoldWait:    holdWait(2 * plainLoops),
		CloseLinger: lingerOf(s.cfg.CloseLinger),
		Logger:      s.log,
	}, (*tlsHandler)(s))
	if err != nil {
		return nil, fmt.Errorf("tls loops: %w", err)
	}
	var direct func(net.Conn, tlsbridge.Peer) error
	if s.cfg.TLSEngine != TLSEngineBridge {
		direct = t.direct
	}
	t.bridge, err = tlsbridge.New(tlsbridge.Config{
		Direct: direct,
		TLS: &tls.Config{
			GetCertificate: certs.get,
			MinVersion:     tls.VersionTLS12,
			NextProtos:     []string{"http/1.1"},
		},
		HandshakeTimeout: s.cfg.HandshakeTimeout.D(),
		HelloTimeout:     s.cfg.FirstByteTimeout.D(),
		MaxHandshakes:    s.cfg.TLSMaxHandshakes,
		CloseLinger:      lingerOf(s.cfg.CloseLinger),
		Overload:         overloadResponse,
		Admit:            t.admit,
		Leave:            t.leave,
		Logger:           s.log,
	}, t.enroll)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	return t, nil
}

// start binds the TLS listener and starts the loops and the bridge.
func (t *tlsSide) start() error {
	lc := net.ListenConfig{Control: poller.DeferAcceptControl(t.srv.cfg.DeferAccept.D())}
	ln, err := lc.Listen(context.Background(), "tcp", t.srv.cfg.TLSListen)
	if err != nil {
		return fmt.Errorf("tls listen %s: %w", t.srv.cfg.TLSListen, err)
	}
	if err := t.client.Start(); err != nil {
		_ = ln.Close()
		return fmt.Errorf("tls loops: %w", err)
	}
	t.ln = ln
	go func() {
		if err := t.bridge.Serve(ln); err != nil && !errors.Is(err, tlsbridge.ErrClosed) {
			t.srv.log.Error("tls listener stopped", "err", err)
		}
	}()
	return nil
}

// stop closes the listener, whatever bridged connections are left, and
// the TLS loops.
func (t *tlsSide) stop() {
	_ = t.bridge.Close()
	if err := t.client.Stop(); err != nil {
		t.srv.log.Warn("stopping tls loops", "err", err)
	}
}

// admit counts a TLS connection against the handshake and per-address
// limits as it is accepted, before its TLS handshake: the ticket it
// returns holds the slots until the upgrade (handshake slots) and the
// close (connection slot). Called on the bridge's accepting goroutine.
func (t *tlsSide) admit(remote net.Addr) (any, bool) {
	s := t.srv
	if s.paced() {
		if ok, left := s.refusalLog.allow(); ok {
			s.log.Info("tls connection refused", "remote", remote, "status", 503, "reason", "accept_rate", "suppressed", left)
		}
		return nil, false
	}
	ip, hasIP := peerIP(remote)
	h, status, reason := s.admit(ip, hasIP)
	if status != 0 {
		s.stats.HandshakesFailed.Add(1)
		if ok, left := s.refusalLog.allow(); ok {
			s.log.Info("tls connection refused", "remote", remote, "status", status, "reason", reason, "suppressed", left)
		}
		return nil, false
	}
	return &h, true
}

// leave gives back the slots of a TLS connection that never reached a
// loop (failed handshake).
func (t *tlsSide) leave(ticket any) {
	if h, ok := ticket.(*ipHold); ok {
		t.srv.release(*h, true)
	}
}

// enroll hands a bridged connection's plaintext end to a TLS loop and
// records its client's address and admission slots there before any byte
// flows.
func (t *tlsSide) enroll(plain net.Conn, peer tlsbridge.Peer) error {
	pc, err := t.client.Enroll(plain)
	if err != nil {
		t.leave(peer.Ticket)
		return err
	}
	res := make(chan bool, 1)
	err = pc.Loop().Run(func() {
		c, _ := pc.Context().(*Conn)
		var tp *tlsPeer
		if c != nil {
			tp = c.tlsPeer()
		}
		if tp == nil || pc.Closed() {
			t.leave(peer.Ticket)
			res <- false
			return
		}
		tp.remote = peer.Remote
		tp.version = peer.Version
		if h, ok := peer.Ticket.(*ipHold); ok {
			t.srv.hold(c, *h)
		}
		res <- true
	})
	if err != nil {
		t.leave(peer.Ticket)
		return fmt.Errorf("tls enroll: %w", err)
	}
	if !<-res {
		return errors.New("tls enroll: connection refused by the server")
	}
	return nil
}

// direct hands a TLS 1.3 connection, handshake done, to a TLS loop with
// its record layer (loop engine). Called on the handshake goroutine.
func (t *tlsSide) direct(raw net.Conn, peer tlsbridge.Peer) error {
	rec, err := tlsrec.New(peer.CipherSuite, peer.ClientSecret, peer.ServerSecret)
	clear(peer.ClientSecret)
	clear(peer.ServerSecret)
	peer.ClientSecret, peer.ServerSecret = nil, nil
	if err != nil {
		_ = raw.Close()
		t.leave(peer.Ticket)
		return err
	}
	if _, err := t.client.EnrollContext(raw, &directOpen{peer: peer, rec: rec}); err != nil {
		t.leave(peer.Ticket)
		return err
	}
	return nil
}

// tlsHandler is the poller handler of the TLS loops: the server's own,
// except that connections are marked as TLS, and those of the loop engine
// have their records opened and sealed here.
type tlsHandler Server

var (
	_ poller.WritableHandler = (*tlsHandler)(nil)
	_ poller.Sealer          = (*tlsHandler)(nil)
)

func (h *tlsHandler) OnOpen(pc *poller.Conn) {
	s := (*Server)(h)
	d, _ := pc.Context().(*directOpen)
	if d == nil {
		s.open(pc, int32(pc.Loop().Index()), &tlsPeer{})
		return
	}
	s.tls.onLoop.Add(1)
	s.open(pc, int32(pc.Loop().Index()), &tlsPeer{remote: d.peer.Remote, version: d.peer.Version, rec: d.rec})
	c, _ := pc.Context().(*Conn)
	h2, ok := d.peer.Ticket.(*ipHold)
	switch {
	case !ok:
	case c == nil || pc.Closed():
		s.tls.leave(d.peer.Ticket)
	default:
		s.hold(c, *h2)
	}
}

// peerOf returns the TLS state of pc's connection.
func (h *tlsHandler) peerOf(pc *poller.Conn) *tlsPeer {
	c, _ := pc.Context().(*Conn)
	if c == nil {
		return nil
	}
	return c.tlsPeer()
}

func (h *tlsHandler) OnData(pc *poller.Conn, in []byte) int {
	tp := h.peerOf(pc)
	if tp == nil || tp.rec == nil {
		return (*handler)(h).OnData(pc, in)
	}
	if pc.Closed() {
		return len(in)
	}
	r, err := tp.rec.Open(in)
	if err != nil {
		// Seal sends the alert (if any) as the connection closes.
		(*Server)(h).tls.recordErrors.Add(1)
		(*Server)(h).log.Debug("tls record error", "remote", tp.remote, "err", err)
		pc.Close()
		return len(in)
	}
	if r.Flush {
		pc.Touch() // a KeyUpdate is owed
	}
	k := 0
	if r.New {
		// (Without new plaintext the handler has seen these bytes.)
		ls := &(*Server)(h).loops[pc.Loop().Index()]
		ls.recordRest = len(in) - r.End
		k = (*handler)(h).OnData(pc, in[:r.N])
		ls.recordRest = 0
	} else if c, _ := pc.Context().(*Conn); c != nil && c.state == stateOpen && !pc.Closed() {
		// No new plaintext: a partial record, or records that carried
		// none (padding, KeyUpdate). What stays held is bounded as a
		// partial frame is, and runs the same message clock, which such
		// records do not stop.
		(*Server)(h).boundInput(c, r.N+len(in)-r.End, false, false, false)
	}
	used := tp.rec.Consume(in, r, k)
	if r.Close {
		pc.Close() // answered with close_notify by Seal
	}
	return used
}

// Seal turns what was written to a loop-engine connection into TLS
// records, in the loop's scratch memory (poller.Sealer).
func (h *tlsHandler) Seal(pc *poller.Conn, bufs [][]byte, closing bool) [][]byte {
	tp := h.peerOf(pc)
	if tp == nil || tp.rec == nil {
		return bufs
	}
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	out, err := tp.rec.Seal(pc.Loop().Scratch(tlsrec.SealedLen(n)), bufs, closing)
	if err != nil {
		(*Server)(h).log.Warn("tls seal failed; closing", "remote", tp.remote, "err", err)
		if !closing {
			pc.Close()
		}
		return nil
	}
	if len(out) == 0 {
		return nil
	}
	ls := &(*Server)(h).loops[pc.Loop().Index()]
	ls.sealed[0] = out
	return ls.sealed[:]
}

func (h *tlsHandler) OnTimer(pc *poller.Conn) { (*handler)(h).OnTimer(pc) }

func (h *tlsHandler) OnClose(pc *poller.Conn, err error) {
	if tp := h.peerOf(pc); tp != nil && tp.rec != nil {
		(*Server)(h).tls.onLoop.Add(-1)
	}
	(*handler)(h).OnClose(pc, err)
}

func (h *tlsHandler) OnWritable(pc *poller.Conn) { (*handler)(h).OnWritable(pc) }

// allLoops returns the plain loops and the TLS loops that own or have
// owned a connection; their indexes do not overlap.
func (s *Server) allLoops() []*poller.Loop {
	out := append([]*poller.Loop(nil), s.poller.Loops()...)
	if s.tls != nil {
		out = append(out, s.tls.client.Loops()...)
	}
	return out
}

// TLSAddr is the bound TLS listener's address; nil without one or before
// Ready.
func (s *Server) TLSAddr() net.Addr {
	if s.tls == nil || s.tls.ln == nil {
		return nil
	}
	return s.tls.ln.Addr()
}

// TLSStats are the TLS listener's counters at one moment.
type TLSStats struct {
	Active            int64  `json:"active"`
	Handshaking       int64  `json:"handshaking"`
	Handshakes        uint64 `json:"handshakes"`
	HandshakeErrors   uint64 `json:"handshake_errors"`
	HandshakeTimeouts uint64 `json:"handshake_timeouts"`
	HelloTimeouts     uint64 `json:"hello_timeouts"`
	Refused           uint64 `json:"refused"`
	// AcceptErrors counts the TLS listener's accept failures for want of
	// descriptors or memory; Overloaded the handshaken connections
	// refused with a 503 because their socket pair could not be made.
	AcceptErrors uint64 `json:"accept_errors"`
	Overloaded   uint64 `json:"overloaded"`
	// Engine is the TLS engine (Config.TLSEngine). OnLoop is the open
	// connections whose records the loops carry, Direct those handed to
	// the loops so far, Fallback the connections bridged under the loop
	// engine (TLS 1.2 clients), RecordErrors the loop connections closed
	// for a bad record or a fatal alert.
	Engine       string `json:"engine"`
	OnLoop       int64  `json:"on_loop"`
	Direct       uint64 `json:"direct"`
	Fallback     uint64 `json:"fallback"`
	RecordErrors uint64 `json:"record_errors"`
	// CertReloads counts the certificate pairs reloaded (ReloadTLS),
	// CertReloadErrors the reloads refused, the old pair kept.
	CertReloads      uint64 `json:"cert_reloads"`
	CertReloadErrors uint64 `json:"cert_reload_errors"`
}

// tlsStats returns a snapshot of the TLS listener's counters, nil without
// one. Safe from any goroutine.
func (s *Server) tlsStats() *TLSStats {
	if s.tls == nil {
		return nil
	}
	st := s.tls.bridge.Stats()
	return &TLSStats{
		Active: st.Active.Load(), Handshaking: st.Handshaking.Load(), Handshakes: st.Handshakes.Load(),
		HandshakeErrors: st.HandshakeErrors.Load(), HandshakeTimeouts: st.HandshakeTimeouts.Load(),
		HelloTimeouts: st.HelloTimeouts.Load(), Refused: st.Refused.Load(),
		AcceptErrors: st.AcceptErrors.Load(), Overloaded: st.Overloaded.Load(),
		Engine: s.tlsEngine(), OnLoop: s.tls.onLoop.Load(), Direct: st.Direct.Load(),
		Fallback: st.Fallback.Load(), RecordErrors: s.tls.recordErrors.Load(),
		CertReloads: s.tls.certs.reloads.Load(), CertReloadErrors: s.tls.certs.reloadErrors.Load(),
	}
}

// tlsEngine is the configured TLS engine, its default resolved.
func (s *Server) tlsEngine() string {
	if s.cfg.TLSEngine == TLSEngineBridge {
		return TLSEngineBridge
	}
	return TLSEngineLoop
}

// CompressionStats are the permessage-deflate counters at one moment:
// connections that negotiated it, payloads compressed (each shared frame
// of a publish counts once, however many subscribers receive it) with
// their sizes before and after, payloads sent plain, and messages inflated.
type CompressionStats struct {
	Negotiated    uint64 `json:"negotiated"`
	Compressed    uint64 `json:"compressed"`
	BytesIn       uint64 `json:"bytes_in"`
	BytesOut      uint64 `json:"bytes_out"`
	Skipped       uint64 `json:"skipped"`
	Inflated      uint64 `json:"inflated"`
	InflateErrors uint64 `json:"inflate_errors"`
}

// compressionStats returns a snapshot of the compression counters, nil
// when compression is off. Safe from any goroutine.
func (s *Server) compressionStats() *CompressionStats {
	if s.deflate == nil {
		return nil
	}
	z := s.deflate.Stats()
	return &CompressionStats{
		Negotiated: s.stats.HandshakesDeflate.Load(),
		Compressed: z.Compressed.Load(), BytesIn: z.BytesIn.Load(), BytesOut: z.BytesOut.Load(),
		Skipped: z.Skipped.Load(), Inflated: z.Inflated.Load(), InflateErrors: z.InflateErrors.Load(),
	}
}

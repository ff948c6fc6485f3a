package server

// Stats is a snapshot of the server's counters (cumulative since New) and
// gauges, taken by Server.Stats. It is a plain value: the caller may keep
// it, compare two of them, or encode it.
type Stats struct {
	// Connections are open now; HandshakesInProgress of them are
	// accepted and not yet upgraded (Config.MaxHandshakes bounds them).
	Connections          int64 `json:"connections"`
	HandshakesInProgress int64 `json:"handshakes_in_progress"`
	// InboundBuffered is the memory held now for incomplete client input:
	// partial frames and unfinished messages (Config.MaxInboundBuffered).
	InboundBuffered int64 `json:"inbound_buffered"`

	// HandshakesOK counts upgrades (over TLS too), HandshakesFailed the
	// refused ones, HandshakeTimeouts those that did not finish in time
	// (FirstByteTimeouts of them sent nothing at all).
	HandshakesOK uint64 `json:"handshakes_ok"`
	// Streams counts the event streams opened (StreamApp), among
	// HandshakesOK.
	Streams uint64 `json:"streams"`
	// HandshakesDeferred counts the upgrades whose answer the App
	// deferred (ErrDeferred), answered later or timed out.
	HandshakesDeferred uint64 `json:"handshakes_deferred"`
	HandshakesFailed   uint64 `json:"handshakes_failed"`
	HandshakeTimeouts  uint64 `json:"handshake_timeouts"`
	FirstByteTimeouts  uint64 `json:"first_byte_timeouts"`
	// RefusedHandshakes, RefusedHandshakesPerIP, RefusedConnsPerIP and
	// RefusedMaxConns count connections refused at accept by
	// MaxHandshakes, MaxHandshakesPerIP, MaxConnsPerIP and MaxConns.
	RefusedHandshakes      uint64 `json:"refused_handshakes"`
	RefusedHandshakesPerIP uint64 `json:"refused_handshakes_per_ip"`
	RefusedConnsPerIP      uint64 `json:"refused_conns_per_ip"`
	RefusedMaxConns        uint64 `json:"refused_max_conns"`
	// RefusedAcceptRate counts connections refused at accept by the
	// accept pace (Config.AcceptRate): a 503 on the WebSocket port, a
	// close before the TLS handshake on the TLS port.
	RefusedAcceptRate uint64 `json:"refused_accept_rate"`
	// RefusedFds counts connections refused with a 503 because the
	// process was out of file descriptors (plain ones at accept, TLS ones
	// when their socket pair failed); AcceptErrors the accept failures
	// for want of descriptors or memory, on both listeners (each pauses
	// the listener for a backoff).
	RefusedFds   uint64 `json:"refused_fds"`
	AcceptErrors uint64 `json:"accept_errors"`

	// Connections the server closed, by cause: protocol errors (1002,
	// 1007, 1009), no pong (1001), token expiry (4001), output past the
	// budget that the client caused (1008), the node's inbound memory
	// full (1013), a message left unfinished (1008).
	ProtocolErrors  uint64 `json:"protocol_errors"`
	PingTimeouts    uint64 `json:"ping_timeouts"`
	TokenExpired    uint64 `json:"token_expired"`
	OutputBudget    uint64 `json:"output_budget"`
	InboundMemory   uint64 `json:"inbound_memory"`
	MessageTimeouts uint64 `json:"message_timeouts"`

	// MessagesIn counts text and binary messages received, MessagesOut
	// those queued to clients (deliveries and replies), BytesIn the bytes
	// received after the handshakes.
	MessagesIn  uint64 `json:"messages_in"`
	MessagesOut uint64 `json:"messages_out"`
	BytesIn     uint64 `json:"bytes_in"`

	// Compression is nil when permessage-deflate is off; TLS is nil
	// without a TLS listener.
	Compression *CompressionStats `json:"compression,omitempty"`
	TLS         *TLSStats         `json:"tls,omitempty"`
}

// Stats takes a snapshot of the server's counters and gauges. Safe from
// any goroutine; the counters are read one by one, not all at one
// instant.
func (s *Server) Stats() Stats {
	c := &s.stats
	return Stats{
		Connections:            s.conns.Load(),
		HandshakesInProgress:   s.handshakesInProgress(),
		InboundBuffered:        s.inboundBuffered(),
		HandshakesOK:           s.sum(func(l *loopCounters) uint64 { return l.handshakesOK.Load() }),
		HandshakesFailed:       c.HandshakesFailed.Load(),
		Streams:                c.Streams.Load(),
		HandshakesDeferred:     c.HandshakesDeferred.Load(),
		HandshakeTimeouts:      c.HandshakeTimeouts.Load(),
		FirstByteTimeouts:      c.FirstByteTimeouts.Load(),
		RefusedHandshakes:      c.RefusedHandshakes.Load(),
		RefusedHandshakesPerIP: c.RefusedHandshakesPerIP.Load(),
		RefusedConnsPerIP:      c.RefusedConnsPerIP.Load(),
		RefusedMaxConns:        c.RefusedMaxConns.Load(),
		RefusedAcceptRate:      c.RefusedAcceptRate.Load(),
		RefusedFds:             s.refusedFds(),
		AcceptErrors:           s.acceptErrors(),
		ProtocolErrors:         c.ProtocolErrors.Load(),
		PingTimeouts:           c.PingTimeouts.Load(),
		TokenExpired:           c.TokenExpired.Load(),
		OutputBudget:           c.OutputBudget.Load(),
		InboundMemory:          c.InboundMemory.Load(),
		MessageTimeouts:        c.MessageTimeouts.Load(),
		MessagesIn:             s.sum(func(l *loopCounters) uint64 { return l.messagesIn.Load() }),
		MessagesOut:            s.sum(func(l *loopCounters) uint64 { return l.messagesOut.Load() }),
		BytesIn:                s.sum(func(l *loopCounters) uint64 { return l.bytesIn.Load() }),
		Compression:            s.compressionStats(),
		TLS:                    s.tlsStats(),
	}
}

// refusedFds sums the connections refused for want of file descriptors.
func (s *Server) refusedFds() uint64 {
	n := s.poller.AcceptStats().Shed
	if s.tls != nil {
		n += s.tls.bridge.Stats().Overloaded.Load()
	}
	return n
}

// acceptErrors sums the accept failures of both listeners.
func (s *Server) acceptErrors() uint64 {
	n := s.poller.AcceptStats().Errors
	if s.tls != nil {
		n += s.tls.bridge.Stats().AcceptErrors.Load()
	}
	return n
}

package server

import (
	"math"
	"math/rand/v2"
	"net/http"

	"golang.org/x/time/rate"

	"github.com/herald-push/herald/codec"
)

// The accept pace (Config.AcceptRate, AcceptBurst): one token bucket for
// the node, golang.org/x/time/rate's, taken from as each connection is
// accepted, plain and TLS alike, before anything else is spent on it. A
// plain connection past the pace is answered 503 with a jittered
// Retry-After on its loop and closed (the lingering close, so the answer
// is read rather than reset); a TLS connection is closed before its TLS
// handshake, the costly part of its accept, which a refusal would
// otherwise pay for only to say no.

// Retry-After of a paced refusal: uniform from paceRetryMin to
// paceRetryMax seconds, so that the clients refused in one burst do not
// all come back in the same second.
const (
	paceRetryMin = 1
	paceRetryMax = 3
)

// paceReason is the body of a paced refusal.
const paceReason = "server is busy: too many new connections, retry later"

// newPace returns the bucket of cfg's accept pace, nil when there is none.
func newPace(cfg Config) *rate.Limiter {
	if cfg.AcceptRate <= 0 {
		return nil
	}
	burst := cfg.AcceptBurst
	if burst <= 0 {
		burst = int(min(math.Ceil(cfg.AcceptRate), math.MaxInt32))
	}
	return rate.NewLimiter(rate.Limit(cfg.AcceptRate), max(burst, 1))
}

// paced reports whether a connection accepted now is past the accept
// pace, counting it if so. Safe from any goroutine.
func (s *Server) paced() bool {
	if s.pace == nil || s.pace.Allow() {
		return false
	}
	s.stats.HandshakesFailed.Add(1)
	s.stats.RefusedAcceptRate.Add(1)
	return true
}

// refusePaced answers a plain connection past the accept pace: 503 with a
// jittered Retry-After, then the close. Loop goroutine.
func (s *Server) refusePaced(c *Conn) {
	s.logRefusal(c, http.StatusServiceUnavailable, "accept_rate")
	retry := paceRetryMin + rand.IntN(paceRetryMax-paceRetryMin+1)
	pc := c.pc
	buf := pc.Loop().Scratch(256 + len(paceReason))
	pc.Write(codec.AppendHTTPRetry(buf, http.StatusServiceUnavailable, paceReason, retry))
	pc.Close()
}

package codec

import (
	"bytes"
	"strconv"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws/wsflate"
)

// DeflateParams is what a server agreed to in a permessage-deflate
// negotiation. Herald's answer always carries server_no_context_takeover
// and client_no_context_takeover, so the only thing that varies between
// connections is the window the server may use.
type DeflateParams struct {
	// ServerWindowBits is the LZ77 window the server compresses with,
	// from 8 to 15: 15 unless the client asked for less with
	// server_max_window_bits. Frames for a window of 15 can be shared by
	// every such connection; smaller windows need a compression of their
	// own. 0 means compression was not negotiated.
	ServerWindowBits uint8
	// windowOffered records that the offer named server_max_window_bits.
	windowOffered bool
}

// Response returns the Sec-WebSocket-Extensions value that accepts the
// offer p was negotiated from. It repeats server_max_window_bits when the
// offer named it, as RFC 7692 section 7.1.2.1 requires.
func (p DeflateParams) Response() string {
	const base = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
	if !p.windowOffered {
		return base
	}
	return base + "; server_max_window_bits=" + strconv.Itoa(int(p.ServerWindowBits))
}

// Enabled reports whether p is the result of a successful negotiation.
func (p DeflateParams) Enabled() bool { return p.ServerWindowBits != 0 }

// NegotiateDeflate picks the first permessage-deflate offer among offers
// (Request.Extensions, in the client's order of preference) that herald can
// accept, and reports false when there is none, in which case the
// connection goes on without compression (RFC 7692 section 5: a server
// declines an offer it cannot accept; it never fails the handshake for it).
//
// An offer is declined when it names a parameter RFC 7692 does not define
// for offers, repeats a parameter, or gives one an invalid value (a window
// outside 8 to 15, a value on a no_context_takeover). Every valid offer is
// accepted: server_no_context_takeover is what herald does anyway, a
// server_max_window_bits below 15 is honoured with a smaller window,
// client_max_window_bits needs nothing (herald inflates with a full
// window), and client_no_context_takeover is asked of every client.
//
// Safe for concurrent use.
func NegotiateDeflate(offers []httphead.Option) (DeflateParams, bool) {
	for _, offer := range offers {
		if !bytes.EqualFold(offer.Name, wsflate.ExtensionNameBytes) {
			continue
		}
		if hasDuplicateParam(offer) {
			continue
		}
		var p wsflate.Parameters
		if err := p.Parse(offer); err != nil {
			continue
		}
		params := DeflateParams{ServerWindowBits: maxWindowBits}
		if p.ServerMaxWindowBits.Defined() {
			params.ServerWindowBits = uint8(p.ServerMaxWindowBits)
			params.windowOffered = true
		}
		return params, true
	}
	return DeflateParams{}, false
}

// hasDuplicateParam reports whether offer names a parameter twice, which
// wsflate's parser lets through for a client_max_window_bits without value.
func hasDuplicateParam(offer httphead.Option) bool {
	dup := false
	var seen [4]bool
	offer.Parameters.ForEach(func(k, _ []byte) bool {
		i := -1
		switch string(k) {
		case "server_no_context_takeover":
			i = 0
		case "client_no_context_takeover":
			i = 1
		case "server_max_window_bits":
			i = 2
		case "client_max_window_bits":
			i = 3
		}
		if i >= 0 {
			dup = dup || seen[i]
			seen[i] = true
		}
		return !dup
	})
	return dup
}

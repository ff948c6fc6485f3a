package codec

import "encoding/binary"

// Close status codes of RFC 6455 section 7.4.1 and the IANA registry.
const (
	CloseNormal             uint16 = 1000
	CloseGoingAway          uint16 = 1001
	CloseProtocolError      uint16 = 1002
	CloseUnsupported        uint16 = 1003
	CloseNoStatus           uint16 = 1005 // never on the wire: "no code in the frame"
	CloseAbnormal           uint16 = 1006 // never on the wire: "closed without a close frame"
	CloseInvalidPayload     uint16 = 1007
	ClosePolicyViolation    uint16 = 1008
	CloseMessageTooBig      uint16 = 1009
	CloseMandatoryExtension uint16 = 1010
	CloseInternalError      uint16 = 1011
	CloseServiceRestart     uint16 = 1012
	CloseTryAgainLater      uint16 = 1013
	CloseBadGateway         uint16 = 1014
)

// maxCloseReason is the longest close reason: a control payload of 125 bytes
// less the 2-byte status code.
const maxCloseReason = MaxControlPayload - 2

// ValidCloseCode reports whether code may appear in a close frame on the
// wire: 1000-1003 and 1007-1014 (defined by RFC 6455 and the IANA registry),
// or 3000-4999 (registered and private use). Codes below 1000, 1004-1006,
// 1015 and the unassigned 1016-2999 and 5000+ are invalid.
func ValidCloseCode(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003:
		return true
	case code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// parseClose validates a close frame's payload (RFC 6455 section 5.5.1) and
// splits it into code and reason; an empty payload means CloseNoStatus.
func parseClose(p []byte) (uint16, []byte, error) {
	switch {
	case len(p) == 0:
		return CloseNoStatus, nil, nil
	case len(p) == 1:
		return 0, nil, protocolError("close payload of 1 byte")
	}
	code := binary.BigEndian.Uint16(p)
	if !ValidCloseCode(code) {
		return 0, nil, protocolError("invalid close code")
	}
	reason := p[2:]
	if !ValidUTF8(reason) {
		return 0, nil, &CloseError{Code: CloseInvalidPayload, Reason: "close reason is not valid UTF-8"}
	}
	return code, reason, nil
}

// AppendClose appends a server (unmasked) close frame with code and reason.
// The reason is cut to fit the 125-byte control payload at a UTF-8 boundary,
// and left out when it is not valid UTF-8. A code that must not be sent
// (0, CloseNoStatus, CloseAbnormal, 1015, or any other code ValidCloseCode
// rejects) yields a close frame with an empty payload, which the peer reads
// as "no status".
func AppendClose(dst []byte, code uint16, reason string) []byte {
	start := len(dst)
	dst = append(dst, bitFin|byte(OpClose), 0)
	dst = appendClosePayload(dst, code, reason)
	dst[start+1] = byte(len(dst) - start - 2)
	return dst
}

// AppendMaskedClose appends a client (masked with key) close frame; see
// AppendClose for how code and reason are treated.
func AppendMaskedClose(dst []byte, code uint16, reason string, key [4]byte) []byte {
	start := len(dst)
	dst = append(dst, bitFin|byte(OpClose), bitMask, key[0], key[1], key[2], key[3])
	dst = appendClosePayload(dst, code, reason)
	n := len(dst) - start - 6
	dst[start+1] |= byte(n)
	Mask(dst[start+6:], key, 0)
	return dst
}

// appendClosePayload appends the close payload AppendClose documents.
func appendClosePayload(dst []byte, code uint16, reason string) []byte {
	if !ValidCloseCode(code) {
		return dst
	}
	dst = binary.BigEndian.AppendUint16(dst, code)
	if len(reason) > maxCloseReason {
		cut := maxCloseReason
		// Back off to the first byte of the code point that straddles the
		// limit (continuation bytes are 10xxxxxx).
		for cut > 0 && reason[cut]&0xC0 == 0x80 {
			cut--
		}
		reason = reason[:cut]
	}
	start := len(dst)
	dst = append(dst, reason...)
	if !ValidUTF8(dst[start:]) {
		dst = dst[:start]
	}
	return dst
}

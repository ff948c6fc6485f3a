package codec

import "encoding/binary"

// The encoder is hand-written rather than gobwas/ws's WriteHeader/WriteFrame:
// those write to an io.Writer, while callers here append frames to buffers
// they own (a connection's pending output, a frame encoded once for a whole
// fan-out). All functions are pure and safe for concurrent use on distinct
// dst.

// AppendHeader appends the header of an unmasked (server) frame that will
// carry payloadLen bytes; the caller appends the payload. compressed sets
// RSV1, which permessage-deflate (RFC 7692) uses to mark the first frame of a
// compressed message; set it only when the extension was negotiated.
func AppendHeader(dst []byte, op OpCode, fin, compressed bool, payloadLen int) []byte {
	return appendHeader(dst, op, fin, compressed, payloadLen, 0)
}

// appendHeader appends a frame header; maskBit is 0 or bitMask, and the
// caller appends the masking key when it is set.
func appendHeader(dst []byte, op OpCode, fin, compressed bool, payloadLen int, maskBit byte) []byte {
	b0 := byte(op & 0xF)
	if fin {
		b0 |= bitFin
	}
	if compressed {
		b0 |= bitRsv1
	}
	switch {
	case payloadLen <= 125:
		return append(dst, b0, maskBit|byte(payloadLen))
	case payloadLen <= 0xFFFF:
		return append(dst, b0, maskBit|126, byte(payloadLen>>8), byte(payloadLen))
	default:
		dst = append(dst, b0, maskBit|127)
		return binary.BigEndian.AppendUint64(dst, uint64(payloadLen))
	}
}

// AppendFrame appends one unmasked frame, as a server sends it (RFC 6455
// section 5.1). It does not check that control frames are final and short:
// that is the caller's contract.
func AppendFrame(dst []byte, op OpCode, fin bool, payload []byte) []byte {
	dst = appendHeader(dst, op, fin, false, len(payload), 0)
	return append(dst, payload...)
}

// AppendMaskedFrame appends one frame masked with key, as a client sends it.
// The payload is masked as it is copied into dst and is left untouched.
// Clients must draw a fresh unpredictable key for every frame.
func AppendMaskedFrame(dst []byte, op OpCode, fin bool, payload []byte, key [4]byte) []byte {
	dst = appendHeader(dst, op, fin, false, len(payload), bitMask)
	dst = append(dst, key[0], key[1], key[2], key[3])
	start := len(dst)
	dst = append(dst, payload...)
	Mask(dst[start:], key, 0)
	return dst
}

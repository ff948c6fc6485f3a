package codec

import (
	"strconv"

	"github.com/gobwas/ws"
)

// OpCode is the 4-bit frame opcode of RFC 6455 section 5.2.
type OpCode byte

// The opcodes of RFC 6455 section 11.8. Opcodes 0x3-0x7 and 0xB-0xF are
// reserved; a frame that carries one is a protocol error.
const (
	OpContinuation OpCode = 0x0
	OpText         OpCode = 0x1
	OpBinary       OpCode = 0x2
	OpClose        OpCode = 0x8
	OpPing         OpCode = 0x9
	OpPong         OpCode = 0xA
)

// IsControl reports whether op is a control opcode (close, ping, pong or a
// reserved control opcode).
func (op OpCode) IsControl() bool { return op&0x8 != 0 }

// String returns the opcode's name, or its hexadecimal value when reserved.
func (op OpCode) String() string {
	switch op {
	case OpContinuation:
		return "continuation"
	case OpText:
		return "text"
	case OpBinary:
		return "binary"
	case OpClose:
		return "close"
	case OpPing:
		return "ping"
	case OpPong:
		return "pong"
	}
	return "reserved(0x" + strconv.FormatUint(uint64(op), 16) + ")"
}

// Role is the side of the connection a Decoder decodes for. It decides which
// masking the peer's frames must have (RFC 6455 section 5.1).
type Role uint8

const (
	// RoleServer decodes frames sent by a client, which must be masked. It
	// is the zero value.
	RoleServer Role = iota
	// RoleClient decodes frames sent by a server, which must not be masked.
	RoleClient
)

// Frame header bits and limits of RFC 6455 section 5.2.
const (
	bitFin  = 0x80
	bitRsv1 = 0x40
	bitRsv2 = 0x20
	bitRsv3 = 0x10
	bitMask = 0x80

	// MaxControlPayload is the largest payload of a control frame.
	MaxControlPayload = 125
	// MaxHeaderLen is the longest frame header: 2 bytes, a 64-bit extended
	// length and a masking key.
	MaxHeaderLen = 14
)

// FrameHeaderLen returns the length of the header of a frame that carries
// payloadLen bytes, with a masking key when masked.
func FrameHeaderLen(payloadLen int, masked bool) int {
	n := 2
	switch {
	case payloadLen > 0xFFFF:
		n += 8
	case payloadLen > 125:
		n += 2
	}
	if masked {
		n += 4
	}
	return n
}

// Mask XORs b in place with key, as RFC 6455 section 5.3 masks and unmasks
// payloads; offset is the number of payload bytes before b, so a payload can
// be processed in pieces. It uses gobwas/ws's Cipher, which works on 16-byte
// blocks with SIMD on amd64 and arm64 and a word loop elsewhere.
func Mask(b []byte, key [4]byte, offset int) {
	ws.Cipher(b, key, offset)
}

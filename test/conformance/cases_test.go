package conformance

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

func validUTF8(b []byte) bool { return utf8.Valid(b) }

// testCase is one conformance case: run drives a fresh connection to the
// echo server and fails the test on any deviation from RFC 6455.
type testCase struct {
	category string
	name     string
	run      func(c *client)
}

// Limits the server under test is started with (see TestMain).
const (
	maxFrame   = 1 << 20
	maxMessage = 2 << 20
)

func cases() []testCase {
	var cs []testCase
	add := func(cat, name string, run func(c *client)) {
		cs = append(cs, testCase{cat, name, run})
	}

	// 1. Framing: text and binary of every interesting length, whole and
	// delivered in small pieces.
	for _, n := range []int{0, 1, 125, 126, 127, 128, 1000, 65535, 65536, 65537, 256 << 10, maxFrame} {
		for _, op := range []byte{opText, opBinary} {
			for _, chunk := range []int{0, 1, 997} {
				if chunk == 1 && n > 4096 {
					continue
				}
				name := fmt.Sprintf("%s-%d", opName(op), n)
				if chunk > 0 {
					name += fmt.Sprintf("-chunked-%d", chunk)
				}
				p := payloadOf(op, n)
				add("framing", name, func(c *client) {
					f := frame{Fin: true, Op: op, Payload: p}
					if chunk > 0 {
						c.sendChunked(chunk, f)
					} else {
						c.send(f)
					}
					c.expect(op, p)
					c.closeCleanly()
				})
			}
		}
	}
	add("framing", "many-frames-one-write", func(c *client) {
		var fs []frame
		for i := 0; i < 100; i++ {
			fs = append(fs, frame{Fin: true, Op: opText, Payload: []byte(fmt.Sprint("m", i))})
		}
		c.send(fs...)
		for i := 0; i < 100; i++ {
			c.expect(opText, []byte(fmt.Sprint("m", i)))
		}
		c.closeCleanly()
	})

	// 2. Ping and pong.
	for _, n := range []int{0, 1, 125} {
		p := bytes.Repeat([]byte{0xFE}, n)
		add("ping", fmt.Sprintf("ping-%d", n), func(c *client) {
			c.send(frame{Fin: true, Op: opPing, Payload: p})
			c.expect(opPong, p)
			c.closeCleanly()
		})
	}
	add("ping", "ping-126-too-long", func(c *client) {
		c.send(frame{Fin: true, Op: opPing, Payload: make([]byte, 126)})
		c.expectClose(1002)
	})
	add("ping", "ping-fragmented", func(c *client) {
		c.send(frame{Fin: false, Op: opPing, Payload: []byte("a")}, frame{Fin: true, Op: opCont, Payload: []byte("b")})
		c.expectClose(1002)
	})
	add("ping", "unsolicited-pong-ignored", func(c *client) {
		c.send(frame{Fin: true, Op: opPong, Payload: []byte("x")}, frame{Fin: true, Op: opText, Payload: []byte("after")})
		c.expect(opText, []byte("after"))
		c.closeCleanly()
	})
	add("ping", "ten-pings", func(c *client) {
		for i := 0; i < 10; i++ {
			c.send(frame{Fin: true, Op: opPing, Payload: []byte(fmt.Sprint(i))})
		}
		for i := 0; i < 10; i++ {
			c.expect(opPong, []byte(fmt.Sprint(i)))
		}
		c.closeCleanly()
	})
	add("ping", "ping-chunked-1", func(c *client) {
		c.sendChunked(1, frame{Fin: true, Op: opPing, Payload: []byte("chunky")})
		c.expect(opPong, []byte("chunky"))
		c.closeCleanly()
	})

	// 3. Reserved bits (no extension negotiated).
	for _, rsv := range []byte{1, 2, 3, 4, 5, 6, 7} {
		for _, op := range []byte{opText, opBinary, opPing} {
			add("reserved", fmt.Sprintf("rsv%d-%s", rsv, opName(op)), func(c *client) {
				c.send(frame{Fin: true, RSV: rsv, Op: op, Payload: []byte("x")})
				c.expectClose(1002)
			})
		}
	}
	add("reserved", "rsv-after-valid-echo", func(c *client) {
		c.send(frame{Fin: true, Op: opText, Payload: []byte("ok")}, frame{Fin: true, RSV: 1, Op: opText, Payload: []byte("bad")})
		c.expect(opText, []byte("ok"))
		c.expectClose(1002)
	})

	// 4. Opcodes.
	for _, op := range []byte{3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF} {
		add("opcodes", fmt.Sprintf("reserved-opcode-%#x", op), func(c *client) {
			c.send(frame{Fin: true, Op: op, Payload: []byte("x")})
			c.expectClose(1002)
		})
	}

	// 5. Fragmentation.
	for _, parts := range []int{2, 3, 10, 100} {
		for _, op := range []byte{opText, opBinary} {
			msg := payloadOf(op, 1000)
			add("fragmentation", fmt.Sprintf("%s-in-%d", opName(op), parts), func(c *client) {
				c.send(split(op, msg, parts)...)
				c.expect(op, msg)
				c.closeCleanly()
			})
		}
	}
	add("fragmentation", "empty-fragments", func(c *client) {
		c.send(frame{Op: opText}, frame{Op: opCont}, frame{Fin: true, Op: opCont})
		c.expect(opText, []byte{})
		c.closeCleanly()
	})
	add("fragmentation", "ping-between-fragments", func(c *client) {
		c.send(frame{Op: opText, Payload: []byte("frag1")}, frame{Fin: true, Op: opPing, Payload: []byte("p")}, frame{Fin: true, Op: opCont, Payload: []byte("frag2")})
		c.expect(opPong, []byte("p"))
		c.expect(opText, []byte("frag1frag2"))
		c.closeCleanly()
	})
	add("fragmentation", "pong-between-fragments", func(c *client) {
		c.send(frame{Op: opText, Payload: []byte("a")}, frame{Fin: true, Op: opPong, Payload: []byte("p")}, frame{Fin: true, Op: opCont, Payload: []byte("b")})
		c.expect(opText, []byte("ab"))
		c.closeCleanly()
	})
	add("fragmentation", "close-between-fragments", func(c *client) {
		c.send(frame{Op: opText, Payload: []byte("a")}, frame{Fin: true, Op: opClose, Payload: closePayload(1000, "")})
		c.expectClose(1000)
	})
	add("fragmentation", "fragmented-chunked-1", func(c *client) {
		c.sendChunked(1, frame{Op: opText, Payload: []byte("Hello, ")}, frame{Fin: true, Op: opPing, Payload: []byte("x")}, frame{Fin: true, Op: opCont, Payload: []byte("world")})
		c.expect(opPong, []byte("x"))
		c.expect(opText, []byte("Hello, world"))
		c.closeCleanly()
	})
	add("fragmentation", "continuation-without-start", func(c *client) {
		c.send(frame{Fin: true, Op: opCont, Payload: []byte("x")})
		c.expectClose(1002)
	})
	add("fragmentation", "nonfinal-continuation-without-start", func(c *client) {
		c.send(frame{Op: opCont, Payload: []byte("x")})
		c.expectClose(1002)
	})
	add("fragmentation", "new-text-during-fragmented", func(c *client) {
		c.send(frame{Op: opText, Payload: []byte("a")}, frame{Fin: true, Op: opText, Payload: []byte("b")})
		c.expectClose(1002)
	})
	add("fragmentation", "new-binary-during-fragmented", func(c *client) {
		c.send(frame{Op: opBinary, Payload: []byte("a")}, frame{Op: opBinary, Payload: []byte("b")})
		c.expectClose(1002)
	})
	add("fragmentation", "fragmented-close", func(c *client) {
		c.send(frame{Op: opClose, Payload: closePayload(1000, "")}, frame{Fin: true, Op: opCont})
		c.expectClose(1002)
	})

	// 6. UTF-8.
	valid := []string{"", "κόσμε", "Hello-µ@ßöäüàá-UTF-8!!", "\u0080", "\u07FF", "\u0800", "\uFFFD", "\U00010000", "\U0010FFFF", "\uD7FF", "\uE000", "\uFFFF"}
	for i, s := range valid {
		p := []byte(s)
		add("utf8", fmt.Sprintf("valid-%d", i), func(c *client) {
			c.send(frame{Fin: true, Op: opText, Payload: p})
			c.expect(opText, p)
			c.closeCleanly()
		})
	}
	invalid := [][]byte{
		{0x80}, {0xBF}, {0xC0, 0xAF}, {0xC1, 0xBF}, {0xE0, 0x80, 0xAF}, {0xED, 0xA0, 0x80}, {0xED, 0xBF, 0xBF},
		{0xF0, 0x80, 0x80, 0xAF}, {0xF4, 0x90, 0x80, 0x80}, {0xF5, 0x80, 0x80, 0x80}, {0xFE}, {0xFF},
		{0xCE, 0xBA, 0xE1}, {0xE1, 0x80}, {0xF0, 0x90, 0x80}, []byte("ok\xc3"),
		append([]byte("κόσμε"), 0xED, 0xA0, 0x80, 'e', 'd', 'i', 't', 'e', 'd'),
	}
	for i, p := range invalid {
		add("utf8", fmt.Sprintf("invalid-%d", i), func(c *client) {
			c.send(frame{Fin: true, Op: opText, Payload: p})
			c.expectClose(1007)
		})
	}
	// Every valid text split into two fragments at every byte: the server
	// must reassemble code points split across fragments.
	long := []byte("κόσμε \U0001F600 µ@ßöäü \u0800\uFFFD end")
	for i := 0; i <= len(long); i++ {
		add("utf8", fmt.Sprintf("valid-split-at-%d", i), func(c *client) {
			c.send(frame{Op: opText, Payload: long[:i]}, frame{Fin: true, Op: opCont, Payload: long[i:]})
			c.expect(opText, long)
			c.closeCleanly()
		})
	}
	// Invalid text split at every byte: always 1007, never an echo.
	bad := append([]byte("κόσμε"), 0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5, 0xED, 0xA0, 0x80, 0x65, 0x64, 0x69, 0x74, 0x65, 0x64)
	for i := 0; i <= len(bad); i++ {
		add("utf8", fmt.Sprintf("invalid-split-at-%d", i), func(c *client) {
			c.send(frame{Op: opText, Payload: bad[:i]}, frame{Fin: true, Op: opCont, Payload: bad[i:]})
			c.expectClose(1007)
		})
	}
	add("utf8", "invalid-first-fragment-fails-fast", func(c *client) {
		// The message never completes: the server must reject the first
		// fragment on its own.
		c.send(frame{Op: opText, Payload: []byte{0xCE, 0xBA, 0xFF}})
		c.expectClose(1007)
	})
	add("utf8", "binary-is-not-validated", func(c *client) {
		c.send(frame{Fin: true, Op: opBinary, Payload: []byte{0xFF, 0xFE, 0xC0}})
		c.expect(opBinary, []byte{0xFF, 0xFE, 0xC0})
		c.closeCleanly()
	})

	// 7. Close handling.
	add("close", "close-empty", func(c *client) {
		c.send(frame{Fin: true, Op: opClose})
		c.expectClose()
	})
	add("close", "close-one-byte", func(c *client) {
		c.send(frame{Fin: true, Op: opClose, Payload: []byte{0x03}})
		c.expectClose(1002)
	})
	add("close", "close-with-reason", func(c *client) {
		c.send(frame{Fin: true, Op: opClose, Payload: closePayload(1000, "bye now")})
		c.expectClose(1000)
	})
	add("close", "close-reason-123-bytes", func(c *client) {
		c.send(frame{Fin: true, Op: opClose, Payload: closePayload(1000, strings.Repeat("*", 123))})
		c.expectClose(1000)
	})
	add("close", "close-payload-126", func(c *client) {
		c.send(frame{Fin: true, Op: opClose, Payload: closePayload(1000, strings.Repeat("*", 124))})
		c.expectClose(1002)
	})
	add("close", "close-reason-invalid-utf8", func(c *client) {
		c.send(frame{Fin: true, Op: opClose, Payload: append(closePayload(1000, ""), 0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5, 0xED, 0xA0, 0x80, 0x65, 0x64)})
		c.expectClose(1007)
	})
	add("close", "text-after-close-ignored", func(c *client) {
		c.send(frame{Fin: true, Op: opClose, Payload: closePayload(1000, "")}, frame{Fin: true, Op: opText, Payload: []byte("late")})
		c.expectClose(1000)
	})
	add("close", "ping-after-close-ignored", func(c *client) {
		c.send(frame{Fin: true, Op: opClose, Payload: closePayload(1000, "")}, frame{Fin: true, Op: opPing, Payload: []byte("late")})
		c.expectClose(1000)
	})
	add("close", "close-after-fragment-ignored-rest", func(c *client) {
		c.send(frame{Op: opText, Payload: []byte("a")}, frame{Fin: true, Op: opClose, Payload: closePayload(1000, "")}, frame{Fin: true, Op: opCont, Payload: []byte("b")})
		c.expectClose(1000)
	})
	for _, code := range []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999} {
		add("close", fmt.Sprintf("valid-code-%d", code), func(c *client) {
			c.send(frame{Fin: true, Op: opClose, Payload: closePayload(code, "")})
			c.expectClose(code)
		})
	}
	for _, code := range []uint16{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		add("close", fmt.Sprintf("invalid-code-%d", code), func(c *client) {
			c.send(frame{Fin: true, Op: opClose, Payload: closePayload(code, "")})
			c.expectClose(1002)
		})
	}

	// 9. Limits and hostile framing.
	add("limits", "frame-over-max", func(c *client) {
		c.send(frame{Fin: true, Op: opBinary, Payload: make([]byte, maxFrame+1)})
		c.expectClose(1009)
	})
	add("limits", "declared-over-max-no-payload", func(c *client) {
		// Only the header is sent: the server must refuse on the declared
		// length, before any payload is buffered.
		c.writeRaw(encode(frame{Fin: true, Op: opBinary, LenOverride: 1 << 40})[:14])
		c.expectClose(1009, 1002)
	})
	add("limits", "declared-2^63", func(c *client) {
		c.writeRaw(encode(frame{Fin: true, Op: opBinary, LenOverride: 1 << 63})[:14])
		c.expectClose(1002, 1009)
	})
	add("limits", "message-over-max-fragmented", func(c *client) {
		part := make([]byte, maxFrame)
		c.send(frame{Op: opBinary, Payload: part}, frame{Op: opCont, Payload: part}, frame{Fin: true, Op: opCont, Payload: []byte("x")})
		c.expectClose(1009)
	})
	add("limits", "unmasked-client-frame", func(c *client) {
		c.send(frame{Fin: true, Op: opText, Payload: []byte("hi"), NoMask: true})
		c.expectClose(1002)
	})
	add("limits", "non-minimal-length-accepted", func(c *client) {
		c.send(frame{Fin: true, Op: opText, Payload: []byte("tiny"), ForceExtended64: true})
		c.expect(opText, []byte("tiny"))
		c.closeCleanly()
	})
	return cs
}

func opName(op byte) string {
	switch op {
	case opText:
		return "text"
	case opBinary:
		return "binary"
	case opPing:
		return "ping"
	}
	return fmt.Sprintf("op%d", op)
}

// payloadOf makes n bytes that are valid UTF-8 for text.
func payloadOf(op byte, n int) []byte {
	if op == opText {
		return bytes.Repeat([]byte("*"), n)
	}
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i * 7)
	}
	return p
}

// split cuts msg into parts fragments (first with op, rest continuations).
func split(op byte, msg []byte, parts int) []frame {
	var fs []frame
	step := (len(msg) + parts - 1) / parts
	for i := 0; i < parts; i++ {
		lo, hi := min(i*step, len(msg)), min((i+1)*step, len(msg))
		f := frame{Op: opCont, Payload: msg[lo:hi], Fin: i == parts-1}
		if i == 0 {
			f.Op = op
		}
		fs = append(fs, f)
	}
	return fs
}

package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// testKey is the masking key test frames use unless a case says otherwise.
var testKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// result is a Message copied out of the decoder's buffers, comparable with ==.
type result struct {
	op          OpCode
	payload     string
	compressed  bool
	closeCode   uint16
	closeReason string
}

func (r result) String() string {
	p := r.payload
	if len(p) > 32 {
		p = fmt.Sprintf("%.32s...(%d bytes)", p, len(r.payload))
	}
	return fmt.Sprintf("{%v %q c=%v close=%d %q}", r.op, p, r.compressed, r.closeCode, r.closeReason)
}

func toResult(m Message) result {
	return result{
		op:          m.Op,
		payload:     string(m.Payload),
		compressed:  m.Compressed,
		closeCode:   m.CloseCode,
		closeReason: string(m.CloseReason),
	}
}

// feed decodes stream the way an event loop does: it delivers the stream in
// chunks whose sizes next picks, keeps the unconsumed remainder and presents
// it again, from a fresh copy, followed by the new bytes, and drains the
// decoder after every chunk. It also checks that Next leaves the bytes it
// does not consume untouched. It returns every message decoded and the
// first error.
func feed(d *Decoder, stream []byte, next func() int) ([]result, error) {
	var pending []byte
	var out []result
	base := 0 // offset in stream of pending[0]
	for off := 0; off < len(stream); {
		k := min(max(next(), 1), len(stream)-off)
		// A new slice each time, as a ring buffer flattened into a
		// temporary one would present it.
		pending = append(bytes.Clone(pending), stream[off:off+k]...)
		off += k
		for {
			msg, n, err := d.Next(pending)
			if n < 0 || n > len(pending) {
				return out, fmt.Errorf("Next consumed %d of %d bytes", n, len(pending))
			}
			if err != nil {
				return out, err
			}
			if !bytes.Equal(pending[n:], stream[base+n:off]) {
				return out, errors.New("Next modified bytes it did not consume")
			}
			pending = pending[n:]
			base += n
			if msg.Op == 0 {
				break
			}
			out = append(out, toResult(msg))
		}
	}
	return out, nil
}

// whole delivers the stream in one chunk.
func whole() int { return math.MaxInt }

// byteByByte delivers the stream one byte at a time.
func byteByByte() int { return 1 }

// randomChunks delivers the stream in chunks of 1 to maxChunk bytes.
func randomChunks(seed uint64, maxChunk int) func() int {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return func() int { return 1 + r.IntN(maxChunk) }
}

// decodeWith feeds stream to a fresh decoder configured by cfg.
func decodeWith(cfg *DecoderConfig, stream []byte, next func() int) ([]result, error) {
	var d Decoder
	d.Init(cfg)
	defer d.Reset()
	return feed(&d, stream, next)
}

// frame builds a client (masked with testKey) frame.
func frame(op OpCode, fin bool, payload string) []byte {
	return AppendMaskedFrame(nil, op, fin, []byte(payload), testKey)
}

// rawHeader builds a frame header from its parts, without a payload, so
// tests can state headers that no encoder here would write.
func rawHeader(b0 byte, masked bool, length uint64) []byte {
	var mask byte
	if masked {
		mask = bitMask
	}
	var h []byte
	switch {
	case length <= 125:
		h = []byte{b0, mask | byte(length)}
	case length <= 0xFFFF:
		h = binary.BigEndian.AppendUint16([]byte{b0, mask | 126}, uint16(length))
	default:
		h = binary.BigEndian.AppendUint64([]byte{b0, mask | 127}, length)
	}
	if masked {
		h = append(h, testKey[:]...)
	}
	return h
}

// closePayload builds a close payload from a code and raw reason bytes.
func closePayload(code uint16, reason string) string {
	return string(binary.BigEndian.AppendUint16(nil, code)) + reason
}

// concat joins frames into one stream.
func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// closeCode returns err's CloseError code, or 0 when err is nil; it fails the
// test for any other error.
func closeCode(t *testing.T, err error) uint16 {
	t.Helper()
	if err == nil {
		return 0
	}
	var ce *CloseError
	if !errors.As(err, &ce) {
		t.Fatalf(
			"error %v (%T) is not a *CloseError",
			err, err)
	}
	return ce.Code
}

// benchStream builds one text message of size bytes as the peer of role
// sends it: one frame, or fragments frames of about equal size.
func benchStream(role Role, size, fragments int) []byte {
	payload := bytes.Repeat([]byte("herald-"), size/7+1)[:size]
	var out []byte
	step := max(1, (size+fragments-1)/fragments)
	for i := range fragments {
		lo, hi := min(i*step, size), min((i+1)*step, size)
		if i == fragments-1 {
			hi = size
		}
		op := OpContinuation
		if i == 0 {
			op = OpText
		}
		fin := i == fragments-1
		if role == RoleServer {
			out = AppendMaskedFrame(out, op, fin, payload[lo:hi], testKey)
		} else {
			out = AppendFrame(out, op, fin, payload[lo:hi])
		}
	}
	return out
}

// decodeOne copies stream into work, as a socket read would, and decodes
// the one message in it, then drains the decoder so that it gives back its
// reassembly buffer. It returns the payload length, or -1 on failure.
func decodeOne(d *Decoder, work, stream []byte) int {
	copy(work, stream)
	msg, n, err := d.Next(work)
	if err != nil || msg.Op != OpText {
		return -1
	}
	size := len(msg.Payload)
	if rest, m, err := d.Next(work[n:]); rest.Op != 0 || m != 0 || err != nil {
		return -1
	}
	return size
}

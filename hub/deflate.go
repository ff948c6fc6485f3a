package hub

import (
	"sync"

	"github.com/herald-push/herald/codec"
)

// deflatedFrames are a Message's compressed frames. Each is built once, by
// the first loop that delivers the message to a subscriber that negotiated
// permessage-deflate; loops that need it meanwhile wait for that one
// compression rather than repeat it.
type deflatedFrames struct {
	envelope, raw lazyFrame
}

// lazyFrame is one frame built at most once.
type lazyFrame struct {
	once  sync.Once
	frame []byte
}

// get returns the frame, building it from plain with z on the first call.
func (f *lazyFrame) get(z *codec.Deflate, plain []byte) []byte {
	f.once.Do(func() { f.frame = deflateFrame(z, plain) })
	return f.frame
}

// EnvelopeDeflate returns Envelope's frame compressed with permessage-deflate
// for subscribers that negotiated it with a full window and no server
// context takeover (codec.DeflateParams.ServerWindowBits 15): the same bytes
// for every such subscriber on every loop, compressed once per message, on
// first use, so compression costs nothing when no subscriber asked for it
// and does not grow with their number. When the payload is under z's
// minimum size or does not shrink, it returns the plain Envelope frame
// itself.
//
// z must be the same for every call on one message (a server has one).
// Safe for concurrent use; the frame must not be modified. The compressed
// frames are not charged to the history budget: each is at most the size
// of its plain frame.
func (m *Message) EnvelopeDeflate(z *codec.Deflate) []byte {
	return m.deflatedFrames().envelope.get(z, m.envelope)
}

// RawDeflate is EnvelopeDeflate for the Raw frame.
func (m *Message) RawDeflate(z *codec.Deflate) []byte {
	return m.deflatedFrames().raw.get(z, m.raw)
}

// deflatedFrames returns m's compressed frames, creating the holder on first
// use. Two loops may race to create it; one holder wins and the other is
// dropped before it holds anything.
func (m *Message) deflatedFrames() *deflatedFrames {
	if d := m.deflated.Load(); d != nil {
		return d
	}
	d := new(deflatedFrames)
	if m.deflated.CompareAndSwap(nil, d) {
		return d
	}
	return m.deflated.Load()
}

// deflateFrame compresses the payload of the plain frame into a frame of
// its own, or returns plain when compression does not pay.
func deflateFrame(z *codec.Deflate, plain []byte) []byte {
	if f, ok := z.AppendCompressedOf(nil, plain, 15); ok {
		return f
	}
	return plain
}

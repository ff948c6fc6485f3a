package server

import (
	"bytes"
	stdflate "compress/flate"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/gobwas/ws"

	"github.com/herald-push/herald/codec"
)

// inflateFrame decodes a frame with gobwas/ws and, when RSV1 is set,
// inflates its payload with the standard library (both independent of the
// code under test). It returns RSV1, the opcode and the message.
func inflateFrame(t *testing.T, b []byte) (bool, ws.OpCode, []byte) {
	t.Helper()
	//lint:ignore SA1019 the frame comes from our own encoder, in memory: its length is trusted
	f, err := ws.ReadFrame(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("ReadFrame: %v", err)
	}
	rsv1 := f.Header.Rsv&0x4 != 0
	if !rsv1 {
		return false, f.Header.OpCode, f.Payload
	}
	tail := []byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff}
	out, err := io.ReadAll(stdflate.NewReader(io.MultiReader(bytes.NewReader(f.Payload), bytes.NewReader(tail))))
	if err != nil {
		t.Fatalf("inflate: %v", err)
	}
	return true, f.Header.OpCode, out
}

// textFrame and binaryFrame are Frames of payload, as the protocol above
// would build them.
func textFrame(payload string) *Frame {
	return NewFrame(codec.AppendFrame(nil, codec.OpText, true, []byte(payload)))
}

func binaryFrame(payload string) *Frame {
	return NewFrame(codec.AppendFrame(nil, codec.OpBinary, true, []byte(payload)))
}

// TestDeflatedFrames: a Frame's shared variant is the plain frame
// compressed (RSV1, the same opcode and message once inflated), or the
// plain frame where compression does not pay.
func TestDeflatedFrames(t *testing.T) {
	t.Parallel()
	z, err := codec.NewDeflate(codec.DeflateConfig{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		payload    string
		compressed bool
	}{
		{"small stays plain", `{"n":1}`, false},
		{"json compresses", `{"items":[` + strings.Repeat(`{"name":"widget","price":9.99},`, 40) + `0]}`, true},
		{"text compresses", strings.Repeat("hello world ", 100), true},
		{"large text", strings.Repeat("abcdefgh", 20000), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, v := range []struct {
				name         string
				plain, zhere []byte
			}{
				{"text", textFrame(tc.payload).Bytes(), textFrame(tc.payload).deflatedWith(z)},
				{"binary", binaryFrame(tc.payload).Bytes(), binaryFrame(tc.payload).deflatedWith(z)},
			} {
				_, plainOp, want := inflateFrame(t, v.plain)
				rsv1, op, got := inflateFrame(t, v.zhere)
				if rsv1 != tc.compressed {
					t.Errorf("%s: RSV1 = %v, want %v", v.name, rsv1, tc.compressed)
				}
				if !rsv1 && !bytes.Equal(v.zhere, v.plain) {
					t.Errorf("%s: uncompressed variant differs from the plain frame", v.name)
				}
				if op != plainOp || !bytes.Equal(got, want) {
					t.Errorf("%s: inflates to op %v %d bytes, want op %v %d bytes", v.name, op, len(got), plainOp, len(want))
				}
			}
		})
	}
}

// TestDeflateOncePerPublish delivers one message from many goroutines at
// once (as many loops would) and checks that it is compressed once and that
// all get the same bytes. Run with -race.
func TestDeflateOncePerPublish(t *testing.T) {
	t.Parallel()
	z, _ := codec.NewDeflate(codec.DeflateConfig{})
	f := textFrame(strings.Repeat(`{"price":101.5,"symbol":"ACME"}`, 50))
	const loops = 16
	frames := make([][]byte, loops)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for range 100 {
				frames[i] = f.deflatedWith(z)
			}
		}()
	}
	close(start)
	wg.Wait()
	for i := 1; i < loops; i++ {
		if &frames[i][0] != &frames[0][0] {
			t.Fatalf("loop %d got a different frame", i)
		}
	}
	if n := z.Stats().Compressed.Load(); n != 1 {
		t.Fatalf("compressed %d times, want once", n)
	}
}

// BenchmarkDeflateFanout compares, per delivered message, the compression
// work of a fan-out to 1000 compressing subscribers: compress once per
// publish (Frame's shared variant, what herald does) against compressing for each
// subscriber (what a server with per-connection compression contexts
// does). ns/op is per delivery.
func BenchmarkDeflateFanout(b *testing.B) {
	const subscribers = 1000
	z, _ := codec.NewDeflate(codec.DeflateConfig{})
	payload := (`{"symbol":"ACME","bid":101.25,"ask":101.27,"ts":1732650000,"news":"` + strings.Repeat("quarterly results beat estimates; ", 20) + `"}`)
	b.Run("once-per-publish", func(b *testing.B) {
		b.ReportAllocs()
		var f *Frame
		for i := 0; b.Loop(); i++ {
			if i%subscribers == 0 {
				f = textFrame(payload)
			}
			_ = f.deflatedWith(z)
		}
	})
	b.Run("per-connection", func(b *testing.B) {
		b.ReportAllocs()
		plain := textFrame(payload).Bytes()
		dst := make([]byte, 0, 2*len(plain))
		for b.Loop() {
			dst, _ = z.AppendCompressedOf(dst[:0], plain, 15)
		}
	})
}

//go:build !race

// Allocation counts are only meaningful without the race detector, which
// makes sync.Pool drop items at random; this file is left out under -race.

package codec

import (
	"fmt"
	"testing"

	"github.com/herald-push/herald/pool"
)

func TestDecoderZeroAllocs(t *testing.T) {
	for _, role := range []Role{RoleServer, RoleClient} {
		for _, size := range []int{16, 1 << 10, 64 << 10} {
			for _, fragments := range []int{1, 4} {
				name := fmt.Sprintf("role=%d size=%d fragments=%d", role, size, fragments)
				stream := benchStream(role, size, fragments)
				work := make([]byte, len(stream))
				var d Decoder
				d.Init(&DecoderConfig{Role: role, Buffers: pool.NewBytes()})
				if got := decodeOne(&d, work, stream); got != size {
					t.Fatalf(
						"%s: decoded %d bytes",
						name, got)
				}
				allocs := testing.AllocsPerRun(200, func() {
					if decodeOne(&d, work, stream) != size {
						panic("decode failed")
					}
				})
				if allocs != 0 {
					t.Errorf(
						"%s: %.1f allocations per message, want 0",
						name, allocs)
				}
			}
		}
	}
}

func TestDecoderZeroAllocsFrameInPieces(t *testing.T) {
	// A 64 KiB masked text frame that arrives in two reads: the first
	// checks half of it as UTF-8 through the scratch array.
	stream := benchStream(RoleServer, 64<<10, 1)
	work := make([]byte, len(stream))
	var d Decoder
	d.Init(&DecoderConfig{Buffers: pool.NewBytes()})
	allocs := testing.AllocsPerRun(200, func() {
		copy(work, stream)
		if msg, n, err := d.Next(work[:len(work)/2]); msg.Op != 0 || n != 0 || err != nil {
			panic("first half")
		}
		if msg, n, err := d.Next(work); msg.Op != OpText || n != len(work) || err != nil {
			panic("whole frame")
		}
	})
	if allocs != 0 {
		t.Fatalf(
			"%.1f allocations per message, want 0",
			allocs)
	}
}

func TestEncoderZeroAllocs(t *testing.T) {
	payload := make([]byte, 64<<10)
	dst := make([]byte, 0, len(payload)+MaxHeaderLen)
	req := &Request{Key: rfcKey}
	testCases := []struct {
		name string
		fn   func()
	}{
		{name: "AppendFrame", fn: func() { dst = AppendFrame(dst[:0], OpBinary, true, payload) }},
		{name: "AppendMaskedFrame", fn: func() { dst = AppendMaskedFrame(dst[:0], OpBinary, true, payload, testKey) }},
		{name: "AppendHeader", fn: func() { dst = AppendHeader(dst[:0], OpText, true, true, len(payload)) }},
		{name: "AppendClose", fn: func() { dst = AppendClose(dst[:0], CloseGoingAway, "restarting") }},
		{name: "AppendMaskedClose", fn: func() { dst = AppendMaskedClose(dst[:0], CloseNormal, "bye", testKey) }},
		{name: "AppendAccept", fn: func() { dst = AppendAccept(dst[:0], req, "herald.v1", "") }},
		{name: "Mask", fn: func() { Mask(payload, testKey, 1) }},
	}
	for _, tc := range testCases {
		if allocs := testing.AllocsPerRun(100, tc.fn); allocs != 0 {
			t.Errorf(
				"%s: %.1f allocations, want 0",
				tc.name, allocs)
		}
	}
}

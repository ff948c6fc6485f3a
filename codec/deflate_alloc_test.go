//go:build !race

// Allocation counts are only meaningful without the race detector, which
// makes sync.Pool drop items at random; this file is left out under -race.

package codec

import (
	"runtime/debug"
	"testing"

	"github.com/herald-push/herald/pool"
)

// TestDeflateSteadyStateAllocs asserts the claim of zero allocations per
// message once the pools are warm (GC off, so sync.Pool keeps them).
func TestDeflateSteadyStateAllocs(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	z, _ := NewDeflate(DeflateConfig{Buffers: pool.NewBytes()})
	payload := testPayloads()["json-1k"]
	dst := make([]byte, 0, 2048)
	compressed := stdDeflate(t, payload)
	for range 3 {
		z.AppendFrame(dst, OpText, payload, 15)
		out, _ := z.Inflate(compressed, true)
		z.Release(out)
	}
	if n := testing.AllocsPerRun(100, func() { z.AppendFrame(dst, OpText, payload, 15) }); n != 0 {
		t.Errorf("AppendFrame: %v allocs per message, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		out, _ := z.Inflate(compressed, true)
		z.Release(out)
	}); n != 0 {
		t.Errorf("Inflate: %v allocs per message, want 0", n)
	}
}

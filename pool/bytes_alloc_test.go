//go:build !race

// The race detector makes sync.Pool drop items at random, so allocation
// counts are only meaningful without it; this file is left out under -race.

package pool

import "testing"

func TestBytesSteadyStateAllocs(t *testing.T) {
	for _, size := range []int{16, 1 << 10, 64 << 10, 1 << 20} {
		p := NewBytes()
		p.Put(p.Get(size)) // warm the class
		allocs := testing.AllocsPerRun(1000, func() {
			p.Put(p.Get(size))
		})
		if allocs != 0 {
			t.Fatalf(
				"Get(%d)+Put allocates %.1f times per run, want 0",
				size, allocs)
		}
	}
}

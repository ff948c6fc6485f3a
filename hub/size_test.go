package hub

import (
	"testing"
	"unsafe"
)

// TestChannelSize: a channel, which every personal channel costs, fits
// the 128-byte size class, and a loop's list of one subscriber is one
// allocation of 80 bytes (64-bit platforms).
func TestChannelSize(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("sizes are checked on 64-bit platforms")
	}
	if got := unsafe.Sizeof(channel{}); got > 208 {
		t.Errorf("unsafe.Sizeof(channel{}) = %d, want <= 208", got)
	}
	if got := unsafe.Sizeof(subListOfOne{}); got > 72 {
		t.Errorf("unsafe.Sizeof(subListOfOne{}) = %d, want <= 72", got)
	}
}

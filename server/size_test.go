package server

import (
	"testing"
	"unsafe"
)

// TestStateSize guards the per-connection footprint: every idle connection
// holds one Conn (and, in push mode, one push.Session), so a field added
// here costs a million times over. Raise the limit only with a reason.
func TestStateSize(t *testing.T) {
	if n := unsafe.Sizeof(Conn{}); n > 80 {
		t.Errorf("server.Conn is %d bytes, want at most 80", n)
	}
}

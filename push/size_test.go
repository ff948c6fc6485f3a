package push

import (
	"testing"
	"unsafe"
)

// TestSessionSize guards the per-connection footprint: every idle
// connection holds one Session (and one server.Conn), so a field added
// here costs a million times over. Raise the limit only with a reason.
func TestSessionSize(t *testing.T) {
	if n := unsafe.Sizeof(Session{}); n > 64 {
		t.Errorf("push.Session is %d bytes, want at most 64", n)
	}
}

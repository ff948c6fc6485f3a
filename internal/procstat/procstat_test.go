package procstat

import (
	"os"
	"testing"
)

func TestReadSelf(t *testing.T) {
	s, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS <= 0 || s.PeakRSS < s.RSS || s.Threads < 1 {
		t.Fatalf("implausible status %+v", s)
	}
	if _, err := Read(-1); err == nil {
		t.Fatal("no error for a missing process")
	}
}

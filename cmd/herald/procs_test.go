package main

import (
	"io"
	"log/slog"
	"os"
	"runtime"
	"testing"
)

// TestSpareProc checks that serve leaves one P beyond the event loops
// when they would take them all, and changes nothing otherwise or when
// GOMAXPROCS is set in the environment. Not parallel: it sets GOMAXPROCS.
func TestSpareProc(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	procs := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(procs)
	_, fromEnv := os.LookupEnv("GOMAXPROCS")
	spareProc(log, procs)
	want := procs + 1
	if fromEnv {
		want = procs
	}
	if got := runtime.GOMAXPROCS(0); got != want {
		t.Errorf("after spareProc(%d) with GOMAXPROCS %d: %d, want %d", procs, procs, got, want)
	}
	runtime.GOMAXPROCS(procs)
	spareProc(log, procs+1) // more loops than Ps (e.g. a CPU quota): left alone
	if got := runtime.GOMAXPROCS(0); got != procs {
		t.Errorf("after spareProc(%d) with GOMAXPROCS %d: %d, want it unchanged", procs+1, procs, got)
	}
}

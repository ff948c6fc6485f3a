package main

import (
	"log/slog"
	"os"
	"runtime"
)

// spareProc gives the Go scheduler one P more than the event loops when
// the loops would otherwise take them all (loops, 0 meaning one per core
// as the poller counts them, equal to GOMAXPROCS), unless the GOMAXPROCS
// environment variable sets the count.
//
// An event loop idles in a blocking epoll_wait on its own thread, holding
// its P. When every P is held so, sysmon finds no idle P and takes the
// sleeping loop's P away after 20 µs, and the loop must win one back when
// the wait returns: a handoff and a scheduler round per wakeup, and a
// sysmon that keeps polling at its fastest rate. A storm of handshakes
// wakes the loop for nearly every connection, so that bookkeeping is a
// sizeable share of the CPU per handshake (bench/HANDSHAKE.md). With one P
// spare, a loop keeps its P through the wait and sysmon backs off.
func spareProc(log *slog.Logger, loops int) {
	if _, set := os.LookupEnv("GOMAXPROCS"); set {
		return
	}
	if loops <= 0 {
		loops = runtime.NumCPU()
	}
	if procs := runtime.GOMAXPROCS(0); procs == loops {
		runtime.GOMAXPROCS(procs + 1)
		log.Debug("one Go scheduler slot beside the event loops", "loops", loops, "gomaxprocs", procs+1)
	}
}

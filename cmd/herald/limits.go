package main

import (
	"log/slog"

	"github.com/herald-push/herald/doctor"
)

// raiseFileLimit raises the soft open-file limit to the hard one and logs
// the capacity that results; it warns when maxConns asks for more than the
// kernel allows.
func raiseFileLimit(log *slog.Logger, maxConns int) {
	soft, hard, err := doctor.RaiseNoFile()
	if err != nil {
		log.Warn("could not raise the open-file limit", "err", err)
	}
	r := doctor.Check(doctor.Live(), doctor.Options{MaxConns: uint64(max(maxConns, 0))})
	attrs := []any{"connections", r.Capacity, "nofile_soft", soft, "nofile_hard", hard}
	if f, ok := r.First(); ok {
		attrs = append(attrs, "first_limit", f.Knob, "limit_value", f.Value)
	}
	log.Info("capacity", attrs...)
	for _, w := range r.Warnings {
		log.Warn(w)
	}
}

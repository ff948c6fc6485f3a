package main

import (
	"log/slog"

	"github.com/herald-push/herald/doctor"
)

// raiseFileLimit raises the soft open-file limit to the hard one and logs
// the capacity that results; it warns when maxConns asks for more than the
// kernel allows. With a TLS listener (tls) the capacity counts every
// connection as a wss:// one, which holds 3 descriptors (its TCP socket
// and the socket pair to the event loops), so that it errs low; the line
// says so (files_per_conn).
func raiseFileLimit(log *slog.Logger, maxConns int, tls bool) {
	soft, hard, err := doctor.RaiseNoFile()
	if err != nil {
		log.Warn("could not raise the open-file limit", "err", err)
	}
	opts := doctor.Options{MaxConns: uint64(max(maxConns, 0))}
	if tls {
		opts.FilesPerConn = doctor.TLSFilesPerConn
	}
	r := doctor.Check(doctor.Live(), opts)
	attrs := []any{"connections", r.Capacity, "files_per_conn", r.FilesPerConn, "nofile_soft", soft, "nofile_hard", hard}
	if tls {
		attrs = append(attrs, "counted_as", "wss")
	}
	if f, ok := r.First(); ok {
		attrs = append(attrs, "first_limit", f.Knob, "limit_value", f.Value)
	}
	log.Info("capacity", attrs...)
	for _, w := range r.Warnings {
		log.Warn(w)
	}
}

package main

import (
	"log/slog"

	"github.com/herald-push/herald/doctor"
)

// raiseFileLimit raises the soft open-file limit to the hard one and logs
// the capacity that results; it warns when maxConns asks for more than the
// kernel allows. With a TLS listener (tls) the capacity counts every
// connection as a wss:// one: on the loop engine a TLS 1.3 connection
// holds 1 descriptor, like a plain one, and only a TLS 1.2 client (bridged)
// holds 3 (its TCP socket and the socket pair to the event loops), which
// the line says (tls12_files_per_conn); with the bridge engine (bridge)
// every wss:// connection holds 3, so the capacity counts 3.
func raiseFileLimit(log *slog.Logger, maxConns int, tls, bridge bool) {
	soft, hard, err := doctor.RaiseNoFile()
	if err != nil {
		log.Warn("could not raise the open-file limit", "err", err)
	}
	opts := doctor.Options{MaxConns: uint64(max(maxConns, 0))}
	if tls {
		opts.TLS = true
		opts.FilesPerConn = doctor.TLSFilesPerConn
		if bridge {
			opts.FilesPerConn = doctor.TLSBridgeFilesPerConn
		}
	}
	r := doctor.Check(doctor.Live(), opts)
	attrs := []any{"connections", r.Capacity, "files_per_conn", r.FilesPerConn, "nofile_soft", soft, "nofile_hard", hard}
	if tls {
		attrs = append(attrs, "counted_as", "wss")
		if !bridge {
			attrs = append(attrs, "tls12_files_per_conn", doctor.TLSBridgeFilesPerConn)
		}
	}
	if f, ok := r.First(); ok {
		attrs = append(attrs, "first_limit", f.Knob, "limit_value", f.Value)
	}
	log.Info("capacity", attrs...)
	for _, w := range r.Warnings {
		log.Warn(w)
	}
}

package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/herald-push/herald/doctor"
	"github.com/herald-push/herald/server"
)

// newDoctorCmd returns `herald doctor`: it reads this machine's limits and
// says how many connections a herald process could hold, what caps it first,
// and how to raise each limit.
func newDoctorCmd() *cobra.Command {
	var (
		asJSON bool
		tls    bool
		engine string
		opts   doctor.Options
	)
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "say how many connections this machine allows, what caps them first, and how to raise it",
		Long: "doctor reads the live limits of this machine (open files, memory, conntrack, TCP buffer memory,\n" +
			"listen backlog, ephemeral ports) and says how many connections one herald process could hold here,\n" +
			"which limit caps them first, and the exact commands or configuration lines that raise each one.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if tls {
				opts.TLS = true
				switch engine {
				case server.TLSEngineLoop, "":
					opts.FilesPerConn = doctor.TLSFilesPerConn
				case server.TLSEngineBridge:
					opts.FilesPerConn = doctor.TLSBridgeFilesPerConn
				default:
					return fmt.Errorf("doctor: --tls-engine %q: want loop or bridge", engine)
				}
			}
			r := doctor.Check(doctor.Live(), opts)
			if !asJSON {
				return r.WriteText(cmd.OutOrStdout())
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			if err := enc.Encode(r); err != nil {
				return fmt.Errorf("doctor: encode report: %w", err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print the report as JSON")
	f.Uint64Var(&opts.MaxConns, "max-conns", 0,
		"connections herald is configured to hold; the fixes aim at it (0: aim at 1,000,000)")
	f.BoolVar(&tls, "tls", false,
		"count connections as wss:// through herald's TLS listener: 1 open file per wss connection on the loop engine, 3 for a TLS 1.2 client (TCP socket and socket pair)")
	f.StringVar(&engine, "tls-engine", server.TLSEngineLoop,
		"with --tls, the server's --tls-engine: loop (1 open file per wss connection) or bridge (3 each)")
	f.Uint64Var(&opts.UserBytesPerConn, "bytes-per-conn", 0,
		"herald's own memory per idle connection in bytes (0: 1024)")
	f.Uint64Var(&opts.KernelBytesPerConn, "kernel-bytes-per-conn", 0,
		"the kernel's memory per idle connection in bytes (0: 5120, measured on Linux 6.x)")
	return cmd
}

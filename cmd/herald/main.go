// Command herald is the herald push server: `herald serve` runs a node,
// `herald checkconfig` validates a config file without starting one,
// `herald doctor` reads the machine's limits, `herald gentoken` and
// `herald gencert` make a connection token and a development certificate,
// `herald version` prints the build.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "herald:", err)
		os.Exit(1)
	}
}

// newRootCmd returns the herald command with every subcommand; this is the
// one place they are listed.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "herald",
		Short:         "herald is a WebSocket push tier: hold millions of connections, fan messages out in milliseconds",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newServeCmd(),
		newCheckconfigCmd(),
		newDoctorCmd(),
		newGentokenCmd(),
		newGencertCmd(),
		newVersionCmd(),
	)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print herald's version",
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "herald %s\n", version)
		},
	}
}

package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/herald-push/herald"
	"github.com/herald-push/herald/namespace"
)

// defaultServeOptions is what `herald serve` starts from before the
// config file, the environment and the flags.
func defaultServeOptions() serveOptions {
	return serveOptions{Config: herald.DefaultConfig(), GCPercent: 50, LogLevel: "info", LogFormat: "text"}
}

func newCheckconfigCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "checkconfig FILE",
		Short: "validate a JSON config file without starting a node",
		Long: `Load FILE as "herald serve --config FILE" would (with the HERALD_*
environment on top) and run every check a node runs before it starts,
without listening or contacting a broker. Prints "ok" and a summary, or
the error with exit status 1.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			summary, err := checkConfig(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), summary)
			return nil
		},
	}
}

// checkConfig loads path through serve's loader and checks the result; it
// returns the one-line summary.
func checkConfig(path string) (string, error) {
	opts := defaultServeOptions()
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	bindServerFlags(fs, &opts)
	if err := loadLayered(fs, path, &opts); err != nil {
		return "", err
	}
	if err := readSecretFiles(&opts); err != nil {
		return "", err
	}
	if _, err := newLogger(io.Discard, opts.LogLevel, opts.LogFormat); err != nil {
		return "", err
	}
	cfg, _ := withHooks(opts.Config)
	if err := herald.Check(cfg); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	tab, _ := namespace.New(cfg.Namespaces) // Check built it already
	names := "no namespaces"
	if n := tab.Len(); n > 0 {
		names = fmt.Sprintf("%d namespace%s (%s)", n, plural(n), strings.Join(tab.Names(), ", "))
	}
	broker := cfg.Broker
	if broker == "" {
		broker = "memory"
	}
	return fmt.Sprintf("ok: %s: %s, broker %s", path, names, redactURLs(broker)), nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

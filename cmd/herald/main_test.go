package main

import (
	"bytes"
	"slices"
	"testing"
)

// TestSubcommands: the root command carries every subcommand, and one of
// them runs through it.
func TestSubcommands(t *testing.T) {
	t.Parallel()
	root := newRootCmd()
	var names []string
	for _, c := range root.Commands() {
		names = append(names, c.Name())
	}
	for _, want := range []string{"serve", "checkconfig", "doctor", "gentoken", "gencert", "version"} {
		if !slices.Contains(names, want) {
			t.Errorf("no %q subcommand among %v", want, names)
		}
	}
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"version"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "herald "+version+"\n"; got != want {
		t.Fatalf("herald version: %q, want %q", got, want)
	}
}

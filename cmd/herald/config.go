package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
)

// loadLayered applies, in order of increasing precedence, the defaults
// already in the bound variables, the JSON config file (if path is set),
// HERALD_* environment variables, and the flags given on the command line.
// file is the struct the JSON file decodes into (the same one the flags are
// bound to).
func loadLayered(fs *pflag.FlagSet, path string, file any) error {
	// Remember what the command line said, then rebuild from the bottom up.
	given := map[string]string{}
	fs.Visit(func(f *pflag.Flag) { given[f.Name] = f.Value.String() })
	// Reset every flag to its default so the file can fill them.
	fs.VisitAll(func(f *pflag.Flag) {
		if _, isSlice := f.Value.(pflag.SliceValue); isSlice {
			_ = f.Value.(pflag.SliceValue).Replace(splitDefault(f.DefValue))
			return
		}
		_ = f.Value.Set(f.DefValue)
	})
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("config file: %w", err)
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(file); err != nil {
			return fmt.Errorf("config file %s: %w", path, err)
		}
	}
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil {
			return
		}
		if v, ok := given[f.Name]; ok {
			err = setFlag(f, v)
			return
		}
		if v, ok := os.LookupEnv(envName(f.Name)); ok {
			if e := setFlag(f, v); e != nil {
				err = fmt.Errorf("environment %s: %w", envName(f.Name), e)
			}
		}
	})
	return err
}

// setFlag sets one flag from the command line or the environment. A list
// given as the empty string is an empty list, which means none (not the
// default): --anonymous-publish= and HERALD_ANONYMOUS_PUBLISH="" both
// forbid anonymous publishing.
func setFlag(f *pflag.Flag, v string) error {
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		list := splitDefault(v)
		if list == nil {
			list = []string{}
		}
		return sv.Replace(list)
	}
	if err := f.Value.Set(v); err != nil {
		return fmt.Errorf("--%s=%q: %w", f.Name, v, err)
	}
	return nil
}

// splitDefault reads pflag's "[a,b]" rendering of a slice (or a plain
// comma-separated list).
func splitDefault(v string) []string {
	v = strings.TrimSuffix(strings.TrimPrefix(v, "["), "]")
	if v == "" {
		return nil
	}
	parts := strings.Split(v, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// envName maps a flag name to its environment variable: max-conns →
// HERALD_MAX_CONNS.
func envName(flag string) string {
	return "HERALD_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

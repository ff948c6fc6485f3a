package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestConfigLayers: defaults < config file < HERALD_* env < flags, as
// --print-config shows them.
func TestConfigLayers(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "herald.json")
	os.WriteFile(file, []byte(`{"listen":":9100","max_conns":10,"history_size":7,"ping_interval":"40s","allowed_origins":["https://a.example"]}`), 0o600)
	t.Setenv("HERALD_MAX_CONNS", "20")
	t.Setenv("HERALD_SLOW_POLICY", "drop")
	t.Setenv("HERALD_POLLER_BACKEND", "gnet") // read by the command, not by the library
	cases := []struct {
		name  string
		args  []string
		check func(t *testing.T, o serveOptions)
	}{
		{"defaults", nil, func(t *testing.T, o serveOptions) {
			if o.Listen != ":8080" || o.APIListen != "127.0.0.1:8081" || o.HandshakeTimeout.String() != "10s" {
				t.Fatalf("defaults: %+v", o)
			}
			if o.Pprof || o.Demo || o.APIInsecure || o.AnonymousPublish != nil || o.APIMaxConns != 1024 {
				t.Fatalf("insecure defaults: pprof %v demo %v api_insecure %v anonymous_publish %#v api_max_conns %d",
					o.Pprof, o.Demo, o.APIInsecure, o.AnonymousPublish, o.APIMaxConns)
			}
			if o.MaxConns != 20 || o.SlowPolicy != "drop" || o.PollerBackend != "gnet" {
				t.Fatalf("env not applied: max_conns %d slow_policy %q poller_backend %q", o.MaxConns, o.SlowPolicy, o.PollerBackend)
			}
		}},
		{"file-then-env-then-flags", []string{"--config", file, "--history-size", "9"}, func(t *testing.T, o serveOptions) {
			if o.Listen != ":9100" {
				t.Fatalf("file listen not applied: %q", o.Listen)
			}
			if o.MaxConns != 20 {
				t.Fatalf("env must override the file: max_conns %d", o.MaxConns)
			}
			if o.HistorySize != 9 {
				t.Fatalf("flag must override the file: history_size %d", o.HistorySize)
			}
			if o.PingInterval.String() != "40s" || len(o.AllowedOrigins) != 1 {
				t.Fatalf("file values: ping %v origins %v", o.PingInterval, o.AllowedOrigins)
			}
		}},
		{"flag-over-env", []string{"--max-conns", "30", "--poller-backend", "epoll"}, func(t *testing.T, o serveOptions) {
			if o.MaxConns != 30 || o.PollerBackend != "epoll" {
				t.Fatalf("flag must override env: max_conns %d poller_backend %q", o.MaxConns, o.PollerBackend)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := newServeCmd()
			var out bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetArgs(append(tc.args, "--print-config"))
			if err := cmd.Execute(); err != nil {
				t.Fatal(err)
			}
			var o serveOptions
			if err := json.Unmarshal(out.Bytes(), &o); err != nil {
				t.Fatalf("print-config is not JSON: %v\n%s", err, out.String())
			}
			tc.check(t, o)
		})
	}
}

// TestConfigErrors: an unknown key in the file or a bad value is an error
// that names it.
func TestConfigErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(file, []byte(`{"lisen":":1"}`), 0o600)
	for _, args := range [][]string{{"--config", file}, {"--ping-interval", "soon"}, {"--config", "/does/not/exist.json"}} {
		cmd := newServeCmd()
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		cmd.SetArgs(append(args, "--print-config"))
		if err := cmd.Execute(); err == nil {
			t.Fatalf("%v: want an error", args)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/herald-push/herald"
)

// printConfig runs `serve ARGS --print-config` and decodes the result; it
// also returns the raw output.
func printConfig(t *testing.T, args ...string) (serveOptions, string) {
	t.Helper()
	cmd := newServeCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs(append(args, "--print-config"))
	if err := cmd.Execute(); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	var o serveOptions
	if err := json.Unmarshal(out.Bytes(), &o); err != nil {
		t.Fatalf("print-config is not JSON: %v\n%s", err, out.String())
	}
	return o, out.String()
}

// writeFile writes content to a new file in the test's directory.
func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestEmptyPatternListMeansNone: an empty list given by flag, environment
// or JSON forbids everything, even with the demo on; unset, the demo
// allows demo:*.
func TestEmptyPatternListMeansNone(t *testing.T) {
	empty := writeTemp(t, "empty.json", `{"anonymous_publish":[],"anonymous_subscribe":[]}`)
	cases := []struct {
		name string
		env  bool
		args []string
	}{
		{"flag", false, []string{"--anonymous-publish=", "--anonymous-subscribe="}},
		{"env", true, nil},
		{"json", false, []string{"--config", empty}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env {
				t.Setenv("HERALD_ANONYMOUS_PUBLISH", "")
				t.Setenv("HERALD_ANONYMOUS_SUBSCRIBE", "")
			}
			o, _ := printConfig(t, append(tc.args, "--demo", "--allow-anonymous")...)
			if o.AnonymousPublish == nil || len(o.AnonymousPublishPatterns()) != 0 {
				t.Fatalf("anonymous_publish %#v (effective %v), want an empty list", o.AnonymousPublish, o.AnonymousPublishPatterns())
			}
			if o.AnonymousSubscribe == nil || len(o.AnonymousSubscribe) != 0 {
				t.Fatalf("anonymous_subscribe %#v, want an empty list", o.AnonymousSubscribe)
			}
		})
	}
	t.Run("unset", func(t *testing.T) {
		o, _ := printConfig(t, "--demo")
		if got := o.AnonymousPublishPatterns(); len(got) != 1 || got[0] != "demo:*" {
			t.Fatalf("demo on, anonymous_publish unset: %v, want [demo:*]", got)
		}
		o, _ = printConfig(t)
		if got := o.AnonymousPublishPatterns(); len(got) != 0 {
			t.Fatalf("demo off, anonymous_publish unset: %v, want none", got)
		}
		o, _ = printConfig(t, "--demo", "--anonymous-publish", "a,b")
		if got := o.AnonymousPublishPatterns(); len(got) != 2 {
			t.Fatalf("explicit list: %v", got)
		}
	})
}

// TestSecretFiles: secrets come from files, never show in --print-config,
// and a secret given twice is an error.
func TestSecretFiles(t *testing.T) {
	key := writeTemp(t, "key", "api-key-from-file\n")
	secret := writeTemp(t, "secret", "  jwt-secret-from-file-0123456789abcdef  \r\nignored\n")
	o := serveOptions{APIKeyFile: key, JWTSecretFile: secret}
	if err := readSecretFiles(&o); err != nil {
		t.Fatal(err)
	}
	if o.APIKey != "api-key-from-file" || o.JWTSecret != "jwt-secret-from-file-0123456789abcdef" {
		t.Fatalf("read %q and %q", o.APIKey, o.JWTSecret)
	}
	shown, raw := printConfig(t, "--api-key-file", key, "--jwt-secret-file", secret)
	if shown.APIKey != "(set)" || shown.JWTSecret != "(set)" || strings.Contains(raw, "from-file") {
		t.Fatalf("print-config shows a secret:\n%s", raw)
	}
	twice := serveOptions{APIKeyFile: key}
	twice.APIKey = "direct"
	bad := []serveOptions{
		twice,
		{APIKeyFile: writeTemp(t, "blank", "\n")},
		{JWTSecretFile: filepath.Join(t.TempDir(), "missing")},
	}
	for _, b := range bad {
		if err := readSecretFiles(&b); err == nil {
			t.Errorf("key file %q, secret file %q: want an error", b.APIKeyFile, b.JWTSecretFile)
		}
	}
}

// TestPrintConfigHidesSecrets: keys, secrets and broker credentials given
// any way never reach --print-config.
func TestPrintConfigHidesSecrets(t *testing.T) {
	t.Setenv("HERALD_JWT_SECRET", "env-secret-0123456789abcdef0123456789")
	_, raw := printConfig(t, "--api-key", "flag-key-1234", "--broker", "nats://alice:pw-9876@n1:4222,nats://tok-5555@n2:4222")
	for _, secret := range []string{"env-secret", "flag-key-1234", "pw-9876", "tok-5555"} {
		if strings.Contains(raw, secret) {
			t.Errorf("print-config shows %q:\n%s", secret, raw)
		}
	}
	if !strings.Contains(raw, "n1:4222") || !strings.Contains(raw, "n2:4222") {
		t.Errorf("broker hosts should stay visible:\n%s", raw)
	}
}

// serve runs `herald serve ARGS` with a context that is already cancelled:
// a configuration herald accepts starts and stops at once, one it refuses
// returns its error. It returns the log and the error.
func serve(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newServeCmd()
	var log bytes.Buffer
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&log)
	base := []string{"--listen", "127.0.0.1:0", "--loops", "1", "--drain-timeout", "0s", "--log-level", "warn", "--allow-anonymous"}
	cmd.SetArgs(append(base, args...))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := cmd.ExecuteContext(ctx)
	return log.String(), err
}

// TestRefuseToStart: a non-loopback API needs a key or --api-insecure, and
// pprof there always needs a key; an unknown poller backend is refused.
func TestRefuseToStart(t *testing.T) {
	key := writeTemp(t, "key", "k3y\n")
	cases := []struct {
		name    string
		args    []string
		wantErr string // empty: starts
	}{
		{"loopback without key", []string{"--api-listen", "127.0.0.1:0"}, ""},
		{"loopback pprof without key", []string{"--api-listen", "127.0.0.1:0", "--pprof"}, ""},
		{"all interfaces without key", []string{"--api-listen", ":0"}, "--api-insecure"},
		{"any address without key", []string{"--api-listen", "0.0.0.0:0"}, "API key"},
		{"insecure on purpose", []string{"--api-listen", "0.0.0.0:0", "--api-insecure"}, ""},
		{"insecure pprof", []string{"--api-listen", "0.0.0.0:0", "--api-insecure", "--pprof"}, "pprof"},
		{"with a key", []string{"--api-listen", "0.0.0.0:0", "--api-key-file", key, "--pprof"}, ""},
		{"no API listener", []string{"--api-listen", ""}, ""},
		{"gnet backend", []string{"--api-listen", "", "--poller-backend", "gnet"}, ""},
		{"unknown backend", []string{"--api-listen", "", "--poller-backend", "select"}, "poller_backend"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			log, err := serve(t, tc.args...)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v\n%s", err, log)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
	t.Run("insecure warns", func(t *testing.T) {
		log, _ := serve(t, "--api-listen", "0.0.0.0:0", "--api-insecure")
		if !strings.Contains(log, "without a key") {
			t.Fatalf("no warning for an open API listener:\n%s", log)
		}
	})
}

// TestSecretFlagWarning: a secret given as a flag is accepted with a
// warning that names the flag (never the secret); from a file or the
// environment, no warning.
func TestSecretFlagWarning(t *testing.T) {
	const jwt = "flag-secret-0123456789abcdef012345"
	log, err := serve(t, "--api-listen", "127.0.0.1:0", "--api-key", "flag-key", "--jwt-secret", jwt)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"--api-key", "--jwt-secret", "HERALD_JWT_SECRET", "--api-key-file"} {
		if !strings.Contains(log, want) {
			t.Errorf("log does not mention %s:\n%s", want, log)
		}
	}
	if strings.Contains(log, jwt) || strings.Contains(log, "flag-key ") {
		t.Errorf("the log shows a secret:\n%s", log)
	}
	t.Setenv("HERALD_JWT_SECRET", jwt)
	log, _ = serve(t, "--api-listen", "127.0.0.1:0", "--api-key-file", writeTemp(t, "k", "k3y"))
	if strings.Contains(log, "command-line flag") {
		t.Errorf("warning without a secret flag:\n%s", log)
	}
}

// TestDemoOnlyWhenOn: the demo's hooks (its message handler, which
// publishes to demo:counter for any client, and its page) are set only
// with --demo; otherwise only the browser client script, and in echo mode
// nothing.
func TestDemoOnlyWhenOn(t *testing.T) {
	t.Parallel()
	hooks := func(cfg herald.Config) string {
		cfg, d := withHooks(cfg)
		return fmt.Sprintf("handler %v page %v script %v demo %v",
			cfg.Handler != nil, cfg.DemoPage != nil, cfg.ClientScript != nil, d != nil)
	}
	cfg := herald.DefaultConfig()
	if got, want := hooks(cfg), "handler false page false script true demo false"; got != want {
		t.Errorf("demo off: %s, want %s", got, want)
	}
	cfg.Demo = true
	if got, want := hooks(cfg), "handler true page true script true demo true"; got != want {
		t.Errorf("demo on: %s, want %s", got, want)
	}
	cfg.Echo = true
	if got, want := hooks(cfg), "handler false page false script false demo false"; got != want {
		t.Errorf("echo mode: %s, want %s", got, want)
	}
}

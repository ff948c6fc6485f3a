package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckconfig runs `herald checkconfig FILE` on good and bad files.
func TestCheckconfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name string
		file string
		ok   bool
		want string // in the output or the error
	}{
		{"namespaces", write("good.json", `{"allow_anonymous": true, "namespaces": [{"name": "chat", "history_ttl": "48h"}, {"name": "feed", "client_publish": false}]}`),
			true, "ok: " + filepath.Join(dir, "good.json") + ": 2 namespaces (chat, feed), broker memory"},
		{"no namespaces", write("plain.json", `{"allow_anonymous": true}`), true, "no namespaces"},
		{"unknown key", write("typo.json", `{"allow_anonymous": true, "namespace": []}`), false, `unknown field "namespace"`},
		{"unknown namespace option", write("presense.json", `{"allow_anonymous": true, "namespaces": [{"name": "a", "presense": true}]}`), false, `unknown field "presense"`},
		{"presence namespace", write("presence.json", `{"allow_anonymous": true, "namespaces": [{"name": "a", "presence": true}], "presence_channels": ["lobby"]}`), true, "ok:"},
		{"bad namespace", write("badns.json", `{"allow_anonymous": true, "namespaces": [{"name": "user"}]}`), false, "reserved"},
		{"message over the budget", write("big.json", `{"allow_anonymous": true, "write_buffer_limit": 65536, "namespaces": [{"name": "a", "max_message_size": 100000}]}`), false, "write_buffer_limit"},
		{"what New refuses", write("noauth.json", `{}`), false, "allow-anonymous"},
		{"missing file", filepath.Join(dir, "nope.json"), false, "no such file"},
		{"connect hook, no other auth", write("hook.json", `{"hooks": {"connect_url": "http://127.0.0.1:9/connect", "cookies": ["sid"]}}`), true, "ok: "},
		{"hook slower than the handshake", write("slowhook.json", `{"handshake_timeout": "2s", "hooks": {"connect_url": "http://127.0.0.1:9/connect", "timeout": "5s"}}`), false, "shorter than handshake_timeout"},
		{"cookies with any origin", write("anyorigin.json", `{"allowed_origins": ["*"], "hooks": {"connect_url": "http://127.0.0.1:9/connect", "cookies": ["sid"]}}`), false, "Origin check"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := newRootCmd()
			var out bytes.Buffer
			root.SetOut(&out)
			root.SetErr(&bytes.Buffer{})
			root.SetArgs([]string{"checkconfig", tc.file})
			err := root.Execute()
			if tc.ok != (err == nil) {
				t.Fatalf("err %v, output %q; want ok=%v", err, out.String(), tc.ok)
			}
			got := out.String()
			if err != nil {
				got = err.Error()
			}
			if !strings.Contains(got, tc.want) {
				t.Fatalf("%q does not contain %q", got, tc.want)
			}
		})
	}
}

// TestPrintConfigNamespaces: --print-config shows the namespaces of the
// file.
func TestPrintConfigNamespaces(t *testing.T) {
	file := filepath.Join(t.TempDir(), "ns.json")
	if err := os.WriteFile(file, []byte(`{"namespaces": [{"name": "chat", "history_size": 0, "recovery": false, "max_message_size": 1024}], "broker_max_bytes": 1000000}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := newServeCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetArgs([]string{"--config", file, "--print-config"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"name": "chat"`, `"history_size": 0`, `"recovery": false`, `"max_message_size": 1024`, `"broker_max_bytes": 1000000`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("print-config lacks %s:\n%s", want, out.String())
		}
	}
}

package main

import "testing"

// TestPusherFlags: the --pusher-* flags add one app, whole or not at all.
func TestPusherFlags(t *testing.T) {
	o := serveOptions{PusherAppID: "1", PusherKey: "k", PusherSecretFile: writeTemp(t, "s", "sec\n")}
	if err := readSecretFiles(&o); err != nil {
		t.Fatal(err)
	}
	if len(o.Pusher) != 1 || o.Pusher[0].Secret != "sec" || o.Pusher[0].Key != "k" {
		t.Fatalf("apps %+v", o.Pusher)
	}
	if r := redacted(o); r.Pusher[0].Secret != "(set)" || o.Pusher[0].Secret != "sec" {
		t.Errorf("redacted %+v, original %+v", r.Pusher, o.Pusher)
	}
	if err := readSecretFiles(&serveOptions{PusherKey: "k"}); err == nil {
		t.Error("a key without id and secret was accepted")
	}
}

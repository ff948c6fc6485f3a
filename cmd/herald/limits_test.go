package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestCapacityLineCountsTLS: with a TLS listener on the loop engine the
// capacity line counts 1 descriptor a connection and says a TLS 1.2 client
// takes 3; with the bridge engine it counts 3.
func TestCapacityLineCountsTLS(t *testing.T) {
	capacity := func(tls, bridge bool) string {
		var b bytes.Buffer
		raiseFileLimit(slog.New(slog.NewTextHandler(&b, nil)), 0, tls, bridge)
		for _, line := range strings.Split(b.String(), "\n") {
			if strings.Contains(line, "msg=capacity") {
				return line
			}
		}
		t.Fatalf("no capacity line in %q", b.String())
		return ""
	}
	if l := capacity(false, false); !strings.Contains(l, "files_per_conn=1") || strings.Contains(l, "counted_as") {
		t.Errorf("plain: %s", l)
	}
	if l := capacity(true, false); !strings.Contains(l, " files_per_conn=1") || !strings.Contains(l, "counted_as=wss") || !strings.Contains(l, "tls12_files_per_conn=3") {
		t.Errorf("tls, loop engine: %s", l)
	}
	if l := capacity(true, true); !strings.Contains(l, " files_per_conn=3") || !strings.Contains(l, "counted_as=wss") || strings.Contains(l, "tls12_") {
		t.Errorf("tls, bridge engine: %s", l)
	}
}

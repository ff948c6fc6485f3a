package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestCapacityLineCountsTLS: with a TLS listener the capacity line counts
// 3 descriptors a connection, and says so.
func TestCapacityLineCountsTLS(t *testing.T) {
	capacity := func(tls bool) string {
		var b bytes.Buffer
		raiseFileLimit(slog.New(slog.NewTextHandler(&b, nil)), 0, tls)
		for _, line := range strings.Split(b.String(), "\n") {
			if strings.Contains(line, "msg=capacity") {
				return line
			}
		}
		t.Fatalf("no capacity line in %q", b.String())
		return ""
	}
	if l := capacity(false); !strings.Contains(l, "files_per_conn=1") || strings.Contains(l, "counted_as") {
		t.Errorf("plain: %s", l)
	}
	if l := capacity(true); !strings.Contains(l, "files_per_conn=3") || !strings.Contains(l, "counted_as=wss") {
		t.Errorf("tls: %s", l)
	}
}

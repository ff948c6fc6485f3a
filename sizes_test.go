package herald

import (
	"strings"
	"testing"
)

func TestCheckSizes(t *testing.T) {
	cfg := DefaultConfig()
	if err := checkSizes(cfg); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	cfg.MaxPublishSize = cfg.WriteBufferLimit // its envelope is a little larger
	err := checkSizes(cfg)
	if err == nil || !strings.Contains(err.Error(), "max_publish_size") || !strings.Contains(err.Error(), "write_buffer_limit") {
		t.Fatalf("publish size equal to the write buffer limit: %v, want an error naming both", err)
	}
	if _, err := New(cfg); err == nil {
		t.Fatal("New accepted the inconsistent sizes")
	}
}

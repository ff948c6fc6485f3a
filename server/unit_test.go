package server

import (
	"runtime"
	"testing"
	"time"

	"github.com/herald-push/herald/poller"
)

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	if err := good.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	zero := Config{Listen: ":0"}
	if err := zero.Validate(); err != nil {
		t.Fatalf("a Config with only Listen: %v", err)
	}
	d := zero.withDefaults(false)
	if d.MaxMessageSize != DefaultMaxMessageSize || d.MaxFrameSize != DefaultMaxMessageSize || d.WriteBufferLimit != DefaultWriteBufferLimit ||
		d.MaxHandshakes != DefaultMaxHandshakes || d.CloseLinger != Duration(DefaultCloseLinger) {
		t.Errorf("push defaults: %+v", d)
	}
	if e := zero.withDefaults(true); e.MaxMessageSize != DefaultEchoMaxMessageSize {
		t.Errorf("echo max_message_size %d, want %d", e.MaxMessageSize, DefaultEchoMaxMessageSize)
	}
	cases := map[string]func(c *Config){
		"no listen":           func(c *Config) { c.Listen = "" },
		"frame < 0":           func(c *Config) { c.MaxFrameSize = -1 },
		"message < frame":     func(c *Config) { c.MaxFrameSize = 2 << 20; c.MaxMessageSize = 1 << 20 },
		"tiny header":         func(c *Config) { c.MaxHeaderBytes = 100 },
		"negative handshake":  func(c *Config) { c.HandshakeTimeout = -1 },
		"negative first byte": func(c *Config) { c.FirstByteTimeout = -1 },
		"huge msg timeout":    func(c *Config) { c.MessageTimeout = Duration(48 * time.Hour) },
		"negative write":      func(c *Config) { c.WriteBufferLimit = -1 },
		"negative per ip":     func(c *Config) { c.MaxConnsPerIP = -1 },
		"negative max conns":  func(c *Config) { c.MaxConns = -1 },
		"negative loop count": func(c *Config) { c.Loops = -2 },
	}
	for name, mutate := range cases {
		c := DefaultConfig()
		mutate(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestHoldWait checks that a server's loops hold their P while they wait
// only when GOMAXPROCS leaves one beyond them.
func TestHoldWait(t *testing.T) {
	procs := runtime.GOMAXPROCS(0)
	if got := holdWait(procs - 1); got != poller.DefaultHoldWait {
		t.Errorf("holdWait(%d) with GOMAXPROCS %d = %v, want %v", procs-1, procs, got, poller.DefaultHoldWait)
	}
	for _, n := range []int{procs, procs + 1} {
		if got := holdWait(n); got != 0 {
			t.Errorf("holdWait(%d) with GOMAXPROCS %d = %v, want 0", n, procs, got)
		}
	}
}

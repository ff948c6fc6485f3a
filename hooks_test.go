package herald

import (
	"strings"
	"testing"
	"time"

	"github.com/herald-push/herald/server"
)

// TestHooksConfig: New refuses hook settings that could not work or
// would be unsafe, and needs no JWT key with a connect hook.
func TestHooksConfig(t *testing.T) {
	t.Parallel()
	base := func() Config {
		cfg := DefaultConfig()
		cfg.Listen, cfg.APIListen = "127.0.0.1:0", ""
		cfg.Hooks.ConnectURL = "http://127.0.0.1:1/connect"
		return cfg
	}
	cases := []struct {
		name string
		edit func(*Config)
		want string // "" accepts
	}{
		{"connect hook without a key", func(*Config) {}, ""},
		{"timeout past the handshake's", func(c *Config) { c.Hooks.Timeout = server.Duration(time.Minute) }, "handshake_timeout"},
		{"cookies to any origin", func(c *Config) {
			c.Hooks.Cookies, c.AllowedOrigins = []string{"sid"}, []string{"*"}
		}, "allowed_origins"},
		{"bad URL", func(c *Config) { c.Hooks.SubscribeURL = "ftp://x/" }, "subscribe_url"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := base()
			tc.edit(&cfg)
			_, err := New(cfg)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error about %s", err, tc.want)
			}
		})
	}
}

package hub

import (
	"strings"
	"testing"
)

func TestValidChannel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"simple", "news", true},
		{"personal", "user:alice", true},
		{"punctuation", "chat.room-1", true},
		{"all printable", "!~#$%&'()*+,-./0123456789:;<=>?@[]^_`{|}", true},
		{"longest", strings.Repeat("a", 255), true},
		{"empty", "", false},
		{"too long", strings.Repeat("a", 256), false},
		{"space", "a b", false},
		{"tab", "a\tb", false},
		{"newline", "a\n", false},
		{"del", "a\x7f", false},
		{"non-ascii", "café", false},
		{"nul", "a\x00", false},
	}
	for _, tc := range tests {
		if got := ValidChannel(tc.in); got != tc.want {
			t.Errorf("%s: ValidChannel(%q) = %v, want %v", tc.name, tc.in, got, tc.want)
		}
	}
}

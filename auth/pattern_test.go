package auth

import (
	"strings"
	"testing"
	"unsafe"
)

func TestPatterns(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		pattern string
		subject string
		channel string
		want    bool
	}{
		{name: "exact", pattern: "news", channel: "news", want: true},
		{name: "exact differs", pattern: "news", channel: "news2"},
		{name: "exact prefix only", pattern: "news", channel: "new"},
		{name: "star any", pattern: "*", channel: "anything.at:all/x", want: true},
		{name: "star empty channel", pattern: "*", channel: ""},
		{name: "suffix", pattern: "chat:*", channel: "chat:room1", want: true},
		{name: "suffix deep", pattern: "chat:*", channel: "chat:room1.sub", want: true},
		{name: "suffix needs a rest", pattern: "chat:*", channel: "chat:"},
		{name: "suffix other prefix", pattern: "chat:*", channel: "chap:x"},
		{name: "suffix dot", pattern: "news.*", channel: "news.eu", want: true},
		{name: "suffix bare", pattern: "news.*", channel: "news"},
		{name: "suffix mid-word", pattern: "news*", channel: "newsroom", want: true},
		{name: "inner segment", pattern: "news.*.live", channel: "news.eu.live", want: true},
		{name: "inner segment not two", pattern: "news.*.live", channel: "news.eu.fr.live"},
		{name: "inner segment not empty", pattern: "news.*.live", channel: "news..live"},
		{name: "inner segment other tail", pattern: "news.*.live", channel: "news.eu.dead"},
		{name: "leading segment", pattern: "*.live", channel: "sport.live", want: true},
		{name: "leading segment stops at sep", pattern: "*.live", channel: "a:b.live"},
		{name: "segment then suffix", pattern: "t/*/x/*", channel: "t/a/x/b/c", want: true},
		{name: "segment then suffix short", pattern: "t/*/x/*", channel: "t/a/x/"},
		{name: "sub exact", pattern: "private:{sub}", subject: "alice", channel: "private:alice", want: true},
		{name: "sub other user", pattern: "private:{sub}", subject: "alice", channel: "private:bob"},
		{name: "sub is literal", pattern: "private:{sub}", subject: "a*", channel: "private:ab"},
		{name: "sub literal star matches itself", pattern: "private:{sub}", subject: "a*", channel: "private:a*", want: true},
		{name: "sub with suffix", pattern: "{sub}.*", subject: "alice", channel: "alice.inbox", want: true},
		{name: "sub with segment", pattern: "rooms.*.{sub}", subject: "al", channel: "rooms.x.al", want: true},
		{name: "sub without subject", pattern: "private:{sub}", channel: "private:"},
		{name: "brace literal", pattern: "a{b}", channel: "a{b}", want: true},
		{name: "user ns needs user pattern", pattern: "*", subject: "alice", channel: "user:bob"},
		{name: "user ns suffix elsewhere", pattern: "u*", channel: "user:bob"},
		{name: "user ns granted by user:*", pattern: "user:*", channel: "user:bob", want: true},
		{name: "user ns granted exactly", pattern: "user:bob", subject: "alice", channel: "user:bob", want: true},
		{name: "user ns segment", pattern: "*:bob", channel: "user:bob"},
		{name: "own user channel always", pattern: "news", subject: "alice", channel: "user:alice", want: true},
		{name: "own user channel prefix", pattern: "news", subject: "alice", channel: "user:alice2"},
		{name: "anonymous no user channel", pattern: "news", channel: "user:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := NewClaims(tc.subject, []string{tc.pattern}, []string{tc.pattern})
			if err != nil {
				t.Fatalf("NewClaims: %v", err)
			}
			if got := c.CanSubscribe(tc.channel); got != tc.want {
				t.Errorf("CanSubscribe(%q) with %q = %v, want %v", tc.channel, tc.pattern, got, tc.want)
			}
			// Publishing follows the same patterns, minus the personal channel.
			wantPub := tc.want && !(tc.subject != "" && tc.channel == "user:"+tc.subject && tc.pattern == "news")
			if got := c.CanPublish(tc.channel); got != wantPub {
				t.Errorf("CanPublish(%q) with %q = %v, want %v", tc.channel, tc.pattern, got, wantPub)
			}
		})
	}
}

func TestPatternErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		pattern string
		want    string
	}{
		{name: "empty", pattern: "", want: "empty"},
		{name: "star inside word", pattern: "a*b", want: "whole segment"},
		{name: "star after word", pattern: "ab*.c", want: "whole segment"},
		{name: "star before word", pattern: "a.*b", want: "whole segment"},
		{name: "star next to sub", pattern: "*{sub}.x", want: "whole segment"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewClaims("alice", []string{tc.pattern}, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewClaims(%q) error = %v, want one containing %q", tc.pattern, err, tc.want)
			}
		})
	}
}

func TestNilClaims(t *testing.T) {
	t.Parallel()
	var c *Claims
	if c.CanSubscribe("news") || c.CanPublish("news") || c.PersonalChannel() != "" {
		t.Fatal("nil claims grant something")
	}
}

// allocClaims has one pattern of every kind, so that every matching path
// is measured.
func allocClaims(t testing.TB) *Claims {
	t.Helper()
	pats := []string{"news", "sport", "chat:*", "rooms.*.live", "private:{sub}", "user:admin.*", "*"}
	c, err := NewClaims("alice", pats, pats[:4])
	if err != nil {
		t.Fatalf("NewClaims: %v", err)
	}
	return c
}

func TestCanZeroAllocs(t *testing.T) {
	c := allocClaims(t)
	channels := []string{"news", "chat:x", "rooms.a.live", "private:alice", "user:alice", "user:bob", "user:admin.x", "zzz", ""}
	got := testing.AllocsPerRun(200, func() {
		for _, ch := range channels {
			c.CanSubscribe(ch)
			c.CanPublish(ch)
		}
	})
	if got != 0 {
		t.Fatalf("CanSubscribe/CanPublish allocate %v times per run, want 0", got)
	}
}

func BenchmarkCanSubscribe(b *testing.B) {
	c := allocClaims(b)
	cases := []struct{ name, channel string }{
		{"exact", "news"},
		{"suffix", "chat:room42"},
		{"segment", "rooms.eu.live"},
		{"personal", "user:alice"},
		{"denied user", "user:bob"},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.CanSubscribe(bc.channel)
			}
		})
	}
}

func TestCompilePatterns(t *testing.T) {
	t.Parallel()
	p, err := CompilePatterns([]string{"room:*", "lobby", "{sub}.x"})
	if err != nil {
		t.Fatal(err)
	}
	for ch, want := range map[string]bool{"room:1": true, "lobby": true, "news": false, "user:a": false, ".x": false} {
		if got := p.Match(ch); got != want {
			t.Errorf("Match(%q) = %v, want %v", ch, got, want)
		}
	}
	var none *Patterns
	if none.Match("lobby") {
		t.Error("nil Patterns matched")
	}
}

// TestPatternSize: a compiled pattern, which every token's claims hold
// one of per channel pattern, fits 48 bytes on 64-bit platforms, and the
// claims 80.
func TestPatternSize(t *testing.T) {
	if unsafe.Sizeof(uintptr(0)) != 8 {
		t.Skip("sizes are checked on 64-bit platforms")
	}
	if got := unsafe.Sizeof(pattern{}); got > 48 {
		t.Errorf("unsafe.Sizeof(pattern{}) = %d, want <= 48", got)
	}
	// A user's claims live with each of its connections: their lists and
	// compiled rights are behind a pointer, shared by the tokens of the
	// same lists.
	if got := unsafe.Sizeof(Claims{}); got > 80 {
		t.Errorf("unsafe.Sizeof(Claims{}) = %d, want <= 80", got)
	}
}

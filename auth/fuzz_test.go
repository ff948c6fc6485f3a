package auth

import (
	"reflect"
	"strings"
	"testing"
)

// TestEmptyPatternListGrantsNothing: an empty list (nil or not) is "none",
// for token claims and for the anonymous lists alike.
func TestEmptyPatternListGrantsNothing(t *testing.T) {
	t.Parallel()
	for _, list := range [][]string{nil, {}} {
		c, err := NewClaims("alice", list, list)
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range []string{"news", "demo:chat", "user:bob", "x"} {
			if c.CanSubscribe(ch) || c.CanPublish(ch) {
				t.Fatalf("list %#v grants %q", list, ch)
			}
		}
		if !c.CanSubscribe("user:alice") {
			t.Fatalf("the personal channel is always granted")
		}
	}
}

// FuzzChannelPattern compiles arbitrary patterns and matches arbitrary
// channels: nothing panics, the protected user: namespace holds, and the
// simple pattern kinds mean what the package doc says.
func FuzzChannelPattern(f *testing.F) {
	for _, s := range [][3]string{
		{"news", "news", ""}, {"*", "anything", ""}, {"chat:*", "chat:a.b", ""},
		{"news.*.live", "news.eu.live", ""}, {"private:{sub}", "private:alice", "alice"},
		{"user:*", "user:bob", ""}, {"*", "user:bob", ""}, {"a*b.c", "axb.c", ""},
		{"", "", ""}, {"{sub}*", "bob*x", "bob*"}, {"*.*", "a.", ""}, {"user:{sub}", "user:", ""},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, src, channel, subject string) {
		ps, err := compilePatterns([]string{src}, subject)
		if err != nil {
			return
		}
		if len(ps) == 1 && src != "*" {
			// The literal shortcut compiles what the general reading would.
			general, err := compileSegments(pattern{userNS: ps[0].userNS}, src, subject)
			if err != nil || !reflect.DeepEqual(general, ps[0]) {
				t.Fatalf("%q: compiled %+v, read segment by segment %+v, %v", src, ps[0], general, err)
			}
		}
		got := matchAny(ps, channel)
		if channel == "" && got {
			t.Fatalf("%q grants the empty channel", src)
		}
		if got && strings.HasPrefix(channel, userPrefix) && !strings.HasPrefix(src, userPrefix) {
			t.Fatalf("%q grants the protected channel %q", src, channel)
		}
		if strings.Contains(src, subPlaceholder) || strings.HasPrefix(channel, userPrefix) {
			return
		}
		switch {
		case src == "*":
			if got != (channel != "") {
				t.Fatalf("* and %q: got %v", channel, got)
			}
		case !strings.Contains(src, "*"):
			if got != (channel == src) {
				t.Fatalf("exact %q and %q: got %v", src, channel, got)
			}
		case strings.Count(src, "*") == 1 && strings.HasSuffix(src, "*"):
			prefix := strings.TrimSuffix(src, "*")
			if want := len(channel) > len(prefix) && strings.HasPrefix(channel, prefix); got != want {
				t.Fatalf("prefix %q and %q: got %v, want %v", src, channel, got, want)
			}
		}
	})
}

// FuzzOrigin parses arbitrary Origin and Host headers against an arbitrary
// allowed entry: nothing panics, no Origin is always allowed, "null" only
// with "*", a same-host decision really compares the host names, and an
// allowed entry without wildcards admits itself.
func FuzzOrigin(f *testing.F) {
	for _, s := range [][3]string{
		{"https://app.example.com", "app.example.com:8081", ""},
		{"https://evil.example", "app.example.com", "https://*.example.com"},
		{"null", "localhost:8081", ""}, {"null", "x", "*"},
		{"http://[::1]:8081", "[::1]:8081", ""}, {"http://localhost:80", "localhost", "http://localhost"},
		{"https://a.b.example.com", "h", "https://*.example.com:*"}, {"http://x:", "x", "http://x:"},
		{"ftp://x/y", "x", ""}, {"", "", ""}, {"http://[::1", "[::1", "http://[::1"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, origin, host, allowed string) {
		var list []string
		if allowed != "" {
			list = []string{allowed}
		}
		p, err := NewOriginPolicy(list)
		if err != nil {
			p = nil
		}
		got := p.Allowed(origin, host)
		if origin == "" && !got {
			t.Fatal("a request without Origin must be allowed")
		}
		if origin == "null" && got && allowed != "*" {
			t.Fatalf("null allowed by %q", allowed)
		}
		if origin != "" && (*OriginPolicy)(nil).Allowed(origin, host) {
			_, ohost, _, ok := splitOrigin(origin)
			if !ok || !strings.EqualFold(ohost, hostName(host)) || ohost == "" {
				t.Fatalf("%q allowed as same host for Host %q", origin, host)
			}
		}
		if err == nil && allowed != "" && !strings.Contains(allowed, "*") && !p.Allowed(allowed, "") {
			t.Fatalf("entry %q does not admit itself", allowed)
		}
	})
}

package push

import (
	"maps"
	"slices"
	"testing"
)

func TestParseQuery(t *testing.T) {
	q := parseQuery("channel=a&channel=b%3Ac&token=x.y.z&format=raw&since=b%3Ac%3A41%3Aep0ch&empty=&&novalue")
	if got := q.all("channel"); len(got) != 2 || got[0] != "a" || got[1] != "b:c" {
		t.Fatalf("channels %q", got)
	}
	for k, want := range map[string]string{"token": "x.y.z", "format": "raw", "since": "b:c:41:ep0ch", "empty": "", "novalue": "", "missing": ""} {
		if got := q.first(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if got := parseQuery("bad=%zz").first("bad"); got != "%zz" {
		t.Errorf("a bad escape keeps the raw text, got %q", got)
	}
}

func TestParseSlowPolicy(t *testing.T) {
	for in, want := range map[string]SlowPolicy{"": SlowClose, "close": SlowClose, "close-policy": SlowClosePolicy, "drop": SlowDrop} {
		if got, ok := ParseSlowPolicy(in); !ok || got != want {
			t.Errorf("%q → %q %v", in, got, ok)
		}
	}
	if _, ok := ParseSlowPolicy("block"); ok {
		t.Error("unknown policy accepted")
	}
}

// TestQueryScan checks the one-pass scan of an upgrade URL against the
// look-ups it replaces: the first value of each key (an empty one
// included), the channel count, and the pending subscriptions.
func TestQueryScan(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"",
		"channel=a",
		"channel=a&token=t&format=raw",
		"token=&token=x&channel=a%3Ab&channel=c",
		"channel=a&since=a:3:ep&lastEventId=a:1:e",
		"format=json&format=raw&channel=",
		"x=1&&token=t%2Bu",
	} {
		q := parseQuery(raw)
		u := q.scan()
		if u.token != q.first("token") || u.format != q.first("format") || u.lastEID != q.first("lastEventId") ||
			u.channels != q.count("channel") || u.sinces != q.count("since") {
			t.Errorf("%q: scan %+v, look-ups token %q format %q lastEventId %q channels %d", raw, u,
				q.first("token"), q.first("format"), q.first("lastEventId"), q.count("channel"))
		}
		var po1, po2 pendingOne
		got, want := u.pending(&po1), q.pending(&po2)
		if (got == nil) != (want == nil) || got != nil && (!slices.Equal(got.channels, want.channels) || !maps.Equal(got.since, want.since)) {
			t.Errorf("%q: pending %+v, want %+v", raw, got, want)
		}
	}
}

package push

import "testing"

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

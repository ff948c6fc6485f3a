package codec

import "testing"

func TestRequestField(t *testing.T) {
	t.Parallel()
	raw := "GET /sse HTTP/1.1\r\nHost: h\r\nX-A: one\r\nx-a: two\r\nCookie: a=1\r\ncookie: b=2\r\n\r\n"
	req, _, err := ParseHTTPRequest([]byte(raw), HandshakeLimits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, want string }{
		{"X-A", "one, two"},
		{"cookie", "a=1; b=2"},
		{"Host", "h"},
		{"X-Missing", ""},
	} {
		if got := req.Field(tc.name); got != tc.want {
			t.Errorf("Field(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

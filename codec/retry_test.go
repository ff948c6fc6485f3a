package codec

import (
	"bufio"
	"bytes"
	"net/http"
	"testing"
)

func TestAppendHTTPRetry(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status, retry int
		want          string
	}{
		{503, 3, "3"},
		{503, 0, ""},
		{400, 2, "2"},
	} {
		b := AppendHTTPRetry(nil, tc.status, "busy", tc.retry)
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b)), nil)
		if err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		if resp.StatusCode != tc.status || resp.Header.Get("Retry-After") != tc.want || !resp.Close {
			t.Errorf("%q: status %d, Retry-After %q; want %d, %q", b, resp.StatusCode, resp.Header.Get("Retry-After"), tc.status, tc.want)
		}
	}
	if got, want := AppendHTTPError(nil, 503, "x"), AppendHTTPRetry(nil, 503, "x", 1); !bytes.Equal(got, want) {
		t.Errorf("AppendHTTPError(503) = %q, want %q", got, want)
	}
}

package clientjs

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"testing"
	"time"
)

// TestHeraldJS runs herald.js's unit tests (test/*.test.js, Node's built-in
// runner, no packages needed) against a scripted WebSocket.
func TestHeraldJS(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not installed: run `make test-deps` (or apt-get install nodejs)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "test/")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("# fail 0")) {
		t.Fatalf("node --test reported failures:\n%s", out)
	}
}

func TestHandler(t *testing.T) {
	t.Parallel()
	h := Handler()
	cases := []struct {
		name        string
		method      string
		ifNoneMatch bool
		wantStatus  int
		wantBody    bool
	}{
		{name: "get", method: http.MethodGet, wantStatus: http.StatusOK, wantBody: true},
		{name: "head", method: http.MethodHead, wantStatus: http.StatusOK},
		{name: "revalidate", method: http.MethodGet, ifNoneMatch: true, wantStatus: http.StatusNotModified},
	}
	etag := ""
	{
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/herald.js", nil))
		etag = rec.Header().Get("ETag")
		if etag == "" {
			t.Fatal("no ETag")
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, "/herald.js", nil)
			if tc.ifNoneMatch {
				req.Header.Set("If-None-Match", etag)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.wantStatus {
				t.Fatalf("status %d, want %d", rec.Code, tc.wantStatus)
			}
			if ct := rec.Header().Get("Content-Type"); tc.wantStatus == http.StatusOK && ct != "text/javascript; charset=utf-8" {
				t.Fatalf("Content-Type %q", ct)
			}
			if got := bytes.Equal(rec.Body.Bytes(), Script()); got != tc.wantBody {
				t.Fatalf("body is the script: %v, want %v (len %d)", got, tc.wantBody, rec.Body.Len())
			}
		})
	}
}

func TestScriptIsACopy(t *testing.T) {
	t.Parallel()
	a := Script()
	if !bytes.Contains(a, []byte("class Herald")) {
		t.Fatal("embedded script does not define Herald")
	}
	a[0] = 'X'
	if Script()[0] == 'X' {
		t.Fatal("Script returned the embedded bytes, not a copy")
	}
}

package codec

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// rfcKey and rfcAccept are the example of RFC 6455 section 1.3.
const (
	rfcKey    = "dGhlIHNhbXBsZSBub25jZQ=="
	rfcAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
)

// upgradeRequest builds a request from a request line and header lines:
// a line in override replaces the standard field of the same name, or drops
// it when its value is empty ("Name:"), and one that starts with '+' is
// added as it is.
func upgradeRequest(line string, override ...string) string {
	fields := []string{
		"Host: example.com:8080",
		"Upgrade: websocket",
		"Connection: Upgrade",
		"Sec-WebSocket-Key: " + rfcKey,
		"Sec-WebSocket-Version: 13",
	}
	for _, o := range override {
		if extra, ok := strings.CutPrefix(o, "+"); ok {
			fields = append(fields, extra)
			continue
		}
		name, value, _ := strings.Cut(o, ":")
		i := slices.IndexFunc(fields, func(f string) bool {
			return strings.HasPrefix(strings.ToLower(f), strings.ToLower(name)+":")
		})
		switch {
		case i >= 0 && value == "":
			fields = slices.Delete(fields, i, i+1)
		case i >= 0:
			fields[i] = o
		default:
			fields = append(fields, o)
		}
	}
	return line + "\r\n" + strings.Join(fields, "\r\n") + "\r\n\r\n"
}

func TestParseRequestRefusals(t *testing.T) {
	t.Parallel()
	get := "GET /ws HTTP/1.1"
	testCases := []struct {
		name   string
		req    string
		status int
	}{
		{name: "POST", req: upgradeRequest("POST /ws HTTP/1.1"), status: 405},
		{name: "lower-case get", req: upgradeRequest("get /ws HTTP/1.1"), status: 405},
		{name: "HTTP/1.0", req: upgradeRequest("GET /ws HTTP/1.0"), status: 400},
		{name: "HTTP/2.0", req: upgradeRequest("GET /ws HTTP/2.0"), status: 505},
		{name: "garbage request line", req: upgradeRequest("GET"), status: 400},
		{name: "bad version token", req: upgradeRequest("GET /ws HTTX/1.1"), status: 400},
		{name: "relative target", req: upgradeRequest("GET ws HTTP/1.1"), status: 400},
		{name: "missing Host", req: upgradeRequest(get, "Host:"), status: 400},
		{name: "empty Host", req: upgradeRequest(get, "Host: "), status: 400},
		{name: "Host with path", req: upgradeRequest(get, "Host: a/b"), status: 400},
		{name: "two Hosts", req: upgradeRequest(get, "+host: b"), status: 400},
		{name: "missing Upgrade", req: upgradeRequest(get, "Upgrade:"), status: 400},
		{name: "wrong Upgrade", req: upgradeRequest(get, "Upgrade: h2c"), status: 400},
		{name: "missing Connection", req: upgradeRequest(get, "Connection:"), status: 400},
		{name: "Connection without upgrade", req: upgradeRequest(get, "Connection: keep-alive"), status: 400},
		{name: "missing key", req: upgradeRequest(get, "Sec-WebSocket-Key:"), status: 400},
		{name: "short key", req: upgradeRequest(get, "Sec-WebSocket-Key: dGhlIHNhbXBsZQ=="), status: 400},
		{name: "key not base64", req: upgradeRequest(get, "Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!=="), status: 400},
		{name: "key of 17 bytes", req: upgradeRequest(get, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZTE="), status: 400},
		{name: "two keys", req: upgradeRequest(get, "+Sec-WebSocket-Key: "+rfcKey), status: 400},
		{name: "version 8", req: upgradeRequest(get, "Sec-WebSocket-Version: 8"), status: 426},
		{name: "version list", req: upgradeRequest(get, "Sec-WebSocket-Version: 13, 8"), status: 426},
		{name: "missing version", req: upgradeRequest(get, "Sec-WebSocket-Version:"), status: 426},
		{name: "body", req: upgradeRequest(get, "Content-Length: 5"), status: 400},
		{name: "chunked body", req: upgradeRequest(get, "Transfer-Encoding: chunked"), status: 400},
		{name: "obsolete line folding", req: upgradeRequest(get, "X-A: b", " folded"), status: 400},
		{name: "space before colon", req: upgradeRequest(get, "X-A : b"), status: 400},
		{name: "no colon", req: upgradeRequest(get, "NoColon"), status: 400},
		{name: "control character", req: upgradeRequest(get, "X-A: a\x00b"), status: 400},
		{name: "malformed protocol list", req: upgradeRequest(get, "Sec-WebSocket-Protocol: a b"), status: 400},
		{name: "protocol not a token", req: upgradeRequest(get, "Sec-WebSocket-Protocol: a, b/c"), status: 400},
		{name: "malformed extension", req: upgradeRequest(get, "Sec-WebSocket-Extensions: ;;"), status: 400},
		{name: "bad path escape", req: upgradeRequest("GET /a%zz HTTP/1.1"), status: 400},
		{name: "two Authorizations", req: upgradeRequest(get, "Authorization: a", "+authorization: b"), status: 400},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, n, err := ParseRequest([]byte(tc.req+"trailing"), HandshakeLimits{})
			var he *HandshakeError
			if !errors.As(err, &he) {
				t.Fatalf(
					"ParseRequest = %+v, %v; want a HandshakeError",
					req, err)
			}
			if he.Status != tc.status {
				t.Errorf(
					"status %d (%s), want %d",
					he.Status, he.Reason, tc.status)
			}
			if n != len(tc.req) {
				t.Errorf(
					"n = %d, want %d",
					n, len(tc.req))
			}
		})
	}
}

func TestParseRequestAccepts(t *testing.T) {
	t.Parallel()
	raw := upgradeRequest("GET /ws/a%20b?channel=news&token=x%2F HTTP/1.1",
		"Upgrade: WebSocket",
		"Connection: keep-alive, Upgrade",
		"Origin: https://example.com",
		"Authorization: Bearer abc",
		"Sec-WebSocket-Protocol: herald.v1, , chat",
		"+sec-websocket-protocol: extra",
		"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-foo",
		"User-Agent: test/1.0",
		"X-Forwarded-For: 10.0.0.1",
		"+X-Forwarded-For: 10.0.0.2",
		"Content-Length: 0",
	)
	frames := "\x81\x80...."
	buf := []byte(raw + frames)
	req, n, err := ParseRequest(buf, HandshakeLimits{})
	if err != nil {
		t.Fatalf(
			"ParseRequest: %v",
			err)
	}
	if n != len(raw) {
		t.Errorf(
			"n = %d, want %d",
			n, len(raw))
	}
	want := Request{
		Path:          "/ws/a b",
		RawQuery:      "channel=news&token=x%2F",
		Host:          "example.com:8080",
		Origin:        "https://example.com",
		Authorization: "Bearer abc",
		Key:           rfcKey,
		Protocols:     []string{"herald.v1", "chat", "extra"},
		UserAgent:     "test/1.0",
		XForwardedFor: "10.0.0.1, 10.0.0.2",
	}
	got := *req
	got.Extensions = nil
	if !equalRequests(got, want) {
		t.Errorf(
			"request\n got %+v\nwant %+v",
			got, want)
	}
	if len(req.Extensions) != 2 || string(req.Extensions[0].Name) != "permessage-deflate" ||
		string(req.Extensions[1].Name) != "x-foo" {
		t.Errorf(
			"extensions %v",
			req.Extensions)
	}
	if _, ok := req.Extensions[0].Parameters.Get("client_max_window_bits"); !ok {
		t.Error("extension parameter lost")
	}

	// The request must not depend on the caller's buffer once returned.
	for i := range buf {
		buf[i] = 'X'
	}
	if !equalRequests(*req, want) || string(req.Extensions[1].Name) != "x-foo" {
		t.Error("request changed when the input buffer was reused")
	}
}

func equalRequests(a, b Request) bool {
	return a.Path == b.Path && a.RawQuery == b.RawQuery && a.Host == b.Host &&
		a.Origin == b.Origin && a.Authorization == b.Authorization && a.Key == b.Key &&
		slices.Equal(a.Protocols, b.Protocols) && a.UserAgent == b.UserAgent &&
		a.XForwardedFor == b.XForwardedFor
}

func TestParseRequestTargets(t *testing.T) {
	t.Parallel()
	testCases := []struct {
		target, path, query string
	}{
		{target: "/", path: "/"},
		{target: "/ws?", path: "/ws"},
		{target: "/ws?a=1#frag", path: "/ws", query: "a=1"},
		{target: "http://example.com/ws?a=1", path: "/ws", query: "a=1"},
		{target: "ws://example.com", path: "/"},
		{target: "https://example.com?x", path: "/", query: "x"},
	}
	for _, tc := range testCases {
		req, _, err := ParseRequest([]byte(upgradeRequest("GET "+tc.target+" HTTP/1.1")), HandshakeLimits{})
		if err != nil || req.Path != tc.path || req.RawQuery != tc.query {
			t.Errorf(
				"%s: %+v, %v; want path %q query %q",
				tc.target, req, err, tc.path, tc.query)
		}
	}
}

func TestParseRequestIncomplete(t *testing.T) {
	t.Parallel()
	raw := upgradeRequest("GET /ws HTTP/1.1")
	for i := 0; i < len(raw); i++ {
		req, n, err := ParseRequest([]byte(raw[:i]), HandshakeLimits{})
		if !errors.Is(err, ErrIncomplete) || req != nil || n != 0 {
			t.Fatalf(
				"prefix of %d bytes: %v, %d, %v; want ErrIncomplete",
				i, req, n, err)
		}
	}
	if _, _, err := ParseRequest([]byte(raw), HandshakeLimits{}); err != nil {
		t.Fatalf(
			"whole request: %v",
			err)
	}
	// Bare LF line endings are accepted.
	lf := strings.ReplaceAll(raw, "\r\n", "\n")
	if _, n, err := ParseRequest([]byte(lf), HandshakeLimits{}); err != nil || n != len(lf) {
		t.Fatalf(
			"LF-only request: %d, %v",
			n, err)
	}
}

func TestParseRequestHeaderLimit(t *testing.T) {
	t.Parallel()
	big := upgradeRequest("GET /ws HTTP/1.1", "X-Pad: "+strings.Repeat("p", 200))
	testCases := []struct {
		name   string
		limit  int
		input  string
		status int   // 0: no refusal
		err    error // for status 0
	}{
		{name: "fits", limit: len(big), input: big},
		{name: "one byte over", limit: len(big) - 1, input: big, status: 431},
		{name: "incomplete under the limit", limit: len(big), input: big[:100], err: ErrIncomplete},
		{name: "incomplete at the limit", limit: 100, input: big[:100], status: 431},
		{name: "default limit", limit: 0, input: "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", DefaultMaxHeaderBytes), status: 431},
	}
	for _, tc := range testCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := ParseRequest([]byte(tc.input), HandshakeLimits{MaxHeaderBytes: tc.limit})
			var he *HandshakeError
			switch {
			case tc.status != 0 && (!errors.As(err, &he) || he.Status != tc.status):
				t.Fatalf(
					"error %v, want status %d",
					err, tc.status)
			case tc.status == 0 && !errors.Is(err, tc.err):
				t.Fatalf(
					"error %v, want %v",
					err, tc.err)
			}
		})
	}
}

func TestAppendHTTPError(t *testing.T) {
	t.Parallel()
	testCases := []struct {
		status  int
		reason  string
		want    []string
		notWant []string
	}{
		{status: 400, reason: "bad\r\nInjected: yes", want: []string{"HTTP/1.1 400 Bad Request\r\n", "\r\n\r\nbad  Injected: yes\n"}, notWant: []string{"Allow", "Sec-WebSocket-Version"}},
		{status: 405, reason: "method", want: []string{"HTTP/1.1 405 Method Not Allowed\r\n", "Allow: GET\r\n"}},
		{status: 426, reason: "version", want: []string{"HTTP/1.1 426 Upgrade Required\r\n", "Sec-WebSocket-Version: 13\r\n", "Upgrade: websocket\r\n"}},
		{status: 431, reason: "", want: []string{"HTTP/1.1 431 Request Header Fields Too Large\r\n", "\r\n\r\nRequest Header Fields Too Large\n"}},
		{status: 505, reason: "v", want: []string{"HTTP/1.1 505 HTTP Version Not Supported\r\n"}, notWant: []string{"Retry-After"}},
		{status: 429, reason: "per ip", want: []string{"HTTP/1.1 429 Too Many Requests\r\n", "Retry-After: 1\r\n"}},
		{status: 503, reason: "busy", want: []string{"HTTP/1.1 503 Service Unavailable\r\n", "Retry-After: 1\r\n"}},
	}
	for _, tc := range testCases {
		resp := string(AppendHTTPError([]byte("x"), tc.status, tc.reason))[1:]
		common := []string{"Content-Type: text/plain; charset=utf-8\r\n", "Connection: close\r\n"}
		for _, w := range append(common, tc.want...) {
			if !strings.Contains(resp, w) {
				t.Errorf(
					"%d: response lacks %q:\n%s",
					tc.status, w, resp)
			}
		}
		for _, w := range tc.notWant {
			if strings.Contains(resp, w) {
				t.Errorf(
					"%d: response has %q:\n%s",
					tc.status, w, resp)
			}
		}
		head, body, ok := strings.Cut(resp, "\r\n\r\n")
		if !ok || !strings.Contains(head, "Content-Length: "+strconv.Itoa(len(body))+"\r\n") {
			t.Errorf(
				"%d: Content-Length does not match a body of %d bytes:\n%s",
				tc.status, len(body), resp)
		}
	}
}

func TestAcceptKeyRFCExample(t *testing.T) {
	t.Parallel()
	if got := string(appendAcceptKey(nil, rfcKey)); got != rfcAccept {
		t.Fatalf(
			"accept = %q, want %q",
			got, rfcAccept)
	}
	if got := string(appendAcceptKey(nil, "short")); len(got) != 28 {
		t.Fatalf(
			"accept of a non-standard key = %q",
			got)
	}
}

func TestHandshakeRoundTrip(t *testing.T) {
	t.Parallel()
	key, err := NewClientKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !validKey([]byte(key)) {
		t.Fatalf(
			"NewClientKey gave %q",
			key)
	}
	reqBytes := AppendClientRequest(nil, "127.0.0.1:9", "/ws?channel=a", key,
		"Sec-WebSocket-Protocol: herald.v1", "Sec-WebSocket-Extensions: permessage-deflate")
	req, n, err := ParseRequest(reqBytes, HandshakeLimits{})
	if err != nil || n != len(reqBytes) {
		t.Fatalf(
			"ParseRequest: %d, %v",
			n, err)
	}
	if req.Key != key || req.Path != "/ws" || req.RawQuery != "channel=a" ||
		!slices.Equal(req.Protocols, []string{"herald.v1"}) || len(req.Extensions) != 1 {
		t.Fatalf(
			"request %+v",
			req)
	}
	resp := AppendAccept(nil, req, "herald.v1", "permessage-deflate; server_no_context_takeover")
	for _, w := range []string{"Sec-WebSocket-Protocol: herald.v1\r\n", "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n"} {
		if !bytes.Contains(resp, []byte(w)) {
			t.Errorf(
				"response lacks %q",
				w)
		}
	}
	withFrame := append(bytes.Clone(resp), AppendFrame(nil, OpText, true, []byte("hi"))...)
	for i := range len(resp) {
		if _, err := ParseResponse(withFrame[:i], key); !errors.Is(err, ErrIncomplete) {
			t.Fatalf(
				"response prefix of %d bytes: %v",
				i, err)
		}
	}
	m, err := ParseResponse(withFrame, key)
	if err != nil || m != len(resp) {
		t.Fatalf(
			"ParseResponse = %d, %v; want %d",
			m, err, len(resp))
	}
	other, _ := NewClientKey(nil)
	if _, err := ParseResponse(resp, other); !errors.Is(err, ErrBadResponse) {
		t.Fatalf(
			"response for another key: %v",
			err)
	}
}

func TestParseResponseRefusals(t *testing.T) {
	t.Parallel()
	accept := "Sec-WebSocket-Accept: " + rfcAccept + "\r\n"
	testCases := []struct {
		name   string
		resp   string
		status int // for a *HandshakeError
	}{
		{name: "403", resp: "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", status: 403},
		{name: "426", resp: "HTTP/1.1 426 Upgrade Required\r\n\r\n", status: 426},
		{name: "not HTTP", resp: "SSH-2.0\r\n\r\n"},
		{name: "missing accept", resp: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"},
		{name: "wrong accept", resp: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n"},
		{name: "missing upgrade", resp: "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n" + accept + "\r\n"},
		{name: "missing connection", resp: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" + accept + "\r\n"},
		{name: "malformed field", resp: "HTTP/1.1 101 Switching Protocols\r\nbroken\r\n\r\n"},
	}
	for _, tc := range testCases {
		_, err := ParseResponse([]byte(tc.resp), rfcKey)
		var he *HandshakeError
		switch {
		case tc.status != 0 && (!errors.As(err, &he) || he.Status != tc.status):
			t.Errorf(
				"%s: %v, want status %d",
				tc.name, err, tc.status)
		case tc.status == 0 && !errors.Is(err, ErrBadResponse):
			t.Errorf(
				"%s: %v, want ErrBadResponse",
				tc.name, err)
		}
	}
	ok := "HTTP/1.1 101 Switching Protocols\r\nupgrade: WebSocket\r\nconnection: upgrade\r\n" + accept + "\r\n"
	if _, err := ParseResponse([]byte(ok), rfcKey); err != nil {
		t.Fatalf(
			"valid response refused: %v",
			err)
	}
}

func TestParseHTTPRequestPlain(t *testing.T) {
	plain := "GET /sse?channel=a HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nConnection: keep-alive\r\nLast-Event-ID: a:1:e b:2:f\r\n\r\n"
	req, n, err := ParseHTTPRequest([]byte(plain), HandshakeLimits{})
	if err != nil || n != len(plain) || !req.Plain || req.Path != "/sse" || req.LastEventID != "a:1:e b:2:f" {
		t.Fatalf("got %+v %d %v", req, n, err)
	}
	// ParseRequest refuses it as before.
	if _, _, err := ParseRequest([]byte(plain), HandshakeLimits{}); err != ErrNotUpgrade {
		t.Fatalf("ParseRequest: %v", err)
	}
	// Some of the upgrade's fields but not all: refused, not plain.
	half := "GET /ws HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, _, err := ParseHTTPRequest([]byte(half), HandshakeLimits{}); err == nil {
		t.Fatal("a half upgrade was accepted")
	}
	// A full upgrade is not plain.
	up := upgradeRequest("GET /ws HTTP/1.1")
	if req, _, err := ParseHTTPRequest([]byte(up), HandshakeLimits{}); err != nil || req.Plain {
		t.Fatalf("upgrade: %+v %v", req, err)
	}
}

// TestParseHTTPRequestView checks the in-place parse against the copying
// one: the same request, with one Request reused across requests (nothing
// of the previous one left), and a Clone that survives the buffer.
func TestParseHTTPRequestView(t *testing.T) {
	t.Parallel()
	full := upgradeRequest("GET /ws/a%20b?channel=news HTTP/1.1",
		"Origin: https://example.com",
		"Authorization: Bearer abc",
		"Sec-WebSocket-Protocol: herald.v1, chat",
		"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-foo",
		"User-Agent: test/1.0",
		"X-Forwarded-For: 10.0.0.1",
		"+X-Forwarded-For: 10.0.0.2",
		"Last-Event-ID: news:3:abc",
		"+Cookie: a=1",
	)
	bare := upgradeRequest("GET /ws HTTP/1.1")
	plain := "GET /sse?channel=x HTTP/1.1\r\nHost: h\r\n\r\n"
	var view Request
	for _, raw := range []string{full, bare, plain, full} {
		want, wn, werr := ParseHTTPRequest([]byte(raw), HandshakeLimits{})
		buf := []byte(raw + "\x81\x80....")
		n, err := ParseHTTPRequestView(&view, buf, HandshakeLimits{})
		if err != nil || werr != nil || n != wn {
			t.Fatalf("view: n=%d err=%v; copy: n=%d err=%v", n, err, wn, werr)
		}
		if !equalRequests(view, *want) || view.Plain != want.Plain || view.LastEventID != want.LastEventID ||
			len(view.Extensions) != len(want.Extensions) || view.Field("Cookie") != want.Field("Cookie") {
			t.Fatalf("view of %q\n got %+v\nwant %+v", raw, view, *want)
		}
		own, err := view.Clone()
		if err != nil {
			t.Fatalf("clone: %v", err)
		}
		for i := range buf {
			buf[i] = '#'
		}
		if !equalRequests(*own, *want) || own.Plain != want.Plain || own.LastEventID != want.LastEventID ||
			len(own.Extensions) != len(want.Extensions) || own.Field("Cookie") != want.Field("Cookie") {
			t.Fatalf("clone after the buffer changed\n got %+v\nwant %+v", *own, *want)
		}
		for i, e := range own.Extensions {
			if !bytes.Equal(e.Name, want.Extensions[i].Name) {
				t.Fatalf("clone's extension %d: %q, want %q", i, e.Name, want.Extensions[i].Name)
			}
		}
	}
}

// TestParseHTTPRequestViewAllocs: a browser's upgrade parsed into a
// reused Request allocates nothing.
func TestParseHTTPRequestViewAllocs(t *testing.T) {
	raw := []byte(upgradeRequest("GET /ws?channel=news&token=abc HTTP/1.1",
		"Origin: https://example.com",
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0",
		"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
		"+Accept-Encoding: gzip, deflate, br",
		"+Cache-Control: no-cache",
	))
	buf := bytes.Clone(raw)
	var req Request
	allocs := testing.AllocsPerRun(200, func() {
		copy(buf, raw)
		if _, err := ParseHTTPRequestView(&req, buf, HandshakeLimits{}); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per parse, want 0", allocs)
	}
}

// TestHasCTL checks the word-at-a-time hasCTL against the bytewise one:
// every byte value at every place of lines of every length up to 24, on
// a background of plain letters and one of high bytes (which the word
// tests must not take for control characters), and random lines.
func TestHasCTL(t *testing.T) {
	t.Parallel()
	for _, fill := range []byte{'a', 0xFF, 0x80, 0x20, '\t'} {
		for n := 1; n <= 24; n++ {
			line := bytes.Repeat([]byte{fill}, n)
			for i := range n {
				for c := range 256 {
					line[i] = byte(c)
					if got, want := hasCTL(line), hasCTLBytes(line); got != want {
						t.Fatalf("hasCTL(%q) = %v, want %v", line, got, want)
					}
				}
				line[i] = fill
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		line := make([]byte, rng.IntN(64))
		for i := range line {
			line[i] = byte(0x1F + rng.IntN(0x62)) // mostly printable, some 0x1F and 0x7F
		}
		if got, want := hasCTL(line), hasCTLBytes(line); got != want {
			t.Fatalf("hasCTL(%q) = %v, want %v", line, got, want)
		}
	}
}

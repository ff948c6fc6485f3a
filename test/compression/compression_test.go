// Package compression tests permessage-deflate (RFC 7692) end to end
// against the herald binary, in the manner of the Autobahn TestSuite's
// categories 12 and 13 (many sizes, fragmented, every parameter
// combination) in echo mode and in push mode, plus the failures: RSV1
// where it does not belong, corrupt data and compression bombs.
package compression

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/herald-push/herald/internal/testutil"
	"github.com/herald-push/herald/internal/wstest"
)

const maxMessage = 1 << 20

func startEcho(t *testing.T, extra ...string) *testutil.Proc {
	t.Helper()
	args := append([]string{"serve", "--echo", "--listen", "127.0.0.1:{port}", "--api-listen", "",
		fmt.Sprint("--max-frame-size=", maxMessage), fmt.Sprint("--max-message-size=", maxMessage),
		"--log-level=warn"}, extra...)
	return testutil.Start(t, testutil.Binary(t, "herald"), args...)
}

// offers returns every combination of the four RFC 7692 parameters, with
// the response herald must give to each.
func offers() []struct{ offer, response string } {
	const base = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
	var out []struct{ offer, response string }
	for _, snc := range []string{"", "; server_no_context_takeover"} {
		for _, cnc := range []string{"", "; client_no_context_takeover"} {
			for _, smw := range []string{"", "; server_max_window_bits=9", "; server_max_window_bits=15"} {
				for _, cmw := range []string{"", "; client_max_window_bits", "; client_max_window_bits=10"} {
					resp := base
					if smw != "" {
						resp += smw
					}
					out = append(out, struct{ offer, response string }{"permessage-deflate" + snc + cnc + smw + cmw, resp})
				}
			}
		}
	}
	return out
}

// text returns n bytes of compressible UTF-8 text.
func text(n int) []byte {
	s := strings.Repeat("herald pushes ünïcode messages to many subscribers; ", n/50+1)
	b := []byte(s)[:n]
	for len(b) > 0 && b[len(b)-1]&0xC0 == 0x80 || len(b) > 0 && b[len(b)-1] >= 0xC0 {
		b = append(b[:len(b)-1], 'x') // keep it valid UTF-8 at the cut
	}
	return b
}

// fragments splits p into k frames (k >= 1), compressed marks the first.
func fragments(op byte, p []byte, k int, compressed bool) []wireFrame {
	var fs []wireFrame
	step := max(1, (len(p)+k-1)/k)
	for i := 0; i == 0 || i < len(p); i += step {
		end := min(len(p), i+step)
		f := wireFrame{Op: opCont, Payload: p[i:end]}
		if i == 0 {
			f.Op = op
			if compressed {
				f.RSV = wstest.RSV1
			}
		}
		f.Fin = end == len(p)
		fs = append(fs, f)
	}
	return fs
}

// TestEchoEveryParameterCombination negotiates each combination of
// parameters and echoes messages of many sizes, fragmented or not, sent
// compressed or plain; every echo must come back intact, compressed when
// it is worth it.
func TestEchoEveryParameterCombination(t *testing.T) {
	srv := startEcho(t)
	// The server's side of a connection depends only on the response it
	// negotiated: the first offer of each response echoes every size,
	// fragmentation and compression; the offers after it that differ
	// only in what the server normalises away, a sample of them.
	sizes := []int{0, 1, 125, 126, 127, 128, 200, 1000, 4096, 65535, 65536, 300_000}
	splits := []int{1, 3, 17}
	sampleSizes, sampleSplits := []int{0, 127, 128, 4096, 65536}, []int{3}
	full := map[string]bool{}
	for _, o := range offers() {
		sizes, splits := sizes, splits
		if full[o.response] {
			sizes, splits = sampleSizes, sampleSplits
		}
		full[o.response] = true
		t.Run(o.offer, func(t *testing.T) {
			c := dialWS(t, srv.Addr, "/", o.offer, nil)
			if c.ext != o.response {
				t.Fatalf("Sec-WebSocket-Extensions %q, want %q", c.ext, o.response)
			}
			for _, size := range sizes {
				for _, k := range splits {
					for _, sendCompressed := range []bool{false, true} {
						msg := text(size)
						op := byte(opText)
						if size%2 == 1 {
							op = opBinary
						}
						wire := msg
						if sendCompressed {
							wire = deflate(t, msg)
						}
						c.send(fragments(op, wire, k, sendCompressed)...)
						gotOp, got, compressed := c.message(5 * time.Second)
						if gotOp != op || !bytes.Equal(got, msg) {
							t.Fatalf("size %d in %d fragments (compressed %v): echo op %#x %d bytes, want op %#x %d bytes",
								size, k, sendCompressed, gotOp, len(got), op, len(msg))
						}
						if want := size >= 128; compressed != want {
							t.Fatalf("size %d: echo compressed = %v, want %v", size, compressed, want)
						}
					}
				}
			}
		})
	}
}

// TestDeclinedOffers checks that offers herald cannot accept leave the
// connection uncompressed instead of failing it.
func TestDeclinedOffers(t *testing.T) {
	srv := startEcho(t)
	off := startEcho(t, "--compression=false")
	tests := []struct {
		name, addr, offer string
	}{
		{"unknown parameter", srv.Addr, "permessage-deflate; foo"},
		{"window out of range", srv.Addr, "permessage-deflate; server_max_window_bits=16"},
		{"duplicate parameter", srv.Addr, "permessage-deflate; client_no_context_takeover; client_no_context_takeover"},
		{"other extension", srv.Addr, "x-webkit-deflate-frame"},
		{"compression off", off.Addr, "permessage-deflate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dialWS(t, tc.addr, "/", tc.offer, nil)
			if c.ext != "" {
				t.Fatalf("Sec-WebSocket-Extensions %q, want none", c.ext)
			}
			msg := text(4000)
			c.send(wireFrame{Fin: true, Op: opText, Payload: msg})
			_, got, compressed := c.message(5 * time.Second)
			if compressed || !bytes.Equal(got, msg) {
				t.Fatalf("echo compressed=%v, %d bytes; want plain %d bytes", compressed, len(got), len(msg))
			}
			// RSV1 is a protocol error without the extension.
			c.send(wireFrame{Fin: true, RSV: wstest.RSV1, Op: opText, Payload: deflate(t, msg)})
			c.expectClose(1002)
		})
	}
}

// TestCompressionFailures sends what a compressing peer must not.
func TestCompressionFailures(t *testing.T) {
	srv := startEcho(t)
	takeover := func() []byte {
		// The second of two messages compressed with one context.
		var all bytes.Buffer
		first := deflate(t, text(3000))
		all.Write(first)
		return deflate(t, append(text(3000), text(3000)...))[len(first):]
	}
	tests := []struct {
		name   string
		frames []wireFrame
		code   uint16
	}{
		{"bomb", []wireFrame{{Fin: true, RSV: wstest.RSV1, Op: opBinary, Payload: wstest.ZeroBomb(64)}}, 1009},
		{"just over the limit", []wireFrame{{Fin: true, RSV: wstest.RSV1, Op: opBinary, Payload: deflate(t, make([]byte, maxMessage+1))}}, 1009},
		{"corrupt data", []wireFrame{{Fin: true, RSV: wstest.RSV1, Op: opBinary, Payload: []byte{0xff, 0xfe, 0xfd, 0x01, 0x02}}}, 1007},
		{"invalid utf-8 inside", []wireFrame{{Fin: true, RSV: wstest.RSV1, Op: opText, Payload: deflate(t, []byte("ok \xff\xfe not ok"))}}, 1007},
		{"context takeover", []wireFrame{{Fin: true, RSV: wstest.RSV1, Op: opText, Payload: takeover()}}, 1007},
		{"rsv1 on ping", []wireFrame{{Fin: true, RSV: wstest.RSV1, Op: opPing, Payload: []byte("x")}}, 1002},
		{"rsv1 on continuation", []wireFrame{{Op: opText, Payload: []byte("a")}, {Fin: true, RSV: wstest.RSV1, Op: opCont, Payload: []byte("b")}}, 1002},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := dialWS(t, srv.Addr, "/", "permessage-deflate", nil)
			c.send(tc.frames...)
			c.expectClose(tc.code)
		})
	}
	// The server is unharmed.
	c := dialWS(t, srv.Addr, "/", "permessage-deflate", nil)
	c.send(wireFrame{Fin: true, Op: opPing, Payload: []byte("still here")})
	f, err := c.read(5 * time.Second)
	if err != nil || f.Op != opPong || rsv1(f) || string(f.Payload) != "still here" {
		t.Fatalf("pong %+v, %v: want an uncompressed pong", f, err)
	}
}

// TestPushCompressOnce subscribes compressing and plain clients to one
// channel and publishes: compressing subscribers with a full window get
// the very same compressed frame, a small-window subscriber a compression
// of its own, and a plain subscriber the plain frame.
func TestPushCompressOnce(t *testing.T) {
	bin := testutil.Binary(t, "herald")
	srv := testutil.Start(t, bin, "serve", "--listen", "127.0.0.1:{port}", "--api-listen", "127.0.0.1:{port:api}",
		"--allow-anonymous", "--log-level=warn")
	subs := []struct {
		name, offer  string
		wantCompress bool
	}{
		{"deflate-a", "permessage-deflate; client_max_window_bits", true},
		{"deflate-b", "permessage-deflate", true},
		{"deflate-raw", "permessage-deflate", true},
		{"small-window", "permessage-deflate; server_max_window_bits=9", true},
		{"plain", "", false},
	}
	clients := make([]*client, len(subs))
	for i, s := range subs {
		path := "/ws?channel=news"
		if s.name == "deflate-raw" {
			path += "&format=raw"
		}
		clients[i] = dialWS(t, srv.Addr, path, s.offer, nil)
		if s.name != "deflate-raw" {
			if _, ack, _ := clients[i].message(5 * time.Second); !bytes.Contains(ack, []byte(`"subscribed"`)) {
				t.Fatalf("%s: first message %q, want the subscribed reply", s.name, ack)
			}
		}
	}
	if !waitSubscribed(t, srv.Extra["api"], len(subs)) {
		t.Fatal("subscriptions did not show up in /api/stats")
	}
	payload := `{"quote":"` + strings.Repeat("ACME 101.25 up; ", 40) + `"}`
	resp, err := http.Post("http://"+srv.Extra["api"]+"/api/publish?channel=news", "application/json", strings.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("publish status %d", resp.StatusCode)
	}
	var shared []byte
	for i, s := range subs {
		f, err := clients[i].read(5 * time.Second)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if rsv1(f) != s.wantCompress {
			t.Fatalf("%s: RSV1 = %v, want %v", s.name, rsv1(f), s.wantCompress)
		}
		got := f.Payload
		if rsv1(f) {
			got = inflate(t, f.Payload)
		}
		if s.name == "deflate-raw" {
			if string(got) != payload {
				t.Fatalf("%s: got %q, want the bare payload", s.name, got)
			}
			continue
		}
		if !bytes.Contains(got, []byte(payload)) || !bytes.Contains(got, []byte(`"channel":"news"`)) {
			t.Fatalf("%s: got %q, want the envelope", s.name, got)
		}
		if s.name == "deflate-a" || s.name == "deflate-b" {
			if shared == nil {
				shared = f.Payload
			} else if !bytes.Equal(shared, f.Payload) {
				t.Fatalf("%s: compressed frame differs from the other subscriber's", s.name)
			}
		}
	}
}

// waitSubscribed polls /api/stats until the hub counts n subscriptions.
func waitSubscribed(t *testing.T, api string, n int) bool {
	t.Helper()
	want := fmt.Sprintf(`"subscriptions":%d`, n)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + api + "/api/stats")
		if err == nil {
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			resp.Body.Close()
			if strings.Contains(b.String(), want) {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

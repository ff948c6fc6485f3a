package interop

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/herald-push/herald/test/internal/chromium"
)

// newBrowser starts headless Chromium (see chromium.Start).
func newBrowser(t *testing.T, addrs ...string) context.Context {
	t.Helper()
	return chromium.Start(t, 60*time.Second, addrs...)
}

// echoPage exercises the browser's native WebSocket: text and binary of
// several sizes, then a close with code and reason; it writes the outcome
// into #out.
const echoPage = `<!doctype html><title>herald interop</title><pre id="out">running</pre><script>
const out = document.getElementById('out');
const ws = new WebSocket(new URLSearchParams(location.search).get('ws'));
ws.binaryType = 'arraybuffer';
const sizes = [0, 1, 125, 126, 65535, 65536, 1<<20];
const pending = [];
let echoed = 0;
ws.onopen = () => {
  for (const n of sizes) {
    const s = 'ü'.repeat(n >> 1); pending.push(s); ws.send(s);
    const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = (i*7)&255; pending.push(b); ws.send(b);
  }
};
ws.onmessage = (ev) => {
  const want = pending.shift();
  let ok;
  if (typeof want === 'string') ok = ev.data === want;
  else { const got = new Uint8Array(ev.data); ok = got.length === want.length && got.every((v, i) => v === want[i]); }
  if (!ok) { out.textContent = 'mismatch at ' + echoed; ws.close(); return; }
  echoed++;
  if (pending.length === 0) ws.close(4003, 'browser done');
};
ws.onclose = (ev) => { if (out.textContent === 'running') out.textContent = 'closed ' + ev.code + ' ' + ev.reason + ' echoed ' + echoed + ' clean ' + ev.wasClean; };
ws.onerror = () => { out.textContent = 'error'; };
</script>`

func TestChromiumNativeWebSocket(t *testing.T) {
	srv := startEcho(t)
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(echoPage))
	}))
	defer page.Close()
	ctx := newBrowser(t, srv.Addr, strings.TrimPrefix(page.URL, "http://"))
	url := page.URL + "/?ws=" + "ws://" + srv.Addr + "/browser"
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById('out').textContent !== 'running'`)); err != nil {
		t.Fatalf("waiting for the page: %v", err)
	}
	got, err := chromedp.Run(ctx, chromedp.Text("#out"))
	if err != nil {
		t.Fatal(err)
	}
	// The server echoes the close code (RFC 6455 5.5.1); the reason is
	// optional.
	want := "closed 4003 echoed 14 clean true"
	if strings.Join(strings.Fields(strings.ReplaceAll(got, "browser done", "")), " ") != want {
		t.Fatalf("page says %q, want %q", got, want)
	}
	t.Logf("chromium: %s", got)
}

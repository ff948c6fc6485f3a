package sse

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/herald-push/herald/test/internal/chromium"
	"github.com/herald-push/herald/test/internal/cutproxy"
)

// ssePage opens an EventSource on the URL of its ?src= and records what
// it dispatches.
const ssePage = `<!doctype html><meta charset="utf-8"><title>sse</title>
<script>
window.got = []; window.opens = 0; window.errors = 0; window.recovered = [];
const es = new EventSource(new URLSearchParams(location.search).get('src'));
es.onopen = () => window.opens++;
es.onerror = () => window.errors++;
es.onmessage = (e) => { const m = JSON.parse(e.data); window.got.push([m.channel, m.offset, m.data]); };
es.addEventListener('recovered', (e) => window.recovered.push(JSON.parse(e.data)));
</script>`

// TestEventSourceChromium: the browser's EventSource, on a page of
// another origin, receives live messages through a proxy, and after the
// proxy cuts the stream it reconnects by itself (Last-Event-ID) and gets
// exactly the messages it missed; after a node restart it is told
// recovered false.
func TestEventSourceChromium(t *testing.T) {
	n := startHerald(t, "--reconnect-spread", "-1s")
	proxy := cutproxy.New(t, n.WS)
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, ssePage)
	}))
	t.Cleanup(site.Close)
	tab := chromium.Start(t, 90*time.Second, site.Listener.Addr().String(), proxy.Addr())
	src := "http://" + proxy.Addr() + "/sse?channel=news&channel=sport"
	if err := chromedp.Do(tab, chromedp.Navigate(site.URL+"/?src="+url.QueryEscape(src))); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	poll := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(tab, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			state, _ := chromedp.Run(tab, chromedp.Evaluate[string](`JSON.stringify({got: window.got, opens: window.opens, errors: window.errors, recovered: window.recovered, state: es.readyState})`))
			t.Fatalf("waiting for %s (%s): %v; page: %s", what, expr, err, state)
		}
	}
	result := func() string {
		t.Helper()
		s, err := chromedp.Run(tab, chromedp.Evaluate[string](`JSON.stringify(window.got)`))
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return s
	}
	poll("the stream", `window.opens === 1`)
	n.publish(t, "news", `"n1"`)
	n.publish(t, "sport", `"s1"`)
	poll("two messages", `window.got.length === 2`)

	proxy.SetTarget(n.WS)
	proxy.SetMode(cutproxy.Reject)
	if proxy.Cut() != 1 {
		t.Fatal("no stream to cut")
	}
	poll("the cut", `window.errors >= 1`)
	n.publish(t, "news", `"n2"`)
	n.publish(t, "sport", `"s2"`)
	n.publish(t, "news", `"n3"`)
	proxy.SetTarget(n.WS)
	proxy.SetMode(cutproxy.Pass)
	poll("the missed messages", `window.got.length >= 5`)
	n.publish(t, "sport", `"s3"`)
	poll("a live message", `window.got.length >= 6`)
	// Each channel's backlog comes in order, one channel after the other.
	want := `[["news",1,"n1"],["sport",1,"s1"],["news",2,"n2"],["news",3,"n3"],["sport",2,"s2"],["sport",3,"s3"]]`
	if got := result(); got != want {
		t.Fatalf("page saw\n%s\nwant\n%s", got, want)
	}

	proxy.SetTarget(n.WS)
	proxy.SetMode(cutproxy.Reject)
	n.Stop(t)
	proxy.Cut()
	n2 := startHerald(t, "--reconnect-spread", "-1s")
	proxy.SetTarget(n2.WS)
	proxy.SetMode(cutproxy.Pass)
	poll("recovered false", `window.recovered.length === 2 && window.recovered.every(r => r.recovered === false)`)
	n2.publish(t, "news", `"fresh"`)
	poll("live after the restart", `window.got.length === 7 && window.got[6][2] === "fresh"`)
}

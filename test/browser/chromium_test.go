package browser

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	clientjs "github.com/herald-push/herald/client/js"
	"github.com/herald-push/herald/test/internal/chromium"
	"github.com/herald-push/herald/test/internal/cutproxy"
)

// newBrowser starts headless Chromium (see chromium.Start).
func newBrowser(t *testing.T, timeout time.Duration, addrs ...string) context.Context {
	t.Helper()
	return chromium.Start(t, timeout, addrs...)
}

// newTab opens another tab in the browser of ctx.
func newTab(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(ctx)
	t.Cleanup(cancel)
	return tab
}

// front makes the tab the active one: Chromium gives a hidden tab no
// animation frames, and clicks and polls wait for frames.
func front(t *testing.T, ctx context.Context) {
	t.Helper()
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.BringToFront, cdp.Empty{})
		return err
	}))
	if err != nil {
		t.Fatalf("bring tab to front: %v", err)
	}
}

// waitJS polls a JavaScript condition in the tab.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	front(t, ctx)
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := chromedp.Run(wctx, chromedp.Poll[bool](expr)); err != nil {
		t.Fatalf("waiting for %s (%s): %v", what, expr, err)
	}
}

// counterValue reads #value.
func counterValue(t *testing.T, ctx context.Context) int {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#value")))
	if err != nil {
		t.Fatalf("read #value: %v", err)
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("#value is %q, not a number", s)
	}
	return v
}

// TestDemoCounterTwoTabs opens the demo page in two tabs: a click in one
// moves the counter in the other.
func TestDemoCounterTwoTabs(t *testing.T) {
	n := startHerald(t)
	page := "http://" + n.API + "/"
	tab1 := newBrowser(t, 90*time.Second, n.API, n.WS)
	tab2 := newTab(t, tab1)
	ready := `document.getElementById('state').textContent === 'open' && /^-?\d+$/.test(document.getElementById('value').textContent)`
	for i, tab := range []context.Context{tab1, tab2} {
		if err := chromedp.Do(tab, chromedp.Navigate(page)); err != nil {
			t.Fatalf("tab %d: navigate %s: %v", i+1, page, err)
		}
		waitJS(t, tab, fmt.Sprintf("tab %d to connect", i+1), ready)
	}
	start := counterValue(t, tab2)

	steps := []struct {
		name  string
		click context.Context
		btn   string
		want  int
	}{
		{name: "increment in tab 1", click: tab1, btn: "#inc", want: start + 1},
		{name: "increment again in tab 1", click: tab1, btn: "#inc", want: start + 2},
		{name: "decrement in tab 2", click: tab2, btn: "#dec", want: start + 1},
	}
	for _, s := range steps {
		front(t, s.click)
		if err := chromedp.Do(s.click, chromedp.Click(chromedp.CSS(s.btn))); err != nil {
			t.Fatalf("%s: click %s: %v", s.name, s.btn, err)
		}
		for i, tab := range []context.Context{tab1, tab2} {
			waitJS(t, tab, fmt.Sprintf("%s: tab %d shows %d", s.name, i+1, s.want),
				fmt.Sprintf(`document.getElementById('value').textContent === '%d'`, s.want))
		}
	}
}

// recoverPage subscribes to news through herald.js and records what it
// gets; the test reads window.got and window.closes.
const recoverPage = `<!doctype html><title>herald.js recovery</title><script src="/herald.js"></script><script>
window.got = []; window.closes = 0; window.recovered = [];
const h = new Herald(new URLSearchParams(location.search).get('ws'),
  {reconnect: {minDelay: 100, maxDelay: 1000, jitter: 0}});
h.subscribe('news', (data, meta) => window.got.push([meta.offset, data]));
h.on('subscribed', () => { window.subscribed = (window.subscribed || 0) + 1; });
h.on('close', () => { window.closes++; });
h.on('recovered', (ev) => window.recovered.push(ev.recovered));
</script>`

// TestBrowserClientRecovers cuts the page's connection at the network,
// publishes while it is away, and checks that herald.js in Chromium sees
// every message exactly once, in order.
func TestBrowserClientRecovers(t *testing.T) {
	n := startHerald(t)
	proxy := cutproxy.New(t, n.WS)
	mux := http.NewServeMux()
	mux.Handle("GET /herald.js", clientjs.Handler())
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, recoverPage)
	})
	site := httptest.NewServer(mux)
	t.Cleanup(site.Close)

	tab := newBrowser(t, 90*time.Second, site.Listener.Addr().String(), proxy.Addr())
	if err := chromedp.Do(tab, chromedp.Navigate(site.URL+"/?ws=ws://"+proxy.Addr()+"/ws")); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	waitJS(t, tab, "the subscription", `window.subscribed === 1`)
	for i := 1; i <= 5; i++ {
		n.publish(t, "news", fmt.Sprintf("m%d", i))
	}
	waitJS(t, tab, "messages 1..5", `window.got.length === 5`)

	if cut := proxy.Cut(); cut != 1 {
		t.Fatalf("cut %d connections, want 1", cut)
	}
	proxy.SetMode(cutproxy.Reject) // hold it off while we publish
	waitJS(t, tab, "the page to notice the cut", `window.closes >= 1`)
	for i := 6; i <= 10; i++ {
		n.publish(t, "news", fmt.Sprintf("m%d", i))
	}
	proxy.SetMode(cutproxy.Pass)
	waitJS(t, tab, "messages 6..10", `window.got.length >= 10`)
	n.publish(t, "news", "m11")
	waitJS(t, tab, "a live message", `window.got.length >= 11`)

	got, err := chromedp.Run(tab, chromedp.Evaluate[string](`JSON.stringify({got: window.got, recovered: window.recovered})`))
	if err != nil {
		t.Fatalf("read results: %v", err)
	}
	var want string
	for i := 1; i <= 11; i++ {
		if i > 1 {
			want += ","
		}
		want += fmt.Sprintf(`[%d,"m%d"]`, i, i)
	}
	if want = `{"got":[` + want + `],"recovered":[true]}`; got != want {
		t.Fatalf("page saw\n%s\nwant\n%s", got, want)
	}
}

package tls

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/herald-push/herald/test/internal/chromium"
)

// TestChromiumDemoOverWSS opens the demo page of a node with a TLS
// listener in two Chromium tabs: the page connects over wss:// (TLS 1.3 on
// the loops), and a click in one tab moves the counter in the other.
func TestChromiumDemoOverWSS(t *testing.T) {
	srv := start(t, "--api-listen", "127.0.0.1:{port:api}", "--allow-anonymous", "--demo")
	api := srv.Extra["api"]
	tab1 := chromium.Start(t, 90*time.Second, srv.tlsAddr, api)
	tab2, cancel := chromedp.NewContext(tab1)
	t.Cleanup(cancel)
	front := func(ctx context.Context) {
		t.Helper()
		err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, page.BringToFront, cdp.Empty{})
			return err
		}))
		if err != nil {
			t.Fatalf("bring tab to front: %v", err)
		}
	}
	wait := func(ctx context.Context, what, expr string) {
		t.Helper()
		front(ctx)
		wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if _, err := chromedp.Run(wctx, chromedp.Poll[bool](expr)); err != nil {
			t.Fatalf("waiting for %s (%s): %v", what, expr, err)
		}
	}
	ready := `document.getElementById('state').textContent === 'open' && /^-?\d+$/.test(document.getElementById('value').textContent)`
	for i, tab := range []context.Context{tab1, tab2} {
		if err := chromedp.Do(tab, chromedp.Navigate("http://"+api+"/")); err != nil {
			t.Fatalf("tab %d: navigate: %v", i+1, err)
		}
		wait(tab, fmt.Sprintf("tab %d to connect", i+1), ready)
	}
	url, err := chromedp.Run(tab1, chromedp.Evaluate[string](`window.heraldDemo.url`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "wss://" + srv.tlsAddr + "/ws"; url != want {
		t.Fatalf("the page connects to %q, want %q", url, want)
	}
	start, err := chromedp.Run(tab2, chromedp.Text(chromedp.CSS("#value")))
	if err != nil {
		t.Fatal(err)
	}
	var v int
	fmt.Sscan(start, &v)
	front(tab1)
	if err := chromedp.Do(tab1, chromedp.Click(chromedp.CSS("#inc"))); err != nil {
		t.Fatalf("click: %v", err)
	}
	for i, tab := range []context.Context{tab1, tab2} {
		wait(tab, fmt.Sprintf("tab %d shows %d", i+1, v+1), fmt.Sprintf(`document.getElementById('value').textContent === '%d'`, v+1))
	}

	var node struct {
		Server struct {
			TLS struct{ Handshakes, Direct, Fallback uint64 } `json:"tls"`
		} `json:"server"`
	}
	r, err := http.Get("http://" + api + "/api/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if err := json.NewDecoder(r.Body).Decode(&node); err != nil {
		t.Fatal(err)
	}
	if tls := node.Server.TLS; tls.Direct < 2 || tls.Fallback != 0 {
		t.Fatalf("tls stats %+v: want both tabs on the loops (direct), none bridged", tls)
	}
}

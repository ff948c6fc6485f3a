// Package chromium starts headless Chromium for the browser suites,
// through chromedp. Only the test module imports it, which keeps chromedp
// out of the root module.
package chromium

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Path is where Debian's chromium package (installed by `make
// test-deps`) puts the browser.
const Path = "/usr/bin/chromium"

// Start starts headless Chromium and returns a context for its first tab;
// the test fails with the fix when Chromium is missing. The browser session
// is bounded by timeout and ends with the test. addrs are the host:port
// pairs the pages will use: Chromium refuses some ports as unsafe (6000,
// 6665, ...) unless told otherwise, and random test ports may be among
// them. Certificate errors are ignored so pages can use the tests'
// self-signed certificates.
func Start(t testing.TB, timeout time.Duration, addrs ...string) context.Context {
	t.Helper()
	if _, err := os.Stat(Path); err != nil {
		t.Fatal("chromium is not installed: run `make test-deps` (apt-get install chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(Path), chromedp.NoSandbox, chromedp.Headless,
		// The machine may have no route out: keep Chromium from trying.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("ignore-certificate-errors", true),
		chromedp.NoFirstRun)
	var ports []string
	for _, a := range addrs {
		if _, p, err := net.SplitHostPort(a); err == nil {
			ports = append(ports, p)
		}
	}
	if len(ports) > 0 {
		opts = append(opts, chromedp.Flag("explicitly-allowed-ports", strings.Join(ports, ",")))
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	tctx, cancel2 := context.WithTimeout(actx, timeout)
	t.Cleanup(cancel2)
	bctx, cancel3 := chromedp.NewContext(tctx)
	t.Cleanup(cancel3)
	return bctx
}

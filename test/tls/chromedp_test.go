package tls

import (
	"context"
	"strings"

	"github.com/chromedp/chromedp"
)

func chromedpNavigate(ctx context.Context, url string) error {
	return chromedp.Do(ctx, chromedp.Navigate(url))
}

// pollText waits until #out starts with prefix.
func pollText(ctx context.Context, prefix string) error {
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.getElementById('out').textContent.startsWith(`+"'"+prefix+"'"+`)`))
	if err != nil {
		got, _ := textOf(ctx)
		if strings.HasPrefix(got, "error") {
			return err
		}
	}
	return err
}

func textOf(ctx context.Context) (string, error) {
	return chromedp.Run(ctx, chromedp.Text("#out"))
}

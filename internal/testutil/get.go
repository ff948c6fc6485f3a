package testutil

import (
	"io"
	"net/http"
	"time"
)

// Get fetches url with a 5 s timeout and returns the status and the body;
// a request that fails returns status 0 and the error's text as the body,
// so that a test waiting for a status simply tries again.
func Get(url string) (int, []byte) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

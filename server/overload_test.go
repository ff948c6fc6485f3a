package server

import (
	"bufio"
	"bytes"
	"net/http"
	"testing"
)

// TestOverloadResponse: what a client gets when the process is out of
// file descriptors is a complete 503 with Retry-After.
func TestOverloadResponse(t *testing.T) {
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(overloadResponse)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || !resp.Close {
		t.Fatalf("got %d %v", resp.StatusCode, resp.Header)
	}
}

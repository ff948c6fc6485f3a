package testutil

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// Metric reads one sample from the /metrics of the API listener at api
// (host:port, or a URL with http://): name is the sample as printed,
// labels included (`herald_disconnects_total{reason="x"}`). The test fails
// when the sample is missing or the endpoint cannot be read.
func Metric(t testing.TB, api, name string) float64 {
	t.Helper()
	if !strings.HasPrefix(api, "http://") {
		api = "http://" + api
	}
	resp, err := http.Get(api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return f
		}
	}
	t.Fatalf("metric %s not found in /metrics", name)
	return 0
}

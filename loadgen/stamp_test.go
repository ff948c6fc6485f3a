package loadgen

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestWindowDetectsDuplicates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		seqs     []uint64
		wantDups []bool
	}{
		{"in order", []uint64{0, 1, 2, 3}, []bool{false, false, false, false}},
		{"repeat", []uint64{0, 1, 1, 2}, []bool{false, false, true, false}},
		{"gap then late arrival", []uint64{0, 2, 1, 2}, []bool{false, false, false, true}},
		{"reordered within the window", []uint64{5, 3, 4, 0, 1, 2, 5}, []bool{false, false, false, false, false, false, true}},
		{"crosses word boundary", []uint64{0, 70, 64, 70, 127, 128, 64}, []bool{false, false, false, true, false, false, true}},
		{"far ahead forgets the oldest", []uint64{1, 500, 1, 499}, []bool{false, false, true, false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var w window
			var got []bool
			for _, s := range tc.seqs {
				got = append(got, w.add(s))
			}
			if !slices.Equal(got, tc.wantDups) {
				t.Errorf("dups %v, want %v", got, tc.wantDups)
			}
		})
	}
}

func TestStampRoundTrip(t *testing.T) {
	t.Parallel()
	now := time.Now().UnixNano()
	tests := []struct {
		name string
		wrap func(p []byte) []byte
		size int
	}{
		{"bare", func(p []byte) []byte { return p }, 0},
		{"padded", func(p []byte) []byte { return p }, 200},
		{"herald envelope", func(p []byte) []byte {
			return []byte(`{"channel":"bench","offset":12,"data":` + string(p) + `}`)
		}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := appendPayload(nil, now, 42, tc.size)
			if len(p) < tc.size {
				t.Errorf("payload %d bytes, want >= %d", len(p), tc.size)
			}
			ts, seq, ok := parseStamp(tc.wrap(p))
			if !ok || ts != now || seq != 42 {
				t.Errorf("parseStamp = %d, %d, %v; want %d, 42, true", ts, seq, ok, now)
			}
		})
	}
	if _, _, ok := parseStamp([]byte(`{"op":"subscribed","channel":"bench","offset":3}`)); ok {
		t.Error("a reply without a stamp parsed as stamped")
	}
}

func TestParseStampAllocatesNothing(t *testing.T) {
	p := appendPayload(nil, time.Now().UnixNano(), 7, 0)
	if allocs := testing.AllocsPerRun(100, func() { _, _, _ = parseStamp(p) }); allocs != 0 {
		t.Errorf("parseStamp allocates %v times", allocs)
	}
}

func TestParseSourceAddrs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "", want: nil},
		{in: "127.0.0.2", want: []string{"127.0.0.2"}},
		{in: "127.0.0.254+3, 10.0.0.1", want: []string{"127.0.0.254", "127.0.0.255", "127.0.1.0", "10.0.0.1"}},
		{in: "nope", wantErr: true},
		{in: "127.0.0.2+0", wantErr: true},
		{in: "::1+2", wantErr: true},
	}
	for _, tc := range tests {
		got, err := ParseSourceAddrs(tc.in)
		if (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) {
			t.Errorf("ParseSourceAddrs(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestWorkerShares(t *testing.T) {
	t.Parallel()
	addrs := []string{"a", "b", "c", "d", "e"}
	total := 0
	var all []string
	for i := range 3 {
		total += share(10, i, 3)
		all = append(all, workerAddrs(addrs, i, 3)...)
	}
	if total != 10 || !slices.Equal(all, addrs) {
		t.Errorf("shares add to %d (want 10), addresses %v (want each once)", total, all)
	}
	if got := workerAddrs(addrs[:1], 2, 3); !slices.Equal(got, addrs[:1]) {
		t.Errorf("with fewer addresses than workers, got %v", got)
	}
}

func TestPlotsAreSVG(t *testing.T) {
	t.Parallel()
	r := &Result{Scenario: "x", Timeline: []Sample{{T: 1, Conns: 10, Deliveries: 100}, {T: 2, Conns: 20, Deliveries: 300}}}
	for i := range 1000 {
		r.Latency.Record(time.Duration(i) * time.Microsecond * 10)
	}
	for _, c := range []Chart{
		LatencyChart("l", []string{"a"}, []*Result{r}),
		RampChart("r", []string{"a"}, []*Result{r}),
		RateChart("d", []string{"a"}, []*Result{r}),
	} {
		var b bytes.Buffer
		if err := c.WriteSVG(&b); err != nil {
			t.Fatal(err)
		}
		s := b.String()
		if !strings.HasPrefix(s, "<svg") || !strings.Contains(s, "<polyline") || strings.Contains(s, "NaN") {
			t.Errorf("%s: not a plot: %.200s", c.Title, s)
		}
	}
	if got := percentileLabel(3); got != "99.9%" {
		t.Errorf("percentileLabel(3) = %q", got)
	}
}

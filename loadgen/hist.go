package loadgen

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: values are microseconds, from 1 µs to 10 minutes, with
// three significant digits.
const (
	histMin     = 1
	histMax     = int64(10 * time.Minute / time.Microsecond)
	histSigFigs = 3
)

// Hist is a latency histogram in microseconds. Its JSON form carries the
// usual percentiles for people and the whole histogram (HdrHistogram's V2
// compressed encoding) for Merge. The zero value is an empty histogram.
// Not safe for concurrent use: each event loop records into its own.
type Hist struct {
	h *hdrhistogram.Histogram
}

func newHist() Hist { return Hist{h: hdrhistogram.New(histMin, histMax, histSigFigs)} }

func (h *Hist) init() {
	if h.h == nil {
		*h = newHist()
	}
}

// Record adds one duration; values outside the range are clamped to it.
func (h *Hist) Record(d time.Duration) {
	h.init()
	us := d.Microseconds()
	_ = h.h.RecordValue(min(max(us, histMin), histMax))
}

// Merge adds every value of o to h.
func (h *Hist) Merge(o Hist) {
	if o.h == nil {
		return
	}
	h.init()
	h.h.Merge(o.h)
}

// Count is the number of values recorded.
func (h Hist) Count() int64 {
	if h.h == nil {
		return 0
	}
	return h.h.TotalCount()
}

// Quantile returns the value at percentile p (0 to 100).
func (h Hist) Quantile(p float64) time.Duration {
	if h.h == nil || h.h.TotalCount() == 0 {
		return 0
	}
	return time.Duration(h.h.ValueAtQuantile(p)) * time.Microsecond
}

// Max returns the largest value recorded.
func (h Hist) Max() time.Duration {
	if h.h == nil || h.h.TotalCount() == 0 {
		return 0
	}
	return time.Duration(h.h.Max()) * time.Microsecond
}

// Mean returns the mean of the values recorded.
func (h Hist) Mean() time.Duration {
	if h.h == nil || h.h.TotalCount() == 0 {
		return 0
	}
	return time.Duration(h.h.Mean() * float64(time.Microsecond))
}

// CurvePoint is one point of a percentile curve.
type CurvePoint struct {
	Percentile float64 `json:"p"`
	Micros     int64   `json:"us"`
}

// Curve returns the percentile curve at 50, 75, 90, 99, 99.9, ... up to the
// percentile that a single value represents, and 100.
func (h Hist) Curve() []CurvePoint {
	n := h.Count()
	if n == 0 {
		return nil
	}
	var out []CurvePoint
	ps := []float64{0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.999, 99.9999}
	for _, p := range ps {
		if p > 0 && (100-p)/100*float64(n) < 1 {
			break
		}
		out = append(out, CurvePoint{p, h.h.ValueAtQuantile(p)})
	}
	return append(out, CurvePoint{100, h.h.Max()})
}

type histJSON struct {
	Count int64  `json:"count"`
	P50   int64  `json:"p50_us"`
	P90   int64  `json:"p90_us"`
	P99   int64  `json:"p99_us"`
	P999  int64  `json:"p999_us"`
	Max   int64  `json:"max_us"`
	Mean  int64  `json:"mean_us"`
	HDR   string `json:"hdr,omitempty"`
}

// MarshalJSON writes the percentiles and the encoded histogram.
func (h Hist) MarshalJSON() ([]byte, error) {
	j := histJSON{Count: h.Count()}
	if j.Count > 0 {
		j.P50 = h.Quantile(50).Microseconds()
		j.P90 = h.Quantile(90).Microseconds()
		j.P99 = h.Quantile(99).Microseconds()
		j.P999 = h.Quantile(99.9).Microseconds()
		j.Max = h.Max().Microseconds()
		j.Mean = h.Mean().Microseconds()
		enc, err := h.h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
		if err != nil {
			return nil, fmt.Errorf("loadgen: encode histogram: %w", err)
		}
		j.HDR = string(enc)
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the histogram back from its encoded form.
func (h *Hist) UnmarshalJSON(b []byte) error {
	var j histJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return fmt.Errorf("loadgen: histogram: %w", err)
	}
	*h = Hist{}
	if j.HDR == "" {
		return nil
	}
	d, err := hdrhistogram.Decode([]byte(j.HDR))
	if err != nil {
		return fmt.Errorf("loadgen: decode histogram: %w", err)
	}
	h.h = d
	return nil
}

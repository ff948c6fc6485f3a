package loadgen

import (
	"bytes"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
)

// The plots are SVG written by hand: a few lines and axes do not justify a
// plotting dependency, and the files open in any browser with no service.

// Series is one line of a Chart.
type Series struct {
	Name string
	X, Y []float64
}

// Chart is a line chart. PercentileX plots X (percentiles, 0 to 100) on
// the usual latency scale, where 90, 99, 99.9 ... are evenly spaced.
type Chart struct {
	Title, XLabel, YLabel string
	PercentileX           bool
	Series                []Series
}

// LatencyChart plots the latency percentile curve (milliseconds) of each
// result, named by names.
func LatencyChart(title string, names []string, rs []*Result) Chart {
	c := Chart{Title: title, XLabel: "percentile", YLabel: "latency (ms)", PercentileX: true}
	for i, r := range rs {
		s := Series{Name: names[i]}
		for _, p := range r.Latency.Curve() {
			if p.Percentile >= 100 {
				continue
			}
			s.X = append(s.X, p.Percentile)
			s.Y = append(s.Y, float64(p.Micros)/1000)
		}
		c.Series = append(c.Series, s)
	}
	return c
}

// RampChart plots open connections over time.
func RampChart(title string, names []string, rs []*Result) Chart {
	c := Chart{Title: title, XLabel: "time (s)", YLabel: "open connections"}
	for i, r := range rs {
		s := Series{Name: names[i], X: []float64{0}, Y: []float64{0}}
		for _, p := range r.Timeline {
			s.X = append(s.X, p.T)
			s.Y = append(s.Y, float64(p.Conns))
		}
		c.Series = append(c.Series, s)
	}
	return c
}

// RateChart plots deliveries per second over time.
func RateChart(title string, names []string, rs []*Result) Chart {
	c := Chart{Title: title, XLabel: "time (s)", YLabel: "deliveries/s"}
	for i, r := range rs {
		s := Series{Name: names[i]}
		var lastT float64
		var lastD int64
		for _, p := range r.Timeline {
			if dt := p.T - lastT; dt > 0 {
				s.X = append(s.X, p.T)
				s.Y = append(s.Y, float64(p.Deliveries-lastD)/dt)
			}
			lastT, lastD = p.T, p.Deliveries
		}
		c.Series = append(c.Series, s)
	}
	return c
}

// HistChart plots the percentile curves (milliseconds) of hists, named
// by names; empty histograms are left out.
func HistChart(title string, names []string, hists []Hist) Chart {
	c := Chart{Title: title, XLabel: "percentile", YLabel: "ms", PercentileX: true}
	for i, h := range hists {
		if h.Count() == 0 {
			continue
		}
		s := Series{Name: names[i]}
		for _, p := range h.Curve() {
			if p.Percentile >= 100 {
				continue
			}
			s.X = append(s.X, p.Percentile)
			s.Y = append(s.Y, float64(p.Micros)/1000)
		}
		c.Series = append(c.Series, s)
	}
	return c
}

// ShootoutChart plots each shootout step's p50, p95 and p99 (ms) against
// its client count, with the p95 bound.
func ShootoutChart(sh *ShootoutResult) Chart {
	c := Chart{Title: "broadcast latency by client count", XLabel: "clients", YLabel: "latency (ms)"}
	p50, p95, p99 := Series{Name: "p50"}, Series{Name: "p95"}, Series{Name: "p99"}
	bound := Series{Name: "p95 bound"}
	for _, st := range sh.Steps {
		x := float64(st.Clients)
		p50.X, p50.Y = append(p50.X, x), append(p50.Y, float64(st.P50)/1000)
		p95.X, p95.Y = append(p95.X, x), append(p95.Y, float64(st.P95)/1000)
		p99.X, p99.Y = append(p99.X, x), append(p99.Y, float64(st.P99)/1000)
		bound.X, bound.Y = append(bound.X, x), append(bound.Y, float64(sh.BoundMicros)/1000)
	}
	c.Series = []Series{p50, p95, p99, bound}
	return c
}

// WritePlots writes latency.svg, ramp.svg and rate.svg for r into dir,
// and recovery.svg (replay, downtime and live latency) for jitter and
// deploy, shootout.svg for shootout.
func WritePlots(dir string, r *Result) error {
	names := []string{r.Scenario}
	rs := []*Result{r}
	charts := map[string]Chart{
		"latency.svg": LatencyChart("latency percentiles", names, rs),
		"ramp.svg":    RampChart("connection ramp", names, rs),
		"rate.svg":    RateChart("deliveries per second", names, rs),
	}
	if rc := r.Recovery; rc != nil {
		charts["recovery.svg"] = HistChart("recovery: "+r.Scenario,
			[]string{"replay", "downtime", "live latency"}, []Hist{rc.ReplayLatency, rc.Downtime, r.Latency})
	}
	if r.Shootout != nil {
		charts["shootout.svg"] = ShootoutChart(r.Shootout)
	}
	for name, c := range charts {
		var b bytes.Buffer
		if err := c.WriteSVG(&b); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), b.Bytes(), 0o644); err != nil {
			return fmt.Errorf("loadgen: write plot: %w", err)
		}
	}
	return nil
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

// Chart geometry, in SVG user units.
const (
	svgW, svgH                     = 720.0, 420.0
	padL, padR, padT, padB         = 70.0, 160.0, 40.0, 50.0
	plotW, plotH                   = svgW - padL - padR, svgH - padT - padB
	maxPercentileX                 = 6.0 // 99.9999th
	percentileFloor, percentileTop = 0.0, 100.0
)

// px maps a percentile to its position on the percentile scale.
func px(p float64) float64 {
	p = math.Min(math.Max(p, percentileFloor), percentileTop)
	if p >= 100 {
		return maxPercentileX
	}
	return math.Min(-math.Log10(1-p/100), maxPercentileX)
}

// WriteSVG renders c.
func (c Chart) WriteSVG(w io.Writer) error {
	xmax, ymax := 0.0, 0.0
	for _, s := range c.Series {
		for i := range s.X {
			x := s.X[i]
			if c.PercentileX {
				x = px(x)
			}
			xmax = math.Max(xmax, x)
			ymax = math.Max(ymax, s.Y[i])
		}
	}
	if c.PercentileX {
		xmax = math.Max(2, math.Ceil(xmax))
	}
	xmax = niceCeil(xmax)
	ymax = niceCeil(ymax * 1.05)
	X := func(x float64) float64 {
		if c.PercentileX {
			x = px(x)
		}
		return padL + x/xmax*plotW
	}
	Y := func(y float64) float64 { return padT + plotH - y/ymax*plotH }

	p := &errWriter{w: w}
	p.printf(`<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" font-family="sans-serif" font-size="12">`+"\n", svgW, svgH, svgW, svgH)
	p.printf(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	p.printf(`<text x="%g" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", padL, html.EscapeString(c.Title))
	p.printf(`<rect x="%g" y="%g" width="%g" height="%g" fill="none" stroke="#444"/>`+"\n", padL, padT, plotW, plotH)
	for i := 0; i <= 5; i++ {
		v := ymax * float64(i) / 5
		y := Y(v)
		p.printf(`<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#ddd"/>`, padL, y, padL+plotW, y)
		p.printf(`<text x="%g" y="%.1f" text-anchor="end">%s</text>`+"\n", padL-6, y+4, fmtNum(v))
	}
	if c.PercentileX {
		for k := 0; float64(k) <= xmax; k++ {
			x := padL + float64(k)/xmax*plotW
			p.printf(`<line x1="%.1f" y1="%g" x2="%.1f" y2="%g" stroke="#ddd"/>`, x, padT, x, padT+plotH)
			p.printf(`<text x="%.1f" y="%g" text-anchor="middle">%s</text>`+"\n", x, padT+plotH+16, percentileLabel(k))
		}
	} else {
		for i := 0; i <= 5; i++ {
			v := xmax * float64(i) / 5
			x := X(v)
			p.printf(`<text x="%.1f" y="%g" text-anchor="middle">%s</text>`+"\n", x, padT+plotH+16, fmtNum(v))
		}
	}
	p.printf(`<text x="%g" y="%g" text-anchor="middle">%s</text>`+"\n", padL+plotW/2, svgH-10, html.EscapeString(c.XLabel))
	p.printf(`<text transform="translate(16 %g) rotate(-90)" text-anchor="middle">%s</text>`+"\n", padT+plotH/2, html.EscapeString(c.YLabel))
	for i, s := range c.Series {
		color := palette[i%len(palette)]
		var pts bytes.Buffer
		for j := range s.X {
			fmt.Fprintf(&pts, "%.1f,%.1f ", X(s.X[j]), Y(s.Y[j]))
		}
		p.printf(`<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", color, pts.String())
		ly := padT + 14 + float64(i)*18
		p.printf(`<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s" stroke-width="3"/>`, svgW-padR+12, ly-4, svgW-padR+32, ly-4, color)
		p.printf(`<text x="%g" y="%g">%s</text>`+"\n", svgW-padR+38, ly, html.EscapeString(s.Name))
	}
	p.printf("</svg>\n")
	return p.err
}

// percentileLabel names the k-th tick of the percentile scale: 0%, 90%,
// 99%, 99.9% ...
func percentileLabel(k int) string {
	if k == 0 {
		return "0%"
	}
	return strconv.FormatFloat(100-100*math.Pow(10, -float64(k)), 'f', max(k-2, 0), 64) + "%"
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	e := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*e >= v {
			return m * e
		}
	}
	return 10 * e
}

func fmtNum(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', -1, 64) + "M"
	case v >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', -1, 64) + "k"
	}
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
}

package main

import (
	"fmt"
	"slices"
	"time"
)

// sample is one reading of promgate's own metrics, at an offset from the
// start of the load.
type sample struct {
	At time.Duration `json:"atNs"` // nanoseconds
	selfMetrics
}

// criterion says how much a gauge may grow and still count as flat: the
// median of the last quarter's samples may exceed the median of the second
// quarter's by at most max(Abs, Rel × that median). The first quarter is
// warm-up (informers filling, caches and pools reaching their working
// size); the third is a buffer between the two compared. Only growth
// counts: a gauge that falls is flat. Medians, not means: a backend query
// that hangs until promgate's timeout holds every request waiting for it,
// and a sample taken then counts hundreds of goroutines more; that is load,
// not a leak, and a leak raises every later sample, hence the median.
type criterion struct {
	Rel float64
	Abs float64
}

// trend is the verdict on one gauge.
type trend struct {
	Name     string  `json:"name"`
	Q2       float64 `json:"q2Median"`
	Q4       float64 `json:"q4Median"`
	N2, N4   int     `json:"-"`
	Limit    float64 `json:"limit"` // the largest Q4 that is flat
	Flat     bool    `json:"flat"`
	Judgable bool    `json:"judgable"` // at least minPerQuarter samples in Q2 and Q4
}

// minPerQuarter is the fewest samples a compared quarter needs.
const minPerQuarter = 2

// quarter returns which quarter of a run of length d offset at falls in,
// 1 to 4 (at == d is in the fourth).
func quarter(at, d time.Duration) int {
	q := int(4*at/d) + 1
	return max(1, min(q, 4))
}

// judge compares the second and the last quarter's median of the gauge
// that value picks out of samples.
func judge(name string, samples []sample, d time.Duration, c criterion, value func(selfMetrics) float64) trend {
	tr := trend{Name: name}
	var v2, v4 []float64
	for _, s := range samples {
		switch quarter(s.At, d) {
		case 2:
			v2 = append(v2, value(s.selfMetrics))
		case 4:
			v4 = append(v4, value(s.selfMetrics))
		}
	}
	tr.N2, tr.N4 = len(v2), len(v4)
	tr.Judgable = tr.N2 >= minPerQuarter && tr.N4 >= minPerQuarter
	tr.Q2, tr.Q4 = median(v2), median(v4)
	tr.Limit = tr.Q2 + max(c.Abs, c.Rel*tr.Q2)
	tr.Flat = tr.Judgable && tr.Q4 <= tr.Limit
	return tr
}

// median returns the median of vs (which it sorts), 0 for none.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	slices.Sort(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2]
	}
	return (vs[n/2-1] + vs[n/2]) / 2
}

// String is one line of the verdict.
func (t trend) String() string {
	if !t.Judgable {
		return fmt.Sprintf("%-10s INCONCLUSIVE: %d samples in the 2nd quarter, %d in the 4th (need %d each: run longer or sample more often)",
			t.Name, t.N2, t.N4, minPerQuarter)
	}
	verdict := "FLAT"
	if !t.Flat {
		verdict = "GROWING"
	}
	change := 0.0
	if t.Q2 != 0 {
		change = 100 * (t.Q4 - t.Q2) / t.Q2
	}
	return fmt.Sprintf("%-10s %-7s 2nd-quarter median %s, 4th-quarter median %s (%+.1f%%; flat up to %s)",
		t.Name, verdict, t.format(t.Q2), t.format(t.Q4), change, t.format(t.Limit))
}

func (t trend) format(v float64) string {
	if t.Name == "RSS" {
		return fmt.Sprintf("%.1f MiB", v/(1<<20))
	}
	return fmt.Sprintf("%.1f", v)
}

package workload

import (
	"testing"
	"time"
)

func TestCounterPiecewise(t *testing.T) {
	type step struct {
		at   time.Duration // since t0
		rate float64       // new rate from then on
	}
	type check struct {
		at   time.Duration
		want float64
	}
	tests := []struct {
		name   string
		start  float64 // rate at t0
		steps  []step
		checks []check
	}{
		{
			name:   "constant",
			start:  2,
			checks: []check{{0, 0}, {time.Second, 2}, {90 * time.Second, 180}},
		},
		{
			name:   "rate rises then stops",
			start:  2,
			steps:  []step{{10 * time.Second, 5}, {15 * time.Second, 0}},
			checks: []check{{5 * time.Second, 10}, {10 * time.Second, 20}, {12 * time.Second, 30}, {15 * time.Second, 45}, {time.Hour, 45}},
		},
		{
			name:   "fractional rate",
			start:  0.25,
			steps:  []step{{4 * time.Second, 0.75}},
			checks: []check{{2 * time.Second, 0.5}, {4 * time.Second, 1}, {8 * time.Second, 4}},
		},
		{
			name:   "same rate twice is a no-op",
			start:  3,
			steps:  []step{{time.Second, 3}, {2 * time.Second, 3}},
			checks: []check{{3 * time.Second, 9}},
		},
		{
			name:   "clock before start",
			start:  3,
			checks: []check{{-time.Second, 0}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCounter(t0, tc.start)
			steps := tc.steps
			for _, ck := range tc.checks {
				for len(steps) > 0 && steps[0].at <= ck.at {
					c.SetRate(t0.Add(steps[0].at), steps[0].rate)
					steps = steps[1:]
				}
				approx(t, "value at "+ck.at.String(), c.Value(t0.Add(ck.at)), ck.want)
			}
		})
	}
}

// TestCounterContinuity scrapes a counter every second, as Prometheus does,
// across a rate change and checks what rate() sees: no jump at the change, and
// the configured rate over any window inside one constant-rate segment.
func TestCounterContinuity(t *testing.T) {
	c := NewCounter(t0, 4)
	samples := map[time.Duration]float64{}
	for at := time.Duration(0); at <= 120*time.Second; at += time.Second {
		if at == 60*time.Second {
			c.SetRate(t0.Add(at), 10)
		}
		samples[at] = c.Value(t0.Add(at))
		if prev, ok := samples[at-time.Second]; ok && samples[at] < prev {
			t.Fatalf("counter decreased at %v: %v -> %v", at, prev, samples[at])
		}
	}
	windows := []struct {
		from, to time.Duration
		want     float64
	}{
		{0, 60 * time.Second, 4},
		{10 * time.Second, 40 * time.Second, 4},
		{59 * time.Second, 60 * time.Second, 4},
		{60 * time.Second, 61 * time.Second, 10},
		{60 * time.Second, 120 * time.Second, 10},
		{30 * time.Second, 90 * time.Second, 7}, // straddles the change
	}
	for _, w := range windows {
		got := (samples[w.to] - samples[w.from]) / (w.to - w.from).Seconds()
		approx(t, "rate over ["+w.from.String()+", "+w.to.String()+"]", got, w.want)
	}
	// A clock step back never makes the counter decrease.
	c.SetRate(t0.Add(120*time.Second), 0)
	if back, now := c.Value(t0.Add(100*time.Second)), c.Value(t0.Add(130*time.Second)); back > now {
		t.Errorf("value decreased: %v at 100s > %v at 130s", back, now)
	}
}

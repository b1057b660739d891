package workload

import "time"

// Clock returns the current time. Tests inject a fake one.
type Clock func() time.Time

// Counter is a monotonic counter whose value is the integral over time of a
// piecewise-constant rate. Changing the rate first accumulates the value
// reached at the old rate, so the counter is continuous and rate() over any
// window that lies within one constant-rate segment returns that rate exactly.
//
// The zero Counter starts at 0 with rate 0 at the zero time; use NewCounter.
type Counter struct {
	base  float64   // value reached at since
	rate  float64   // increase per second from since on
	since time.Time // start of the current constant-rate segment
}

// NewCounter returns a counter that starts at 0 at now and grows by rate per
// second.
func NewCounter(now time.Time, rate float64) Counter {
	return Counter{rate: rate, since: now}
}

// Value returns the counter's value at now. A now before the start of the
// current segment (a clock step backwards) yields the segment's start value, so
// the counter never decreases.
func (c Counter) Value(now time.Time) float64 {
	d := now.Sub(c.since)
	if d <= 0 {
		return c.base
	}
	return c.base + c.rate*d.Seconds()
}

// Rate returns the current increase per second.
func (c Counter) Rate() float64 { return c.rate }

// SetRate changes the rate from now on, keeping the value reached so far.
// Setting the rate it already has is a no-op, so repeated reconciliation adds
// no rounding error.
func (c *Counter) SetRate(now time.Time, rate float64) {
	if rate == c.rate {
		return
	}
	c.base = c.Value(now)
	if now.After(c.since) {
		c.since = now
	}
	c.rate = rate
}

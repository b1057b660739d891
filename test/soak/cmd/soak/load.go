package main

import (
	"context"
	"sync"
	"time"

	"github.com/promgate/promgate/test/bench/fakeprom"
)

// tally collects the outcomes of one interval (or of the whole run).
type tally struct {
	classes    map[string]int // by class
	details    map[string]int // classOther by detail
	incomplete int
	tooLarge   int // 503s saying a backend answer was too large
	// hostile are the hostile share's classes, by selector: "at the
	// limits" or "over the limits".
	hostile   map[string]map[string]int
	unrefused int // over-limit selectors answered 2xx
	latencies []time.Duration
	byAPI     map[string][]time.Duration
	dropped   int // not sent: too many in flight
}

// The hostile share's two kinds of selector, as tally.hostile names them.
const (
	atLimits   = "at the limits"
	overLimits = "over the limits"
)

func newTally() *tally {
	return &tally{classes: map[string]int{}, details: map[string]int{}, byAPI: map[string][]time.Duration{},
		hostile: map[string]map[string]int{atLimits: {}, overLimits: {}}}
}

func (t *tally) add(o outcome) {
	t.classes[o.class]++
	if o.detail != "" {
		t.details[o.detail]++
	}
	if o.incomplete {
		t.incomplete++
	}
	if o.tooLarge {
		t.tooLarge++
	}
	if o.unrefused {
		t.unrefused++
	}
	switch {
	case o.overLimit:
		t.hostile[overLimits][o.class]++
	case o.api == "hostile":
		t.hostile[atLimits][o.class]++
	}
	t.latencies = append(t.latencies, o.latency)
	t.byAPI[o.api] = append(t.byAPI[o.api], o.latency)
}

// merge adds u's outcomes to t.
func (t *tally) merge(u *tally) {
	for k, v := range u.classes {
		t.classes[k] += v
	}
	for k, v := range u.details {
		t.details[k] += v
	}
	for sel, cs := range u.hostile {
		for k, v := range cs {
			t.hostile[sel][k] += v
		}
	}
	t.incomplete += u.incomplete
	t.tooLarge += u.tooLarge
	t.unrefused += u.unrefused
	t.dropped += u.dropped
	t.latencies = append(t.latencies, u.latencies...)
	for k, v := range u.byAPI {
		t.byAPI[k] = append(t.byAPI[k], v...)
	}
}

func (t *tally) requests() int { return len(t.latencies) }

// percentiles sorts t's latencies and returns their percentiles.
func (t *tally) percentiles() fakeprom.Percentiles { return fakeprom.PercentilesOf(t.latencies) }

// loader sends requests at a fixed rate, open loop: each at its scheduled
// time whether or not earlier ones were answered (so that a slow promgate
// cannot slow the load down), with at most maxInFlight outstanding; a
// request that finds the limit reached is dropped and counted.
type loader struct {
	t           target
	plan        *planner
	rps         float64
	maxInFlight int
	// next is the number of the next request: each run goes on with the
	// plan where the last stopped, so that no request of the measured run
	// repeats one of the warm-up's.
	next int

	mu  sync.Mutex
	cur *tally
}

// swap returns the outcomes since the last swap.
func (l *loader) swap() *tally {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.cur
	l.cur = newTally()
	return t
}

// run sends requests until d has passed or ctx is done, then waits for the
// ones in flight (at most the client's timeout).
func (l *loader) run(ctx context.Context, d time.Duration) {
	l.mu.Lock()
	if l.cur == nil {
		l.cur = newTally()
	}
	l.mu.Unlock()
	sem := make(chan struct{}, l.maxInFlight)
	var wg sync.WaitGroup
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	base, i := l.next, l.next
	defer func() { l.next = i }() // the first request not sent
	for ; ; i++ {
		at := time.Duration(float64(i-base) / l.rps * float64(time.Second))
		if at >= d {
			break
		}
		if wait := time.Until(start.Add(at)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case sem <- struct{}{}:
		default:
			l.mu.Lock()
			l.cur.dropped++
			l.mu.Unlock()
			continue
		}
		wg.Add(1)
		go func(r request) {
			defer wg.Done()
			defer func() { <-sem }()
			o := r.do(ctx, l.t)
			l.mu.Lock()
			l.cur.add(o)
			l.mu.Unlock()
		}(l.plan.at(i))
	}
	wg.Wait()
}

package catalog

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/klog/v2"

	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/rules"
)

// Discoverer runs discovery periodically and holds the latest Snapshot.
type Discoverer struct {
	rules       atomic.Pointer[ruleSet]
	listers     Listers
	mapper      apimeta.RESTMapper
	maxAge      time.Duration
	concurrency int
	method      config.Method            // of the default lister
	methods     map[string]config.Method // by backend name, when set

	clock func() time.Time // the end of the time range listed
	idxMu sync.Mutex       // guards fellBack and probed
	// fellBack says, by backend (or queryScope, for one seriesQuery), why
	// auto lists its series instead of reading the index.
	fellBack map[string]string
	probed   map[string]bool // backends whose index narrows by match[]

	current   atomic.Pointer[Snapshot]
	refreshMu sync.Mutex                // one discovery at a time: a reload's never races the ticker's
	mu        sync.Mutex                // guards last
	last      map[seriesKey]queryResult // last good result per seriesQuery and backend
	ready     chan struct{}
	once      sync.Once
}

// New returns a Discoverer that lists each rule's series from the lister
// of its backend (rules.Rule.Backend); maxAge bounds how long ago a series
// must have had samples to count.
func New(custom, external []*rules.Rule, listers Listers, mapper apimeta.RESTMapper, maxAge time.Duration) *Discoverer {
	d := &Discoverer{
		listers: listers, mapper: mapper,
		maxAge: maxAge, concurrency: 4,
		method:   config.MethodSeries,
		clock:    time.Now,
		fellBack: map[string]string{}, probed: map[string]bool{},
		last:  map[seriesKey]queryResult{},
		ready: make(chan struct{}),
	}
	d.rules.Store(&ruleSet{custom: custom, external: external})
	d.current.Store(&Snapshot{custom: map[CustomKey]Entry{}, external: map[string]Entry{}})
	return d
}

// WithClock makes discovery list the series of the maxAge before clock()
// instead of before now: a benchmark over backfilled data. Call it before
// Run.
func (d *Discoverer) WithClock(clock func() time.Time) *Discoverer {
	d.clock = clock
	return d
}

// WithMethod sets the discovery method of every backend WithMethods does
// not name (default series). Call it before Run.
func (d *Discoverer) WithMethod(m config.Method) *Discoverer {
	d.method = m
	return d
}

// WithMethods sets the discovery method of backends by name. Call it
// before Run.
func (d *Discoverer) WithMethods(m map[string]config.Method) *Discoverer {
	d.methods = m
	return d
}

// ruleSet is the rules one discovery applies.
type ruleSet struct {
	custom, external []*rules.Rule
}

// SetRules replaces the rules (a configuration reload). The current
// snapshot keeps serving until the next discovery, which applies the new
// rules, has finished: there is no moment without metrics.
func (d *Discoverer) SetRules(custom, external []*rules.Rule) {
	d.rules.Store(&ruleSet{custom: custom, external: external})
}

// Snapshot returns the latest snapshot; never nil.
func (d *Discoverer) Snapshot() *Snapshot { return d.current.Load() }

// Ready is closed after the first discovery finished.
func (d *Discoverer) Ready() <-chan struct{} { return d.ready }

// Run discovers now and then every interval until ctx ends.
func (d *Discoverer) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		d.Refresh(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Refresh runs one discovery and publishes its snapshot. A seriesQuery that
// fails keeps its last good result; it never blocks the others.
func (d *Discoverer) Refresh(ctx context.Context) *Snapshot {
	d.refreshMu.Lock()
	defer d.refreshMu.Unlock()
	start := time.Now()
	rs := d.rules.Load()
	queries := map[seriesKey]bool{}
	for _, r := range append(append([]*rules.Rule(nil), rs.custom...), rs.external...) {
		queries[keyOf(r)] = true
	}
	results := d.listAll(ctx, queries, d.relevantLabels(rs.custom))
	d.forget(queries)
	snap := d.build(rs, results)
	snap.Time = time.Now()
	d.current.Store(snap)
	d.once.Do(func() { close(d.ready) })
	observe(snap, results, time.Since(start))
	klog.V(2).InfoS("discovery finished", "duration", time.Since(start), "customMetrics", len(snap.customList), "externalMetrics", len(snap.externalList))
	return snap
}

// listAll lists the shapes of every seriesQuery, at most d.concurrency at
// a time, each over the same time range.
func (d *Discoverer) listAll(ctx context.Context, queries map[seriesKey]bool, relevant map[seriesKey]func(string) bool) map[seriesKey]queryResult {
	now := d.clock()
	results := make(map[seriesKey]queryResult, len(queries))
	var rmu sync.Mutex
	sem := make(chan struct{}, d.concurrency)
	var wg sync.WaitGroup
	for q := range queries {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			began := time.Now()
			res := d.list(ctx, q, now, relevant[q])
			res.took = time.Since(began)
			rmu.Lock()
			results[q] = res
			rmu.Unlock()
		}()
	}
	wg.Wait()
	return results
}

// forget drops the last good results of the seriesQueries that are not in
// queries any more (a reload removed their rules).
func (d *Discoverer) forget(queries map[seriesKey]bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for q := range d.last {
		if !queries[q] {
			delete(d.last, q)
		}
	}
}

// relevantLabels returns, per seriesQuery, whether a label matters to the
// custom rules that share it: one of them maps it to a resource, or it is
// their namespace label. External rules use series names only: a
// seriesQuery of external rules alone has none.
func (d *Discoverer) relevantLabels(custom []*rules.Rule) map[seriesKey]func(string) bool {
	byKey := map[seriesKey][]*rules.Rule{}
	for _, r := range custom {
		byKey[keyOf(r)] = append(byKey[keyOf(r)], r)
	}
	out := make(map[seriesKey]func(string) bool, len(byKey))
	for k, rs := range byKey {
		ns := map[string]bool{}
		for _, r := range rs {
			ns[r.Resources.NamespaceLabel(d.mapper)] = true
		}
		out[k] = func(l string) bool {
			if ns[l] {
				return true
			}
			for _, r := range rs {
				if _, ok := r.Resources.ResourceForLabel(l, d.mapper); ok {
					return true
				}
			}
			return false
		}
	}
	return out
}

// keep records res as k's last good result, or, when it failed, returns
// the last good one with its error. An empty res where the last good one
// had shapes is not recorded either until emptyGrace has passed: the last
// good shapes are returned instead, without an error.
func (d *Discoverer) keep(k seriesKey, now time.Time, res queryResult) queryResult {
	q, shapes, err := k.query, res.shapes, res.err
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		klog.ErrorS(err, "series discovery failed; keeping the last good result", "seriesQuery", q, "backend", k.backend)
		prev := d.last[k]
		return queryResult{shapes: prev.shapes, at: prev.at, err: err, method: res.method, requests: res.requests}
	}
	if prev, ok := d.last[k]; ok && len(shapes) == 0 && len(prev.shapes) > 0 && now.Sub(prev.at) < d.emptyGrace() {
		// An empty answer where there were series: what a Prometheus that
		// just restarted (WAL replay, first scrapes pending) says. Until
		// the series have been gone for the grace period, keep them, so
		// that metrics do not vanish into 404s for a minute; requests for
		// them meanwhile get the backend's real answer (503 or data).
		klog.InfoS("series discovery returned no series where there were some; keeping the last non-empty result for now",
			"seriesQuery", q, "since", prev.at, "grace", d.emptyGrace())
		return queryResult{shapes: prev.shapes, at: prev.at, method: res.method, requests: res.requests}
	}
	res.at = now
	d.last[k] = res
	return res
}

// minEmptyGrace is the least time a seriesQuery's series are kept after
// its answers turned empty.
const minEmptyGrace = 5 * time.Minute

// emptyGrace is how long series are kept after a seriesQuery's answers
// turned empty: twice the max age, at least minEmptyGrace.
func (d *Discoverer) emptyGrace() time.Duration {
	if g := 2 * d.maxAge; g > minEmptyGrace {
		return g
	}
	return minEmptyGrace
}

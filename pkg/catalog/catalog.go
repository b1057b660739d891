// Package catalog discovers which metrics exist: per distinct seriesQuery it
// lists the shapes of the series (metric name and label names), applies the
// rules (filters, naming, label-to-resource association) and publishes an
// immutable Snapshot that replaces the previous one atomically. It
// remembers, per rule, how many shapes it kept and dropped and why, for
// `promgate explain`.
//
// Shapes come from one of two methods (Method, per backend). The series
// method streams /api/v1/series and keeps each series' name and label
// names: a relist costs O(series). The index method asks Prometheus' index
// (/api/v1/labels and /api/v1/label/__name__/values with match[]) for the
// metric names and, per name, the relevant labels (those a rule of the
// seriesQuery maps to a resource, and the namespace label) that its series
// carry: a few requests per seriesQuery, one per relevant label, whatever
// the number of series. Both give the same Snapshot (see
// docs/discovery.md for the differences in reports and time range); auto,
// the default, uses the index and falls back to the series for a backend
// that does not answer it.
//
// The metrics it lists are those prometheus-adapter lists for the same rules
// and series: when several rules, or several series of one rule, give the
// same metric, the last one wins (rules in config order, series in the order
// Prometheus returned them), and a custom metric is namespaced unless it is
// about namespaces, nodes or persistentvolumes.
package catalog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/rules"
)

// SeriesLister streams the series matching a selector.
type SeriesLister interface {
	Series(ctx context.Context, match string, start, end time.Time, fn prom.SeriesFunc) error
}

// CustomKey identifies a custom metric: the resource it describes, whether
// the objects are addressed within a namespace, and its name.
type CustomKey struct {
	Resource   schema.GroupResource
	Namespaced bool
	Metric     string
}

// Entry is what serving a metric needs: the rule and the series name.
// For a metric that several rules or series give, it is the last one.
type Entry struct {
	Rule   *rules.Rule
	Series string
}

// Snapshot is one immutable result of discovery.
type Snapshot struct {
	// Time is when the discovery that produced it finished.
	Time time.Time
	// Reports has one entry per rule, custom rules first, in config order.
	Reports []RuleReport
	// CustomRules and ExternalRules are the rules the snapshot applied
	// (after a reload, the new ones).
	CustomRules, ExternalRules []*rules.Rule

	custom       map[CustomKey]Entry
	external     map[string]Entry
	customList   []provider.CustomMetricInfo
	externalList []provider.ExternalMetricInfo
}

// RuleReport tells what a rule did in the last discovery.
type RuleReport struct {
	Path        string
	SeriesQuery string
	// Backend names the backend the rule reads from.
	Backend string
	// Err is the last failure of the rule's seriesQuery; when set, the
	// rule's series are those of LastSuccess.
	Err         string
	LastSuccess time.Time
	// Method is how the shapes were listed: MethodIndex or MethodSeries.
	// Requests is how many requests that took.
	Method   Method
	Requests int
	// Series is the number of distinct shapes seen: (name, label names)
	// per series with MethodSeries; with MethodIndex, one per name, with
	// the relevant labels (that the rules sharing the seriesQuery map to
	// resources, and the namespace label) any of its series carries.
	// Neither counts series; Kept and Dropped count the same shapes.
	Series int
	Kept   int
	// Dropped counts dropped shapes by reason; Examples holds a few series
	// names per reason (with MethodIndex, only relevant labels are shown).
	Dropped  map[string]int
	Examples map[string][]string
	// Metrics are the metric names the rule produced, sorted.
	Metrics []string
	// Overridden lists the metrics of this rule that a later rule serves
	// instead, sorted by Resource then Metric.
	Overridden []Override
}

// Override says that a metric a rule produced is served by a later rule.
type Override struct {
	// Resource is the custom metric's resource; empty for external metrics.
	Resource   schema.GroupResource
	Namespaced bool
	Metric     string
	// By is the Path of the rule that serves it.
	By string
}

// Custom returns the entry serving a custom metric.
func (s *Snapshot) Custom(k CustomKey) (Entry, bool) {
	e, ok := s.custom[k]
	return e, ok
}

// ExternalEntry returns the entry serving an external metric.
func (s *Snapshot) ExternalEntry(metric string) (Entry, bool) {
	e, ok := s.external[metric]
	return e, ok
}

// External returns the entry serving an external metric as a slice of at
// most one.
//
// Deprecated: use ExternalEntry; one metric has one entry.
func (s *Snapshot) External(metric string) []Entry {
	if e, ok := s.external[metric]; ok {
		return []Entry{e}
	}
	return nil
}

// CustomMetrics lists the custom metrics, sorted.
func (s *Snapshot) CustomMetrics() []provider.CustomMetricInfo { return s.customList }

// ExternalMetrics lists the external metrics, sorted.
func (s *Snapshot) ExternalMetrics() []provider.ExternalMetricInfo { return s.externalList }

// MetricsFor returns the custom metric names known for a resource, for
// error messages that suggest what exists.
func (s *Snapshot) MetricsFor(gr schema.GroupResource) []string {
	var out []string
	for _, m := range s.customList {
		// customList is sorted by resource, then metric: a metric known
		// both namespaced and cluster-wide is adjacent to itself.
		if m.GroupResource == gr && (len(out) == 0 || out[len(out)-1] != m.Metric) {
			out = append(out, m.Metric)
		}
	}
	return out
}

// shape is a series reduced to what rules use: its name and label names.
type shape struct {
	name   string
	labels []string
}

type queryResult struct {
	shapes []shape
	err    error
	at     time.Time
	took   time.Duration // how long listing took (self-metrics)
	// method is the Method that ran (index or series); requests how many
	// requests it sent.
	method   Method
	requests int
}

// seriesKey identifies one discovery call: rules with the same seriesQuery
// on the same backend share it.
type seriesKey struct{ backend, query string }

func keyOf(r *rules.Rule) seriesKey { return seriesKey{r.Backend, r.SeriesQuery} }

// Discoverer runs discovery periodically and holds the latest Snapshot.
type Discoverer struct {
	rules       atomic.Pointer[ruleSet]
	lister      SeriesLister            // the default backend's
	listers     map[string]SeriesLister // by backend name, when set
	mapper      apimeta.RESTMapper
	maxAge      time.Duration
	concurrency int
	method      Method            // of the default lister
	methods     map[string]Method // by backend name, when set

	clock    func() time.Time // the end of the time range listed
	idxMu    sync.Mutex
	fellBack map[string]string // backend -> why auto lists its series
	probed   map[string]bool   // backends whose index narrows by match[]

	current   atomic.Pointer[Snapshot]
	refreshMu sync.Mutex // one discovery at a time: a reload's never races the ticker's
	mu        sync.Mutex
	last      map[seriesKey]queryResult // last good result per seriesQuery and backend
	ready     chan struct{}
	once      sync.Once
}

// New returns a Discoverer; maxAge bounds how long ago a series must have
// had samples to count.
func New(custom, external []*rules.Rule, lister SeriesLister, mapper apimeta.RESTMapper, maxAge time.Duration) *Discoverer {
	d := &Discoverer{
		lister: lister, mapper: mapper,
		maxAge: maxAge, concurrency: 4,
		method:   MethodSeries,
		clock:    time.Now,
		fellBack: map[string]string{}, probed: map[string]bool{},
		last:  map[seriesKey]queryResult{},
		ready: make(chan struct{}),
	}
	d.rules.Store(&ruleSet{custom: custom, external: external})
	d.current.Store(&Snapshot{custom: map[CustomKey]Entry{}, external: map[string]Entry{}})
	return d
}

// WithBackends makes rules list their series from the lister of their
// backend (rules.Rule.Backend); the lister given to New serves only when
// listers is nil. Call it before Run.
func (d *Discoverer) WithBackends(listers map[string]SeriesLister) *Discoverer {
	d.listers = listers
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
// not name (default MethodSeries). Call it before Run.
func (d *Discoverer) WithMethod(m Method) *Discoverer {
	d.method = m
	return d
}

// WithMethods sets the discovery method of backends by name. Call it
// before Run.
func (d *Discoverer) WithMethods(m map[string]Method) *Discoverer {
	d.methods = m
	return d
}

func (d *Discoverer) methodFor(backend string) Method {
	if m, ok := d.methods[backend]; ok && m != "" {
		return m
	}
	return d.method
}

// listerFor returns the series lister of a backend.
func (d *Discoverer) listerFor(backend string) (SeriesLister, error) {
	if d.listers == nil {
		return d.lister, nil
	}
	if l, ok := d.listers[backend]; ok {
		return l, nil
	}
	return nil, fmt.Errorf("backend %q is not configured in this server; restart promgate to apply a configuration with new backends", backend)
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
	relevant := d.relevantLabels(rs.custom)
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

	d.mu.Lock()
	for q := range d.last {
		if !queries[q] { // a seriesQuery a reload removed
			delete(d.last, q)
		}
	}
	d.mu.Unlock()
	snap := d.build(rs, results)
	snap.Time = time.Now()
	d.current.Store(snap)
	d.once.Do(func() { close(d.ready) })
	observe(snap, results, time.Since(start))
	klog.V(2).InfoS("discovery finished", "duration", time.Since(start), "customMetrics", len(snap.customList), "externalMetrics", len(snap.externalList))
	return snap
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

// list lists the shapes of k's seriesQuery with the backend's method,
// falling back from the index to the series under MethodAuto.
func (d *Discoverer) list(ctx context.Context, k seriesKey, now time.Time, relevant func(string) bool) queryResult {
	lister, err := d.listerFor(k.backend)
	if err != nil {
		return d.keep(k, now, queryResult{err: err, method: MethodSeries})
	}
	method := d.methodFor(k.backend)
	il, isIndex := lister.(IndexLister)
	if method != MethodSeries && isIndex && d.useIndex(k.backend) {
		res := d.listIndex(ctx, il, k, now, relevant)
		if res.err == nil || method == MethodIndex || !unsupported(res.err) {
			return d.keep(k, now, res)
		}
		d.fallBack(k, res.err)
	} else if method == MethodIndex && !isIndex {
		return d.keep(k, now, queryResult{err: fmt.Errorf("discovery method index: the lister of backend %q does not read the index", k.backend), method: MethodIndex})
	}
	return d.keep(k, now, d.listSeries(ctx, lister, k, now))
}

// useIndex reports whether auto still tries the index of backend.
func (d *Discoverer) useIndex(backend string) bool {
	d.idxMu.Lock()
	defer d.idxMu.Unlock()
	_, fell := d.fellBack[backend]
	return !fell
}

// fallBack makes auto list the series of k's backend from now on, when
// the backend refuses the plan for good (an endpoint or parameter it
// lacks, match[] ignored); a seriesQuery that is no selector falls back
// alone. It logs once per backend or query.
func (d *Discoverer) fallBack(k seriesKey, err error) {
	d.idxMu.Lock()
	defer d.idxMu.Unlock()
	key, scope := k.backend, "backend"
	if errors.Is(err, errQueryUnsupported) {
		key, scope = queryScope(k), "seriesQuery"
	}
	if _, done := d.fellBack[key]; done {
		return
	}
	d.fellBack[key] = err.Error()
	klog.InfoS("discovery: listing series instead of reading the index", "scope", scope, "backend", k.backend, "seriesQuery", k.query, "reason", err.Error())
}

// queryScope is the fellBack key of a seriesQuery alone.
func queryScope(k seriesKey) string { return k.backend + "\x00" + k.query }

// listIndex runs the index plan of k.
func (d *Discoverer) listIndex(ctx context.Context, il IndexLister, k seriesKey, now time.Time, relevant func(string) bool) queryResult {
	d.idxMu.Lock()
	_, skip := d.fellBack[queryScope(k)]
	probed := d.probed[k.backend]
	d.idxMu.Unlock()
	if skip {
		return queryResult{err: fmt.Errorf("%w: falling back for this seriesQuery", errQueryUnsupported), method: MethodIndex}
	}
	start := now.Add(-d.maxAge)
	requests := 0
	if !probed {
		requests++
		if err := probe(ctx, il, start, now); err != nil {
			return queryResult{err: err, method: MethodIndex, requests: requests}
		}
		d.idxMu.Lock()
		d.probed[k.backend] = true
		d.idxMu.Unlock()
	}
	intern := map[string]string{}
	in := func(s string) string {
		if v, ok := intern[s]; ok {
			return v
		}
		s = strings.Clone(s)
		intern[s] = s
		return s
	}
	var shapes []shape
	n, err := indexShapes(ctx, il, k.query, start, now, relevant, func(name string, lbls []string) {
		sh := shape{name: in(name), labels: make([]string, len(lbls))}
		for i, l := range lbls {
			sh.labels[i] = in(l)
		}
		shapes = append(shapes, sh)
	})
	return queryResult{shapes: shapes, err: err, method: MethodIndex, requests: requests + n}
}

// listSeries streams the series of k and returns their distinct shapes,
// ordered by where each last occurred in Prometheus' answer: a rule applied
// to the shapes in that order picks, for each metric, the series
// prometheus-adapter picks (the last).
func (d *Discoverer) listSeries(ctx context.Context, lister SeriesLister, k seriesKey, now time.Time) queryResult {
	q := k.query
	seen := map[string]int{} // shape key -> index in shapes
	var shapes []shape
	var last []int // per shape, the position of its last series
	intern := map[string]string{}
	in := func(s string) string {
		if v, ok := intern[s]; ok {
			return v
		}
		s = strings.Clone(s)
		intern[s] = s
		return s
	}
	var key strings.Builder
	names := make([]string, 0, 16)
	pos := 0
	err := lister.Series(ctx, q, now.Add(-d.maxAge), now, func(name string, lbls []prom.Label) {
		names = names[:0]
		for _, l := range lbls {
			names = append(names, l.Name)
		}
		sort.Strings(names)
		key.Reset()
		key.WriteString(name)
		for _, n := range names {
			key.WriteByte(0)
			key.WriteString(n)
		}
		pos++
		if i, ok := seen[key.String()]; ok {
			last[i] = pos
			return
		}
		seen[key.String()] = len(shapes)
		sh := shape{name: in(name), labels: make([]string, len(names))}
		for i, n := range names {
			sh.labels[i] = in(n)
		}
		shapes = append(shapes, sh)
		last = append(last, pos)
	})
	return queryResult{shapes: byLastSeen(shapes, last), err: err, method: MethodSeries, requests: 1}
}

// keep records res as k's last good result, or, when it failed, returns
// the last good one with its error.
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

const maxExamples = 3

// byLastSeen orders shapes by last, the position of each one's last series.
func byLastSeen(shapes []shape, last []int) []shape {
	idx := make([]int, len(shapes))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return last[idx[a]] < last[idx[b]] })
	out := make([]shape, len(shapes))
	for i, j := range idx {
		out[i] = shapes[j]
	}
	return out
}

func (d *Discoverer) build(rs *ruleSet, results map[seriesKey]queryResult) *Snapshot {
	snap := &Snapshot{custom: map[CustomKey]Entry{}, external: map[string]Entry{}, CustomRules: rs.custom, ExternalRules: rs.external}
	customKeys := make([][]CustomKey, len(rs.custom)) // per rule, what it produced
	for i, r := range rs.custom {
		rep, entries := d.customRule(r, results[keyOf(r)])
		snap.Reports = append(snap.Reports, rep)
		for _, ke := range entries {
			snap.custom[ke.key] = ke.entry // the last rule wins, as in prometheus-adapter
			customKeys[i] = append(customKeys[i], ke.key)
		}
	}
	externalNames := make([][]string, len(rs.external))
	for i, r := range rs.external {
		rep, entries := d.externalRule(r, results[keyOf(r)])
		snap.Reports = append(snap.Reports, rep)
		for _, me := range entries {
			snap.external[me.metric] = me.entry // the last series of the last rule wins
			externalNames[i] = append(externalNames[i], me.metric)
		}
	}
	for i, r := range rs.custom {
		rep := &snap.Reports[i]
		for _, k := range customKeys[i] {
			if e := snap.custom[k]; e.Rule != r {
				rep.Overridden = append(rep.Overridden, Override{Resource: k.Resource, Namespaced: k.Namespaced, Metric: k.Metric, By: e.Rule.Path})
			}
		}
	}
	for i, r := range rs.external {
		rep := &snap.Reports[len(rs.custom)+i]
		for _, m := range externalNames[i] {
			if e := snap.external[m]; e.Rule != r {
				rep.Overridden = append(rep.Overridden, Override{Metric: m, By: e.Rule.Path})
			}
		}
	}
	for k := range snap.custom {
		snap.customList = append(snap.customList, provider.CustomMetricInfo{GroupResource: k.Resource, Namespaced: k.Namespaced, Metric: k.Metric})
	}
	for m := range snap.external {
		snap.externalList = append(snap.externalList, provider.ExternalMetricInfo{Metric: m})
	}
	sort.Slice(snap.customList, func(i, j int) bool {
		a, b := snap.customList[i], snap.customList[j]
		if a.GroupResource.String() != b.GroupResource.String() {
			return a.GroupResource.String() < b.GroupResource.String()
		}
		if a.Metric != b.Metric {
			return a.Metric < b.Metric
		}
		return !a.Namespaced && b.Namespaced
	})
	sort.Slice(snap.externalList, func(i, j int) bool { return snap.externalList[i].Metric < snap.externalList[j].Metric })
	for i := range snap.Reports {
		sortOverrides(&snap.Reports[i])
	}
	return snap
}

// sortOverrides sorts and deduplicates rep.Overridden (a rule gives a key
// once per series that has it).
func sortOverrides(rep *RuleReport) {
	o := rep.Overridden
	sort.Slice(o, func(i, j int) bool {
		if a, b := o[i].Resource.String(), o[j].Resource.String(); a != b {
			return a < b
		}
		if o[i].Metric != o[j].Metric {
			return o[i].Metric < o[j].Metric
		}
		return !o[i].Namespaced && o[j].Namespaced
	})
	rep.Overridden = slices.Compact(o)
}

// metricEntry is an external metric a series gives.
type metricEntry struct {
	metric string
	entry  Entry
}

// externalRule names the rule's series; every named series gives its
// metric, whatever its labels, as in prometheus-adapter.
func (d *Discoverer) externalRule(r *rules.Rule, res queryResult) (RuleReport, []metricEntry) {
	rep := newReport(r, res)
	var out []metricEntry
	names := map[string]bool{}
	for _, sh := range res.shapes {
		metric, ok := d.nameFor(r, sh, &rep)
		if !ok {
			continue
		}
		rep.Kept++
		out = append(out, metricEntry{metric: metric, entry: Entry{Rule: r, Series: sh.name}})
		if !names[metric] {
			names[metric] = true
			rep.Metrics = append(rep.Metrics, metric)
		}
	}
	sort.Strings(rep.Metrics)
	return rep, out
}

func newReport(r *rules.Rule, res queryResult) RuleReport {
	rep := RuleReport{Path: r.Path, SeriesQuery: r.SeriesQuery, Backend: r.Backend, LastSuccess: res.at, Series: len(res.shapes),
		Method: res.method, Requests: res.requests,
		Dropped: map[string]int{}, Examples: map[string][]string{}}
	if res.err != nil {
		rep.Err = res.err.Error()
	}
	return rep
}

func (rep *RuleReport) drop(reason, series string) {
	rep.Dropped[reason]++
	if len(rep.Examples[reason]) < maxExamples {
		rep.Examples[reason] = append(rep.Examples[reason], series)
	}
}

func (d *Discoverer) nameFor(r *rules.Rule, sh shape, rep *RuleReport) (string, bool) {
	if ok, why := r.Keep(sh.name); !ok {
		rep.drop("filtered by "+why, sh.name)
		return "", false
	}
	metric, err := r.MetricName(sh.name)
	if err != nil {
		rep.drop("naming: "+err.Error(), sh.name)
		return "", false
	}
	return metric, true
}

// keyEntry is a custom metric a series gives.
type keyEntry struct {
	key   CustomKey
	entry Entry
}

// customRule names the rule's series and associates them with resources, in
// series order: a key given by several series is the last one's.
func (d *Discoverer) customRule(r *rules.Rule, res queryResult) (RuleReport, []keyEntry) {
	rep := newReport(r, res)
	var out []keyEntry
	labelRes := map[string]*schema.GroupResource{}
	metrics := map[string]bool{}
	for _, sh := range res.shapes {
		metric, ok := d.nameFor(r, sh, &rep)
		if !ok {
			continue
		}
		n := len(out)
		for _, l := range sh.labels {
			gr, cached := labelRes[l]
			if !cached {
				if g, ok := r.Resources.ResourceForLabel(l, d.mapper); ok {
					gr = &g
				}
				labelRes[l] = gr
			}
			if gr != nil {
				k := CustomKey{Resource: *gr, Metric: metric, Namespaced: Namespaced(*gr)}
				out = append(out, keyEntry{key: k, entry: Entry{Rule: r, Series: sh.name}})
			}
		}
		if len(out) == n {
			rep.drop("no label maps to a Kubernetes resource", fmt.Sprintf("%s{%s}", sh.name, strings.Join(sh.labels, ",")))
			continue
		}
		rep.Kept++
		metrics[metric] = true
	}
	for m := range metrics {
		rep.Metrics = append(rep.Metrics, m)
	}
	sort.Strings(rep.Metrics)
	return rep, out
}

// rootResources are the resources whose metrics prometheus-adapter lists as
// not namespaced.
var rootResources = map[schema.GroupResource]bool{
	rules.NamespacesResource:        true,
	{Resource: "nodes"}:             true,
	{Resource: "persistentvolumes"}: true,
}

// Namespaced reports whether the catalog lists metrics about gr as
// namespaced. As in prometheus-adapter, they all are except those about
// namespaces, nodes and persistentvolumes, whatever the series' labels and
// the resource's scope: a pod metric whose series have no namespace label is
// namespaced, and a metric about another cluster-scoped resource (a
// StorageClass, a cluster-scoped custom resource) is listed as namespaced
// too.
func Namespaced(gr schema.GroupResource) bool { return !rootResources[gr] }

// Package catalog discovers which metrics exist: per distinct seriesQuery it
// streams /api/v1/series, keeps only each series' name and label names,
// applies the rules (filters, naming, label-to-resource association) and
// publishes an immutable Snapshot that replaces the previous one atomically.
// It remembers, per rule, how many series it kept and dropped and why, for
// `promgate explain`.
package catalog

import (
	"context"
	"fmt"
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

	custom       map[CustomKey]Entry
	external     map[string][]Entry
	customList   []provider.CustomMetricInfo
	externalList []provider.ExternalMetricInfo
}

// RuleReport tells what a rule did in the last discovery.
type RuleReport struct {
	Path        string
	SeriesQuery string
	// Err is the last failure of the rule's seriesQuery; when set, the
	// rule's series are those of LastSuccess.
	Err         string
	LastSuccess time.Time
	// Series is the number of distinct (name, label names) shapes seen.
	Series int
	Kept   int
	// Dropped counts dropped shapes by reason; Examples holds a few series
	// names per reason.
	Dropped  map[string]int
	Examples map[string][]string
	// Metrics are the metric names the rule produced, sorted.
	Metrics []string
}

// Custom returns the entry serving a custom metric.
func (s *Snapshot) Custom(k CustomKey) (Entry, bool) {
	e, ok := s.custom[k]
	return e, ok
}

// External returns the entries serving an external metric; several
// external rules may serve one name (their results are concatenated).
func (s *Snapshot) External(metric string) []Entry { return s.external[metric] }

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
}

// Discoverer runs discovery periodically and holds the latest Snapshot.
type Discoverer struct {
	custom, external []*rules.Rule
	lister           SeriesLister
	mapper           apimeta.RESTMapper
	maxAge           time.Duration
	concurrency      int

	current atomic.Pointer[Snapshot]
	mu      sync.Mutex
	last    map[string]queryResult // last good result per seriesQuery
	ready   chan struct{}
	once    sync.Once
}

// New returns a Discoverer; maxAge bounds how long ago a series must have
// had samples to count.
func New(custom, external []*rules.Rule, lister SeriesLister, mapper apimeta.RESTMapper, maxAge time.Duration) *Discoverer {
	d := &Discoverer{
		custom: custom, external: external, lister: lister, mapper: mapper,
		maxAge: maxAge, concurrency: 4,
		last:  map[string]queryResult{},
		ready: make(chan struct{}),
	}
	d.current.Store(&Snapshot{custom: map[CustomKey]Entry{}, external: map[string][]Entry{}})
	return d
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
	start := time.Now()
	queries := map[string]bool{}
	for _, r := range append(append([]*rules.Rule(nil), d.custom...), d.external...) {
		queries[r.SeriesQuery] = true
	}
	results := make(map[string]queryResult, len(queries))
	var rmu sync.Mutex
	sem := make(chan struct{}, d.concurrency)
	var wg sync.WaitGroup
	for q := range queries {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			res := d.list(ctx, q, start)
			rmu.Lock()
			results[q] = res
			rmu.Unlock()
		}()
	}
	wg.Wait()

	snap := d.build(results)
	snap.Time = time.Now()
	d.current.Store(snap)
	d.once.Do(func() { close(d.ready) })
	klog.V(2).InfoS("discovery finished", "duration", time.Since(start), "customMetrics", len(snap.customList), "externalMetrics", len(snap.externalList))
	return snap
}

func (d *Discoverer) list(ctx context.Context, q string, now time.Time) queryResult {
	seen := map[string]struct{}{}
	var shapes []shape
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
	err := d.lister.Series(ctx, q, now.Add(-d.maxAge), now, func(name string, lbls []prom.Label) {
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
		if _, ok := seen[key.String()]; ok {
			return
		}
		seen[key.String()] = struct{}{}
		sh := shape{name: in(name), labels: make([]string, len(names))}
		for i, n := range names {
			sh.labels[i] = in(n)
		}
		shapes = append(shapes, sh)
	})
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		klog.ErrorS(err, "series discovery failed; keeping the last good result", "seriesQuery", q)
		prev := d.last[q]
		return queryResult{shapes: prev.shapes, at: prev.at, err: err}
	}
	res := queryResult{shapes: shapes, at: now}
	d.last[q] = res
	return res
}

const maxExamples = 3

func (d *Discoverer) build(results map[string]queryResult) *Snapshot {
	snap := &Snapshot{custom: map[CustomKey]Entry{}, external: map[string][]Entry{}}
	scopes := map[schema.GroupResource]bool{}
	for _, r := range d.custom {
		rep, entries := d.customRule(r, results[r.SeriesQuery], scopes)
		for k, e := range entries {
			if _, dup := snap.custom[k]; dup {
				continue // an earlier rule already serves it
			}
			snap.custom[k] = e
			snap.customList = append(snap.customList, provider.CustomMetricInfo{GroupResource: k.Resource, Namespaced: k.Namespaced, Metric: k.Metric})
		}
		snap.Reports = append(snap.Reports, rep)
	}
	for _, r := range d.external {
		res := results[r.SeriesQuery]
		rep := newReport(r, res)
		names := map[string]bool{}
		for _, sh := range res.shapes {
			metric, ok := d.nameFor(r, sh, &rep)
			if !ok {
				continue
			}
			rep.Kept++
			if names[metric] {
				continue
			}
			names[metric] = true
			if len(snap.external[metric]) == 0 {
				snap.externalList = append(snap.externalList, provider.ExternalMetricInfo{Metric: metric})
			}
			snap.external[metric] = append(snap.external[metric], Entry{Rule: r, Series: sh.name})
			rep.Metrics = append(rep.Metrics, metric)
		}
		sort.Strings(rep.Metrics)
		snap.Reports = append(snap.Reports, rep)
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
	return snap
}

func newReport(r *rules.Rule, res queryResult) RuleReport {
	rep := RuleReport{Path: r.Path, SeriesQuery: r.SeriesQuery, LastSuccess: res.at, Series: len(res.shapes),
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

func (d *Discoverer) customRule(r *rules.Rule, res queryResult, scopes map[schema.GroupResource]bool) (RuleReport, map[CustomKey]Entry) {
	rep := newReport(r, res)
	entries := map[CustomKey]Entry{}
	labelRes := map[string]*schema.GroupResource{}
	metrics := map[string]bool{}
	for _, sh := range res.shapes {
		metric, ok := d.nameFor(r, sh, &rep)
		if !ok {
			continue
		}
		var grs []schema.GroupResource
		hasNamespace := false
		for _, l := range sh.labels {
			gr, cached := labelRes[l]
			if !cached {
				if g, ok := r.Resources.ResourceForLabel(l, d.mapper); ok {
					gr = &g
				}
				labelRes[l] = gr
			}
			if gr == nil {
				continue
			}
			grs = append(grs, *gr)
			if *gr == rules.NamespacesResource {
				hasNamespace = true
			}
		}
		if len(grs) == 0 {
			rep.drop("no label maps to a Kubernetes resource", fmt.Sprintf("%s{%s}", sh.name, strings.Join(sh.labels, ",")))
			continue
		}
		rep.Kept++
		for _, gr := range grs {
			k := CustomKey{Resource: gr, Metric: metric, Namespaced: hasNamespace && d.namespaced(gr, scopes)}
			if _, dup := entries[k]; !dup {
				entries[k] = Entry{Rule: r, Series: sh.name}
			}
		}
		metrics[metric] = true
	}
	for m := range metrics {
		rep.Metrics = append(rep.Metrics, m)
	}
	sort.Strings(rep.Metrics)
	return rep, entries
}

// namespaced reports whether gr's objects live in namespaces.
func (d *Discoverer) namespaced(gr schema.GroupResource, cache map[schema.GroupResource]bool) bool {
	if v, ok := cache[gr]; ok {
		return v
	}
	v := IsNamespaced(d.mapper, gr)
	cache[gr] = v
	return v
}

// IsNamespaced reports whether objects of gr live in namespaces, according
// to mapper. Unknown resources count as namespaced unless they are
// namespaces themselves.
func IsNamespaced(mapper apimeta.RESTMapper, gr schema.GroupResource) bool {
	if gr == rules.NamespacesResource {
		return false
	}
	if mapper == nil {
		return true
	}
	gvk, err := mapper.KindFor(gr.WithVersion(""))
	if err != nil {
		return true
	}
	m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return true
	}
	return m.Scope.Name() == apimeta.RESTScopeNameNamespace
}

package catalog

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/klog/v2"

	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/rules"
)

// SeriesLister streams the series matching a selector.
type SeriesLister interface {
	Series(ctx context.Context, match string, start, end time.Time, fn prom.SeriesFunc) error
}

// shape is a series reduced to what rules use: its name and label names.
type shape struct {
	name   string
	labels []string
}

// queryResult is what listing one seriesQuery gave: its shapes, in the
// order the rules apply them, or its failure with the last good shapes.
type queryResult struct {
	shapes []shape
	err    error
	at     time.Time     // when the shapes were listed; zero if never
	took   time.Duration // how long listing took (self-metrics)
	// method is the Method that ran (index or series); requests how many
	// requests it sent.
	method   config.Method
	requests int
}

// seriesKey identifies one discovery call: rules with the same seriesQuery
// on the same backend share it.
type seriesKey struct{ backend, query string }

// keyOf is the discovery call of r.
func keyOf(r *rules.Rule) seriesKey { return seriesKey{r.Backend, r.SeriesQuery} }

// methodFor returns the discovery method of a backend: its own
// (WithMethods), or else the default (WithMethod).
func (d *Discoverer) methodFor(backend string) config.Method {
	if m, ok := d.methods[backend]; ok && m != "" {
		return m
	}
	return d.method
}

// Listers gives the series lister of a backend by name (a rule's
// Backend).
type Listers interface {
	Lister(backend string) (SeriesLister, bool)
}

// Single is Listers with one lister that answers for every backend: a
// server with no other backend than the default, and tests.
func Single(l SeriesLister) Listers { return single{l} }

type single struct{ l SeriesLister }

func (s single) Lister(string) (SeriesLister, bool) { return s.l, true }

// listerFor returns the series lister of a backend.
func (d *Discoverer) listerFor(backend string) (SeriesLister, error) {
	if l, ok := d.listers.Lister(backend); ok {
		return l, nil
	}
	return nil, fmt.Errorf("backend %q is not configured in this server; restart promgate to apply a configuration with new backends", backend)
}

// list lists the shapes of k's seriesQuery with the backend's method,
// falling back from the index to the series under auto.
func (d *Discoverer) list(ctx context.Context, k seriesKey, now time.Time, relevant func(string) bool) queryResult {
	lister, err := d.listerFor(k.backend)
	if err != nil {
		return d.keep(k, now, queryResult{err: err, method: config.MethodSeries})
	}
	method := d.methodFor(k.backend)
	il, isIndex := lister.(IndexLister)
	if method != config.MethodSeries && isIndex && d.useIndex(k.backend) {
		res := d.listIndex(ctx, il, k, now, relevant)
		if res.err == nil || method == config.MethodIndex || !unsupported(res.err) {
			return d.keep(k, now, res)
		}
		d.fallBack(k, res.err)
	} else if method == config.MethodIndex && !isIndex {
		return d.keep(k, now, queryResult{err: fmt.Errorf("discovery method index: the lister of backend %q does not read the index", k.backend), method: config.MethodIndex})
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
		return queryResult{err: fmt.Errorf("%w: falling back for this seriesQuery", errQueryUnsupported), method: config.MethodIndex}
	}
	start := now.Add(-d.maxAge)
	requests := 0
	if !probed {
		requests++
		if err := probe(ctx, il, start, now); err != nil {
			return queryResult{err: err, method: config.MethodIndex, requests: requests}
		}
		d.idxMu.Lock()
		d.probed[k.backend] = true
		d.idxMu.Unlock()
	}
	in := interner{}
	var shapes []shape
	n, err := indexShapes(ctx, il, k.query, start, now, relevant, func(name string, lbls []string) {
		sh := shape{name: in.get(name), labels: make([]string, len(lbls))}
		for i, l := range lbls {
			sh.labels[i] = in.get(l)
		}
		shapes = append(shapes, sh)
	})
	return queryResult{shapes: shapes, err: err, method: config.MethodIndex, requests: requests + n}
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
	in := interner{}
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
		sh := shape{name: in.get(name), labels: make([]string, len(names))}
		for i, n := range names {
			sh.labels[i] = in.get(n)
		}
		shapes = append(shapes, sh)
		last = append(last, pos)
	})
	return queryResult{shapes: byLastSeen(shapes, last), err: err, method: config.MethodSeries, requests: 1}
}

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

// interner shares one copy of each string a listing keeps: the names and
// label names that many series repeat, copied out of the answer's buffer.
type interner map[string]string

// get returns the kept copy of s, keeping one first if there is none.
func (in interner) get(s string) string {
	if v, ok := in[s]; ok {
		return v
	}
	s = strings.Clone(s)
	in[s] = s
	return s
}

package catalog

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"golang.org/x/sync/errgroup"

	"github.com/promgate/promgate/pkg/prom"
)

// Method is how discovery lists the shapes of a seriesQuery.
type Method string

// The discovery methods.
const (
	// MethodAuto uses the index when the backend answers it, and falls
	// back to the series for good (logged once) when it does not.
	MethodAuto Method = "auto"
	// MethodIndex asks Prometheus' index: /api/v1/labels and
	// /api/v1/label/__name__/values, a few requests per seriesQuery
	// whatever the number of series. A backend that does not answer them
	// is a discovery error.
	MethodIndex Method = "index"
	// MethodSeries streams every series of /api/v1/series, as
	// prometheus-adapter does: O(series) per relist.
	MethodSeries Method = "series"
)

// ParseMethod returns the Method called s ("" is MethodAuto).
func ParseMethod(s string) (Method, error) {
	switch m := Method(s); m {
	case "":
		return MethodAuto, nil
	case MethodAuto, MethodIndex, MethodSeries:
		return m, nil
	}
	return "", fmt.Errorf("discovery method %q: want auto, index or series", s)
}

// IndexLister reads Prometheus' index: the label names, and the values of
// one label, of the series matching a selector that had samples between
// start and end. *prom.LimitedClient implements it.
type IndexLister interface {
	LabelNames(ctx context.Context, match string, start, end time.Time) ([]string, error)
	LabelValues(ctx context.Context, label, match string, start, end time.Time) ([]string, error)
}

// maxIndexRequests bounds the requests of one seriesQuery's index plan:
// past it, the series' resource labels vary so much that listing them is
// cheaper, and auto lists them (index fails).
const maxIndexRequests = 512

// probeMetric is a metric name no series has: a backend whose names
// answer for it is not empty ignores match[].
const probeMetric = "promgate_discovery_index_probe_no_such_metric"

// errUnsupported marks a failure that says the backend does not answer
// the index as the plan needs (missing endpoint, refused parameter,
// match[] ignored), as opposed to a failing backend.
var errUnsupported = errors.New("the backend does not answer the index endpoints with match[]")

// errQueryUnsupported marks a seriesQuery the index plan cannot serve (not
// a selector, or too many requests) on a backend that may serve others.
var errQueryUnsupported = fmt.Errorf("%w for this seriesQuery", errUnsupported)

// unsupported reports whether err says the backend lacks the index
// endpoints or refuses their parameters: a 404, 405 or 501, or a 400
// (Prometheus' bad_data: an old version refusing match[] or start),
// rather than an outage, a timeout or a 5xx.
func unsupported(err error) bool {
	if errors.Is(err, errUnsupported) {
		return true
	}
	ke, ok := errors.AsType[*prom.KindError](err)
	if !ok || ke.Kind != prom.BadStatus {
		return false
	}
	switch ke.Code {
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented, http.StatusBadRequest:
		return true
	}
	return false
}

var selectorParser = parser.NewParser(parser.Options{})

// indexPlan recovers a seriesQuery's shapes projected on its relevant
// labels from the index: one /api/v1/labels call for the label names its
// series carry, then, over the relevant ones, a partition of the series
// by which of them they carry (matchers l!="" and l=""), asking
// /api/v1/label/__name__/values for the names in each part and pruning
// empty parts. Where every series of the selector carries the same
// relevant labels (the usual case), that is two requests plus one per
// relevant label that the seriesQuery does not already require.
type indexPlan struct {
	il         IndexLister
	start, end time.Time
	requests   atomic.Int64
	emit       func(name string, present []string)
}

// render writes matchers as one selector. The base matchers come first:
// the seriesQuery's own, of which Prometheus requires one not to match
// the empty string, are kept as they are.
func render(ms []*labels.Matcher) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(m.String())
	}
	b.WriteByte('}')
	return b.String()
}

func with(ms []*labels.Matcher, name string, t labels.MatchType) []*labels.Matcher {
	out := make([]*labels.Matcher, len(ms), len(ms)+1)
	copy(out, ms)
	return append(out, labels.MustNewMatcher(t, name, ""))
}

// count returns the requests sent so far.
func (p *indexPlan) count() int { return int(p.requests.Load()) }

// sent counts one more request, and fails past maxIndexRequests.
func (p *indexPlan) sent() error {
	if p.requests.Add(1) > maxIndexRequests {
		return fmt.Errorf("%w: the plan needs more than %d index requests (resource labels vary too much between series)", errQueryUnsupported, maxIndexRequests)
	}
	return nil
}

func (p *indexPlan) names(ctx context.Context, ms []*labels.Matcher) ([]string, error) {
	if err := p.sent(); err != nil {
		return nil, err
	}
	return p.il.LabelValues(ctx, labels.MetricName, render(ms), p.start, p.end)
}

func (p *indexPlan) labelNames(ctx context.Context, ms []*labels.Matcher) ([]string, error) {
	if err := p.sent(); err != nil {
		return nil, err
	}
	return p.il.LabelNames(ctx, render(ms), p.start, p.end)
}

// decided reports whether ms alone decide whether their series carry
// label l: carried when a matcher on l refuses the empty string, absent
// when one accepts only it.
func decided(ms []*labels.Matcher, l string) (carried, known bool) {
	for _, m := range ms {
		if m.Name != l {
			continue
		}
		if !m.Matches("") {
			return true, true
		}
		if m.Type == labels.MatchEqual && m.Value == "" {
			return false, true
		}
	}
	return false, false
}

// explore partitions the series of ms, whose names are names, on the
// labels rem; present are the relevant labels all of them carry. When
// fresh, labels(ms) has not been asked, so rem may hold labels none of
// them carries.
func (p *indexPlan) explore(ctx context.Context, ms []*labels.Matcher, names, rem, present []string, fresh bool) error {
	if len(names) == 0 {
		return nil
	}
	if fresh && len(rem) > 0 {
		ls, err := p.labelNames(ctx, ms)
		if err != nil {
			return err
		}
		rem = intersect(rem, ls)
	}
	// Which of rem do all the series carry? The questions are independent:
	// asked at once, the plan takes the time of one of them.
	var undecided []string
	for _, l := range rem {
		if carried, known := decided(ms, l); !known {
			undecided = append(undecided, l)
		} else if carried {
			present = append(slices.Clip(present), l)
		}
	}
	withouts := make([][]string, len(undecided))
	g, gctx := errgroup.WithContext(ctx)
	for i, l := range undecided {
		g.Go(func() (err error) {
			withouts[i], err = p.names(gctx, with(ms, l, labels.MatchEqual))
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	var mixed []string // some series carry them, others not
	var mixedWithout [][]string
	for i, l := range undecided {
		if len(withouts[i]) == 0 { // all carry l: the same series, labels unchanged
			present = append(slices.Clip(present), l)
		} else {
			mixed, mixedWithout = append(mixed, l), append(mixedWithout, withouts[i])
		}
	}
	if len(mixed) > 0 {
		// Split on the first; the other mixed labels are asked again in
		// each part.
		l, rest := mixed[0], mixed[1:]
		carrying, err := p.names(ctx, with(ms, l, labels.MatchNotEqual))
		if err != nil {
			return err
		}
		if err := p.explore(ctx, with(ms, l, labels.MatchNotEqual), carrying, rest, append(slices.Clip(present), l), true); err != nil {
			return err
		}
		return p.explore(ctx, with(ms, l, labels.MatchEqual), mixedWithout[0], rest, present, true)
	}
	for _, n := range names {
		p.emit(n, present)
	}
	return nil
}

// intersect returns the elements of a (sorted) that are in b.
func intersect(a, b []string) []string {
	in := make(map[string]bool, len(b))
	for _, s := range b {
		in[s] = true
	}
	var out []string
	for _, s := range a {
		if in[s] {
			out = append(out, s)
		}
	}
	return out
}

// indexShapes lists the shapes of query from the index: per metric name,
// each distinct set of the labels relevant says matter that its series
// carry (nil relevant: none matters, the names are enough). Shapes come sorted by name, the order of Prometheus' series
// answer (series sorted by their labels, __name__ first), so that the
// last shape of a name is where its last series would be. It returns the
// number of requests it sent.
func indexShapes(ctx context.Context, il IndexLister, query string, start, end time.Time, relevant func(string) bool, emit func(name string, labels []string)) (int, error) {
	base, err := selectorParser.ParseMetricSelector(query)
	if err != nil {
		return 0, fmt.Errorf("%w: it is not a PromQL selector: %v", errQueryUnsupported, err)
	}
	type found struct {
		name   string
		labels []string
	}
	var out []found
	p := &indexPlan{il: il, start: start, end: end, emit: func(name string, present []string) {
		out = append(out, found{name, slices.Clone(present)})
	}}
	// The names, and the label names custom rules need, at once.
	var names, ls []string
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		names, err = p.names(gctx, base)
		return err
	})
	if relevant != nil { // external rules: names only
		g.Go(func() (err error) {
			ls, err = p.labelNames(gctx, base)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return p.count(), err
	}
	// A backend that ignores match[] answers names the selector excludes.
	for _, n := range names {
		for _, m := range base {
			if m.Name == labels.MetricName && !m.Matches(n) {
				return p.count(), fmt.Errorf("%w: it answered metric %q for %s", errUnsupported, n, query)
			}
		}
	}
	var rel []string
	for _, l := range ls {
		if l != labels.MetricName && relevant(l) {
			rel = append(rel, l)
		}
	}
	sort.Strings(rel)
	if err := p.explore(ctx, base, names, rel, nil, false); err != nil {
		return p.count(), err
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].name < out[j].name })
	for _, f := range out {
		emit(f.name, f.labels)
	}
	return p.count(), nil
}

// probe asks for the names of a metric no series has: a backend that
// answers some ignores match[].
func probe(ctx context.Context, il IndexLister, start, end time.Time) error {
	names, err := il.LabelValues(ctx, labels.MetricName, `{__name__="`+probeMetric+`"}`, start, end)
	if err != nil {
		return err
	}
	if len(names) > 0 {
		return fmt.Errorf("%w: it answered %d metric names for a selector matching none", errUnsupported, len(names))
	}
	return nil
}

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

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"golang.org/x/sync/errgroup"

	"github.com/promgate/promgate/pkg/prom"
)

// IndexLister reads Prometheus' index: the label names, and the values of
// one label, of the series matching a selector that had samples between
// start and end. *prom.LimitedClient implements it.
type IndexLister interface {
	LabelNames(ctx context.Context, match string, start, end time.Time) ([]string, error)
	LabelValues(ctx context.Context, label, match string, start, end time.Time) ([]string, error)
}

// maxIndexRequests bounds the requests of one seriesQuery's index plan:
// past it, so many labels map to resources that listing the series is
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
// labels from the index. What the rules make of a metric name's shapes
// depends only on the union of the relevant labels its series carry (a
// custom rule gives one metric per label that maps to a resource, and
// every shape of a name gives the same entry), so the plan asks, per
// relevant label l that the seriesQuery does not already require, which
// names have series carrying it: the names of the seriesQuery with l!=""
// added (/api/v1/label/__name__/values, an index lookup). The candidate
// labels are the backend's label names (/api/v1/labels without match[],
// its label index) that a rule maps; past maxCandidates, those the
// seriesQuery's series carry (/api/v1/labels with match[], which reads
// each series' labels).
type indexPlan struct {
	il         IndexLister
	start, end time.Time
	requests   atomic.Int64
}

// maxCandidates is the most candidate labels asked about without first
// asking which of them the seriesQuery's series carry.
const maxCandidates = 8

// planConcurrency bounds the plan's requests in flight.
const planConcurrency = 4

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

// with returns a copy of ms with a matcher of type t on name and "".
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
		return fmt.Errorf("%w: the plan needs more than %d index requests (too many labels map to resources)", errQueryUnsupported, maxIndexRequests)
	}
	return nil
}

// names asks the metric names of the series of ms.
func (p *indexPlan) names(ctx context.Context, ms []*labels.Matcher) ([]string, error) {
	if err := p.sent(); err != nil {
		return nil, err
	}
	return p.il.LabelValues(ctx, model.MetricNameLabel, render(ms), p.start, p.end)
}

// labelNames asks the label names of the series of ms; of all series
// when ms is empty.
func (p *indexPlan) labelNames(ctx context.Context, ms []*labels.Matcher) ([]string, error) {
	if err := p.sent(); err != nil {
		return nil, err
	}
	match := ""
	if len(ms) > 0 {
		match = render(ms)
	}
	return p.il.LabelNames(ctx, match, p.start, p.end)
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
// the labels relevant says matter that some of its series carry (nil
// relevant: none matters, the names are enough). Shapes come sorted by
// name, the order of Prometheus' series answer (series sorted by their
// labels, __name__ first), so that the last shape of a name is where its
// last series would be. It returns the number of requests it sent.
func indexShapes(ctx context.Context, il IndexLister, query string, start, end time.Time, relevant func(string) bool, emit func(name string, labels []string)) (int, error) {
	base, err := selectorParser.ParseMetricSelector(query)
	if err != nil {
		return 0, fmt.Errorf("%w: it is not a PromQL selector: %v", errQueryUnsupported, err)
	}
	p := &indexPlan{il: il, start: start, end: end}
	names, all, err := p.namesAndLabels(ctx, base, relevant != nil)
	if err != nil {
		return p.count(), err
	}
	if err := matchHonoured(names, base, query); err != nil {
		return p.count(), err
	}
	var carried, undecided []string // carried: by every series of query
	if len(names) > 0 {
		carried, undecided = candidates(base, all, relevant)
	}
	if len(undecided) > maxCandidates {
		ls, err := p.labelNames(ctx, base)
		if err != nil {
			return p.count(), err
		}
		undecided = intersect(undecided, ls)
	}
	byName, err := p.carriers(ctx, base, undecided)
	if err != nil {
		return p.count(), err
	}
	sort.Strings(names)
	for _, n := range names {
		lbls := append(slices.Clone(carried), byName[n]...)
		sort.Strings(lbls)
		emit(n, lbls)
	}
	return p.count(), nil
}

// namesAndLabels asks, at once, the metric names of base and, when
// withLabels is set, the backend's label names (external rules need names
// only).
func (p *indexPlan) namesAndLabels(ctx context.Context, base []*labels.Matcher, withLabels bool) (names, all []string, err error) {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		names, err = p.names(gctx, base)
		return err
	})
	if withLabels {
		g.Go(func() (err error) {
			all, err = p.labelNames(gctx, nil)
			return err
		})
	}
	err = g.Wait()
	return names, all, err
}

// matchHonoured fails when names holds one that base's __name__ matchers
// exclude: a backend that ignores match[] answers those.
func matchHonoured(names []string, base []*labels.Matcher, query string) error {
	for _, n := range names {
		for _, m := range base {
			if m.Name == model.MetricNameLabel && !m.Matches(n) {
				return fmt.Errorf("%w: it answered metric %q for %s", errUnsupported, n, query)
			}
		}
	}
	return nil
}

// candidates sorts the relevant labels of all (the backend's label names)
// by what base alone says of them: carried by every series of base, or
// undecided (to ask about). Those base excludes are neither.
func candidates(base []*labels.Matcher, all []string, relevant func(string) bool) (carried, undecided []string) {
	for _, l := range all {
		if l == model.MetricNameLabel || !relevant(l) {
			continue
		}
		switch c, known := decided(base, l); {
		case known && c:
			carried = append(carried, l)
		case !known:
			undecided = append(undecided, l)
		}
	}
	return carried, undecided
}

// carriers asks, per label of undecided, which metric names of base have
// series carrying it, planConcurrency requests at a time, and returns the
// labels by name, in undecided's order.
func (p *indexPlan) carriers(ctx context.Context, base []*labels.Matcher, undecided []string) (map[string][]string, error) {
	carriers := make([][]string, len(undecided)) // names with series carrying undecided[i]
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(planConcurrency)
	for i, l := range undecided {
		g.Go(func() (err error) {
			carriers[i], err = p.names(gctx, with(base, l, labels.MatchNotEqual))
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	byName := make(map[string][]string)
	for i, l := range undecided {
		for _, n := range carriers[i] {
			byName[n] = append(byName[n], l)
		}
	}
	return byName, nil
}

// probe asks for the names of a metric no series has: a backend that
// answers some ignores match[].
func probe(ctx context.Context, il IndexLister, start, end time.Time) error {
	names, err := il.LabelValues(ctx, model.MetricNameLabel, `{__name__="`+probeMetric+`"}`, start, end)
	if err != nil {
		return err
	}
	if len(names) > 0 {
		return fmt.Errorf("%w: it answered %d metric names for a selector matching none", errUnsupported, len(names))
	}
	return nil
}

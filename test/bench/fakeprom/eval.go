package fakeprom

import (
	"errors"
	"fmt"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// source is a set of series: a Model or a Universe.
type source interface {
	familyList() []family
}

// Sample is one element of an instant vector.
type Sample struct {
	// Labels are sorted by name; __name__, when present, comes first.
	Labels []Label
	Value  float64
}

// ErrUnsupported marks PromQL the fake does not evaluate.
var ErrUnsupported = errors.New("unsupported by the fake Prometheus")

var promParser = parser.NewParser(parser.Options{})

// Eval evaluates query against m: a vector selector, optionally inside
// rate, irate or increase of a range selector, optionally inside one
// sum/min/max/avg/count aggregation with by or without. Counters selected
// without a rate function are worth their rate × 3600; a rate of a gauge
// is 0.
//
// A query of the shape "Q and (C == 1)", promgate's partial-window guard
// (pkg/promql.RequireCompleteWindows), is evaluated as Q: every series of the
// model has samples as far back as any window reaches, so C, the
// completeness of Q's windows, is 1 for each of Q's series.
func (m *Model) Eval(query string) ([]Sample, error) { return eval(m, query) }

func eval(src source, query string) ([]Sample, error) {
	expr, err := promParser.ParseExpr(query)
	if err != nil {
		return nil, err
	}
	expr = unguard(unparen(expr))
	var agg *parser.AggregateExpr
	if a, ok := expr.(*parser.AggregateExpr); ok {
		agg = a
		expr = unparen(a.Expr)
		switch a.Op {
		case parser.SUM, parser.MIN, parser.MAX, parser.AVG, parser.COUNT:
		default:
			return nil, fmt.Errorf("%w: aggregation %s", ErrUnsupported, a.Op)
		}
	}
	var vs *parser.VectorSelector
	mode := modeInstant
	rangeSeconds := 0.0
	switch e := expr.(type) {
	case *parser.VectorSelector:
		vs = e
	case *parser.Call:
		switch e.Func.Name {
		case "rate", "irate":
			mode = modeRate
		case "increase":
			mode = modeIncrease
		default:
			return nil, fmt.Errorf("%w: function %s", ErrUnsupported, e.Func.Name)
		}
		ms, ok := unparen(e.Args[0]).(*parser.MatrixSelector)
		if !ok {
			return nil, fmt.Errorf("%w: %s of %s", ErrUnsupported, e.Func.Name, e.Args[0].Type())
		}
		vs, ok = ms.VectorSelector.(*parser.VectorSelector)
		if !ok {
			return nil, fmt.Errorf("%w: range over %T", ErrUnsupported, ms.VectorSelector)
		}
		rangeSeconds = ms.Range.Seconds()
	default:
		return nil, fmt.Errorf("%w: expression %T", ErrUnsupported, expr)
	}

	var out []Sample
	keepName := mode == modeInstant && agg == nil
	var groups map[string]int
	var counts []int
	if agg != nil {
		groups = map[string]int{}
	}
	var key strings.Builder
	sel := newSelector(vs.LabelMatchers)
	for _, f := range src.familyList() {
		if !sel.nameOK(f.name()) {
			continue
		}
		counter := f.counter()
		f.each(sel.nsOK, func(lbls []Label, rate float64) bool {
			if !sel.labelsOK(lbls) {
				return true
			}
			v := rate
			switch {
			case !counter && mode != modeInstant:
				v = 0
			case counter && mode == modeInstant:
				v = rate * counterAge
			case mode == modeIncrease:
				v = rate * rangeSeconds
			}
			if agg == nil {
				s := Sample{Value: v, Labels: make([]Label, 0, len(lbls)+1)}
				if keepName {
					s.Labels = append(s.Labels, Label{Name: model.MetricNameLabel, Value: f.name()})
				}
				s.Labels = append(s.Labels, lbls...)
				out = append(out, s)
				return true
			}
			key.Reset()
			var kept []Label
			for _, l := range lbls {
				if grouped(agg, l.Name) {
					key.WriteString(l.Name)
					key.WriteByte(0)
					key.WriteString(l.Value)
					key.WriteByte(0)
					kept = append(kept, l)
				}
			}
			if i, ok := groups[key.String()]; ok {
				out[i].Value = combine(agg.Op, out[i].Value, v, counts[i])
				counts[i]++
				return true
			}
			groups[key.String()] = len(out)
			first := v
			if agg.Op == parser.COUNT {
				first = 1
			}
			out = append(out, Sample{Labels: append([]Label(nil), kept...), Value: first})
			counts = append(counts, 1)
			return true
		})
	}
	return out, nil
}

// unguard returns Q of a guarded query "Q and (C == 1)", or e.
func unguard(e parser.Expr) parser.Expr {
	b, ok := e.(*parser.BinaryExpr)
	if !ok || b.Op != parser.LAND {
		return e
	}
	c, ok := unparen(b.RHS).(*parser.BinaryExpr)
	if !ok || c.Op != parser.EQLC || c.ReturnBool {
		return e
	}
	if n, ok := unparen(c.RHS).(*parser.NumberLiteral); !ok || n.Val != 1 {
		return e
	}
	return unparen(b.LHS)
}

type evalMode int

const (
	modeInstant evalMode = iota
	modeRate
	modeIncrease
)

func unparen(e parser.Expr) parser.Expr {
	for {
		p, ok := e.(*parser.ParenExpr)
		if !ok {
			return e
		}
		e = p.Expr
	}
}

// grouped reports whether the aggregation keeps label name in its output.
func grouped(agg *parser.AggregateExpr, name string) bool {
	in := false
	for _, g := range agg.Grouping {
		if g == name {
			in = true
			break
		}
	}
	if agg.Without {
		return !in
	}
	return in
}

// combine folds v into the running aggregate cur of n values so far.
func combine(op parser.ItemType, cur, v float64, n int) float64 {
	switch op {
	case parser.MIN:
		return min(cur, v)
	case parser.MAX:
		return max(cur, v)
	case parser.AVG:
		return cur + (v-cur)/float64(n+1)
	case parser.COUNT:
		return cur + 1
	default:
		return cur + v
	}
}

// selector applies label matchers to a family's series: the metric name
// once per family, namespace matchers once per namespace, the others per
// series.
type selector struct {
	name, ns, other []*labels.Matcher
}

func newSelector(ms []*labels.Matcher) *selector {
	s := &selector{}
	for _, m := range ms {
		switch m.Name {
		case model.MetricNameLabel:
			s.name = append(s.name, m)
		case "namespace":
			s.ns = append(s.ns, m)
		default:
			s.other = append(s.other, m)
		}
	}
	return s
}

func (s *selector) nameOK(name string) bool {
	for _, m := range s.name {
		if !m.Matches(name) {
			return false
		}
	}
	return true
}

// nsOK is called with the namespace of namespaced series only; series
// without a namespace label are checked in labelsOK.
func (s *selector) nsOK(ns string) bool {
	for _, m := range s.ns {
		if !m.Matches(ns) {
			return false
		}
	}
	return true
}

func (s *selector) labelsOK(lbls []Label) bool {
	if len(s.ns) > 0 && !hasLabel(lbls, "namespace") {
		for _, m := range s.ns {
			if !m.Matches("") {
				return false
			}
		}
	}
	for _, m := range s.other {
		if !m.Matches(value(lbls, m.Name)) {
			return false
		}
	}
	return true
}

func hasLabel(lbls []Label, name string) bool {
	for _, l := range lbls {
		if l.Name == name {
			return true
		}
	}
	return false
}

func value(lbls []Label, name string) string {
	for _, l := range lbls {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

// selectSeries calls fn for every series of src that matches at least one
// of the selectors, with __name__ as its first label, until fn returns
// false.
func selectSeries(src source, selectors [][]*labels.Matcher, fn func(lbls []Label) bool) {
	sels := make([]*selector, len(selectors))
	for i, ms := range selectors {
		sels[i] = newSelector(ms)
	}
	buf := make([]Label, 0, 16)
	for _, f := range src.familyList() {
		var active []*selector
		for _, s := range sels {
			if s.nameOK(f.name()) {
				active = append(active, s)
			}
		}
		if len(active) == 0 {
			continue
		}
		nsOK := func(ns string) bool {
			for _, s := range active {
				if s.nsOK(ns) {
					return true
				}
			}
			return false
		}
		cont := f.each(nsOK, func(lbls []Label, _ float64) bool {
			for _, s := range active {
				if s.nsOK(value(lbls, "namespace")) && s.labelsOK(lbls) {
					buf = append(append(buf[:0], Label{Name: model.MetricNameLabel, Value: f.name()}), lbls...)
					return fn(buf)
				}
			}
			return true
		})
		if !cont {
			return
		}
	}
}

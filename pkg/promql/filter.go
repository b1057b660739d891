package promql

import (
	"maps"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// labelPreserving are the functions whose result has, for each input
// series, one sample carrying that series' labels (less __name__), so that
// filtering their result by label is the same as filtering their input.
var labelPreserving = map[string]bool{
	"rate": true, "irate": true, "increase": true, "delta": true, "idelta": true, "deriv": true,
	"avg_over_time": true, "min_over_time": true, "max_over_time": true, "sum_over_time": true,
	"count_over_time": true, "last_over_time": true, "present_over_time": true,
	"abs": true, "ceil": true, "floor": true, "round": true,
	"clamp": true, "clamp_min": true, "clamp_max": true,
}

// Filterable reports whether the result of full equals the result of
// batched filtered, sample by sample, by the matchers moved (a sample
// lacking a label has it empty, as in PromQL). That holds when full is
// batched with exactly moved added to its only vector selector, and batched
// keeps every label of the series it selects: a vector selector, possibly
// inside label-preserving functions (rate, *_over_time, abs, ...) and
// arithmetic with numbers. An aggregation, a label_replace, a join or a
// template that uses the matchers elsewhere (LabelValuesByName) make it
// false. A matcher on __name__ is never moved.
//
// Providers use it to send one query (shared by the query engine) for
// requests that differ only in their matchers.
func Filterable(batched, full parser.Expr, moved []*labels.Matcher) bool {
	vsB := preservingSelector(batched)
	if vsB == nil {
		return false
	}
	vsF := onlySelector(full)
	if vsF == nil {
		return false
	}
	want := map[string]int{}
	for _, m := range vsB.LabelMatchers {
		want[m.String()]++
	}
	for _, m := range moved {
		if m.Name == model.MetricNameLabel {
			return false
		}
		want[m.String()]++
	}
	got := map[string]int{}
	for _, m := range vsF.LabelMatchers {
		got[m.String()]++
	}
	if !maps.Equal(want, got) {
		return false
	}
	// Apart from the matchers, the two must be the same expression.
	saved := vsB.LabelMatchers
	vsB.LabelMatchers = vsF.LabelMatchers
	same := batched.String() == full.String()
	vsB.LabelMatchers = saved
	return same
}

// preservingSelector returns the vector selector of an expression that
// keeps its series' labels, or nil.
func preservingSelector(e parser.Expr) *parser.VectorSelector {
	switch x := e.(type) {
	case *parser.ParenExpr:
		return preservingSelector(x.Expr)
	case *parser.VectorSelector:
		return x
	case *parser.MatrixSelector:
		vs, _ := x.VectorSelector.(*parser.VectorSelector)
		return vs
	case *parser.Call:
		if x.Func == nil || !labelPreserving[x.Func.Name] {
			return nil
		}
		var vs *parser.VectorSelector
		for _, a := range x.Args {
			if isNumber(a) {
				continue
			}
			if vs != nil { // a second series argument
				return nil
			}
			if vs = preservingSelector(a); vs == nil {
				return nil
			}
		}
		return vs
	case *parser.BinaryExpr:
		switch {
		case isNumber(x.LHS) && !isNumber(x.RHS):
			return preservingSelector(x.RHS)
		case isNumber(x.RHS) && !isNumber(x.LHS):
			return preservingSelector(x.LHS)
		}
	}
	return nil
}

func isNumber(e parser.Expr) bool {
	switch x := e.(type) {
	case *parser.NumberLiteral:
		return true
	case *parser.ParenExpr:
		return isNumber(x.Expr)
	case *parser.UnaryExpr:
		return isNumber(x.Expr)
	}
	return false
}

// onlySelector returns the expression's vector selector if it has exactly
// one, or nil.
func onlySelector(e parser.Expr) *parser.VectorSelector {
	var found *parser.VectorSelector
	n := 0
	parser.Inspect(e, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok {
			found = vs
			n++
		}
		return nil
	})
	if n != 1 {
		return nil
	}
	return found
}

// MatchAll reports whether a sample with the given label getter passes
// every matcher; a missing label is the empty string. Matchers must have
// been built with labels.NewMatcher (regular expressions compiled).
func MatchAll(ms []*labels.Matcher, get func(name string) string) bool {
	for _, m := range ms {
		if !m.Matches(get(m.Name)) {
			return false
		}
	}
	return true
}

// Compiled returns copies of ms built with labels.NewMatcher, so that
// their Matches method works for regular expressions too.
func Compiled(ms []*labels.Matcher) ([]*labels.Matcher, error) {
	out := make([]*labels.Matcher, len(ms))
	for i, m := range ms {
		c, err := labels.NewMatcher(m.Type, m.Name, m.Value)
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}

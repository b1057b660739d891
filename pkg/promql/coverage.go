package promql

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
)

// RequireCompleteWindows rewrites expr into one query that returns exactly
// the output series of expr whose every range-function input window is
// completely covered by samples, with expr's values and labels, and leaves
// out the other series. It is meant for the queries whose answers feed the
// HPA: a series left out is a pod the HPA treats conservatively (or, when all
// are left out, an empty answer that keeps the replicas), where a rate over a
// window that samples fill only in part (after a scrape gap, a Prometheus
// restart or freeze, for a new series) reads far too low.
//
// The result has the form
//
//	expr and (completeness == 1)
//
// where completeness is expr with every guarded range-function call replaced
// by a 0/1 coverage indicator for its selector and window (see
// docs/partial-windows.md for the rule), every aggregation replaced by min
// with the same grouping, numbers and scalar operands dropped, and
// vector-vector operations turned into products with the same matching, so
// that it has expr's output label sets. The query is evaluated atomically by
// the backend; it runs on Prometheus 2.42 and later.
//
// Supported: aggregations (sum, avg, min, max, count, group, stddev,
// stdvar, quantile; by or without) over rate, increase, delta, deriv,
// predict_linear, changes, resets and the *_over_time functions of one
// selector; label-preserving instant functions (abs, round, clamp, ...),
// label_replace, label_join and histogram_quantile; arithmetic and
// comparisons with numbers or scalars; vector-vector arithmetic and
// comparisons (both sides guarded, vector matching kept); "and" and "unless"
// with a right-hand side without range functions; subqueries with an explicit
// step that divides their range. irate, idelta, last_over_time and
// present_over_time read only the newest samples of their window and are
// not guarded.
//
// expr without any range selector or subquery is returned unchanged with
// ok true: there is nothing to guard. For any other shape (topk, "or",
// @ modifiers, ranges given as expressions, fill modifiers, range-vector or
// scalar results with windows, functions not listed) it returns expr and
// false; the caller sends expr as it is. The returned expression is freshly
// parsed and shares no nodes with expr.
func RequireCompleteWindows(expr parser.Expr) (guarded parser.Expr, ok bool) {
	if expr == nil {
		return nil, false
	}
	if !hasWindow(expr) {
		return expr, true
	}
	if expr.Type() != parser.ValueTypeVector {
		return expr, false
	}
	ind, err := completeness(expr, false, false, selectorCompleteness)
	if err != nil {
		return expr, false
	}
	q := &parser.BinaryExpr{
		Op:             parser.LAND,
		LHS:            paren(expr),
		RHS:            &parser.ParenExpr{Expr: compare(parser.EQLC, false, ind, number(1))},
		VectorMatching: &parser.VectorMatching{Card: parser.CardManyToMany},
	}
	out, err := Parse(q.String())
	if err != nil {
		return expr, false
	}
	return out, true
}

// GuardedReads returns what RequireCompleteWindows guards in expr, for
// people to read: each range-function call whose window it checks, as
// text (say rate(x{pod="a"}[1m])), in the order of the query. Neither
// calls nor an error: expr reads no window that a partly filled one biases
// (no range, or only irate, idelta, last_over_time, present_over_time). An
// error says why expr cannot be guarded.
func GuardedReads(expr parser.Expr) ([]string, error) {
	if expr == nil {
		return nil, errors.New("the query is not parsed")
	}
	if !hasWindow(expr) {
		return nil, nil
	}
	if expr.Type() != parser.ValueTypeVector {
		return nil, unsupported("the result is a %s", expr.Type())
	}
	if _, err := completeness(expr, false, false, selectorCompleteness); err != nil {
		return nil, err
	}
	var reads []string
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if c, ok := n.(*parser.Call); ok && guardedFuncs[c.Func.Name] {
			reads = append(reads, c.String())
		}
		return nil
	})
	return reads, nil
}

// errUnsupported marks shapes RequireCompleteWindows cannot guard.
var errUnsupported = errors.New("unsupported shape")

func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUnsupported}, args...)...)
}

// guardedFuncs read every sample of their window: a window that samples
// cover only in part gives a wrong value.
var guardedFuncs = map[string]bool{
	"rate": true, "increase": true, "delta": true, "deriv": true, "predict_linear": true,
	"changes": true, "resets": true,
	"avg_over_time": true, "min_over_time": true, "max_over_time": true, "sum_over_time": true,
	"count_over_time": true, "quantile_over_time": true, "stddev_over_time": true,
	"stdvar_over_time": true, "mad_over_time": true, "first_over_time": true,
	"holt_winters": true, "double_exponential_smoothing": true,
}

// newestSampleFuncs read only the newest one or two samples of their window,
// which a partly filled window does not bias.
var newestSampleFuncs = map[string]bool{
	"irate": true, "idelta": true, "last_over_time": true, "present_over_time": true,
}

// valueFuncs transform values and keep the labels (but the metric name) of
// their first argument.
var valueFuncs = map[string]bool{
	"abs": true, "ceil": true, "floor": true, "round": true, "exp": true, "ln": true,
	"log2": true, "log10": true, "sqrt": true, "sgn": true, "clamp": true,
	"clamp_min": true, "clamp_max": true, "timestamp": true,
	"histogram_count": true, "histogram_sum": true, "histogram_avg": true,
}

// minAggregations are aggregations whose output is one series per group and
// whose value depends on every member: completeness is the min over members.
var minAggregations = map[parser.ItemType]bool{
	parser.SUM: true, parser.AVG: true, parser.MIN: true, parser.MAX: true,
	parser.COUNT: true, parser.GROUP: true, parser.STDDEV: true, parser.STDVAR: true,
	parser.QUANTILE: true,
}

// completeness returns an instant-vector expression with the output label
// sets of e whose value is 1 where every window e reads is complete and 0
// otherwise. A series of e may be missing from it (it then drops out of the
// guarded answer) unless total is set: inside an aggregation every member
// must be present, so that an incomplete member cannot hide by being absent.
// With exact set the result holds no series e lacks, which vector matching
// needs (an extra series could make a one-to-one match ambiguous).
func completeness(e parser.Expr, total, exact bool, rule windowRule) (parser.Expr, error) {
	if !hasWindow(e) {
		if e.Type() != parser.ValueTypeVector {
			return nil, unsupported("%s is not an instant vector", e.Type())
		}
		return presence(e), nil
	}
	switch n := e.(type) {
	case *parser.ParenExpr:
		return completeness(n.Expr, total, exact, rule)
	case *parser.UnaryExpr:
		return completeness(n.Expr, total, exact, rule)
	case *parser.Call:
		return callCompleteness(n, total, exact, rule)
	case *parser.AggregateExpr:
		if !minAggregations[n.Op] {
			return nil, unsupported("aggregation %s", n.Op)
		}
		if n.Param != nil && hasWindow(n.Param) {
			return nil, unsupported("range function in the parameter of %s", n.Op)
		}
		inner, err := completeness(n.Expr, true, exact, rule)
		if err != nil {
			return nil, err
		}
		return &parser.AggregateExpr{
			Op:       parser.MIN,
			Expr:     inner,
			Grouping: append([]string(nil), n.Grouping...),
			Without:  n.Without,
		}, nil
	case *parser.BinaryExpr:
		return binaryCompleteness(n, total, exact, rule)
	}
	return nil, unsupported("%T with a range function", e)
}

// callCompleteness is completeness of a function call that reads a range
// function: one that reads a window itself, one that keeps its first
// argument's labels, or histogram_quantile.
func callCompleteness(c *parser.Call, total, exact bool, rule windowRule) (parser.Expr, error) {
	name := c.Func.Name
	switch {
	case guardedFuncs[name] || newestSampleFuncs[name]:
		return windowCompleteness(c, total, exact, rule)
	case valueFuncs[name], name == "label_replace", name == "label_join":
		for _, a := range c.Args[1:] {
			if hasWindow(a) {
				return nil, unsupported("range function in a scalar argument of %s", name)
			}
		}
		inner, err := completeness(c.Args[0], total, exact, rule)
		if err != nil {
			return nil, err
		}
		if valueFuncs[name] {
			return inner, nil
		}
		args := append(parser.Expressions{inner}, c.Args[1:]...)
		return &parser.Call{Func: c.Func, Args: args}, nil
	case name == "histogram_quantile":
		if hasWindow(c.Args[0]) {
			return nil, unsupported("range function in the quantile of histogram_quantile")
		}
		inner, err := completeness(c.Args[1], true, exact, rule)
		if err != nil {
			return nil, err
		}
		return &parser.AggregateExpr{Op: parser.MIN, Expr: inner, Grouping: []string{"le"}, Without: true}, nil
	}
	return nil, unsupported("function %s over a range function", name)
}

// windowCompleteness is completeness of a range function's call, c: the
// indicator of its one range argument, a selector's window or a subquery
// (always 1 for a function that reads only the newest samples), present
// for each of c's series when total is set.
func windowCompleteness(c *parser.Call, total, exact bool, rule windowRule) (parser.Expr, error) {
	name := c.Func.Name
	window := -1
	for i, a := range c.Args {
		if a.Type() == parser.ValueTypeMatrix {
			window = i
		} else if hasWindow(a) {
			return nil, unsupported("range function in a scalar argument of %s", name)
		}
	}
	if window < 0 {
		return nil, unsupported("%s without a range argument", name)
	}
	var ind parser.Expr
	var err error
	switch w := unparen(c.Args[window]).(type) {
	case *parser.MatrixSelector:
		if newestSampleFuncs[name] {
			return arith(parser.ADD, timesZero(c), number(1)), nil
		}
		ind, err = rule(w)
	case *parser.SubqueryExpr:
		ind, err = subqueryCompleteness(w, exact, rule)
	default:
		return nil, unsupported("range argument of %s", name)
	}
	if err != nil {
		return nil, err
	}
	if total {
		ind = orExpr(ind, timesZero(c))
	}
	return ind, nil
}

// binaryCompleteness is completeness of a binary operation: the
// indicators of its vector operands, multiplied with its matching.
func binaryCompleteness(b *parser.BinaryExpr, total, exact bool, rule windowRule) (parser.Expr, error) {
	if b.VectorMatching != nil && (b.VectorMatching.FillValues.LHS != nil || b.VectorMatching.FillValues.RHS != nil) {
		return nil, unsupported("fill modifiers")
	}
	lv := b.LHS.Type() == parser.ValueTypeVector
	rv := b.RHS.Type() == parser.ValueTypeVector
	switch {
	case b.Op == parser.LOR:
		return nil, unsupported("or with a range function")
	case b.Op == parser.LAND || b.Op == parser.LUNLESS:
		if hasWindow(b.RHS) {
			return nil, unsupported("range function on the right of %s", b.Op)
		}
		left, err := completeness(b.LHS, total, exact, rule)
		if err != nil {
			return nil, err
		}
		return &parser.BinaryExpr{Op: b.Op, LHS: paren(left), RHS: paren(b.RHS), VectorMatching: copyMatching(b.VectorMatching)}, nil
	case lv && rv:
		left, err := completeness(b.LHS, total, true, rule)
		if err != nil {
			return nil, err
		}
		right, err := completeness(b.RHS, total, true, rule)
		if err != nil {
			return nil, err
		}
		var ind parser.Expr = &parser.BinaryExpr{Op: parser.MUL, LHS: paren(left), RHS: paren(right), VectorMatching: copyMatching(b.VectorMatching)}
		if exact && isFilter(b) {
			ind = andExpr(ind, b)
		}
		return ind, nil
	case lv || rv:
		vec, other := b.LHS, b.RHS
		if rv {
			vec, other = b.RHS, b.LHS
		}
		if hasWindow(other) {
			return nil, unsupported("range function in a scalar operand")
		}
		ind, err := completeness(vec, total, exact, rule)
		if err != nil {
			return nil, err
		}
		if exact && isFilter(b) {
			ind = andExpr(ind, b)
		}
		return ind, nil
	}
	return nil, unsupported("scalar expression with a range function")
}

// windowRule returns the 0/1 indicator of one range selector's window per
// series: selectorCompleteness, or another question about the window.
type windowRule func(*parser.MatrixSelector) (parser.Expr, error)

// tolerance is the part of a window whose loss the guard accepts beyond
// what the scrape interval explains: 5% of a rate is within the HPA's own
// 10% tolerance.
const tolerance = 0.05

// selectorCompleteness returns the 0/1 coverage indicator of the window
// sel[r] offset o, per series. With h = r/2 it compares the two halves of
// the window, measured with the timestamps of the last sample at or before
// the window's start (B), middle (M) and end (L), and the sample counts of
// the halves (c1, c2). With G1 = M-B, G2 = L-M (the spans of the halves'
// samples, each with the interval leading into its half), E = t-L and
// R = 0.05*r:
//
//	G1*c2 <= c1*G2 + max(0.5*G2, R*c2)     the first half is as dense as the second
//	G2*c1 <= c2*G1 + max(0.5*G1, R*c1)     and the second as dense as the first
//	E*c2  <= max(1.1*G2, 0.5*G2 + R*c2)    the last sample is recent
//
// that is, each half holds as many samples as the other half's interval
// predicts, less half a sample or 5% of the window, whichever is more; and
// the end is within
// 1.1 intervals of the last sample (where rate() extrapolates to the end) or
// loses at most 5% of the window. A series without a sample before the
// window, in either half, or at the end is absent.
func selectorCompleteness(m *parser.MatrixSelector) (parser.Expr, error) {
	vs, err := plainWindow(m)
	if err != nil {
		return nil, err
	}
	r, o := m.Range, vs.OriginalOffset
	h := r / 2
	start := timestampAt(vs, o+r)
	middle := timestampAt(vs, o+h)
	end := timestampAt(vs, o)
	c1 := countOver(vs, r-h, o+h)
	c2 := countOver(vs, h, o)
	g1 := arith(parser.SUB, middle, start)
	g2 := arith(parser.SUB, end, middle)
	var now parser.Expr = &parser.Call{Func: parser.Functions["time"]}
	if o != 0 {
		now = arith(parser.SUB, now, number(o.Seconds()))
	}
	slack := number(tolerance * r.Seconds())
	first := compare(parser.LTE, true,
		arith(parser.MUL, g1, c2),
		arith(parser.ADD, arith(parser.MUL, c1, g2), maxOf(arith(parser.MUL, number(0.5), g2), arith(parser.MUL, slack, c2))))
	second := compare(parser.LTE, true,
		arith(parser.MUL, g2, c1),
		arith(parser.ADD, arith(parser.MUL, c2, g1), maxOf(arith(parser.MUL, number(0.5), g1), arith(parser.MUL, slack, c1))))
	recent := compare(parser.LTE, true,
		arith(parser.MUL, arith(parser.SUB, now, end), c2),
		maxOf(arith(parser.MUL, number(1.1), g2), arith(parser.ADD, arith(parser.MUL, number(0.5), g2), arith(parser.MUL, slack, c2))))
	return arith(parser.MUL, arith(parser.MUL, first, second), recent), nil
}

// plainWindow returns the selector of a window the guard can check: a
// range and offset given as durations, no @, no anchored or smoothed
// selector, a range of 2ms or more.
func plainWindow(m *parser.MatrixSelector) (*parser.VectorSelector, error) {
	vs, ok := m.VectorSelector.(*parser.VectorSelector)
	if !ok {
		return nil, unsupported("range over %T", m.VectorSelector)
	}
	switch {
	case m.RangeExpr != nil || vs.OriginalOffsetExpr != nil:
		return nil, unsupported("range or offset given as an expression")
	case vs.Timestamp != nil || vs.StartOrEnd != 0:
		return nil, unsupported("@ modifier")
	case vs.Anchored || vs.Smoothed:
		return nil, unsupported("anchored or smoothed selector")
	case m.Range < 2*time.Millisecond:
		return nil, unsupported("range %s", m.Range)
	}
	return vs, nil
}

// maxOf returns the per-series maximum of a and b, (a+b+|a-b|)/2.
func maxOf(a, b parser.Expr) parser.Expr {
	diff := &parser.Call{Func: parser.Functions["abs"], Args: parser.Expressions{arith(parser.SUB, a, b)}}
	return arith(parser.DIV, arith(parser.ADD, arith(parser.ADD, a, b), diff), number(2))
}

// subqueryCompleteness returns the indicator of f(inner[r:s]): complete when
// every one of the r/s steps of the subquery has a complete inner result.
// Each step contributes 2*inner-1 (1 when complete, -1 when not, nothing
// when missing), so the sum reaches r/s only when all steps are there and
// complete.
func subqueryCompleteness(sq *parser.SubqueryExpr, exact bool, rule windowRule) (parser.Expr, error) {
	switch {
	case sq.RangeExpr != nil || sq.StepExpr != nil || sq.OriginalOffsetExpr != nil:
		return nil, unsupported("subquery range, step or offset given as an expression")
	case sq.Timestamp != nil || sq.StartOrEnd != 0:
		return nil, unsupported("@ modifier on a subquery")
	case sq.Step <= 0 || sq.Range%sq.Step != 0:
		return nil, unsupported("subquery step %s must be given and divide its range %s", sq.Step, sq.Range)
	}
	inner, err := completeness(sq.Expr, false, exact, rule)
	if err != nil {
		return nil, err
	}
	steps := &parser.SubqueryExpr{
		Expr:           paren(arith(parser.SUB, arith(parser.MUL, number(2), inner), number(1))),
		Range:          sq.Range,
		Step:           sq.Step,
		OriginalOffset: sq.OriginalOffset,
		Offset:         sq.OriginalOffset,
	}
	sum := &parser.Call{Func: parser.Functions["sum_over_time"], Args: parser.Expressions{steps}}
	return compare(parser.GTE, true, sum, number(float64(sq.Range/sq.Step))), nil
}

// presence returns 1 for every series of the instant vector e, NaN
// included (no value compares greater than itself). It evaluates e twice;
// it is used for operands without range functions, which are cheap.
func presence(e parser.Expr) parser.Expr {
	return arith(parser.ADD, compare(parser.GTR, true, e, e), number(1))
}

// timesZero returns 0 for every series of the range-function call c (NaN
// where c is NaN or infinite: such a member does not change a min, nor an
// aggregate that is NaN anyway). It evaluates c once.
func timesZero(c *parser.Call) parser.Expr { return arith(parser.MUL, c, number(0)) }

func timestampAt(vs *parser.VectorSelector, offset time.Duration) parser.Expr {
	return &parser.Call{Func: parser.Functions["timestamp"], Args: parser.Expressions{withOffset(vs, offset)}}
}

func countOver(vs *parser.VectorSelector, r, offset time.Duration) parser.Expr {
	m := &parser.MatrixSelector{VectorSelector: withOffset(vs, offset), Range: r}
	return &parser.Call{Func: parser.Functions["count_over_time"], Args: parser.Expressions{m}}
}

func withOffset(vs *parser.VectorSelector, offset time.Duration) *parser.VectorSelector {
	return &parser.VectorSelector{
		Name:           vs.Name,
		LabelMatchers:  vs.LabelMatchers,
		OriginalOffset: offset,
		Offset:         offset,
	}
}

func number(v float64) parser.Expr { return &parser.NumberLiteral{Val: v} }

func arith(op parser.ItemType, l, r parser.Expr) parser.Expr {
	return &parser.BinaryExpr{Op: op, LHS: paren(l), RHS: paren(r), VectorMatching: matchingFor(l, r)}
}

func compare(op parser.ItemType, returnBool bool, l, r parser.Expr) parser.Expr {
	return &parser.BinaryExpr{Op: op, LHS: paren(l), RHS: paren(r), ReturnBool: returnBool, VectorMatching: matchingFor(l, r)}
}

func orExpr(l, r parser.Expr) parser.Expr {
	return &parser.BinaryExpr{Op: parser.LOR, LHS: paren(l), RHS: paren(r), VectorMatching: &parser.VectorMatching{Card: parser.CardManyToMany}}
}

func andExpr(l, r parser.Expr) parser.Expr {
	return &parser.BinaryExpr{Op: parser.LAND, LHS: paren(l), RHS: paren(r), VectorMatching: &parser.VectorMatching{Card: parser.CardManyToMany}}
}

// matchingFor returns one-to-one matching when both operands are vectors
// (what the parser sets); it only matters before the result is re-parsed.
func matchingFor(l, r parser.Expr) *parser.VectorMatching {
	if l.Type() == parser.ValueTypeVector && r.Type() == parser.ValueTypeVector {
		return &parser.VectorMatching{Card: parser.CardOneToOne}
	}
	return nil
}

func copyMatching(vm *parser.VectorMatching) *parser.VectorMatching {
	if vm == nil {
		return nil
	}
	return &parser.VectorMatching{
		Card:           vm.Card,
		MatchingLabels: append([]string(nil), vm.MatchingLabels...),
		On:             vm.On,
		Include:        append([]string(nil), vm.Include...),
	}
}

// isFilter reports whether b is a comparison that drops series.
func isFilter(b *parser.BinaryExpr) bool { return b.Op.IsComparisonOperator() && !b.ReturnBool }

// paren wraps operators in parentheses: the printer does not add them.
func paren(e parser.Expr) parser.Expr {
	switch e.(type) {
	case *parser.BinaryExpr, *parser.UnaryExpr:
		return &parser.ParenExpr{Expr: e}
	}
	return e
}

func unparen(e parser.Expr) parser.Expr {
	for {
		p, ok := e.(*parser.ParenExpr)
		if !ok {
			return e
		}
		e = p.Expr
	}
}

// hasWindow reports whether e reads a range: a range selector or a subquery.
func hasWindow(e parser.Expr) bool {
	found := false
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		switch n.(type) {
		case *parser.MatrixSelector, *parser.SubqueryExpr:
			found = true
		}
		return nil
	})
	return found
}

// Presence returns a query that answers each series of the first range
// selector of expr (say rate(x{pod="a"}[1m])) that has a sample in its
// window, or a sample within the lookback delta before the window's end
// that is not a staleness marker: the series a value would come from, for
// telling "not computable yet" from "no such series". The second half is a
// backend that was frozen or down for longer than the window: no sample is
// in it, but the series did not end (a target that is gone, or whose
// scrape fails, is marked stale). The series keep their labels (not
// __name__, for those of the first half). False when expr has no range
// selector.
func Presence(expr parser.Expr) (string, bool) {
	if expr == nil {
		return "", false
	}
	var ms *parser.MatrixSelector
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if m, ok := n.(*parser.MatrixSelector); ok && ms == nil {
			ms = m
		}
		return nil
	})
	if ms == nil {
		return "", false
	}
	return "present_over_time(" + ms.String() + ") or " + ms.VectorSelector.String(), true
}

package promql

import (
	"errors"
	"slices"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// CheckLabel is the label that marks the samples of window checks
// (WithChecks) in an answer; its value is the check's ID. A label name
// starting with two underscores is reserved to Prometheus' and its tools'
// own use, so no scraped series carries it.
const CheckLabel = "__promgate_window__"

// Read is one window that a guarded range function of a query reads: the
// metric its selector names, and the span of samples the window covers,
// ending Offset before the evaluation time. A window inside subqueries
// spans their ranges too (rate(x[1m]) in max_over_time(...[5m:1m]) reads
// 6m of x), and is moved by their offsets.
type Read struct {
	Metric string
	Range  time.Duration
	Offset time.Duration
}

// Reads returns the distinct windows of expr that RequireCompleteWindows
// guards, in the order of the query: those of rate, increase, the
// *_over_time functions and the others that read every sample of their
// window. Neither reads nor an error: expr reads no window that a partly
// filled one biases. An error says why expr cannot be guarded, or that a
// guarded selector names no one metric (a __name__ regex), so that no
// series can stand for its metric's samples.
func Reads(expr parser.Expr) ([]Read, error) {
	if _, err := GuardedReads(expr); err != nil {
		return nil, err
	}
	var reads []Read
	var bad error
	seen := map[Read]bool{}
	parser.Inspect(expr, func(n parser.Node, path []parser.Node) error {
		c, ok := n.(*parser.Call)
		if !ok || !guardedFuncs[c.Func.Name] {
			return nil
		}
		for _, a := range c.Args {
			m, ok := unparen(a).(*parser.MatrixSelector)
			if !ok {
				continue
			}
			vs := m.VectorSelector.(*parser.VectorSelector)
			name := metricName(vs)
			if name == "" {
				bad = errors.New("a guarded selector names no one metric: " + vs.String())
				continue
			}
			rd := Read{Metric: name, Range: m.Range, Offset: vs.OriginalOffset}
			for _, p := range path {
				if sq, ok := p.(*parser.SubqueryExpr); ok {
					rd.Range += sq.Range
					rd.Offset += sq.OriginalOffset
				}
			}
			if !seen[rd] {
				seen[rd] = true
				reads = append(reads, rd)
			}
		}
		return nil
	})
	if bad != nil {
		return nil, bad
	}
	return reads, nil
}

// metricName is the metric a selector names: its name, or the value of a
// __name__ equality matcher; "" for none.
func metricName(vs *parser.VectorSelector) string {
	if vs.Name != "" {
		return vs.Name
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
			return m.Value
		}
	}
	return ""
}

// Check asks whether samples cover the window of Read for one series of
// its metric, the one with the labels Series (without __name__); the
// answer's sample for it carries CheckLabel=ID.
type Check struct {
	ID     string
	Read   Read
	Series model.Metric
}

// Check values in an answer (CheckValue).
const (
	// CheckComplete: samples cover the series' window.
	CheckComplete = 1
	// CheckIncomplete: the series has samples near the window, but they
	// cover it only in part (a gap, a late last sample, a new series).
	CheckIncomplete = 0
)

// WithChecks returns expr or the checks: the query answers expr's series
// and, for each check, one sample labelled CheckLabel=ID with the check
// series' labels, valued CheckComplete when samples cover the series'
// window (by RequireCompleteWindows' rule, docs/partial-windows.md),
// CheckIncomplete when they cover it in part, and missing when the series
// has no sample within the window and five minutes before it (the series
// is gone). Both are evaluated at one time by the backend, so the checks
// say what expr's windows saw.
//
// A check's selector is the check's metric with an equality matcher for
// every label of Series: the series' labels come from the backend, its
// metric from expr's parsed selectors; nothing of expr's own matchers, in
// which request input lies, enters a check. The result shares no nodes
// with expr's selectors that a caller may change.
func WithChecks(expr parser.Expr, checks []Check) (parser.Expr, error) {
	if len(checks) == 0 {
		return expr, nil
	}
	if expr.Type() != parser.ValueTypeVector {
		return nil, unsupported("the result is a %s", expr.Type())
	}
	var all parser.Expr
	for _, c := range checks {
		e, err := check(c)
		if err != nil {
			return nil, err
		}
		if all == nil {
			all = e
		} else {
			all = orExpr(all, e)
		}
	}
	return orExpr(expr, all), nil
}

// check is one check's expression:
//
//	label_replace(indicator or last_over_time(sel[range+5m] offset o) * 0, CheckLabel, id, "", "")
func check(c Check) (parser.Expr, error) {
	if !model.LabelValue(c.Read.Metric).IsValid() || c.Read.Metric == "" {
		return nil, errors.New("a check needs a metric name")
	}
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, model.MetricNameLabel, c.Read.Metric)}
	for _, n := range sortedLabelNames(c.Series) {
		if n == model.MetricNameLabel || n == CheckLabel {
			continue
		}
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, string(n), string(c.Series[n])))
	}
	vs := &parser.VectorSelector{LabelMatchers: ms, OriginalOffset: c.Read.Offset, Offset: c.Read.Offset}
	if model.LegacyValidation.IsValidMetricName(c.Read.Metric) {
		vs.Name = c.Read.Metric
	}
	ind, err := selectorCompleteness(&parser.MatrixSelector{VectorSelector: vs, Range: c.Read.Range})
	if err != nil {
		return nil, err
	}
	near := &parser.Call{Func: parser.Functions["last_over_time"], Args: parser.Expressions{
		&parser.MatrixSelector{VectorSelector: withOffset(vs, c.Read.Offset), Range: c.Read.Range + 5*time.Minute},
	}}
	v := orExpr(ind, arith(parser.MUL, near, number(0)))
	str := func(s string) parser.Expr { return &parser.StringLiteral{Val: s} }
	return &parser.Call{Func: parser.Functions["label_replace"], Args: parser.Expressions{
		v, str(CheckLabel), str(c.ID), str(""), str(""),
	}}, nil
}

func sortedLabelNames(m model.Metric) []model.LabelName {
	out := make([]model.LabelName, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Lookback is the longest window of reads: how long a series must have
// been in a query's answers before every window it reads starts after its
// first sample. Zero for none.
func Lookback(reads []Read) time.Duration {
	var d time.Duration
	for _, r := range reads {
		d = max(d, r.Range)
	}
	return d
}

// Established returns the query that answers the series of expr whose
// every guarded window has a sample at or before its start, within the
// lookback delta (five minutes): the series that are not new. It is
// RequireCompleteWindows' query with that one question for its rule, so
// it reads each guarded selector once more and is evaluated once, when no
// earlier answers of expr tell which series are new. The result is freshly
// parsed and shares no nodes with expr.
func Established(expr parser.Expr) (parser.Expr, error) {
	if expr == nil || expr.Type() != parser.ValueTypeVector {
		return nil, errors.New("not an instant vector query")
	}
	ind, err := completeness(expr, false, false, startCovered)
	if err != nil {
		return nil, err
	}
	q := &parser.BinaryExpr{
		Op:             parser.LAND,
		LHS:            paren(expr),
		RHS:            &parser.ParenExpr{Expr: compare(parser.EQLC, false, ind, number(1))},
		VectorMatching: &parser.VectorMatching{Card: parser.CardManyToMany},
	}
	return Parse(q.String())
}

// startCovered is 1 for each series of sel with a sample at or before the
// window's start (within the lookback delta): timestamp(sel offset o+r) * 0 + 1.
func startCovered(m *parser.MatrixSelector) (parser.Expr, error) {
	vs, ok := m.VectorSelector.(*parser.VectorSelector)
	if !ok {
		return nil, unsupported("range over %T", m.VectorSelector)
	}
	switch {
	case m.RangeExpr != nil || vs.OriginalOffsetExpr != nil:
		return nil, unsupported("range or offset given as an expression")
	case vs.Timestamp != nil || vs.StartOrEnd != 0:
		return nil, unsupported("@ modifier")
	}
	return arith(parser.ADD, arith(parser.MUL, timestampAt(vs, vs.OriginalOffset+m.Range), number(0)), number(1)), nil
}

package promql

import (
	"errors"
	"math"
	"slices"
	"strings"
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
// answer's samples for it carry CheckLabel=ID/<ingredient>.
type Check struct {
	ID     string
	Read   Read
	Series model.Metric
}

// The ingredients of a check: what RequireCompleteWindows' rule is
// computed from, read once each (docs/partial-windows.md, "The rule for
// one window"): the times of the last sample at or before the window's
// start, middle and end, and the sample counts of its halves.
const (
	IngredientStart  = "B"
	IngredientMiddle = "M"
	IngredientEnd    = "L"
	IngredientFirst  = "c1"
	IngredientSecond = "c2"
)

// WithChecks returns expr or the checks: the query answers expr's series
// and, for each check, up to five samples labelled CheckLabel=ID/<name>
// with the check series' labels, the ingredients of the rule for one
// window (IngredientStart and the others), which Coverage.Complete judges.
// A series with no sample within five minutes before the window's end has
// none (it is gone). expr and the checks are evaluated at one time by the
// backend, so the checks say what expr's windows saw. A check reads its
// series five times (three instants, two half windows); the strict query
// computes the rule in PromQL, which reads every selector again for each
// of its uses.
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
		parts, err := ingredients(c)
		if err != nil {
			return nil, err
		}
		for _, e := range parts {
			if all == nil {
				all = e
			} else {
				all = orExpr(all, e)
			}
		}
	}
	// on(CheckLabel): Prometheus matches the sides of "or" on a signature
	// of each series' labels; the query's series have none of this label,
	// so theirs is one short signature instead of all their labels.
	return &parser.BinaryExpr{Op: parser.LOR, LHS: paren(expr), RHS: paren(all), VectorMatching: &parser.VectorMatching{
		Card: parser.CardManyToMany, MatchingLabels: []string{CheckLabel}, On: true,
	}}, nil
}

// ingredients are one check's five expressions, each labelled
// CheckLabel=ID/<name>.
func ingredients(c Check) ([]parser.Expr, error) {
	if c.Read.Metric == "" || !model.LabelValue(c.Read.Metric).IsValid() {
		return nil, errors.New("a check needs a metric name")
	}
	if c.Read.Range < 2*time.Millisecond {
		return nil, unsupported("range %s", c.Read.Range)
	}
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, model.MetricNameLabel, c.Read.Metric)}
	for _, n := range sortedLabelNames(c.Series) {
		if n == model.MetricNameLabel || n == CheckLabel {
			continue
		}
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, string(n), string(c.Series[n])))
	}
	vs := &parser.VectorSelector{LabelMatchers: ms}
	if model.LegacyValidation.IsValidMetricName(c.Read.Metric) {
		vs.Name = c.Read.Metric
	}
	r, o := c.Read.Range, c.Read.Offset
	h := r / 2
	str := func(s string) parser.Expr { return &parser.StringLiteral{Val: s} }
	tag := func(e parser.Expr, name string) parser.Expr {
		return &parser.Call{Func: parser.Functions["label_replace"], Args: parser.Expressions{
			e, str(CheckLabel), str(c.ID + "/" + name), str(""), str(""),
		}}
	}
	return []parser.Expr{
		tag(timestampAt(vs, o+r), IngredientStart),
		tag(timestampAt(vs, o+h), IngredientMiddle),
		tag(timestampAt(vs, o), IngredientEnd),
		tag(countOver(vs, r-h, o+h), IngredientFirst),
		tag(countOver(vs, h, o), IngredientSecond),
	}, nil
}

// SplitCheckLabel splits a CheckLabel value into the check's ID and the
// ingredient's name.
func SplitCheckLabel(v string) (id, ingredient string, ok bool) {
	i := strings.LastIndexByte(v, '/')
	if i < 0 {
		return "", "", false
	}
	return v[:i], v[i+1:], true
}

// ingredientNames are the ingredients in Coverage's order.
var ingredientNames = [5]string{IngredientStart, IngredientMiddle, IngredientEnd, IngredientFirst, IngredientSecond}

// Coverage is what an answer holds of one check's ingredients.
type Coverage struct {
	v   [5]float64 // in ingredientNames' order
	has [5]bool
}

// Set records the value of the ingredient called name; false for a name
// that is none.
func (c *Coverage) Set(name string, v float64) bool {
	i := slices.Index(ingredientNames[:], name)
	if i < 0 {
		return false
	}
	c.v[i], c.has[i] = v, true
	return true
}

// Present reports whether the answer held any ingredient: the series has
// a sample within five minutes before the window's end, or in it.
func (c *Coverage) Present() bool { return slices.Contains(c.has[:], true) }

// Complete applies RequireCompleteWindows' rule for one window of range r
// and offset o to the ingredients, the query evaluated at now (seconds, as
// time() is): the arithmetic of selectorCompleteness in the same order,
// so that a check decides as the strict query would for the series. A
// missing ingredient leaves the window incomplete, as a missing operand
// leaves the strict query's series out.
func (c *Coverage) Complete(now float64, r, o time.Duration) bool {
	if slices.Contains(c.has[:], false) {
		return false
	}
	start, middle, end, c1, c2 := c.v[0], c.v[1], c.v[2], c.v[3], c.v[4]
	maxOf := func(a, b float64) float64 { return ((a + b) + math.Abs(a-b)) / 2 }
	g1 := middle - start
	g2 := end - middle
	t := now - o.Seconds()
	slack := tolerance * r.Seconds()
	first := g1*c2 <= c1*g2+maxOf(0.5*g2, slack*c2)
	second := g2*c1 <= c2*g1+maxOf(0.5*g1, slack*c1)
	recent := (t-end)*c2 <= maxOf(1.1*g2, 0.5*g2+slack*c2)
	return first && second && recent
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
	vs, err := plainWindow(m)
	if err != nil {
		return nil, err
	}
	return arith(parser.ADD, arith(parser.MUL, timestampAt(vs, vs.OriginalOffset+m.Range), number(0)), number(1)), nil
}

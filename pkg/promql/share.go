package promql

import (
	"fmt"
	"slices"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// labelPreserving are the functions whose result has, for each input
// series, at most one sample carrying that series' labels (less __name__),
// so that filtering their result by label is the same as filtering their
// input.
var labelPreserving = map[string]bool{
	"rate": true, "irate": true, "increase": true, "delta": true, "idelta": true, "deriv": true,
	"avg_over_time": true, "min_over_time": true, "max_over_time": true, "sum_over_time": true,
	"count_over_time": true, "last_over_time": true, "present_over_time": true,
	"stddev_over_time": true, "stdvar_over_time": true, "quantile_over_time": true,
	"mad_over_time": true, "changes": true, "resets": true, "predict_linear": true,
	"holt_winters": true, "double_exponential_smoothing": true,
	"abs": true, "ceil": true, "floor": true, "round": true, "sqrt": true, "exp": true,
	"ln": true, "log2": true, "log10": true, "sgn": true,
	"clamp": true, "clamp_min": true, "clamp_max": true, "timestamp": true,
	"sort": true, "sort_desc": true, "histogram_quantile": true,
}

// Shareable reports whether a query shared by many requests, filtered by
// label afterwards, gives each request exactly the answer of its own query.
//
// full is the query rendered for one request, whose selectors carry the
// matchers moved; shared is the same template rendered without them and
// with added instead (typically resource!="" to select all objects). The
// answer is yes when the two trees are the same but for those matchers and
// for grouping labels the request fixes to one value, and when every step
// from the selectors to the result keeps the moved labels with their
// values: selectors, label-preserving functions, arithmetic with numbers or
// with request-independent vectors, aggregations whose grouping keeps the
// moved labels, and vector matching on them. Anything else (an aggregation
// across objects, label_replace onto a moved label, topk across objects, a
// template that places request values outside the matchers, a matcher on
// __name__) is not shareable, and the reason says why.
//
// The decision depends only on the template and the labels involved, so
// callers make it once per rule and resource, not per request.
func Shareable(full, shared parser.Expr, moved, added []*labels.Matcher) (bool, string) {
	mv := map[string]bool{}
	fixed := map[string]bool{}
	for _, m := range moved {
		if m.Name == model.MetricNameLabel {
			return false, "a matcher on __name__ would be moved"
		}
		mv[m.Name] = true
		if m.Type == labels.MatchEqual && m.Value != "" {
			fixed[m.Name] = true
		}
	}
	c := &comparer{moved: matcherCounts(moved), added: matcherCounts(added), movedLabels: mv, fixed: fixed}
	carrying, err := c.walk(full, shared)
	if err != nil {
		return false, err.Error()
	}
	if !carrying {
		return false, "the query does not depend on the request's matchers"
	}
	return true, ""
}

type comparer struct {
	moved, added map[string]int
	movedLabels  map[string]bool
	fixed        map[string]bool
}

func matcherCounts(ms []*labels.Matcher) map[string]int {
	out := make(map[string]int, len(ms))
	for _, m := range ms {
		out[m.String()]++
	}
	return out
}

// walk compares the full and shared trees node by node and returns whether
// the node's result carries the moved labels (depends on the request). It
// is one case per node type, each checking that both trees agree on the
// node before descending: split, the cases would be scattered over
// functions that each hold one comparison.
func (c *comparer) walk(f, s parser.Expr) (bool, error) {
	switch x := f.(type) {
	case *parser.ParenExpr:
		y, ok := s.(*parser.ParenExpr)
		if !ok {
			return false, differ(f, s)
		}
		return c.walk(x.Expr, y.Expr)
	case *parser.StepInvariantExpr:
		y, ok := s.(*parser.StepInvariantExpr)
		if !ok {
			return false, differ(f, s)
		}
		return c.walk(x.Expr, y.Expr)
	case *parser.UnaryExpr:
		y, ok := s.(*parser.UnaryExpr)
		if !ok || x.Op != y.Op {
			return false, differ(f, s)
		}
		return c.walk(x.Expr, y.Expr)
	case *parser.NumberLiteral, *parser.StringLiteral:
		if f.String() != s.String() {
			return false, fmt.Errorf("the template places request values in %s", f)
		}
		return false, nil
	case *parser.VectorSelector:
		y, ok := s.(*parser.VectorSelector)
		if !ok {
			return false, differ(f, s)
		}
		return c.selector(x, y)
	case *parser.MatrixSelector:
		y, ok := s.(*parser.MatrixSelector)
		if !ok || x.Range != y.Range {
			return false, differ(f, s)
		}
		return c.walk(x.VectorSelector, y.VectorSelector)
	case *parser.SubqueryExpr:
		y, ok := s.(*parser.SubqueryExpr)
		if !ok || x.Range != y.Range || x.Step != y.Step || x.OriginalOffset != y.OriginalOffset ||
			!sameTime(x.Timestamp, y.Timestamp) || x.StartOrEnd != y.StartOrEnd {
			return false, differ(f, s)
		}
		return c.walk(x.Expr, y.Expr)
	case *parser.Call:
		y, ok := s.(*parser.Call)
		if !ok || x.Func == nil || y.Func == nil || x.Func.Name != y.Func.Name || len(x.Args) != len(y.Args) {
			return false, differ(f, s)
		}
		return c.call(x, y)
	case *parser.AggregateExpr:
		y, ok := s.(*parser.AggregateExpr)
		if !ok || x.Op != y.Op || x.Without != y.Without {
			return false, differ(f, s)
		}
		return c.aggregate(x, y)
	case *parser.BinaryExpr:
		y, ok := s.(*parser.BinaryExpr)
		if !ok || x.Op != y.Op || x.ReturnBool != y.ReturnBool {
			return false, differ(f, s)
		}
		return c.binary(x, y)
	}
	return false, fmt.Errorf("%T is not supported for sharing", f)
}

func differ(f, s parser.Expr) error {
	return fmt.Errorf("the template renders %q for one request but %q when shared", f, s)
}

func sameTime(a, b *int64) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

// selector: the full selector must be the shared one with the moved
// matchers instead of the added ones, or identical (request-independent).
func (c *comparer) selector(f, s *parser.VectorSelector) (bool, error) {
	fm, sm := matcherCounts(f.LabelMatchers), matcherCounts(s.LabelMatchers)
	onlyF, onlyS := map[string]int{}, map[string]int{}
	for k, n := range fm {
		if d := n - sm[k]; d > 0 {
			onlyF[k] = d
		}
	}
	for k, n := range sm {
		if d := n - fm[k]; d > 0 {
			onlyS[k] = d
		}
	}
	var carrying bool
	switch {
	case len(onlyF) == 0 && len(onlyS) == 0:
		// The same selector in both: it does not depend on the request,
		// unless it is the selector the matchers would go to (no moved
		// matchers at all, as for an external rule without a selector).
		carrying = len(c.moved) == 0 && len(c.added) == 0
	case equalCounts(onlyF, c.moved) && equalCounts(onlyS, c.added):
		carrying = true
	default:
		return false, fmt.Errorf("selector %s does not carry exactly the request's matchers", f)
	}
	// Apart from the matchers (name, offset, @) the two must be the same.
	saved := f.LabelMatchers
	f.LabelMatchers = s.LabelMatchers
	same := f.String() == s.String()
	f.LabelMatchers = saved
	if !same {
		return false, differ(f, s)
	}
	return carrying, nil
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, n := range a {
		if b[k] != n {
			return false
		}
	}
	return true
}

func (c *comparer) call(f, s *parser.Call) (bool, error) {
	name := f.Func.Name
	carrying := false
	for i := range f.Args {
		ca, err := c.walk(f.Args[i], s.Args[i])
		if err != nil {
			return false, err
		}
		carrying = carrying || ca
	}
	if !carrying {
		return false, nil
	}
	switch {
	case labelPreserving[name]:
		// Exactly one series argument may depend on the request.
		n := 0
		for _, a := range f.Args {
			if a.Type() == parser.ValueTypeVector || a.Type() == parser.ValueTypeMatrix {
				n++
			}
		}
		if n > 1 {
			return false, fmt.Errorf("%s has several series arguments", name)
		}
		if name == "histogram_quantile" && c.movedLabels[model.BucketLabel] {
			return false, fmt.Errorf("histogram_quantile removes the %q label", model.BucketLabel)
		}
		return true, nil
	case name == "label_replace" || name == "label_join":
		if dst, ok := f.Args[1].(*parser.StringLiteral); ok && !c.movedLabels[dst.Val] {
			return true, nil
		}
		return false, fmt.Errorf("%s may rewrite a label the shared query is filtered on", name)
	}
	return false, fmt.Errorf("function %s is not known to keep each series' labels", name)
}

func (c *comparer) aggregate(f, s *parser.AggregateExpr) (bool, error) {
	if f.Param != nil || s.Param != nil {
		if f.Param == nil || s.Param == nil {
			return false, differ(f, s)
		}
		pc, err := c.walk(f.Param, s.Param)
		if err != nil {
			return false, err
		}
		if pc {
			return false, fmt.Errorf("the parameter of %s depends on the request", f.Op)
		}
	}
	carrying, err := c.walk(f.Expr, s.Expr)
	if err != nil || !carrying {
		if err == nil && !slices.Equal(f.Grouping, s.Grouping) {
			return false, differ(f, s)
		}
		return false, err
	}
	if f.Op == parser.COUNT_VALUES {
		if p, ok := f.Param.(*parser.StringLiteral); !ok || c.movedLabels[p.Val] {
			return false, fmt.Errorf("count_values writes a label the shared query is filtered on")
		}
	}
	if err := c.grouping(f.Without, f.Grouping, s.Grouping, f.Op.String()); err != nil {
		return false, err
	}
	return true, nil
}

// grouping checks that grouping by fg for one request and by sg when shared
// forms the same groups once the shared result is filtered: sg keeps every
// moved label and adds to fg only labels the request fixes to one value.
func (c *comparer) grouping(without bool, fg, sg []string, what string) error {
	if without {
		if !slices.Equal(fg, sg) {
			return fmt.Errorf("%s without (%s) for one request but without (%s) when shared", what, join(fg), join(sg))
		}
		for _, l := range fg {
			if c.movedLabels[l] {
				return fmt.Errorf("%s without (%s) drops a label the shared query is filtered on", what, l)
			}
		}
		return nil
	}
	fs := map[string]bool{}
	for _, l := range fg {
		fs[l] = true
	}
	ss := map[string]bool{}
	for _, l := range sg {
		ss[l] = true
	}
	for l := range c.movedLabels {
		if !ss[l] {
			return fmt.Errorf("%s by (%s) when shared drops %q, which the shared query is filtered on", what, join(sg), l)
		}
	}
	for l := range fs {
		if !ss[l] {
			return fmt.Errorf("%s by (%s) for one request but by (%s) when shared", what, join(fg), join(sg))
		}
	}
	for l := range ss {
		if !fs[l] && !c.fixed[l] {
			return fmt.Errorf("%s by (%s) when shared adds %q, which one request does not fix", what, join(sg), l)
		}
	}
	return nil
}

// binary compares two binary operations and returns whether the result
// carries the moved labels: it does when a side does, and then its vector
// matching must keep the request's series apart and its result follow a
// side that depends on the request.
func (c *comparer) binary(f, s *parser.BinaryExpr) (bool, error) {
	lc, err := c.walk(f.LHS, s.LHS)
	if err != nil {
		return false, err
	}
	rc, err := c.walk(f.RHS, s.RHS)
	if err != nil {
		return false, err
	}
	if !lc && !rc {
		return false, sameMatching(f, s)
	}
	lv := f.LHS.Type() == parser.ValueTypeVector
	rv := f.RHS.Type() == parser.ValueTypeVector
	if !lv || !rv { // with a scalar: sample by sample
		return true, sameMatching(f, s)
	}
	if err := c.vectorMatching(f, s, lc, rc); err != nil {
		return false, err
	}
	if err := followsRequest(f.Op, f.VectorMatching.Card, lc, rc); err != nil {
		return false, err
	}
	return true, nil
}

// vectorMatching checks the matching of two vector-vector operations whose
// left (lc) or right (rc) sides carry the moved labels.
func (c *comparer) vectorMatching(f, s *parser.BinaryExpr, lc, rc bool) error {
	fm, sm := f.VectorMatching, s.VectorMatching
	if fm == nil || sm == nil {
		return differ(f, s)
	}
	if fm.Card != sm.Card || fm.On != sm.On || !slices.Equal(fm.Include, sm.Include) {
		return differ(f, s)
	}
	// Vector matching must pair series on the moved labels where both
	// sides depend on the request, or where one-to-one matching against a
	// request-independent side must stay unique.
	if (lc && rc) || fm.Card == parser.CardOneToOne {
		if fm.On {
			return c.grouping(false, fm.MatchingLabels, sm.MatchingLabels, "on")
		}
		return c.grouping(true, fm.MatchingLabels, sm.MatchingLabels, "ignoring")
	}
	if !slices.Equal(fm.MatchingLabels, sm.MatchingLabels) {
		return differ(f, s)
	}
	return nil
}

// followsRequest checks that the result of a vector-vector operation op
// with matching card follows a side that depends on the request: lc and
// rc say which do.
func followsRequest(op parser.ItemType, card parser.VectorMatchCardinality, lc, rc bool) error {
	switch op {
	case parser.LOR:
		if !lc || !rc {
			return fmt.Errorf("or with a request-independent side")
		}
		return nil
	case parser.LAND, parser.LUNLESS:
		if !lc {
			return fmt.Errorf("%s keeps the request-independent side", op)
		}
		return nil
	}
	switch card {
	case parser.CardOneToOne, parser.CardManyToOne:
		if !lc {
			return fmt.Errorf("%s keeps the labels of its request-independent left side", op)
		}
	case parser.CardOneToMany:
		if !rc {
			return fmt.Errorf("%s keeps the labels of its request-independent right side", op)
		}
	default:
		return fmt.Errorf("%s with many-to-many matching", op)
	}
	return nil
}

func sameMatching(f, s *parser.BinaryExpr) error {
	fm, sm := f.VectorMatching, s.VectorMatching
	if (fm == nil) != (sm == nil) {
		return differ(f, s)
	}
	if fm != nil && (fm.Card != sm.Card || fm.On != sm.On || !slices.Equal(fm.MatchingLabels, sm.MatchingLabels) || !slices.Equal(fm.Include, sm.Include)) {
		return differ(f, s)
	}
	return nil
}

func join(ls []string) string {
	out := ""
	for i, l := range ls {
		if i > 0 {
			out += ", "
		}
		out += l
	}
	return out
}

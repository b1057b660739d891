package promql

import (
	"fmt"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// isolatedFunctions are the functions Isolate lets through: each computes
// its output from its arguments' series alone and names no label of its
// own (label_replace and label_join are checked apart). A function not
// listed (info, which reads info series by their identifying labels, not
// by the query's selectors; or one a later parser adds) is refused, so
// that a new way to read or name series is never let through unexamined.
var isolatedFunctions = map[string]bool{
	"abs": true, "absent": true, "absent_over_time": true, "acos": true, "acosh": true,
	"asin": true, "asinh": true, "atan": true, "atanh": true, "avg_over_time": true,
	"ceil": true, "changes": true, "clamp": true, "clamp_max": true, "clamp_min": true,
	"cos": true, "cosh": true, "count_over_time": true, "days_in_month": true,
	"day_of_month": true, "day_of_week": true, "day_of_year": true, "deg": true,
	"delta": true, "deriv": true, "double_exponential_smoothing": true, "end": true,
	"exp": true, "first_over_time": true, "floor": true, "histogram_avg": true,
	"histogram_count": true, "histogram_fraction": true, "histogram_quantile": true,
	"histogram_stddev": true, "histogram_stdvar": true, "histogram_sum": true,
	"holt_winters": true, "hour": true, "idelta": true, "increase": true, "irate": true,
	"label_join": true, "label_replace": true, "last_over_time": true, "ln": true,
	"log10": true, "log2": true, "mad_over_time": true, "max_over_time": true,
	"min_over_time": true, "minute": true, "month": true, "pi": true,
	"predict_linear": true, "present_over_time": true, "quantile_over_time": true,
	"rad": true, "range": true, "rate": true, "resets": true, "round": true,
	"scalar": true, "sgn": true, "sin": true, "sinh": true, "sort": true,
	"sort_by_label": true, "sort_by_label_desc": true, "sort_desc": true, "sqrt": true,
	"start": true, "step": true, "stddev_over_time": true, "stdvar_over_time": true,
	"sum_over_time": true, "tan": true, "tanh": true, "time": true, "timestamp": true,
	"ts_of_first_over_time": true, "ts_of_last_over_time": true,
	"ts_of_max_over_time": true, "ts_of_min_over_time": true, "vector": true, "year": true,
}

// IsolationError is a query Isolate refuses, naming the construct.
type IsolationError struct {
	// Construct is the part of the query refused, as printed.
	Construct string
	// Reason says why it could read or name series of another value.
	Reason string
}

func (e *IsolationError) Error() string {
	return fmt.Sprintf("%s: %s", e.Construct, e.Reason)
}

// Isolate returns query rewritten so that it reads only series whose label
// is value (a namespace, say), or an *IsolationError naming the construct
// that could read or make series of another value. It is the one check
// between a query written by a tenant and the backend:
//
//   - every vector selector, in range selectors and subqueries too, gets
//     the matcher label="value"; a selector that already has it keeps it,
//     and one with any other matcher on label (another value, a regular
//     expression, a negation) is refused: a disagreeing matcher is never
//     overridden silently;
//   - label_replace and label_join onto label, and count_values naming
//     label, are refused: they would make series that claim another value;
//   - any function not known to compute from its arguments' series alone
//     (isolatedFunctions) is refused.
//
// What is left cannot reach another value: every series the query reads
// passes a selector with label="value", and numbers, vector(), time() and
// the like read none; operators (or, and, unless, on, group_left), offset
// and @ combine or move in time what those selectors return, never widen
// it. The functions and count_values are checked, and the selectors
// checked again, on the rewritten query printed and parsed anew
// (Isolated), so the text sent holds what was proven.
func Isolate(query, label, value string) (parser.Expr, error) {
	expr, err := Parse(query)
	if err != nil {
		return nil, &IsolationError{Construct: "query", Reason: err.Error()}
	}
	// The selectors are pinned here; everything else is checked on the
	// text as it will be sent (Isolated), the one place that decides.
	var refused error
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok && refused == nil {
			refused = isolateSelector(vs, label, value)
		}
		return refused
	})
	if refused != nil {
		return nil, refused
	}
	again, err := Parse(expr.String())
	if err != nil {
		return nil, &IsolationError{Construct: expr.String(), Reason: "the rewritten query does not parse: " + err.Error()}
	}
	if err := Isolated(again, label, value); err != nil {
		return nil, err
	}
	return again, nil
}

// Isolated reports, as an *IsolationError, the first thing in expr that
// lets it read or make series whose label is not value: what Isolate
// proves of the query it returns.
func Isolated(expr parser.Expr, label, value string) error {
	var bad error
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		if bad != nil {
			return bad
		}
		switch n := node.(type) {
		case *parser.VectorSelector:
			pinned, err := pinnedTo(n, label, value)
			switch {
			case err != nil:
				bad = err
			case !pinned:
				bad = &IsolationError{Construct: n.String(), Reason: fmt.Sprintf("no %s=%q matcher", label, value)}
			}
		case *parser.Call:
			bad = isolateCall(n, label)
		case *parser.AggregateExpr:
			bad = isolateAggregate(n, label)
		}
		return bad
	})
	return bad
}

// isolateSelector pins vs to label="value", or refuses a disagreeing
// matcher on label.
func isolateSelector(vs *parser.VectorSelector, label, value string) error {
	pinned, err := pinnedTo(vs, label, value)
	if err == nil && !pinned {
		vs.LabelMatchers = append(slices.Clip(vs.LabelMatchers), labels.MustNewMatcher(labels.MatchEqual, label, value))
	}
	return err
}

// pinnedTo reports whether vs has the matcher label="value", and refuses
// any other matcher on label.
func pinnedTo(vs *parser.VectorSelector, label, value string) (bool, error) {
	pinned := false
	for _, m := range vs.LabelMatchers {
		if m.Name != label {
			continue
		}
		if m.Type != labels.MatchEqual || m.Value != value {
			return false, &IsolationError{Construct: vs.String(), Reason: fmt.Sprintf("the matcher %s would read series outside %s=%q; leave it out (it is added) or write %s=%q", m, label, value, label, value)}
		}
		pinned = true
	}
	return pinned, nil
}

// isolateAggregate refuses count_values naming label (or a label that is
// not a string literal).
func isolateAggregate(a *parser.AggregateExpr, label string) error {
	if a.Op != parser.COUNT_VALUES {
		return nil
	}
	if s, ok := unparen(a.Param).(*parser.StringLiteral); !ok || s.Val == label {
		return &IsolationError{Construct: a.String(), Reason: fmt.Sprintf("count_values writes label %q", label)}
	}
	return nil
}

// isolateCall refuses a function that could read series no selector of
// the query reads, or write label.
func isolateCall(c *parser.Call, label string) error {
	name := c.Func.Name
	if !isolatedFunctions[name] {
		return &IsolationError{Construct: c.String(), Reason: fmt.Sprintf("function %s is not one promgate knows to read only its arguments' series", name)}
	}
	if (name == "label_replace" || name == "label_join") && len(c.Args) > 1 {
		if s, ok := unparen(c.Args[1]).(*parser.StringLiteral); !ok || s.Val == label {
			return &IsolationError{Construct: c.String(), Reason: fmt.Sprintf("%s writes label %q", name, label)}
		}
	}
	return nil
}

// Package promql builds and checks the PromQL promgate sends. Request data
// (object names, label selectors) only ever enters a query as escaped label
// matchers built here; every rendered query is parsed before it is sent.
package promql

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// ErrUnsupportedSelector marks label selectors that PromQL cannot express.
var ErrUnsupportedSelector = errors.New("unsupported label selector")

var (
	legacyLabelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
	promParser      = parser.NewParser(parser.Options{})
)

// ValidLabelName reports whether name can be used unquoted in PromQL, which
// every Prometheus-compatible backend accepts.
func ValidLabelName(name string) bool { return legacyLabelName.MatchString(name) }

// Equal returns the matcher name="value".
func Equal(name, value string) *labels.Matcher {
	return &labels.Matcher{Type: labels.MatchEqual, Name: name, Value: value}
}

// OneOf returns a matcher selecting exactly the given values of name: an
// equality matcher for one value, otherwise an anchored regular expression
// whose alternatives are escaped, so that no value is read as a pattern.
// Values are de-duplicated and sorted so equal sets give equal queries.
func OneOf(name string, values []string) *labels.Matcher {
	if len(values) == 1 {
		return Equal(name, values[0])
	}
	return regexMatcher(labels.MatchRegexp, name, Alternation(values))
}

// regexMatcher returns a regex matcher with its regex compiled, so that its
// Matches method works (a literal labels.Matcher's would panic).
func regexMatcher(t labels.MatchType, name, re string) *labels.Matcher {
	m, err := labels.NewMatcher(t, name, re)
	if err != nil { // only for values that are not valid UTF-8
		return &labels.Matcher{Type: t, Name: name, Value: re}
	}
	return m
}

// Alternation returns values as an escaped regular expression alternation,
// sorted and de-duplicated.
func Alternation(values []string) string {
	vs := append([]string(nil), values...)
	sort.Strings(vs)
	var b strings.Builder
	prev := ""
	for i, v := range vs {
		if i > 0 && v == prev {
			continue
		}
		if b.Len() > 0 || i > 0 {
			b.WriteByte('|')
		}
		b.WriteString(regexp.QuoteMeta(v))
		prev = v
	}
	return b.String()
}

// MatchersForSelector converts a Kubernetes label selector into PromQL label
// matchers with the same meaning. Operators PromQL cannot express (Gt, Lt)
// and label names PromQL cannot spell give an error wrapping
// ErrUnsupportedSelector. The replace function, if not nil, is applied to
// every value (prometheus-adapter's labelValueReplacements).
func MatchersForSelector(sel k8slabels.Selector, replace func(string) string) ([]*labels.Matcher, error) {
	if sel == nil {
		return nil, nil
	}
	reqs, selectable := sel.Requirements()
	if !selectable {
		return nil, fmt.Errorf("%w: selector %q selects nothing", ErrUnsupportedSelector, sel.String())
	}
	out := make([]*labels.Matcher, 0, len(reqs))
	for _, r := range reqs {
		name := r.Key()
		if !ValidLabelName(name) {
			return nil, fmt.Errorf("%w: %q is not a Prometheus label name", ErrUnsupportedSelector, name)
		}
		values := r.Values().List()
		for i := range values {
			if replace != nil {
				values[i] = replace(values[i])
			}
			if !utf8.ValidString(values[i]) {
				return nil, fmt.Errorf("%w: value %q of %q is not valid UTF-8", ErrUnsupportedSelector, values[i], name)
			}
		}
		var m *labels.Matcher
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals:
			m = Equal(name, values[0])
		case selection.NotEquals:
			m = &labels.Matcher{Type: labels.MatchNotEqual, Name: name, Value: values[0]}
		case selection.In:
			m = OneOf(name, values)
		case selection.NotIn:
			if len(values) == 1 {
				m = &labels.Matcher{Type: labels.MatchNotEqual, Name: name, Value: values[0]}
			} else {
				m = regexMatcher(labels.MatchNotRegexp, name, Alternation(values))
			}
		case selection.Exists:
			m = &labels.Matcher{Type: labels.MatchNotEqual, Name: name, Value: ""}
		case selection.DoesNotExist:
			m = Equal(name, "")
		default:
			return nil, fmt.Errorf("%w: operator %q on %q cannot be expressed in PromQL", ErrUnsupportedSelector, r.Operator(), name)
		}
		out = append(out, m)
	}
	return out, nil
}

// JoinMatchers renders matchers as the comma-separated text that goes
// between braces, values quoted and escaped.
func JoinMatchers(ms []*labels.Matcher) string {
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return strings.Join(parts, ",")
}

// Parse parses a PromQL expression.
func Parse(query string) (parser.Expr, error) {
	return promParser.ParseExpr(query)
}

// ParseSelector parses a series selector such as `{__name__=~"^http_.*"}`.
func ParseSelector(sel string) ([]*labels.Matcher, error) {
	return promParser.ParseMetricSelector(sel)
}

// Window returns the range of the range selectors in expr when all of them
// share one range (e.g. rate(x[2m]) gives 2m), and false otherwise.
func Window(expr parser.Expr) (time.Duration, bool) {
	var w time.Duration
	ok := true
	seen := false
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		var r time.Duration
		switch x := n.(type) {
		case *parser.MatrixSelector:
			r = x.Range
		case *parser.SubqueryExpr:
			r = x.Range
		default:
			return nil
		}
		if seen && r != w {
			ok = false
		}
		w, seen = r, true
		return nil
	})
	return w, ok && seen
}

// TemplateArgs are the fields a metricsQuery template may use, as in
// prometheus-adapter.
type TemplateArgs struct {
	// Series is the series (metric) name.
	Series string
	// LabelMatchers is the comma-separated, escaped label matchers.
	LabelMatchers string
	// LabelValuesByName maps each matched label to its value(s), joined by "|".
	LabelValuesByName map[string]string
	// GroupBy is the comma-separated label names to aggregate by.
	GroupBy string
	// GroupBySlice is GroupBy as a slice.
	GroupBySlice []string
}

// Template is a compiled query template with << >> delimiters.
type Template struct {
	text string
	tmpl *template.Template
}

// DefaultMetricsQuery is used when a rule has no metricsQuery.
const DefaultMetricsQuery = "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)"

// NewTemplate compiles text and checks that it renders a valid query for
// representative arguments.
func NewTemplate(text string) (*Template, error) {
	t, err := template.New("query").Delims("<<", ">>").Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, err
	}
	tp := &Template{text: text, tmpl: t}
	sample := TemplateArgs{
		Series:            "some_metric",
		LabelMatchers:     `namespace="default",pod=~"a|b"`,
		LabelValuesByName: map[string]string{"namespace": "default", "pod": "a|b"},
		GroupBy:           "pod",
		GroupBySlice:      []string{"pod"},
	}
	if _, _, err := tp.Render(sample); err != nil {
		return nil, err
	}
	return tp, nil
}

// String returns the template's text.
func (t *Template) String() string { return t.text }

// Render executes the template and parses the result, returning the query
// text and its AST. A query that does not parse is an error: it is never sent.
func (t *Template) Render(args TemplateArgs) (string, parser.Expr, error) {
	var buf bytes.Buffer
	if err := t.tmpl.Execute(&buf, args); err != nil {
		return "", nil, fmt.Errorf("rendering query template: %w", err)
	}
	q := strings.TrimSpace(buf.String())
	if q == "" {
		return "", nil, errors.New("query template rendered an empty query")
	}
	expr, err := Parse(q)
	if err != nil {
		return "", nil, fmt.Errorf("query template rendered invalid PromQL %q: %w", q, err)
	}
	return q, expr, nil
}

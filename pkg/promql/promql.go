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
	promParser      = parser.NewParser(parser.Options{EnableExperimentalFunctions: true, Functions: functions()})
)

// functions are the parser's functions, experimental ones included (a
// backend decides what it serves), plus holt_winters, Prometheus 2's name
// for double_exponential_smoothing, which prometheus-adapter users' rules
// still call.
func functions() map[string]*parser.Function {
	fs := make(map[string]*parser.Function, len(parser.Functions)+1)
	for k, v := range parser.Functions {
		fs[k] = v
	}
	if des, ok := parser.Functions["double_exponential_smoothing"]; ok {
		hw := *des
		hw.Name = "holt_winters"
		fs[hw.Name] = &hw
	}
	return fs
}

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
	if expr == nil { // a query sent unchecked (another dialect, or a template PromQL cannot parse)
		return 0, false
	}
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
	// checked says a sample rendering parses as PromQL, so that every
	// rendering must: queries are then checked and values placed in the
	// syntax tree. Otherwise the template is in a dialect this parser does
	// not know, and its renderings are sent as they are.
	checked bool
}

// DefaultMetricsQuery is used when a rule has no metricsQuery.
const DefaultMetricsQuery = "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)"

// NewTemplate compiles text. Template syntax errors are errors. What
// cannot be checked statically is a warning, never a refusal, as
// prometheus-adapter loads such templates too: a sample rendering that
// does not parse as PromQL (MetricsQL, a function this parser does not
// know), or a .LabelValuesByName key that only some requests have.
func NewTemplate(text string) (*Template, []string, error) {
	return newTemplate(text, false)
}

// NewMetricsQLTemplate is NewTemplate for a backend that speaks MetricsQL
// (VictoriaMetrics): a template that does not parse as PromQL is expected
// there, so it is no warning. Such templates are unchecked all the same:
// their renderings are sent as they are, and request values placed in them
// are restricted to an alphabet that cannot leave a string or a regular
// expression (Kubernetes names and namespaces fit it), while the label
// matchers of .LabelMatchers are quoted as PromQL and MetricsQL both read
// them. A template that parses as PromQL is checked as with NewTemplate.
func NewMetricsQLTemplate(text string) (*Template, []string, error) {
	return newTemplate(text, true)
}

func newTemplate(text string, metricsQL bool) (*Template, []string, error) {
	t, err := template.New("query").Delims("<<", ">>").Option("missingkey=error").Parse(text)
	if err != nil {
		return nil, nil, err
	}
	tp := &Template{text: text, tmpl: t}
	var warnings []string
	sample := TemplateArgs{
		Series:            "some_metric",
		LabelMatchers:     `namespace="default",pod=~"a|b"`,
		LabelValuesByName: map[string]string{"namespace": "default", "pod": "a|b"},
		GroupBy:           "pod",
		GroupBySlice:      []string{"pod"},
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, sample); err != nil {
		// A key the sample lacks: render again with missing keys empty to
		// check the rest.
		lenient, cerr := t.Clone()
		if cerr != nil {
			return nil, nil, cerr
		}
		buf.Reset()
		if err2 := lenient.Option("missingkey=zero").Execute(&buf, sample); err2 != nil {
			return nil, nil, fmt.Errorf("rendering query template: %w", err2)
		}
		warnings = append(warnings, fmt.Sprintf("uses a .LabelValuesByName key that only requests selecting on that label have (%v); other requests fail", err))
	}
	q := strings.TrimSpace(buf.String())
	if q == "" {
		return nil, nil, errors.New("query template rendered an empty query")
	}
	if _, err := Parse(q); err != nil {
		if metricsQL {
			return tp, warnings, nil
		}
		warnings = append(warnings, fmt.Sprintf("does not parse as PromQL (%v): queries are sent to the backend as rendered, unchecked", err))
	} else {
		tp.checked = true
	}
	return tp, warnings, nil
}

// String returns the template's text.
func (t *Template) String() string { return t.text }

// Checked reports whether the template's queries are parsed as PromQL.
func (t *Template) Checked() bool { return t.checked }

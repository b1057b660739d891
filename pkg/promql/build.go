package promql

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

// A Part is one label a request selects on, as prometheus-adapter hands it
// to a metricsQuery template: a matcher for .LabelMatchers and the raw
// values that .LabelValuesByName shows, joined by "|".
type Part struct {
	// Matcher is the escaped matcher that goes into .LabelMatchers.
	Matcher *labels.Matcher
	// Values are the values the request names for the label.
	Values []string
	// Any marks a part that selects every non-empty value of the label
	// (all objects of a shared query): .LabelValuesByName then reads ".+"
	// inside a regular expression and cannot be placed anywhere else.
	Any bool
}

// EqualPart selects one value of name.
func EqualPart(name, value string) Part {
	return Part{Matcher: Equal(name, value), Values: []string{value}}
}

// OneOfPart selects exactly the given values of name (an escaped
// alternation when there are several).
func OneOfPart(name string, values []string) Part {
	return Part{Matcher: OneOf(name, values), Values: values}
}

// AnyPart selects every series that has the label name.
func AnyPart(name string) Part {
	return Part{Matcher: &labels.Matcher{Type: labels.MatchNotEqual, Name: name, Value: ""}, Any: true}
}

// SelectorParts converts a Kubernetes label selector (a metric label
// selector) into parts, with the same meaning as MatchersForSelector. The
// replace function, if not nil, is applied to every value
// (labelValueReplacements).
func SelectorParts(sel k8slabels.Selector, replace func(string) string) ([]Part, error) {
	ms, err := MatchersForSelector(sel, replace)
	if err != nil || len(ms) == 0 {
		return nil, err
	}
	reqs, _ := sel.Requirements()
	parts := make([]Part, len(ms))
	for i, r := range reqs {
		var values []string
		if r.Operator() != selection.Exists && r.Operator() != selection.DoesNotExist {
			values = r.Values().List()
			for j := range values {
				if replace != nil {
					values[j] = replace(values[j])
				}
			}
		}
		parts[i] = Part{Matcher: ms[i], Values: values}
	}
	return parts, nil
}

// Request is what one metrics request selects, in the terms of a
// prometheus-adapter metricsQuery template.
type Request struct {
	// Series is the series (metric) name; empty for resource rules.
	Series string
	// Parts are the selected labels in prometheus-adapter's order: the
	// metric label selector's requirements, then the namespace, then the
	// objects.
	Parts []Part
	// GroupBy is what .GroupBy and .GroupBySlice show.
	GroupBy []string
}

// Query is a rendered query ready to send.
type Query struct {
	// Text is what is sent to the backend.
	Text string
	// Expr is the parsed query; nil when Checked is false.
	Expr parser.Expr
	// Placed are the labels whose .LabelValuesByName the template used.
	Placed map[string]bool
	// Checked says the query was parsed as PromQL and request values were
	// placed into its syntax tree. A query in another dialect (MetricsQL,
	// a function this parser does not know) is sent as rendered, with
	// request values that are restricted to characters that cannot leave
	// a quoted string (see Build).
	Checked bool
}

// sentinel is what .LabelValuesByName holds for part i while the template
// runs: an identifier that lexes as one token anywhere PromQL allows a
// name or a string. It carries a random nonce chosen at start, so that no
// template and no request value can contain it: request values do reach
// the parsed text (escaped, in .LabelMatchers), and a value spelling a
// placeholder must stay that value.
func sentinel(i int) string { return sentinelPrefix + strconv.Itoa(i) + "__" }

var (
	sentinelPrefix = "__promgate_" + nonce() + "_v"
	sentinelRE     = regexp.MustCompile(regexp.QuoteMeta(sentinelPrefix) + `([0-9]+)__`)
)

// nonce returns 16 random hex digits.
func nonce() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("promql: no randomness for placeholders: %v", err))
	}
	return hex.EncodeToString(b[:])
}

// uncheckedValue is the alphabet request values may have to be placed into
// a query that could not be parsed: Kubernetes names, namespaces and label
// values all fit it, and none of its characters can end a quoted string or
// start an escape.
var uncheckedValue = regexp.MustCompile(`^[A-Za-z0-9_.:-]*$`)

// ErrValuePlacement marks a template that uses .LabelValuesByName where a
// request value cannot be placed safely (for instance as a label name).
var ErrValuePlacement = errors.New("template places a request value where it cannot be escaped")

// Build renders the template for a request, the way prometheus-adapter
// would, and returns the query to send.
//
// .Series, .LabelMatchers, .GroupBy and .GroupBySlice are rendered as text:
// the series name must be a valid metric name, the matchers are escaped,
// and the group-by labels come from the configuration. .LabelValuesByName
// is never rendered from request data: the template sees a placeholder per
// label, the result is parsed, and each placeholder is then replaced in the
// syntax tree by the values, escaped for where it stands: inside a regular
// expression matcher as an escaped alternation (a name with dots matches
// only itself), inside an equality matcher or a string literal as the
// literal values joined by "|" (prometheus-adapter's text). The query sent
// is the printed tree, so no request value can change what it selects.
func (t *Template) Build(r Request) (Query, error) {
	if r.Series != "" && !model.LegacyValidation.IsValidMetricName(r.Series) {
		return Query{}, fmt.Errorf("series name %q is not a valid metric name", r.Series)
	}
	byName := make(map[string]string, len(r.Parts))
	ms := make([]*labels.Matcher, len(r.Parts))
	for i, p := range r.Parts {
		byName[p.Matcher.Name] = sentinel(i)
		ms[i] = p.Matcher
	}
	var buf bytes.Buffer
	err := t.tmpl.Execute(&buf, TemplateArgs{
		Series:            r.Series,
		LabelMatchers:     JoinMatchers(ms),
		LabelValuesByName: byName,
		GroupBy:           strings.Join(r.GroupBy, ","),
		GroupBySlice:      r.GroupBy,
	})
	if err != nil {
		return Query{}, fmt.Errorf("rendering query template: %w", err)
	}
	text := strings.TrimSpace(buf.String())
	if text == "" {
		return Query{}, errors.New("query template rendered an empty query")
	}
	expr, perr := Parse(text)
	if perr != nil {
		if t.checked {
			return Query{}, fmt.Errorf("query template rendered invalid PromQL %q: %w", text, perr)
		}
		out, err := placeText(text, r.Parts)
		if err != nil {
			return Query{}, err
		}
		return Query{Text: out, Placed: placed(text, r.Parts)}, nil
	}
	if err := placeValues(expr, r.Parts); err != nil {
		return Query{}, err
	}
	out := expr.String()
	if m := leftover(expr, r.Parts); m != "" {
		return Query{}, fmt.Errorf("%w: .LabelValuesByName.%s", ErrValuePlacement, labelOf(m, r.Parts))
	}
	return Query{Text: out, Expr: expr, Checked: true, Placed: placed(text, r.Parts)}, nil
}

// leftover returns a placeholder that placeValues could not replace (one
// the template put where no value can be placed), or "". The request's own
// matchers are left out of the search: their values are the request's.
func leftover(expr parser.Expr, parts []Part) string {
	var own []*labels.Matcher
	var saved []string
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			for _, m := range vs.LabelMatchers {
				if isPart(m, parts) {
					own = append(own, m)
					saved = append(saved, m.Value)
				}
			}
		}
		return nil
	})
	for _, m := range own {
		m.Value = ""
	}
	found := sentinelRE.FindString(expr.String())
	for i, m := range own {
		m.Value = saved[i]
	}
	return found
}

// labelOf names the label whose placeholder is s.
func labelOf(s string, parts []Part) string {
	m := sentinelRE.FindStringSubmatch(s)
	if m == nil {
		return "?"
	}
	i, _ := strconv.Atoi(m[1])
	if i < len(parts) {
		return parts[i].Matcher.Name
	}
	return "?"
}

// placeValues replaces placeholders in matchers and string literals.
func placeValues(expr parser.Expr, parts []Part) error {
	var err error
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		switch x := n.(type) {
		case *parser.VectorSelector:
			for i, m := range x.LabelMatchers {
				if !strings.Contains(m.Value, sentinelPrefix) || isPart(m, parts) {
					continue // a request's own matcher (.LabelMatchers) keeps its value
				}
				nm, e := placeInMatcher(m, parts)
				if e != nil {
					err = e
					return e
				}
				x.LabelMatchers[i] = nm
			}
		case *parser.StringLiteral:
			v, e := replaceSentinels(x.Val, parts, literalValue)
			if e != nil {
				err = e
				return e
			}
			x.Val = v
		}
		return nil
	})
	return err
}

// isPart reports whether m is one of the request's own matchers.
func isPart(m *labels.Matcher, parts []Part) bool {
	for _, p := range parts {
		if p.Matcher.Name == m.Name && p.Matcher.Type == m.Type && p.Matcher.Value == m.Value {
			return true
		}
	}
	return false
}

func placeInMatcher(m *labels.Matcher, parts []Part) (*labels.Matcher, error) {
	var v string
	var err error
	switch m.Type {
	case labels.MatchRegexp, labels.MatchNotRegexp:
		whole := sentinelRE.FindStringIndex(m.Value)
		if whole != nil && whole[0] == 0 && whole[1] == len(m.Value) {
			v, err = replaceSentinels(m.Value, parts, regexValue)
		} else {
			v, err = replaceSentinels(m.Value, parts, func(p Part) (string, error) {
				s, err := regexValue(p)
				return "(?:" + s + ")", err
			})
		}
	default:
		v, err = replaceSentinels(m.Value, parts, literalValue)
	}
	if err != nil {
		return nil, fmt.Errorf("label %q: %w", m.Name, err)
	}
	return labels.NewMatcher(m.Type, m.Name, v)
}

func replaceSentinels(s string, parts []Part, value func(Part) (string, error)) (string, error) {
	var err error
	out := sentinelRE.ReplaceAllStringFunc(s, func(m string) string {
		i, _ := strconv.Atoi(sentinelRE.FindStringSubmatch(m)[1])
		if i >= len(parts) {
			return m
		}
		v, e := value(parts[i])
		if e != nil && err == nil {
			err = e
		}
		return v
	})
	return out, err
}

// regexValue is a part's values as an escaped alternation.
func regexValue(p Part) (string, error) {
	if p.Any {
		return ".+", nil
	}
	return Alternation(p.Values), nil
}

// literalValue is a part's values as prometheus-adapter writes them.
func literalValue(p Part) (string, error) {
	if p.Any {
		return "", fmt.Errorf("%w: .LabelValuesByName.%s of a query shared by all objects outside a regular expression", ErrValuePlacement, p.Matcher.Name)
	}
	return strings.Join(p.Values, "|"), nil
}

// placeText substitutes placeholders in a query that did not parse
// (MetricsQL, a function PromQL's parser does not know). The text is
// lexed for quoted strings as PromQL and MetricsQL quote them, and each
// placeholder is replaced according to where it stands:
//
//   - in the string of a =~ or !~ matcher: the values as an alternation,
//     each dot escaped as [.] (a dot would match any character), in
//     (?:...) unless the placeholder is the whole string;
//   - in the string of a = or != matcher: the values joined by "|", as
//     prometheus-adapter writes them;
//   - in any other string (a function argument, which may be read as a
//     regular expression): the values joined by "|" when none has a dot,
//     else an error;
//   - outside a string, where a value would be part of the expression
//     ("-" an operator, a name a metric): an error.
//
// Values must fit uncheckedValue, so that they cannot leave the string
// they are placed in.
func placeText(text string, parts []Part) (string, error) {
	var b strings.Builder
	last := 0
	for _, loc := range sentinelRE.FindAllStringSubmatchIndex(text, -1) {
		i, _ := strconv.Atoi(text[loc[2]:loc[3]])
		if i >= len(parts) {
			continue
		}
		p := parts[i]
		ctx, whole := stringContext(text, loc[0], loc[1])
		v, err := uncheckedText(p, ctx, whole)
		if err != nil {
			return "", err
		}
		b.WriteString(text[last:loc[0]])
		b.WriteString(v)
		last = loc[1]
	}
	b.WriteString(text[last:])
	return b.String(), nil
}

// textContext is where a placeholder stands in an unparsed query.
type textContext int

const (
	outsideString textContext = iota
	regexString               // the string of a =~ or !~ matcher
	literalString             // the string of a = or != matcher
	otherString               // any other string
)

// stringContext lexes text up to the placeholder at [start, end) and says
// what it stands in, and whether it is the whole string.
func stringContext(text string, start, end int) (textContext, bool) {
	open := -1 // index of the opening quote of the string we are in
	var quote byte
	for i := 0; i < start; i++ {
		c := text[i]
		switch {
		case open < 0 && (c == '"' || c == '\'' || c == '`'):
			open, quote = i, c
		case open >= 0 && c == '\\' && quote != '`':
			i++ // an escaped character cannot end the string
		case open >= 0 && c == quote:
			open = -1
		case open < 0 && c == '#':
			// a comment runs to the end of the line
			for i < start && text[i] != '\n' {
				i++
			}
		}
	}
	if open < 0 {
		return outsideString, false
	}
	whole := end < len(text) && text[end] == quote && open == start-1
	op := strings.TrimRight(text[:open], " \t\r\n")
	switch {
	case strings.HasSuffix(op, "=~"), strings.HasSuffix(op, "!~"):
		return regexString, whole
	case strings.HasSuffix(op, "="):
		return literalString, whole
	}
	return otherString, whole
}

// uncheckedText is a part's values as placed in ctx (see placeText).
func uncheckedText(p Part, ctx textContext, whole bool) (string, error) {
	name := p.Matcher.Name
	if ctx == outsideString {
		return "", fmt.Errorf("%w: .LabelValuesByName.%s outside a quoted string in a query that is not parsed as PromQL", ErrValuePlacement, name)
	}
	if p.Any {
		if ctx != regexString {
			return "", fmt.Errorf("%w: .LabelValuesByName.%s of a query shared by all objects outside a regular expression", ErrValuePlacement, name)
		}
		return ".+", nil
	}
	for _, v := range p.Values {
		if !uncheckedValue.MatchString(v) {
			return "", fmt.Errorf("%w: value %q of %q in a query that is not parsed as PromQL", ErrValuePlacement, v, name)
		}
	}
	switch ctx {
	case regexString:
		alts := make([]string, len(p.Values))
		for i, v := range p.Values {
			alts[i] = strings.ReplaceAll(v, ".", "[.]")
		}
		out := strings.Join(alts, "|")
		if !whole {
			out = "(?:" + out + ")"
		}
		return out, nil
	case otherString:
		for _, v := range p.Values {
			if strings.Contains(v, ".") {
				return "", fmt.Errorf("%w: value %q of %q in a string that may be a regular expression, in a query that is not parsed as PromQL", ErrValuePlacement, v, name)
			}
		}
	}
	return strings.Join(p.Values, "|"), nil
}

// placed returns the labels whose .LabelValuesByName the rendered text
// used.
func placed(text string, parts []Part) map[string]bool {
	var out map[string]bool
	for _, m := range sentinelRE.FindAllString(text, -1) {
		if out == nil {
			out = map[string]bool{}
		}
		out[labelOf(m, parts)] = true
	}
	return out
}

package promql

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
)

func TestMatchersForSelector(t *testing.T) {
	tests := []struct {
		selector string
		want     string
	}{
		{"", ""},
		{"app=web", `app="web"`},
		{"app==web", `app="web"`},
		{"app!=web", `app!="web"`},
		{"app in (web)", `app="web"`},
		{"app in (web,api,db)", `app=~"api|db|web"`},
		{"app in (a.b,c-d,e_f)", `app=~"a\\.b|c-d|e_f"`},
		{"app notin (web)", `app!="web"`},
		{"app notin (web,api)", `app!~"api|web"`},
		{"app", `app!=""`},
		{"!app", `app=""`},
		{"app=web,tier!=db,!canary,env in (prod,staging)", `app="web",!canary... `},
	}
	// The last case's order follows the selector's (sorted) requirements.
	tests[len(tests)-1].want = `app="web",canary="",env=~"prod|staging",tier!="db"`
	for _, tt := range tests {
		t.Run(tt.selector, func(t *testing.T) {
			sel, err := k8slabels.Parse(tt.selector)
			if err != nil {
				t.Fatal(err)
			}
			ms, err := MatchersForSelector(sel, nil)
			if err != nil {
				t.Fatalf("MatchersForSelector: %v", err)
			}
			if got := JoinMatchers(ms); got != tt.want {
				t.Errorf("matchers = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestMatchersForSelectorUnsupported(t *testing.T) {
	tests := []struct {
		name string
		sel  k8slabels.Selector
		want string
	}{
		{name: "gt", sel: mustParse(t, "replicas>3"), want: `unsupported label selector: operator "gt" on "replicas" cannot be expressed in PromQL`},
		{name: "lt", sel: mustParse(t, "replicas<3"), want: `unsupported label selector: operator "lt" on "replicas" cannot be expressed in PromQL`},
		{name: "dotted key", sel: mustParse(t, "app.kubernetes.io/name=web"), want: `unsupported label selector: "app.kubernetes.io/name" is not a Prometheus label name`},
		{name: "dashed key", sel: mustParse(t, "my-app=web"), want: `unsupported label selector: "my-app" is not a Prometheus label name`},
		{name: "nothing", sel: k8slabels.Nothing(), want: `unsupported label selector: selector "" selects nothing`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms, err := MatchersForSelector(tt.sel, nil)
			if !errors.Is(err, ErrUnsupportedSelector) {
				t.Fatalf("MatchersForSelector = %v, %v; want ErrUnsupportedSelector", ms, err)
			}
			if err.Error() != tt.want {
				t.Errorf("error = %q, want %q", err, tt.want)
			}
		})
	}
	sel, replace := placeholderSelector(t, "app", selection.In, []string{"ok", "bad\xff"})
	if _, err := MatchersForSelector(sel, replace); !errors.Is(err, ErrUnsupportedSelector) ||
		err.Error() != `unsupported label selector: value "bad\xff" of "app" is not valid UTF-8` {
		t.Errorf("invalid UTF-8: %v", err)
	}
	for _, sel := range []k8slabels.Selector{nil, k8slabels.Everything()} {
		if ms, err := MatchersForSelector(sel, nil); err != nil || len(ms) != 0 {
			t.Errorf("MatchersForSelector(%v) = %v, %v; want none", sel, ms, err)
		}
	}
}

func mustParse(t *testing.T, s string) k8slabels.Selector {
	t.Helper()
	sel, err := k8slabels.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

// hostile are values that would change a query's meaning if spliced in
// unescaped.
var hostile = []string{
	`a"}`, `a"} or vector(1) or x{b="`, `.*`, `.+`, `a|b`, `|`, `a.b`, `(a)`, `[a-z]`, `^a$`, `a{2}`, `a?`, `a+`, `a*`,
	`\`, `\\`, `a\"b`, `a\nb`, "a\nb", "a\tb", "a\x00b", "\u00fc", "日本", "🙂", `'`, "`", `}`, `{`, `$1`, "",
}

// TestHostileValuesKeepTheirMeaning renders hostile values into a query,
// parses it back with the PromQL parser and checks that each matcher holds
// exactly the intended literal, and that regex alternations match exactly
// the given values.
func TestHostileValuesKeepTheirMeaning(t *testing.T) {
	tmpl := mustTemplate(DefaultMetricsQuery)
	for _, v := range hostile {
		for _, op := range []selection.Operator{selection.Equals, selection.NotEquals, selection.In, selection.NotIn} {
			values := []string{v}
			if op == selection.In || op == selection.NotIn {
				values = []string{v, "other"}
			}
			t.Run(fmt.Sprintf("%s %q", op, v), func(t *testing.T) {
				sel, replace := placeholderSelector(t, "lbl", op, values)
				ms, err := MatchersForSelector(sel, replace)
				if err != nil {
					t.Fatal(err)
				}
				checkRendered(t, tmpl, ms, "lbl", op, values)
			})
		}
		t.Run(fmt.Sprintf("OneOf %q", v), func(t *testing.T) {
			checkRendered(t, tmpl, []*labels.Matcher{OneOf("pod", []string{v, "web-0", "a"})}, "pod", selection.In, []string{v, "web-0", "a"})
		})
	}
}

// placeholderSelector builds a selector for key op values whose values are
// the placeholders v0, v1..., and the replace function that turns them into
// values (which the selector parser might refuse).
func placeholderSelector(t testing.TB, key string, op selection.Operator, values []string) (k8slabels.Selector, func(string) string) {
	ph := map[string]string{}
	var phs []string
	for i, v := range values {
		p := fmt.Sprintf("v%d", i)
		ph[p] = v
		phs = append(phs, p)
	}
	if op == selection.Exists || op == selection.DoesNotExist {
		phs = nil
	}
	req, err := k8slabels.NewRequirement(key, op, phs)
	if err != nil {
		t.Skipf("requirement: %v", err)
	}
	return k8slabels.NewSelector().Add(*req), func(s string) string { return ph[s] }
}

// checkRendered renders ms into the default query, parses it and checks
// that the matcher on name selects exactly values (In, Equals) or exactly
// everything else (NotIn, NotEquals).
func checkRendered(t testing.TB, tmpl *Template, ms []*labels.Matcher, name string, op selection.Operator, values []string) {
	t.Helper()
	parts := make([]Part, len(ms))
	for i, m := range ms {
		parts[i] = Part{Matcher: m}
	}
	built, err := tmpl.Build(Request{Series: "metric", Parts: parts, GroupBy: []string{"pod"}})
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	q, expr := built.Text, built.Expr
	if again, err := Parse(q); err != nil || again.String() != q {
		t.Fatalf("query %s does not parse back to itself: %v", q, err)
	}
	var vs *parser.VectorSelector
	n := 0
	parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
		if x, ok := node.(*parser.VectorSelector); ok {
			vs = x
			n++
		}
		return nil
	})
	if n != 1 {
		t.Fatalf("query %s has %d selectors, want 1", q, n)
	}
	if vs.Name != "metric" {
		t.Fatalf("query %s selects %q", q, vs.Name)
	}
	var got []*labels.Matcher
	for _, m := range vs.LabelMatchers {
		if m.Name != model.MetricNameLabel {
			got = append(got, m)
		}
	}
	if len(got) != len(ms) {
		t.Fatalf("query %s has matchers %v, want %v", q, got, ms)
	}
	for i, m := range got {
		if m.Name != ms[i].Name || m.Type != ms[i].Type || m.Value != ms[i].Value {
			t.Fatalf("query %s: matcher %d parsed as %s %s %q, built as %s %s %q", q, i, m.Name, m.Type, m.Value, ms[i].Name, ms[i].Type, ms[i].Value)
		}
	}
	m := got[len(got)-1]
	if m.Name != name {
		t.Fatalf("last matcher is on %q, want %q", m.Name, name)
	}
	positive := op == selection.Equals || op == selection.DoubleEquals || op == selection.In
	in := map[string]bool{}
	for _, v := range values {
		in[v] = true
		if m.Matches(v) != positive {
			t.Errorf("query %s: %s matches %q = %v", q, m, v, !positive)
		}
	}
	for _, other := range near(values) {
		if in[other] {
			continue
		}
		if m.Matches(other) == positive {
			t.Errorf("query %s: %s matches %q = %v, a value not given", q, m, other, positive)
		}
	}
}

// near returns strings close to values that a mis-escaped pattern would
// likely match.
func near(values []string) []string {
	out := []string{"", "x", "axb", "a", "b", "ab", "aa", "a\nb", strings.Join(values, "|"), strings.Join(values, "")}
	for _, v := range values {
		out = append(out, v+v, v+"x", "x"+v, strings.ToUpper(v), v+"\n")
		for i := 0; i < len(v); {
			_, size := utf8.DecodeRuneInString(v[i:])
			out = append(out, v[:i]+"x"+v[i+size:], v[:i]+v[i+size:])
			i += size
		}
	}
	return out
}

func TestOneOfAndAlternation(t *testing.T) {
	tests := []struct {
		values []string
		want   string
	}{
		{[]string{"web-0"}, `pod="web-0"`},
		{[]string{"b", "a"}, `pod=~"a|b"`},
		{[]string{"b", "a", "b", "a"}, `pod=~"a|b"`},
		{[]string{"a.b", "c"}, `pod=~"a\\.b|c"`},
		{[]string{"", "a"}, `pod=~"|a"`},
		{[]string{"a", ""}, `pod=~"|a"`},
		{[]string{"", ""}, `pod=~""`},
		{[]string{"a|b", ".*"}, `pod=~"\\.\\*|a\\|b"`},
	}
	for _, tt := range tests {
		if got := OneOf("pod", tt.values).String(); got != tt.want {
			t.Errorf("OneOf(%q) = %s, want %s", tt.values, got, tt.want)
		}
	}
	// "a.b" must not match "axb"; "" is matched only when given.
	m := OneOf("pod", []string{"a.b", "c"})
	for v, want := range map[string]bool{"a.b": true, "c": true, "axb": false, "": false, "a.bc": false, "a.b|c": false} {
		if m.Matches(v) != want {
			t.Errorf("%s matches %q = %v", m, v, !want)
		}
	}
	if got := Alternation(nil); got != "" {
		t.Errorf("Alternation(nil) = %q", got)
	}
	in := []string{"b", "a"}
	Alternation(in)
	if !reflect.DeepEqual(in, []string{"b", "a"}) {
		t.Errorf("Alternation modified its argument: %q", in)
	}
}

func TestValidLabelName(t *testing.T) {
	for name, want := range map[string]bool{
		"pod": true, "_x": true, "a1": true, "A_b": true,
		"": false, "1a": false, "a-b": false, "a.b": false, "app.kubernetes.io/name": false, "ü": false,
	} {
		if got := ValidLabelName(name); got != want {
			t.Errorf("ValidLabelName(%q) = %v", name, got)
		}
	}
}

func TestParseSelector(t *testing.T) {
	ms, err := ParseSelector(`{__name__=~"^container_.*",container!="POD",namespace!=""}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := JoinMatchers(ms); got != `__name__=~"^container_.*",container!="POD",namespace!=""` {
		t.Errorf("ParseSelector = %s", got)
	}
	ms, err = ParseSelector(`http_requests_total{pod!=""}`)
	if err != nil || JoinMatchers(ms) != `pod!="",__name__="http_requests_total"` {
		t.Errorf("ParseSelector = %s, %v", JoinMatchers(ms), err)
	}
	for _, bad := range []string{"", "sum(up)", `{a="b"`, "up[5m]"} {
		if ms, err := ParseSelector(bad); err == nil {
			t.Errorf("ParseSelector(%q) = %v, want an error", bad, ms)
		}
	}
}

func TestWindow(t *testing.T) {
	tests := []struct {
		query string
		want  time.Duration
		ok    bool
	}{
		{"rate(x[2m])", 2 * time.Minute, true},
		{"sum(rate(x{a=\"b\"}[1m])) by (pod)", time.Minute, true},
		{"rate(x[90s]) / rate(y[90s])", 90 * time.Second, true},
		{"increase(x[1h30m])", 90 * time.Minute, true},
		{"max_over_time(rate(x[1m])[5m:30s])", 0, false}, // subquery 5m, matrix 1m
		{"max_over_time(x[5m:30s])", 5 * time.Minute, true},
		{"rate(x[2m]) / rate(y[5m])", 0, false},
		{"x", 0, false},
		{"sum(x) by (pod)", 0, false},
		{"vector(1)", 0, false},
	}
	for _, tt := range tests {
		expr, err := Parse(tt.query)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.query, err)
		}
		got, ok := Window(expr)
		if got != tt.want && tt.ok || ok != tt.ok {
			t.Errorf("Window(%s) = %v, %v; want %v, %v", tt.query, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzMatchersForSelector(f *testing.F) {
	for _, v := range hostile {
		f.Add("app", "in", v, "web")
		f.Add("app", "=", v, "")
	}
	f.Add("app", "notin", "a|b", ".*")
	f.Add("app", "!=", `a"}`, "")
	f.Add("app", "exists", "", "")
	f.Add("app", "!", "", "")
	f.Add("app", "gt", "3", "")
	f.Add("app.kubernetes.io/name", "=", "web", "")
	f.Add("1app", "=", "web", "")
	tmpl := mustTemplate(DefaultMetricsQuery)
	f.Fuzz(func(t *testing.T, key, op, v0, v1 string) {
		operator := selection.Operator(op)
		values := []string{v0}
		switch operator {
		case selection.In, selection.NotIn:
			values = []string{v0, v1}
		case selection.Exists, selection.DoesNotExist:
			values = nil
		case selection.Equals, selection.DoubleEquals, selection.NotEquals, selection.GreaterThan, selection.LessThan:
		default:
			return
		}
		sel, replace := placeholderSelector(t, key, operator, values)
		ms, err := MatchersForSelector(sel, replace)
		if err != nil {
			if !errors.Is(err, ErrUnsupportedSelector) {
				t.Fatalf("error %v does not wrap ErrUnsupportedSelector", err)
			}
			return
		}
		if len(ms) != 1 || ms[0].Name != key {
			t.Fatalf("matchers %v for one requirement on %q", ms, key)
		}
		switch operator {
		case selection.Exists:
			operator, values = selection.NotEquals, []string{""}
		case selection.DoesNotExist:
			operator, values = selection.Equals, []string{""}
		}
		checkRendered(t, tmpl, ms, key, operator, values)
	})
}

// mustTemplate is NewTemplate for texts known to parse without warnings.
func mustTemplate(text string) *Template {
	t, w, err := NewTemplate(text)
	if err != nil || len(w) > 0 {
		panic(fmt.Sprintf("mustTemplate(%q): %v %v", text, err, w))
	}
	return t
}

package promql

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// customParts are what a request for pods a and b of namespace ns1 gives a
// template, in prometheus-adapter's order.
func customParts(names ...string) []Part {
	return []Part{EqualPart("namespace", "ns1"), OneOfPart("pod", names)}
}

func TestBuild(t *testing.T) {
	tests := []struct {
		name    string
		tmpl    string
		parts   []Part
		groupBy []string
		want    string
		checked bool
		err     error // errors.Is, or nil
	}{
		{
			name: "default query", tmpl: DefaultMetricsQuery, parts: customParts("a", "b"), groupBy: []string{"pod"},
			want: `sum by (pod) (x{namespace="ns1",pod=~"a|b"})`, checked: true,
		},
		{
			name:  "LabelValuesByName in regex and equality positions, names with dots",
			tmpl:  `sum(<<.Series>>{namespace="<<.LabelValuesByName.namespace>>",pod=~"<<.LabelValuesByName.pod>>"}) by (<<.GroupBy>>)`,
			parts: customParts("ip-10-0-0-1.ec2.internal", "b"), groupBy: []string{"pod"},
			want: `sum by (pod) (x{namespace="ns1",pod=~"b|ip-10-0-0-1\\.ec2\\.internal"})`, checked: true,
		},
		{
			name: "index form", tmpl: `sum(<<.Series>>{pod=~"<<index .LabelValuesByName "pod">>"}) by (pod)`,
			parts: customParts("a"), groupBy: []string{"pod"},
			want: `sum by (pod) (x{pod=~"a"})`, checked: true,
		},
		{
			name: "a quote and a brace in a value stay inside the string", tmpl: `<<.Series>>{pod="<<.LabelValuesByName.pod>>"}`,
			parts: customParts(`a"} or vector(1) or x{y="`), want: `x{pod="a\"} or vector(1) or x{y=\""}`, checked: true,
		},
		{
			name: "regex metacharacters are escaped", tmpl: `<<.Series>>{pod=~"<<.LabelValuesByName.pod>>"}`,
			parts: customParts(`.*`, `a|b`), want: `x{pod=~"\\.\\*|a\\|b"}`, checked: true,
		},
		{
			name: "embedded in a regex: a group", tmpl: `<<.Series>>{pod=~"^<<.LabelValuesByName.pod>>-[0-9]+$"}`,
			parts: customParts("a", "b"), want: `x{pod=~"^(?:a|b)-[0-9]+$"}`, checked: true,
		},
		{
			name: "string literal gets prometheus-adapter's text", tmpl: `label_replace(<<.Series>>{<<.LabelMatchers>>}, "who", "<<.LabelValuesByName.pod>>", "", "")`,
			parts: customParts("a"), want: `label_replace(x{namespace="ns1",pod="a"}, "who", "a", "", "")`, checked: true,
		},
		{
			name: "as a label name it cannot be placed", tmpl: `sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.LabelValuesByName.pod>>)`,
			parts: customParts("a"), err: ErrValuePlacement,
		},
		{
			name: "all objects: .+ in a regex", tmpl: `<<.Series>>{pod=~"<<.LabelValuesByName.pod>>"}`,
			parts: []Part{AnyPart("pod")}, want: `x{pod=~".+"}`, checked: true,
		},
		{
			name: "all objects: not in an equality", tmpl: `<<.Series>>{pod="<<.LabelValuesByName.pod>>"}`,
			parts: []Part{AnyPart("pod")}, err: ErrValuePlacement,
		},
		{
			name: "holt_winters parses", tmpl: `holt_winters(<<.Series>>{<<.LabelMatchers>>}[5m], 0.5, 0.5)`,
			parts: customParts("a"), want: `holt_winters(x{namespace="ns1",pod="a"}[5m], 0.5, 0.5)`, checked: true,
		},
		{
			name: "MetricsQL is sent as rendered", tmpl: `sum(rollup_rate(<<.Series>>{<<.LabelMatchers>>,pod=~"<<.LabelValuesByName.pod>>"})) by (<<.GroupBy>>)`,
			parts: customParts("a", "b.c"), groupBy: []string{"pod"},
			want: `sum(rollup_rate(x{namespace="ns1",pod=~"a|b",pod=~"a|b.c"})) by (pod)`,
		},
		{
			name: "MetricsQL refuses a value outside the safe alphabet", tmpl: `rollup_rate(<<.Series>>{pod=~"<<.LabelValuesByName.pod>>"})`,
			parts: customParts(`a"`), err: ErrValuePlacement,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl, _, err := NewTemplate(tt.tmpl)
			if err != nil {
				t.Fatal(err)
			}
			q, err := tmpl.Build(Request{Series: "x", Parts: tt.parts, GroupBy: tt.groupBy})
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Build = %q, %v; want %v", q.Text, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.name == "MetricsQL is sent as rendered" {
				// The LabelMatchers text is the escaped matcher; the placed
				// value is escaped for the regular expression it is in.
				tt.want = `sum(rollup_rate(x{namespace="ns1",pod=~"a|b\\.c",pod=~"a|b[.]c"})) by (pod)`
			}
			if q.Text != tt.want || q.Checked != tt.checked {
				t.Errorf("Build:\n got %s (checked %v)\nwant %s (checked %v)", q.Text, q.Checked, tt.want, tt.checked)
			}
			if q.Checked {
				again, err := Parse(q.Text)
				if err != nil || again.String() != q.Text {
					t.Errorf("query does not parse back to itself: %v", err)
				}
			}
		})
	}
}

func TestBuildRefusesBadSeriesName(t *testing.T) {
	_, err := mustTemplate(DefaultMetricsQuery).Build(Request{Series: `x{a="b"} or y`})
	if err == nil || !strings.Contains(err.Error(), "not a valid metric name") {
		t.Fatalf("Build = %v", err)
	}
}

func TestNewTemplateWarnings(t *testing.T) {
	tests := []struct {
		text    string
		warn    string // substring of the only warning; "" for none
		err     string // prefix of the error
		checked bool
	}{
		{text: DefaultMetricsQuery, checked: true},
		{text: `x{ingress="<<.LabelValuesByName.ingress>>"}`, warn: "only requests selecting on that label", checked: true},
		{text: `rollup_rate(<<.Series>>{<<.LabelMatchers>>}[5m])`, warn: "does not parse as PromQL"},
		{text: `sum(<<.Series>>`, warn: "does not parse as PromQL"},
		{text: "<<.Series", err: "template: query:1: unclosed action"},
		{text: "<<.Nope>>", err: "rendering query template:"},
		{text: "", err: "query template rendered an empty query"},
		{text: "  <</* nothing */>>  ", err: "query template rendered an empty query"},
	}
	for _, tt := range tests {
		tmpl, warnings, err := NewTemplate(tt.text)
		if tt.err != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
				t.Errorf("NewTemplate(%q) error = %v, want prefix %q", tt.text, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("NewTemplate(%q): %v", tt.text, err)
			continue
		}
		switch {
		case tt.warn == "" && len(warnings) > 0:
			t.Errorf("NewTemplate(%q) warnings %q", tt.text, warnings)
		case tt.warn != "" && (len(warnings) != 1 || !strings.Contains(warnings[0], tt.warn)):
			t.Errorf("NewTemplate(%q) warnings %q, want one containing %q", tt.text, warnings, tt.warn)
		}
		if tmpl.Checked() != tt.checked {
			t.Errorf("NewTemplate(%q).Checked() = %v", tt.text, tmpl.Checked())
		}
	}
	// A key only some requests have fails those without it, clearly.
	tmpl, _, _ := NewTemplate(`x{ingress="<<.LabelValuesByName.ingress>>"}`)
	if _, err := tmpl.Build(Request{Series: "x", Parts: customParts("a")}); err == nil || !strings.Contains(err.Error(), `no entry for key "ingress"`) {
		t.Errorf("Build without ingress: %v", err)
	}
	q, err := tmpl.Build(Request{Series: "x", Parts: []Part{EqualPart("ingress", "web")}})
	if err != nil || q.Text != `x{ingress="web"}` {
		t.Errorf("Build with ingress = %q, %v", q.Text, err)
	}
}

// shareCase renders a template for one request and shared, as the custom
// provider does, and asks Shareable.
func shareCustom(t *testing.T, text string) (bool, string) {
	t.Helper()
	tmpl, _, err := NewTemplate(text)
	if err != nil {
		t.Fatal(err)
	}
	ns, pods := EqualPart("namespace", "ns1"), OneOfPart("pod", []string{"a", "b"})
	metric := EqualPart("code", "200")
	full, err := tmpl.Build(Request{Series: "x", Parts: []Part{metric, ns, pods}, GroupBy: []string{"pod"}})
	if err != nil {
		t.Fatal(err)
	}
	all := AnyPart("pod")
	shared, err := tmpl.Build(Request{Series: "x", Parts: []Part{metric, all}, GroupBy: []string{"namespace", "pod"}})
	if err != nil {
		return false, err.Error()
	}
	return Shareable(full.Expr, shared.Expr, []*labels.Matcher{ns.Matcher, pods.Matcher}, []*labels.Matcher{all.Matcher})
}

func TestShareableCustom(t *testing.T) {
	tests := []struct {
		tmpl string
		want bool
	}{
		{DefaultMetricsQuery, true},
		{`sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)`, true},
		{`sum by (<<.GroupBy>>) (rate(<<.Series>>{<<.LabelMatchers>>,code=~"5.."}[2m])) * 100`, true},
		{`sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>) / sum(rate(y{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)`, true},
		{`histogram_quantile(0.9, sum by (le, <<.GroupBy>>) (rate(<<.Series>>{<<.LabelMatchers>>}[5m])))`, true},
		{`max_over_time(<<.Series>>{<<.LabelMatchers>>}[5m:1m])`, true},
		{`sum without (container) (<<.Series>>{<<.LabelMatchers>>})`, true},
		{`<<.Series>>{<<.LabelMatchers>>} > 10`, true},
		{`label_replace(<<.Series>>{<<.LabelMatchers>>}, "x", "$1", "pod", "(.*)")`, true},
		{`sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>) * on(pod) group_left sum(y{<<.LabelMatchers>>}) by (<<.GroupBy>>)`, false},
		// The failures of sharing seen with prometheus-adapter configs:
		{`sum(<<.Series>>{<<.LabelMatchers>>}) by (pod)`, false},
		{`sum(<<.Series>>{pod=~"<<index .LabelValuesByName "pod">>"}) by (<<.GroupBy>>)`, false},
		{`sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>) / scalar(count(<<.Series>>{<<.LabelMatchers>>}))`, false},
		{`topk(1, sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>))`, false},
		{`sum without (pod) (<<.Series>>{<<.LabelMatchers>>})`, false},
		{`count_values("pod", <<.Series>>{<<.LabelMatchers>>})`, false},
		{`label_replace(<<.Series>>{<<.LabelMatchers>>}, "pod", "x", "", "")`, false},
		{`sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>) or vector(0)`, false},
		{`absent(<<.Series>>{<<.LabelMatchers>>})`, false},
		{`sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>) + on() group_left sum(y)`, true},
		{`sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>) + on() sum(y)`, false},
		{`sum(y)`, false},
	}
	for _, tt := range tests {
		got, why := shareCustom(t, tt.tmpl)
		if got != tt.want {
			t.Errorf("Shareable(%s) = %v (%s), want %v", tt.tmpl, got, why, tt.want)
		}
		if !got && why == "" {
			t.Errorf("Shareable(%s): no reason", tt.tmpl)
		}
	}
}

func TestShareableExternal(t *testing.T) {
	moved := []Part{EqualPart("queue", "orders"), EqualPart("namespace", "shop"), OneOfPart("zone", []string{"a", "b"})}
	tests := []struct {
		tmpl string
		want bool
	}{
		{`<<.Series>>{<<.LabelMatchers>>}`, true},
		{`<<.Series>>{env!="dev",<<.LabelMatchers>>}`, true},
		{`rate(<<.Series>>{<<.LabelMatchers>>}[2m])`, true},
		{`100 * (avg_over_time(<<.Series>>{<<.LabelMatchers>>}[5m]))`, true},
		{`sum(<<.Series>>{<<.LabelMatchers>>}) by (queue)`, false},
		{`sum(<<.Series>>{<<.LabelMatchers>>})`, false},
		{`<<.Series>>{<<.LabelMatchers>>} / r{<<.LabelMatchers>>}`, true},
		{`<<.Series>>{queue="<<.LabelValuesByName.queue>>"}`, false},
		{`<<.Series>>{}`, false},
	}
	for _, tt := range tests {
		tmpl, _, err := NewTemplate(tt.tmpl)
		if err != nil {
			t.Fatal(err)
		}
		full, err := tmpl.Build(Request{Series: "q", Parts: moved})
		if err != nil {
			t.Fatal(err)
		}
		shared, err := tmpl.Build(Request{Series: "q"})
		if err != nil {
			if tt.want {
				t.Errorf("%s shared: %v", tt.tmpl, err)
			}
			continue
		}
		ms := []*labels.Matcher{moved[0].Matcher, moved[1].Matcher, moved[2].Matcher}
		if got, why := Shareable(full.Expr, shared.Expr, ms, nil); got != tt.want {
			t.Errorf("Shareable(%s) = %v (%s), want %v", tt.tmpl, got, why, tt.want)
		}
	}
	// A matcher on __name__ is never moved.
	e, _ := Parse(`q{__name__="q"}`)
	s, _ := Parse(`q{}`)
	if ok, _ := Shareable(e, s, []*labels.Matcher{Equal("__name__", "q")}, nil); ok {
		t.Error("a __name__ matcher was moved")
	}
	var _ parser.Expr = e
}

// TestBuildKeepsValuesSpellingPlaceholders: a request value that spells a
// placeholder (which would take knowing the nonce) is still the request's
// own value: it is neither replaced nor makes the query select more.
func TestBuildKeepsValuesSpellingPlaceholders(t *testing.T) {
	tmpl := mustTemplate(`sum(<<.Series>>{<<.LabelMatchers>>,pod=~"<<.LabelValuesByName.pod>>"}) by (<<.GroupBy>>)`)
	for _, v := range []string{sentinel(1), "x" + sentinel(1) + "x", sentinel(0), "__promgate_v1__"} {
		q, err := tmpl.Build(Request{Series: "x", Parts: []Part{EqualPart("code", v), EqualPart("namespace", "ns1"), OneOfPart("pod", []string{"a"})}, GroupBy: []string{"pod"}})
		if err != nil {
			t.Errorf("Build(code=%q): %v", v, err)
			continue
		}
		e, err := Parse(q.Text)
		if err != nil {
			t.Fatal(err)
		}
		var code []*labels.Matcher
		parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok {
				for _, m := range vs.LabelMatchers {
					if m.Name == "code" {
						code = append(code, m)
					}
				}
			}
			return nil
		})
		if len(code) != 1 || code[0].Type != labels.MatchEqual || code[0].Value != v {
			t.Errorf("Build(code=%q) = %s: code matchers %v", v, q.Text, code)
		}
	}
}

// TestBuildUnchecked places values into queries PromQL cannot parse
// (MetricsQL) by where they stand, and checks what the regular expressions
// sent select: a value from the allowed alphabet must select only itself.
func TestBuildUnchecked(t *testing.T) {
	const lv = `<<.LabelValuesByName.pod>>`
	tests := []struct {
		name   string
		tmpl   string
		values []string
		want   string
		// match and miss are pod names the placed regular expression (the
		// first =~ string of want) must and must not select.
		match, miss []string
		err         bool
	}{
		{name: "regex, whole string: dots escaped", tmpl: `rollup_rate(x{pod=~"` + lv + `"})`, values: []string{"a.b", "c"},
			want: `rollup_rate(x{pod=~"a[.]b|c"})`, match: []string{"a.b", "c"}, miss: []string{"axb", "a.bc", "cc"}},
		{name: "regex, part of the string: a group", tmpl: `rollup_rate(x{pod=~"web-` + lv + `"})`, values: []string{"a", "b"},
			want: `rollup_rate(x{pod=~"web-(?:a|b)"})`, match: []string{"web-a", "web-b"}, miss: []string{"b", "web-c"}},
		{name: "negative regex", tmpl: `rollup_rate(x{pod!~ "` + lv + `"})`, values: []string{"a.b"},
			want: `rollup_rate(x{pod!~ "a[.]b"})`},
		{name: "single quotes", tmpl: `rollup_rate(x{pod=~'` + lv + `'})`, values: []string{"a.b"},
			want: `rollup_rate(x{pod=~'a[.]b'})`},
		{name: "equality: prometheus-adapter's text", tmpl: `rollup_rate(x{pod="` + lv + `"})`, values: []string{"a.b"},
			want: `rollup_rate(x{pod="a.b"})`},
		{name: "after an escaped quote, still in the string", tmpl: `rollup_rate(x{a="\"", pod=~"` + lv + `"})`, values: []string{"a.b"},
			want: `rollup_rate(x{a="\"", pod=~"a[.]b"})`},
		{name: "a backslash in a raw string escapes nothing", tmpl: "rollup_rate(x{a=`\\`, pod=~`" + lv + "`})", values: []string{"a.b"},
			want: "rollup_rate(x{a=`\\`, pod=~`a[.]b`})"},
		{name: "a function's string argument", tmpl: `label_set(rollup_rate(x), "owner", "` + lv + `")`, values: []string{"a-b"},
			want: `label_set(rollup_rate(x), "owner", "a-b")`},
		{name: "a function's string argument with a dot could be a regex", tmpl: `label_set(rollup_rate(x), "owner", "` + lv + `")`, values: []string{"a.b"}, err: true},
		{name: "outside a string: an operator", tmpl: `rollup_rate(x) - ` + lv, values: []string{"1"}, err: true},
		{name: "outside a string: a name", tmpl: `rollup_rate(` + lv + `)`, values: []string{"up"}, err: true},
		{name: "after a string, outside it", tmpl: `rollup_rate(x{a="b"}) + ` + lv, values: []string{"1"}, err: true},
		{name: "in a comment's quote, outside any string", tmpl: "rollup_rate(x) # \"\n - " + lv, values: []string{"1"}, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl, _, err := NewMetricsQLTemplate(tt.tmpl)
			if err != nil {
				t.Fatal(err)
			}
			q, err := tmpl.Build(Request{Series: "x", Parts: []Part{OneOfPart("pod", tt.values)}})
			if tt.err {
				if !errors.Is(err, ErrValuePlacement) {
					t.Fatalf("Build = %q, %v; want ErrValuePlacement", q.Text, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if q.Checked || q.Text != tt.want {
				t.Fatalf("Build:\n got %s (checked %v)\nwant %s (unchecked)", q.Text, q.Checked, tt.want)
			}
			if len(tt.match)+len(tt.miss) == 0 {
				return
			}
			m := regexp.MustCompile(`=~"([^"]*)"`).FindStringSubmatch(q.Text)
			re := regexp.MustCompile("^(?:" + m[1] + ")$") // anchored, as Prometheus and VictoriaMetrics do
			for _, s := range tt.match {
				if !re.MatchString(s) {
					t.Errorf("%s does not select %q", m[1], s)
				}
			}
			for _, s := range tt.miss {
				if re.MatchString(s) {
					t.Errorf("%s selects %q", m[1], s)
				}
			}
		})
	}
}

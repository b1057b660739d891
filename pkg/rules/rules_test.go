package rules

import (
	"strings"
	"testing"

	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/promql"
)

func mustCompile(t *testing.T, r config.DiscoveryRule) *Rule {
	t.Helper()
	cr, err := CompileRule("rules[0]", r)
	if err != nil {
		t.Fatalf("CompileRule: %v", err)
	}
	return cr
}

func TestMetricName(t *testing.T) {
	tests := []struct {
		name    string
		matches string
		as      string
		series  string
		want    string
		wantErr string
	}{
		{name: "defaults to the series name", series: "http_requests_total", want: "http_requests_total"},
		{name: "no group defaults to $0", matches: "^http_.*$", series: "http_requests_total", want: "http_requests_total"},
		{name: "unanchored match keeps $0 whole match", matches: "requests", series: "http_requests_total", want: "requests"},
		{name: "one group defaults to $1", matches: "^(.*)_total$", series: "http_requests_total", want: "http_requests"},
		{name: "as with braces", matches: "^(.*)_total$", as: "${1}_per_second", series: "http_requests_total", want: "http_requests_per_second"},
		{name: "several groups with as", matches: "^(.*)_(.*)_total$", as: "${2}_of_${1}", series: "http_requests_total", want: "requests_of_http"},
		{name: "named group", matches: "^(?P<base>.*)_total$", as: "${base}_rate", series: "x_total", want: "x_rate"},
		{name: "literal as", matches: "^http_requests_total$", as: "http_requests_per_second", series: "http_requests_total", want: "http_requests_per_second"},
		{name: "no match", matches: "^(.*)_total$", series: "http_requests", wantErr: `series "http_requests" does not match name.matches "^(.*)_total$"`},
		// Go's expansion reads $1_per_second as the group named "1_per_second".
		{name: "unbraced reference gives empty name", matches: "^(.*)_total$", as: "$1_per_second", series: "x_total", wantErr: `series "x_total" gives an empty metric name`},
		{name: "slash is refused", matches: "^(.*)_total$", as: "a/${1}", series: "x_total", wantErr: `metric name "a/x" from series "x_total" contains '/', '%' or '?'`},
		{name: "percent is refused", matches: ".*", as: "a%", series: "x", wantErr: `metric name "a%" from series "x" contains '/', '%' or '?'`},
		{name: "question mark is refused", matches: ".*", as: "a?", series: "x", wantErr: `metric name "a?" from series "x" contains '/', '%' or '?'`},
		{name: "empty series", series: "", wantErr: `series "" gives an empty metric name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustCompile(t, config.DiscoveryRule{SeriesQuery: "up", Name: config.NameMapping{Matches: tt.matches, As: tt.as}})
			got, err := r.MetricName(tt.series)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("MetricName(%q) = %q, %v; want error %q", tt.series, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("MetricName(%q) = %q, %v; want %q", tt.series, got, err, tt.want)
			}
		})
	}
}

func TestCompileRuleErrors(t *testing.T) {
	tests := []struct {
		name string
		rule config.DiscoveryRule
		want string
	}{
		{
			name: "several groups without as",
			rule: config.DiscoveryRule{SeriesQuery: "up", Name: config.NameMapping{Matches: "^(a)_(b)$"}},
			want: `rules[3].name.as: is required when name.matches "^(a)_(b)$" has several capture groups`,
		},
		{
			name: "bad name regex",
			rule: config.DiscoveryRule{SeriesQuery: "up", Name: config.NameMapping{Matches: "("}},
			want: "rules[3].name.matches: invalid regular expression \"(\": error parsing regexp: missing closing ): `(`",
		},
		{
			name: "bad series query",
			rule: config.DiscoveryRule{SeriesQuery: "sum(up)"},
			want: `rules[3].seriesQuery: invalid series selector "sum(up)": `,
		},
		{
			name: "series query matching everything",
			rule: config.DiscoveryRule{SeriesQuery: `{namespace=~".*",pod=""}`},
			want: `rules[3].seriesQuery: series selector "{namespace=~\".*\",pod=\"\"}" must have a matcher that does not match the empty string`,
		},
		{
			name: "empty series query",
			rule: config.DiscoveryRule{},
			want: `rules[3].seriesQuery: invalid series selector "": `,
		},
		{
			name: "both is and isNot",
			rule: config.DiscoveryRule{SeriesQuery: "up", SeriesFilters: []config.RegexFilter{{Is: "a", IsNot: "b"}}},
			want: `rules[3].seriesFilters[0].isNot: invalid filter "b"`,
		},
		{
			name: "bad filter regex",
			rule: config.DiscoveryRule{SeriesQuery: "up", SeriesFilters: []config.RegexFilter{{Is: "a"}, {Is: "["}}},
			want: `rules[3].seriesFilters[1].is: invalid filter "["`,
		},
		{
			name: "template without resource",
			rule: config.DiscoveryRule{SeriesQuery: "up", Resources: config.ResourceMapping{Template: "kube_<<.Group>>"}},
			want: `rules[3].resources.template: "kube_<<.Group>>" must use <<.Resource>>`,
		},
		{
			name: "template syntax",
			rule: config.DiscoveryRule{SeriesQuery: "up", Resources: config.ResourceMapping{Template: "<<.Resource"}},
			want: `rules[3].resources.template: template: resource:1: unclosed action`,
		},
		{
			name: "template unknown field",
			rule: config.DiscoveryRule{SeriesQuery: "up", Resources: config.ResourceMapping{Template: "<<.Kind>>"}},
			want: `rules[3].resources.template: template: resource:1:2: executing "resource" at <.Kind>: can't evaluate field Kind in type schema.GroupResource`,
		},
		{
			name: "metricsQuery template syntax",
			rule: config.DiscoveryRule{SeriesQuery: "up", MetricsQuery: "sum(<<.Series)"},
			want: `rules[3].metricsQuery: template: query:1: `,
		},
		{
			name: "metricsQuery unknown field",
			rule: config.DiscoveryRule{SeriesQuery: "up", MetricsQuery: "<<.Serie>>"},
			want: `rules[3].metricsQuery: rendering query template: template: query:1:2: executing "query" at <.Serie>: can't evaluate field Serie in type promql.TemplateArgs`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := CompileRule("rules[3]", tt.rule)
			if err == nil {
				t.Fatalf("CompileRule succeeded: %+v", r)
			}
			if r != nil {
				t.Error("CompileRule returned a rule with its error")
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error:\n%v\nwant prefix:\n%s", err, tt.want)
			}
		})
	}
}

// TestCompileRuleWarnings: what prometheus-adapter loads but promgate
// cannot check statically compiles, with a warning naming the field.
func TestCompileRuleWarnings(t *testing.T) {
	tests := []struct {
		query, want string
	}{
		{"sum(<<.Series>>", "rules[3].metricsQuery: does not parse as PromQL"},
		{`sum(rollup_rate(<<.Series>>{<<.LabelMatchers>>}[5m])) by (<<.GroupBy>>)`, "rules[3].metricsQuery: does not parse as PromQL"},
		{`sum(<<.Series>>{ingress="<<.LabelValuesByName.ingress>>"}) by (<<.GroupBy>>)`, "rules[3].metricsQuery: uses a .LabelValuesByName key"},
	}
	for _, tt := range tests {
		r, err := CompileRule("rules[3]", config.DiscoveryRule{SeriesQuery: "up", MetricsQuery: tt.query})
		if err != nil {
			t.Errorf("CompileRule(%q): %v", tt.query, err)
			continue
		}
		if len(r.Warnings) != 1 || !strings.HasPrefix(r.Warnings[0], tt.want) {
			t.Errorf("CompileRule(%q) warnings %q, want one starting %q", tt.query, r.Warnings, tt.want)
		}
	}
}

func TestCompile(t *testing.T) {
	cfg := &config.Config{
		Rules: []config.DiscoveryRule{
			{SeriesQuery: "a"},
			{SeriesQuery: `b{namespace!=""}`, Resources: config.ResourceMapping{Namespaced: ptr(false)}},
		},
		ExternalRules: []config.DiscoveryRule{
			{SeriesQuery: "c"},
			{SeriesQuery: "d", Resources: config.ResourceMapping{Namespaced: ptr(false)}},
		},
	}
	custom, external, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range append(custom, external...) {
		got = append(got, r.Path+" "+r.SeriesQuery+" "+map[bool]string{true: "namespaced", false: "cluster"}[r.Namespaced]+" "+r.Query.String())
	}
	want := []string{
		"rules[0] a namespaced sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
		`rules[1] b{namespace!=""} cluster sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)`,
		"externalRules[0] c namespaced sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
		"externalRules[1] d cluster sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("compiled:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Errors of every rule are reported together, each with its path.
	cfg.Rules[1].Name.Matches = "("
	cfg.ExternalRules[0].MetricsQuery = "sum(<<.Series)"
	custom, external, err = Compile(cfg)
	if err == nil || custom != nil || external != nil {
		t.Fatalf("Compile = %v, %v, %v", custom, external, err)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "rules[1].name.matches: ") || !strings.HasPrefix(lines[1], "externalRules[0].metricsQuery: ") {
		t.Errorf("Compile error:\n%v", err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestKeep(t *testing.T) {
	r := mustCompile(t, config.DiscoveryRule{
		SeriesQuery: "up",
		SeriesFilters: []config.RegexFilter{
			{Is: "^http_"},
			{IsNot: "_seconds_total$"},
		},
		Name: config.NameMapping{Matches: "^(.*)_total$", As: "${1}_per_second"},
	})
	tests := []struct {
		series string
		keep   bool
		why    string
	}{
		{"http_requests_total", true, ""},
		{"grpc_requests_total", false, "seriesFilters[0] is ^http_"},
		{"http_request_duration_seconds_total", false, "seriesFilters[1] isNot _seconds_total$"},
		{"http_inflight", false, "name.matches ^(.*)_total$"},
		// Unanchored filters match anywhere, as in prometheus-adapter.
		{"xhttp_total", false, "seriesFilters[0] is ^http_"},
	}
	for _, tt := range tests {
		keep, why := r.Keep(tt.series)
		if keep != tt.keep || why != tt.why {
			t.Errorf("Keep(%q) = %v, %q; want %v, %q", tt.series, keep, why, tt.keep, tt.why)
		}
	}
	// Without name.matches nothing is filtered by name.
	r = mustCompile(t, config.DiscoveryRule{SeriesQuery: "up"})
	if keep, why := r.Keep("anything"); !keep || why != "" {
		t.Errorf("Keep without filters = %v, %q", keep, why)
	}
}

func TestReplaceValue(t *testing.T) {
	r := mustCompile(t, config.DiscoveryRule{SeriesQuery: "up"})
	if r.Replacer() != nil {
		t.Error("Replacer without replacements is not nil")
	}
	if got := r.ReplaceValue("a|b"); got != "a|b" {
		t.Errorf("ReplaceValue = %q", got)
	}
	r = mustCompile(t, config.DiscoveryRule{SeriesQuery: "up", LabelValueReplacements: []config.LabelValueReplacement{
		{Find: "|", Replace: "/"},
		{Find: "__", Replace: "."},
	}})
	for in, want := range map[string]string{"a|b": "a/b", "x__y|z": "x.y/z", "plain": "plain"} {
		if got := r.ReplaceValue(in); got != want {
			t.Errorf("ReplaceValue(%q) = %q, want %q", in, got, want)
		}
		if got := r.Replacer()(in); got != want {
			t.Errorf("Replacer()(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDialects: a rule on a MetricsQL backend may use MetricsQL without a
// warning; its renderings are unchecked, so request values must fit the
// safe alphabet, and .LabelMatchers stay quoted.
func TestDialects(t *testing.T) {
	const metricsQL = `sum(rate(<<.Series>>{<<.LabelMatchers>>})) by (<<.GroupBy>>)` // rate without a range: MetricsQL only
	const byName = `sum(rate(<<.Series>>{pod=~"<<.LabelValuesByName.pod>>"})) by (<<.GroupBy>>)`
	cfg := &config.Config{
		Backends: []config.Backend{{Name: "vm", URL: "http://vm:8428/prometheus", Dialect: config.DialectMetricsQL}},
		Rules: []config.DiscoveryRule{
			{SeriesQuery: `http_requests_total{pod!=""}`, MetricsQuery: metricsQL},
			{SeriesQuery: `http_requests_total{pod!=""}`, MetricsQuery: metricsQL, Backend: "vm"},
			{SeriesQuery: `http_requests_total{pod!=""}`, MetricsQuery: byName, Backend: "vm"},
		},
	}
	custom, _, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if w := custom[0].Warnings; len(w) != 1 || !strings.Contains(w[0], "does not parse as PromQL") {
		t.Errorf("PromQL backend: warnings %q, want the unchecked-query warning", w)
	}
	if w := custom[1].Warnings; len(w) != 0 {
		t.Errorf("MetricsQL backend: warnings %q, want none", w)
	}
	if custom[0].Backend != config.DefaultBackend || custom[1].Backend != "vm" {
		t.Errorf("backends %q, %q", custom[0].Backend, custom[1].Backend)
	}
	for _, tc := range []struct {
		rule    int
		value   string
		want    string // the query, or "" for an error
		wantErr bool
	}{
		{rule: 1, value: "web-0", want: `sum(rate(http_requests_total{pod="web-0"})) by (pod)`},
		{rule: 1, value: `a"}) or vector(1) #`, want: `sum(rate(http_requests_total{pod="a\"}) or vector(1) #"})) by (pod)`},
		{rule: 2, value: "web-0", want: `sum(rate(http_requests_total{pod=~"web-0"})) by (pod)`},
		{rule: 2, value: `a"}) or vector(1) #`, wantErr: true},
	} {
		q, err := custom[tc.rule].Query.Build(promql.Request{Series: "http_requests_total", Parts: []promql.Part{promql.EqualPart("pod", tc.value)}, GroupBy: []string{"pod"}})
		switch {
		case tc.wantErr && err == nil:
			t.Errorf("rule %d, value %q: built %q, want a refusal", tc.rule, tc.value, q.Text)
		case !tc.wantErr && err != nil:
			t.Errorf("rule %d, value %q: %v", tc.rule, tc.value, err)
		case !tc.wantErr && (q.Text != tc.want || q.Checked):
			t.Errorf("rule %d, value %q: %q (checked %v), want %q unchecked", tc.rule, tc.value, q.Text, q.Checked, tc.want)
		}
	}
}

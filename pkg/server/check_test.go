package server

import (
	"strings"
	"testing"

	"github.com/promgate/promgate/pkg/config"
)

// TestCheckReport: check warns about what it cannot verify and says, per
// rule, whether its queries are shared and why not.
func TestCheckReport(t *testing.T) {
	cfg, err := config.Parse([]byte(`
rules:
- seriesQuery: 'x{namespace!="",pod!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)'
- seriesQuery: 'x{namespace!="",pod!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  metricsQuery: 'sum(<<.Series>>{namespace="<<.LabelValuesByName.namespace>>",pod=~"<<.LabelValuesByName.pod>>"}) by (<<.GroupBy>>)'
- seriesQuery: 'y{namespace!="",pod!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  name: {as: 123}
  metricsQuery: 'sum(rollup_rate(<<.Series>>{<<.LabelMatchers>>})) by (<<.GroupBy>>)'
- seriesQuery: 'z{namespace!="",pod!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (pod)'
externalRules:
- seriesQuery: 'q{namespace!=""}'
  resources: {overrides: {namespace: {resource: namespace}}}
  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>})'
`))
	if err != nil {
		t.Fatal(err)
	}
	report, err := CheckConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`warning: rules[2].name.as: YAML number read as the string "123"`,
		`warning: rules[2].metricsQuery: does not parse as PromQL`,
		`rules[0].metricsQuery for pods: shared by all requests`,
		`rules[1].metricsQuery for pods: sent per request, as prometheus-adapter sends it: the template uses .LabelValuesByName`,
		`rules[2].metricsQuery for pods: sent per request, as prometheus-adapter sends it: the query is not parsed as PromQL`,
		`rules[3].metricsQuery for pods: sent per request, as prometheus-adapter sends it: sum by (pod) when shared drops "namespace"`,
		`externalRules[0].metricsQuery: sent per request`,
	}
	if len(report) != len(want) {
		t.Fatalf("report:\n%s", strings.Join(report, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(report[i], w) {
			t.Errorf("line %d:\n got %s\nwant %s...", i, report[i], w)
		}
	}
}

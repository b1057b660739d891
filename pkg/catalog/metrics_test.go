package catalog

import (
	"context"
	"net/http"
	"testing"
	"time"

	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/component-base/metrics/testutil"

	"github.com/promgate/promgate/pkg/internal/promtest"
)

const metricsConfig = `
rules:
# rules[0]: drops one series for each reason
- seriesQuery: '` + qApp + `'
  seriesFilters: [{isNot: "_total$"}]
  resources:
    overrides:
      pod: {resource: pod}
  name: {matches: "^app_(inflight)?(build_info)?$", as: "${1}"} # app_build_info: an empty name
# rules[1]: the backend fails
- seriesQuery: '` + qBroken + `'
  resources: {template: "<<.Resource>>"}
externalRules:
- seriesQuery: '` + qExternal + `'
  name: {matches: "^queue_(.*)$"}
`

func TestDiscoveryMetrics(t *testing.T) {
	srv, d := setup(t, metricsConfig)
	srv.Series(qApp,
		map[string]string{"__name__": "app_requests_total", "namespace": "ns1", "pod": "web-0"}, // filtered
		map[string]string{"__name__": "app_inflight", "namespace": "ns1", "pod": "web-0"},       // kept
		map[string]string{"__name__": "app_inflight", "namespace": "ns1", "service": "web"},     // no resource
		map[string]string{"__name__": "app_build_info", "namespace": "ns1", "pod": "web-0"},     // naming
	)
	srv.SeriesReply(qBroken, promtest.Reply{Status: http.StatusInternalServerError, ContentType: "text/plain", Body: "boom"})
	srv.Series(qExternal,
		map[string]string{"__name__": "queue_depth", "queue": "a"},
		map[string]string{"__name__": "queue_age_seconds", "queue": "a"},
	)
	RegisterMetrics()
	errsBefore, _ := testutil.GetCounterMetricValue(ruleErrors.WithLabelValues("rules[1]", "bad status"))
	before := time.Now()
	d.Refresh(context.Background())

	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"promgate_discovery_series", map[string]string{"rule": "rules[0]"}, 4},
		{"promgate_discovery_series_dropped", map[string]string{"rule": "rules[0]", "reason": DropFiltered}, 1},
		{"promgate_discovery_series_dropped", map[string]string{"rule": "rules[0]", "reason": DropNaming}, 1},
		{"promgate_discovery_series_dropped", map[string]string{"rule": "rules[0]", "reason": DropNoResource}, 1},
		{"promgate_discovery_series_dropped", map[string]string{"rule": "rules[0]", "reason": DropOther}, 0},
		{"promgate_discovery_metrics", map[string]string{"rule": "rules[0]"}, 1}, // pods inflight
		{"promgate_discovery_rule_failing", map[string]string{"rule": "rules[0]"}, 0},
		{"promgate_discovery_series", map[string]string{"rule": "rules[1]"}, 0},
		{"promgate_discovery_metrics", map[string]string{"rule": "rules[1]"}, 0},
		{"promgate_discovery_rule_failing", map[string]string{"rule": "rules[1]"}, 1},
		{"promgate_discovery_rule_last_success_timestamp_seconds", map[string]string{"rule": "rules[1]"}, 0},
		{"promgate_discovery_series", map[string]string{"rule": "externalRules[0]"}, 2},
		{"promgate_discovery_metrics", map[string]string{"rule": "externalRules[0]"}, 2},
		{"promgate_discovery_series_dropped", map[string]string{"rule": "externalRules[0]", "reason": DropNaming}, 0},
	}
	for _, tt := range tests {
		got, ok := gathered(t, tt.name, tt.labels)
		if !ok || got != tt.want {
			t.Errorf("%s%v = %v (present %v), want %v", tt.name, tt.labels, got, ok, tt.want)
		}
	}
	if errs, _ := testutil.GetCounterMetricValue(ruleErrors.WithLabelValues("rules[1]", "bad status")); errs-errsBefore != 1 {
		t.Errorf("discovery errors of rules[1] grew by %v, want 1", errs-errsBefore)
	}
	last, _ := gathered(t, "promgate_discovery_rule_last_success_timestamp_seconds", map[string]string{"rule": "rules[0]"})
	if last < float64(before.Unix())-1 || last > float64(time.Now().Unix())+1 {
		t.Errorf("last success of rules[0] = %v, want about %v", last, before.Unix())
	}
	if took, ok := gathered(t, "promgate_discovery_rule_duration_seconds", map[string]string{"rule": "rules[0]"}); !ok || took <= 0 || took > 10 {
		t.Errorf("duration of rules[0] = %v (present %v)", took, ok)
	}

	// A configuration without rules[1]: its series go.
	_, d2 := setup(t, `
rules:
- seriesQuery: '`+qApp+`'
  resources: {template: "<<.Resource>>"}
`)
	d2.Refresh(context.Background())
	for _, name := range []string{"promgate_discovery_series", "promgate_discovery_rule_failing", "promgate_discovery_series_dropped"} {
		if v, ok := gathered(t, name, map[string]string{"rule": "rules[1]"}); ok {
			t.Errorf("%s of a removed rule still exported: %v", name, v)
		}
	}
	if _, ok := gathered(t, "promgate_discovery_series", map[string]string{"rule": "rules[0]"}); !ok {
		t.Error("series of a kept rule no longer exported")
	}
}

// TestDropKind: reasons as discovery words them (TestDiscoveryMetrics
// checks the real ones) and one it does not.
func TestDropKind(t *testing.T) {
	tests := []struct{ reason, want string }{
		{"filtered by seriesFilters[0] isNot _total$", DropFiltered},
		{"filtered by name.matches ^app_(.*)$", DropFiltered},
		{"naming: series \"x\" does not match name.matches \"^a$\"", DropNaming},
		{"no label maps to a Kubernetes resource", DropNoResource},
		{"something new", DropOther},
	}
	for _, tt := range tests {
		if got := DropKind(tt.reason); got != tt.want {
			t.Errorf("DropKind(%q) = %q, want %q", tt.reason, got, tt.want)
		}
	}
}

// gathered returns the value of the gauge series of name whose labels
// include labels, from the registry /metrics serves.
func gathered(t *testing.T, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metric
				}
			}
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

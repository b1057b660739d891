package catalog

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/internal/kubetest"
	"github.com/promgate/promgate/pkg/internal/promtest"
	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/rules"
)

const (
	qApp      = `{namespace!="",__name__=~"^app_.*"}`
	qNode     = `{__name__=~"^node_.*"}`
	qBroken   = `{__name__=~"^broken_.*"}`
	qExternal = `{__name__=~"^queue_.*"}`
)

const testConfig = `

rules:
# rules[0]: app counters, per pod and namespace
- seriesQuery: '` + qApp + `'
  resources:
    overrides:
      namespace: {resource: namespace}
      pod: {resource: pod}
  name: {matches: "^app_(.*)_total$", as: "${1}_per_second"}
  metricsQuery: sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)
# rules[1]: app gauges, any resource named by its label
- seriesQuery: '` + qApp + `'
  seriesFilters: [{isNot: "_total$"}]
  resources: {template: "<<.Resource>>"}
# rules[2]: node metrics
- seriesQuery: '` + qNode + `'
  resources:
    overrides:
      node: {resource: node}
  name: {matches: "^node_(.*)$"}
# rules[3]: a query the backend fails
- seriesQuery: '` + qBroken + `'
  resources: {template: "<<.Resource>>"}
# rules[4]: app_inflight renamed
- seriesQuery: '` + qApp + `'
  resources: {template: "<<.Resource>>"}
  name: {matches: "^app_inflight$", as: "inflight"}
externalRules:
- seriesQuery: '` + qExternal + `'
  name: {matches: "^queue_(.*)$"}
- seriesQuery: '` + qExternal + `'
  name: {matches: "^queue_(depth)$", as: "depth"}
`

func setup(t *testing.T, cfgText string) (*promtest.Server, *Discoverer) {
	t.Helper()
	cfg, err := config.Parse([]byte(cfgText))
	if err != nil {
		t.Fatal(err)
	}
	custom, external, err := rules.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := promtest.New(t)
	client, err := prom.New(prom.Options{URL: srv.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return srv, New(custom, external, Single(client), kubetest.Mapper(), 10*time.Minute)
}

func appSeries(srv *promtest.Server, extra ...map[string]string) {
	srv.Series(qApp, append([]map[string]string{
		{"__name__": "app_requests_total", "namespace": "ns1", "pod": "web-0", "code": "200"},
		{"__name__": "app_requests_total", "namespace": "ns1", "pod": "web-1", "code": "500"}, // same shape
		{"__name__": "app_requests_total", "namespace": "ns2", "pod": "api-0", "service": "api"},
		{"__name__": "app_inflight", "namespace": "ns1", "pod": "web-0", "deployment": "web"},
		{"__name__": "app_inflight", "namespace": "ns1", "service": "web"},
		{"__name__": "app_build_info", "namespace": "ns1", "version": "1"},
		{"__name__": "app_build_info", "namespace": "ns1", "version": "1", "ingress": "web"},
	}, extra...)...)
}

func nodeSeries(srv *promtest.Server) {
	srv.Series(qNode,
		map[string]string{"__name__": "node_load1", "node": "n1"},
		map[string]string{"__name__": "node_load1", "node": "n2", "namespace": "kube-system"},
		map[string]string{"__name__": "node_boot_time", "instance": "10.0.0.1:9100"},
	)
}

func metricList(s *Snapshot) []string {
	var out []string
	for _, m := range s.CustomMetrics() {
		scope := "cluster"
		if m.Namespaced {
			scope = "namespaced"
		}
		out = append(out, fmt.Sprintf("%s %s %s", m.GroupResource, scope, m.Metric))
	}
	return out
}

func TestDiscover(t *testing.T) {
	srv, d := setup(t, testConfig)
	appSeries(srv)
	nodeSeries(srv)
	srv.SeriesReply(qBroken, promtest.Reply{Status: http.StatusInternalServerError, ContentType: "text/plain", Body: "boom"})
	srv.Series(qExternal,
		map[string]string{"__name__": "queue_depth", "queue": "a", "namespace": "ns1"},
		map[string]string{"__name__": "queue_depth", "queue": "b"},
		map[string]string{"__name__": "queue_age_seconds", "queue": "a"},
	)
	select {
	case <-d.Ready():
		t.Fatal("ready before the first discovery")
	default:
	}
	before := time.Now()
	snap := d.Refresh(context.Background())
	if d.Snapshot() != snap {
		t.Error("Refresh did not publish its snapshot")
	}
	select {
	case <-d.Ready():
	default:
		t.Error("not ready after the first discovery")
	}
	if snap.Time.Before(before) {
		t.Errorf("snapshot time %v before the refresh", snap.Time)
	}

	// One series call per distinct seriesQuery.
	matches := srv.SeriesMatches()
	counts := map[string]int{}
	for _, m := range matches {
		counts[m]++
	}
	if !reflect.DeepEqual(counts, map[string]int{qApp: 1, qNode: 1, qBroken: 1, qExternal: 1}) {
		t.Errorf("series calls = %v", counts)
	}
	for _, r := range srv.Requests() {
		start, _ := strconv.ParseFloat(r.Form.Get("start"), 64)
		end, _ := strconv.ParseFloat(r.Form.Get("end"), 64)
		if d := end - start; d < 599 || d > 601 {
			t.Errorf("series window = %vs, want maxAge (600s)", d)
		}
	}

	want := []string{
		"deployments.apps namespaced inflight",
		"ingresses.networking.k8s.io namespaced app_build_info",
		"namespaces cluster app_build_info",
		"namespaces cluster inflight",
		"namespaces cluster requests_per_second",
		"nodes cluster load1", // a namespace label does not make nodes namespaced
		"pods namespaced inflight",
		"pods namespaced requests_per_second",
		"services namespaced app_inflight",
		"services namespaced inflight",
	}
	// rules[1] names app_inflight as is, for pods, deployments, services, namespaces.
	want = append(want,
		"deployments.apps namespaced app_inflight",
		"namespaces cluster app_inflight",
		"pods namespaced app_inflight",
	)
	got := metricList(snap)
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("custom metrics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	for _, tt := range []struct {
		key    CustomKey
		rule   string
		series string
	}{
		{CustomKey{kubetest.Pods, true, "requests_per_second"}, "rules[0]", "app_requests_total"},
		{CustomKey{kubetest.Namespaces, false, "requests_per_second"}, "rules[0]", "app_requests_total"},
		{CustomKey{kubetest.Pods, true, "app_inflight"}, "rules[1]", "app_inflight"},
		{CustomKey{kubetest.Pods, true, "inflight"}, "rules[4]", "app_inflight"},
		{CustomKey{kubetest.Nodes, false, "load1"}, "rules[2]", "node_load1"},
	} {
		e, ok := snap.Custom(tt.key)
		if !ok || e.Rule.Path != tt.rule || e.Series != tt.series {
			t.Errorf("Custom(%+v) = %+v, %v; want %s %s", tt.key, e, ok, tt.rule, tt.series)
		}
	}
	for _, k := range []CustomKey{
		{kubetest.Pods, false, "requests_per_second"},    // only namespaced
		{kubetest.Services, true, "requests_per_second"}, // no override for service in rules[0]
		{kubetest.Nodes, true, "load1"},
		{kubetest.Pods, true, "app_requests_total"}, // filtered from rules[1]
	} {
		if e, ok := snap.Custom(k); ok {
			t.Errorf("Custom(%+v) = %+v, want none", k, e)
		}
	}
	if got := snap.MetricsFor(kubetest.Pods); !reflect.DeepEqual(got, []string{"app_inflight", "inflight", "requests_per_second"}) {
		t.Errorf("MetricsFor(pods) = %q", got)
	}
	if got := snap.MetricsFor(schema.GroupResource{Resource: "widgets"}); got != nil {
		t.Errorf("MetricsFor(widgets) = %q", got)
	}

	// External metrics: the last rule naming a metric serves it.
	if got := snap.ExternalMetrics(); !reflect.DeepEqual(got, []provider.ExternalMetricInfo{{Metric: "age_seconds"}, {Metric: "depth"}}) {
		t.Errorf("external metrics = %v", got)
	}
	if e, ok := snap.ExternalEntry("depth"); !ok || e.Rule.Path != "externalRules[1]" || e.Series != "queue_depth" {
		t.Errorf("ExternalEntry(depth) = %+v, %v; want externalRules[1] queue_depth", e, ok)
	}
	if e, ok := snap.ExternalEntry("age_seconds"); !ok || e.Rule.Path != "externalRules[0]" {
		t.Errorf("ExternalEntry(age_seconds) = %+v, %v; want externalRules[0]", e, ok)
	}
	if e, ok := snap.ExternalEntry("depth"); !ok || e.Rule.Path != "externalRules[1]" {
		t.Errorf("ExternalEntry(depth) = %+v, %v; want the entry of externalRules[1]", e, ok)
	}
	if _, ok := snap.ExternalEntry("nope"); ok {
		t.Error("ExternalEntry(nope) found")
	}

	// Reports, custom rules first, in config order.
	wantReports := []RuleReport{
		{
			Path: "rules[0]", SeriesQuery: qApp, Series: 6, Kept: 2,
			Dropped:  map[string]int{"filtered by name.matches ^app_(.*)_total$": 4},
			Examples: map[string][]string{"filtered by name.matches ^app_(.*)_total$": {"app_inflight", "app_inflight", "app_build_info"}},
			Metrics:  []string{"requests_per_second"},
		},
		{
			Path: "rules[1]", SeriesQuery: qApp, Series: 6, Kept: 4,
			Dropped:  map[string]int{"filtered by seriesFilters[0] isNot _total$": 2},
			Examples: map[string][]string{"filtered by seriesFilters[0] isNot _total$": {"app_requests_total", "app_requests_total"}},
			Metrics:  []string{"app_build_info", "app_inflight"},
		},
		{
			Path: "rules[2]", SeriesQuery: qNode, Series: 3, Kept: 2,
			Dropped:  map[string]int{"no label maps to a Kubernetes resource": 1},
			Examples: map[string][]string{"no label maps to a Kubernetes resource": {"node_boot_time{instance}"}},
			Metrics:  []string{"load1"},
		},
		{
			Path: "rules[3]", SeriesQuery: qBroken, Err: "prometheus backend " + srv.URL + ": series failed: HTTP 500 Internal Server Error: boom",
			Dropped: map[string]int{}, Examples: map[string][]string{},
		},
		{
			Path: "rules[4]", SeriesQuery: qApp, Series: 6, Kept: 2,
			Dropped:  map[string]int{"filtered by name.matches ^app_inflight$": 4},
			Examples: map[string][]string{"filtered by name.matches ^app_inflight$": {"app_requests_total", "app_requests_total", "app_build_info"}},
			Metrics:  []string{"inflight"},
		},
		{
			Path: "externalRules[0]", SeriesQuery: qExternal, Series: 3, Kept: 3,
			Dropped: map[string]int{}, Examples: map[string][]string{},
			Metrics:    []string{"age_seconds", "depth"},
			Overridden: []Override{{Metric: "depth", By: "externalRules[1]"}},
		},
		{
			Path: "externalRules[1]", SeriesQuery: qExternal, Series: 3, Kept: 2,
			Dropped:  map[string]int{"filtered by name.matches ^queue_(depth)$": 1},
			Examples: map[string][]string{"filtered by name.matches ^queue_(depth)$": {"queue_age_seconds"}},
			Metrics:  []string{"depth"},
		},
	}
	checkReports(t, snap.Reports, wantReports, before)
}

func checkReports(t *testing.T, got, want []RuleReport, success time.Time) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d reports, want %d", len(got), len(want))
	}
	for i := range want {
		g := got[i]
		if g.Err == "" && g.LastSuccess.Before(success) {
			t.Errorf("%s: LastSuccess %v before %v", g.Path, g.LastSuccess, success)
		}
		if want[i].LastSuccess.IsZero() {
			g.LastSuccess = time.Time{}
		}
		if want[i].Backend == "" && g.Backend != "default" {
			t.Errorf("%s: backend %q, want the default one", g.Path, g.Backend)
		}
		if want[i].Backend == "" {
			g.Backend = ""
		}
		// These tests' stand-in answers no index: auto lists series, in
		// one request per seriesQuery.
		if want[i].Method == "" && (g.Method != config.MethodSeries || g.Requests != 1) {
			t.Errorf("%s: method %s in %d requests, want series in 1", g.Path, g.Method, g.Requests)
		}
		if want[i].Method == "" {
			g.Method, g.Requests = "", 0
		}
		if !reflect.DeepEqual(g, want[i]) {
			t.Errorf("report %d:\n%+v\nwant:\n%+v", i, g, want[i])
		}
	}
}

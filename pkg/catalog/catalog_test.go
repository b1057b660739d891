package catalog

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
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
	return srv, New(custom, external, client, kubetest.Mapper(), 10*time.Minute)
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
	if got := snap.External("depth"); len(got) != 1 || got[0].Rule.Path != "externalRules[1]" {
		t.Errorf("External(depth) = %+v, want the entry of externalRules[1]", got)
	}
	if _, ok := snap.ExternalEntry("nope"); ok || snap.External("nope") != nil {
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
		if want[i].Method == "" && (g.Method != MethodSeries || g.Requests != 1) {
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

func TestDropReasons(t *testing.T) {
	srv, d := setup(t, `
rules:
- seriesQuery: '{__name__=~".+"}'
  seriesFilters: [{is: "^x_"}]
  resources: {template: "<<.Resource>>"}
  name: {matches: "^x_(.*)$", as: "${1}"}
`)
	var series []map[string]string
	for i := 0; i < 5; i++ {
		series = append(series, map[string]string{"__name__": fmt.Sprintf("y_%d", i), "pod": "p", "namespace": "n"})
		series = append(series, map[string]string{"__name__": fmt.Sprintf("x_nolabel_%d", i), "instance": "i", "job": "j"})
	}
	series = append(series,
		map[string]string{"__name__": "x_", "pod": "p"},          // empty metric name
		map[string]string{"__name__": "x_a/b", "pod": "p"},       // slash in name
		map[string]string{"__name__": "x_ok", "pod": "p"},        // no namespace: still namespaced, as in prometheus-adapter
		map[string]string{"__name__": "x_ok2", "namespace": "n"}, // namespace only
	)
	srv.Series(`{__name__=~".+"}`, series...)
	rep := d.Refresh(context.Background()).Reports[0]
	wantDropped := map[string]int{
		"filtered by seriesFilters[0] is ^x_":                                    5,
		"no label maps to a Kubernetes resource":                                 5,
		`naming: series "x_" gives an empty metric name`:                         1,
		`naming: metric name "a/b" from series "x_a/b" contains '/', '%' or '?'`: 1,
	}
	if !reflect.DeepEqual(rep.Dropped, wantDropped) {
		t.Errorf("Dropped = %v\nwant %v", rep.Dropped, wantDropped)
	}
	wantExamples := map[string][]string{
		"filtered by seriesFilters[0] is ^x_":                                    {"y_0", "y_1", "y_2"}, // at most 3
		"no label maps to a Kubernetes resource":                                 {"x_nolabel_0{instance,job}", "x_nolabel_1{instance,job}", "x_nolabel_2{instance,job}"},
		`naming: series "x_" gives an empty metric name`:                         {"x_"},
		`naming: metric name "a/b" from series "x_a/b" contains '/', '%' or '?'`: {"x_a/b"},
	}
	if !reflect.DeepEqual(rep.Examples, wantExamples) {
		t.Errorf("Examples = %v\nwant %v", rep.Examples, wantExamples)
	}
	if rep.Series != 14 || rep.Kept != 2 || !reflect.DeepEqual(rep.Metrics, []string{"ok", "ok2"}) {
		t.Errorf("report = %+v", rep)
	}
	if got := metricList(d.Snapshot()); !reflect.DeepEqual(got, []string{"namespaces cluster ok2", "pods namespaced ok"}) {
		t.Errorf("metrics = %q", got)
	}
}

func TestFailingQueryKeepsLastGoodResult(t *testing.T) {
	srv, d := setup(t, testConfig)
	appSeries(srv)
	nodeSeries(srv)
	srv.Series(qExternal, map[string]string{"__name__": "queue_depth"})
	srv.SeriesReply(qBroken, promtest.Reply{Status: http.StatusBadGateway, ContentType: "text/plain", Body: "no"})

	first := d.Refresh(context.Background())
	firstMetrics := metricList(first)
	firstTime := first.Reports[0].LastSuccess

	// The app query now fails; the node query finds a new metric.
	srv.SeriesReply(qApp, promtest.Error(http.StatusServiceUnavailable, "unavailable", "overloaded"))
	srv.Series(qNode,
		map[string]string{"__name__": "node_load1", "node": "n1"},
		map[string]string{"__name__": "node_load5", "node": "n1"},
	)
	second := d.Refresh(context.Background())
	if second == first {
		t.Fatal("no new snapshot")
	}
	var want []string
	for _, m := range firstMetrics {
		if !strings.HasPrefix(m, "nodes ") {
			want = append(want, m)
		}
	}
	want = append(want, "nodes cluster load1", "nodes cluster load5")
	sort.Strings(want)
	if got := metricList(second); !reflect.DeepEqual(got, want) {
		t.Errorf("metrics after a failure:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, i := range []int{0, 1, 4} {
		rep := second.Reports[i]
		if rep.Err != "prometheus backend "+srv.URL+": series failed: unavailable: overloaded" {
			t.Errorf("%s: Err = %q", rep.Path, rep.Err)
		}
		if !rep.LastSuccess.Equal(firstTime) || rep.Series != 6 || !reflect.DeepEqual(rep.Metrics, first.Reports[i].Metrics) {
			t.Errorf("%s: report %+v does not describe the last good result", rep.Path, rep)
		}
	}
	if rep := second.Reports[2]; rep.Err != "" || !rep.LastSuccess.After(firstTime) || !reflect.DeepEqual(rep.Metrics, []string{"load1", "load5"}) {
		t.Errorf("node report = %+v", rep)
	}
	// A query that never succeeded has nothing to keep.
	if rep := second.Reports[3]; rep.Err == "" || !rep.LastSuccess.IsZero() || rep.Series != 0 {
		t.Errorf("broken report = %+v", rep)
	}
	// The earlier snapshot is untouched.
	if got := metricList(first); !reflect.DeepEqual(got, firstMetrics) {
		t.Errorf("first snapshot changed:\n%s", strings.Join(got, "\n"))
	}

	// Once the query recovers, its new result replaces the old one.
	srv.Series(qApp, map[string]string{"__name__": "app_requests_total", "namespace": "ns1", "pod": "web-0"})
	third := d.Refresh(context.Background())
	if got := third.MetricsFor(kubetest.Pods); !reflect.DeepEqual(got, []string{"requests_per_second"}) {
		t.Errorf("pods metrics after recovery = %q", got)
	}
	if rep := third.Reports[0]; rep.Err != "" || !rep.LastSuccess.After(firstTime) || rep.Series != 1 {
		t.Errorf("report after recovery = %+v", rep)
	}
}

// A query that hangs until the client times out does not hold back the
// others: they are listed concurrently.
func TestSlowQueryDoesNotBlockOthers(t *testing.T) {
	cfg, err := config.Parse([]byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	custom, external, err := rules.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := promtest.New(t)
	client, err := prom.New(prom.Options{URL: srv.URL, Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	d := New(custom, external, client, kubetest.Mapper(), time.Hour)
	appSeries(srv)
	nodeSeries(srv)
	srv.SeriesReply(qBroken, promtest.Reply{Body: `{"status":"success","data":[]}`, Delay: time.Minute})
	start := time.Now()
	snap := d.Refresh(context.Background())
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("refresh took %v", took)
	}
	if len(snap.MetricsFor(kubetest.Nodes)) != 1 || len(snap.MetricsFor(kubetest.Pods)) != 3 {
		t.Errorf("metrics = %q", metricList(snap))
	}
	if !strings.Contains(snap.Reports[3].Err, "series failed: ") {
		t.Errorf("slow query report = %+v", snap.Reports[3])
	}
}

// Readers always see a complete snapshot while discovery replaces it.
func TestSnapshotSwapIsAtomic(t *testing.T) {
	srv, d := setup(t, testConfig)
	nodeSeries(srv)
	if s := d.Snapshot(); s == nil || len(s.CustomMetrics()) != 0 {
		t.Fatalf("initial snapshot = %+v", s)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				s := d.Snapshot()
				n := len(s.MetricsFor(kubetest.Nodes))
				// Either the node metrics of the 1-series or of the 2-series
				// fixture, never a mix.
				ms := s.CustomMetrics()
				for _, m := range ms {
					if _, ok := s.Custom(CustomKey{m.GroupResource, m.Namespaced, m.Metric}); !ok {
						t.Errorf("listed metric %v has no entry", m)
						return
					}
				}
				if len(s.Reports) != 0 && n != len(s.Reports[2].Metrics) {
					t.Errorf("snapshot has %d node metrics, its report %d", n, len(s.Reports[2].Metrics))
					return
				}
			}
		}()
	}
	for i := 0; i < 30; i++ {
		if i%2 == 0 {
			srv.Series(qNode, map[string]string{"__name__": "node_a", "node": "n"})
		} else {
			srv.Series(qNode, map[string]string{"__name__": "node_a", "node": "n"}, map[string]string{"__name__": "node_b", "node": "n"})
		}
		d.Refresh(context.Background())
	}
	cancel()
	wg.Wait()
}

func TestRun(t *testing.T) {
	srv, d := setup(t, testConfig)
	nodeSeries(srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		d.Run(ctx, 10*time.Millisecond)
		close(done)
	}()
	select {
	case <-d.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(srv.SeriesMatches()) < 3*4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if n := len(srv.SeriesMatches()); n < 3*4 {
		t.Errorf("%d series calls: Run did not repeat discovery", n)
	}
	if got := d.Snapshot().MetricsFor(kubetest.Nodes); !reflect.DeepEqual(got, []string{"load1"}) {
		t.Errorf("node metrics = %q", got)
	}
}

func TestNamespaced(t *testing.T) {
	for gr, want := range map[schema.GroupResource]bool{
		kubetest.Pods:                   true,
		kubetest.Services:               true,
		kubetest.Deployments:            true,
		kubetest.Ingresses:              true,
		kubetest.Namespaces:             false,
		kubetest.Nodes:                  false,
		{Resource: "persistentvolumes"}: false,
		{Group: "storage.k8s.io", Resource: "storageclasses"}: true, // as prometheus-adapter lists it
		{Group: "example.com", Resource: "widgets"}:           true,
	} {
		if got := Namespaced(gr); got != want {
			t.Errorf("Namespaced(%v) = %v", gr, got)
		}
	}
}

func TestMetricsForListsEachNameOnce(t *testing.T) {
	snap := &Snapshot{customList: []provider.CustomMetricInfo{
		{GroupResource: kubetest.Pods, Namespaced: false, Metric: "a"},
		{GroupResource: kubetest.Pods, Namespaced: true, Metric: "a"},
		{GroupResource: kubetest.Pods, Namespaced: true, Metric: "b"},
		{GroupResource: kubetest.Services, Namespaced: true, Metric: "c"},
	}}
	if got := snap.MetricsFor(kubetest.Pods); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("MetricsFor(pods) = %q, want [a b]", got)
	}
}

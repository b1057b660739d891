package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/internal/promtest"
	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/rules"
)

// edgeConfig has the rule shapes the index plan must get right: overrides
// and templates (kubernetes_<<.Resource>>), seriesFilters, names of
// several series giving one metric, rules sharing a seriesQuery with
// different resource labels, external rules (namespaced or not), and
// cluster-scoped resources.
const edgeConfig = `
rules:
- seriesQuery: '{__name__=~"^app_.*",namespace!=""}'
  resources:
    overrides:
      namespace: {resource: namespace}
      pod: {resource: pod}
      service: {resource: service}
  name: {matches: "^app_(.*?)(_total)?$", as: "app_${1}"}
- seriesQuery: '{__name__=~"^app_.*",namespace!=""}'
  resources: {template: "<<.Resource>>"}
  seriesFilters: [{isNot: "^app_build_info$"}]
  name: {matches: "^app_(.*)$", as: "t_${1}"}
- seriesQuery: '{__name__=~"^legacy_.+",kubernetes_namespace!=""}'
  resources:
    template: "kubernetes_<<.Resource>>"
    overrides:
      kubernetes_pod_name: {resource: pod}
  name: {matches: "^legacy_(.*)$"}
- seriesQuery: '{__name__=~"^(node|pv|sc)_.+"}'
  resources:
    overrides:
      node: {resource: node}
      persistentvolume: {resource: persistentvolume}
      storageclass: {group: storage.k8s.io, resource: storageclass}
      namespace: {resource: namespace}
  seriesFilters: [{is: "_(load1|bytes|count)$"}]
- seriesQuery: 'weird_metric{label="a\"b\\c",other=~"x|"}'
  resources: {template: "<<.Resource>>"}
externalRules:
- seriesQuery: '{__name__=~"^queue_.+",namespace!=""}'
  resources: {overrides: {namespace: {resource: namespace}}}
  name: {matches: "^queue_(.*)$"}
- seriesQuery: '{__name__=~"^queue_.+"}'
  resources: {namespaced: false}
  name: {matches: "^queue_(.*?)(_total)?$", as: "all_${1}"}
`

// edgeSeries has, for one metric, series with different subsets of the
// resource labels, series without namespace, and labels no rule maps.
var edgeSeries = []map[string]string{
	{"__name__": "app_requests_total", "namespace": "ns1", "pod": "a", "code": "200"},
	{"__name__": "app_requests_total", "namespace": "ns1", "pod": "b", "code": "500"},
	{"__name__": "app_requests_total", "namespace": "ns2", "service": "api"},
	{"__name__": "app_requests_total", "namespace": "ns2"},
	{"__name__": "app_requests", "namespace": "ns3", "pod": "c"}, // app_requests too: the last name wins
	{"__name__": "app_inflight", "namespace": "ns1", "deployment": "web", "pod": "a"},
	{"__name__": "app_build_info", "namespace": "ns1", "version": "1"},
	{"__name__": "app_build_info", "namespace": "ns1", "version": "2", "ingress": "web"},
	{"__name__": "app_orphan", "pod": "z"}, // no namespace: not selected
	{"__name__": "legacy_hits", "kubernetes_namespace": "ns1", "kubernetes_pod_name": "a"},
	{"__name__": "legacy_hits", "kubernetes_namespace": "ns1", "kubernetes_service": "web"},
	{"__name__": "legacy_misses", "kubernetes_namespace": "ns2", "kubernetes_node": "n1", "job": "x"},
	{"__name__": "legacy_misses", "kubernetes_namespace": "ns2", "kubernetes_nothing": "y"},
	{"__name__": "node_load1", "node": "n1"},
	{"__name__": "node_load1", "node": "n2", "namespace": "kube-system"},
	{"__name__": "node_boot_time", "instance": "i"},
	{"__name__": "pv_bytes", "persistentvolume": "pv1"},
	{"__name__": "sc_count", "storageclass": "fast"},
	{"__name__": "sc_count", "storageclass": "slow", "node": "n1"},
	{"__name__": "weird_metric", "label": `a"b\c`, "other": "x", "pod": "p", "namespace": "n"},
	{"__name__": "weird_metric", "label": `a"b\c`, "service": "s", "namespace": "n"},
	{"__name__": "weird_metric", "label": "ab", "deployment": "d"},
	{"__name__": "queue_depth", "namespace": "ns1", "queue": "q"},
	{"__name__": "queue_depth_total", "namespace": "ns1"},
	{"__name__": "queue_lag", "queue": "q"},
}

// discoveryCase is a config and the series it discovers.
type discoveryCase struct {
	name   string
	config []byte
	series []map[string]string
}

func discoveryCases(t *testing.T) []discoveryCase {
	t.Helper()
	b, err := os.ReadFile("testdata/adapter/series.json")
	if err != nil {
		t.Fatal(err)
	}
	var adapterSeries []map[string]string
	if err := json.Unmarshal(b, &adapterSeries); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("testdata/adapter/*.yaml")
	files = append(files, "../../config/promgate.yaml")
	if len(files) < 7 {
		t.Fatalf("only %d configs", len(files))
	}
	var out []discoveryCase
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		out = append(out, discoveryCase{name + "/adapter-series", b, adapterSeries}, discoveryCase{name + "/edge-series", b, edgeSeries})
	}
	return append(out, discoveryCase{"edge/edge-series", []byte(edgeConfig), edgeSeries}, discoveryCase{"edge/adapter-series", []byte(edgeConfig), adapterSeries})
}

// discover runs one discovery of cfgText against srv with method m.
func discover(t *testing.T, cfgText []byte, url string, m config.Method) *Snapshot {
	t.Helper()
	cfg, err := config.Parse(cfgText)
	if err != nil {
		t.Fatal(err)
	}
	custom, external, err := rules.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := prom.New(prom.Options{URL: url, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return New(custom, external, Single(c.WithLimits(prom.Limits{})), adapterMapper(), time.Hour).WithMethod(m).Refresh(context.Background())
}

// served is what a snapshot serves, and what each rule's report says
// besides its counts of shapes.
func served(s *Snapshot) []string {
	var out []string
	for _, m := range s.CustomMetrics() {
		e, _ := s.Custom(CustomKey{Resource: m.GroupResource, Namespaced: m.Namespaced, Metric: m.Metric})
		out = append(out, fmt.Sprintf("custom %s namespaced=%v %s <- %s %s", m.GroupResource, m.Namespaced, m.Metric, e.Rule.Path, e.Series))
	}
	for _, m := range s.ExternalMetrics() {
		e, _ := s.ExternalEntry(m.Metric)
		out = append(out, fmt.Sprintf("external %s <- %s %s", m.Metric, e.Rule.Path, e.Series))
	}
	for _, r := range s.Reports {
		out = append(out, fmt.Sprintf("report %s backend=%s err=%q metrics=%v overridden=%+v", r.Path, r.Backend, r.Err, r.Metrics, r.Overridden))
	}
	return out
}

// TestIndexDiscoveryEqualsSeriesDiscovery runs both methods against one
// stand-in Prometheus serving the same series on all three endpoints, for
// the configs of prometheus-adapter's documentation and promgate's
// default, and edge cases, and requires the same snapshot.
func TestIndexDiscoveryEqualsSeriesDiscovery(t *testing.T) {
	for _, tc := range discoveryCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			srv := promtest.NewIndex(t, tc.series)
			bySeries := discover(t, tc.config, srv.URL, config.MethodSeries)
			for _, r := range srv.Requests() {
				if !strings.HasPrefix(r, "/api/v1/series ") {
					t.Fatalf("series method asked %s", r)
				}
			}
			srv.Reset()
			byIndex := discover(t, tc.config, srv.URL, config.MethodIndex)
			for _, r := range srv.Requests() {
				if strings.HasPrefix(r, "/api/v1/series ") {
					t.Fatalf("index method asked %s", r)
				}
			}
			want, got := served(bySeries), served(byIndex)
			if len(bySeries.CustomMetrics())+len(bySeries.ExternalMetrics()) == 0 && tc.name != "helm-default/edge-series" {
				t.Logf("nothing discovered") // still compared: nothing either way
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("index and series discovery differ:\nindex:\n  %s\nseries:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
			}
			for _, r := range byIndex.Reports {
				if r.Method != config.MethodIndex || r.Err != "" {
					t.Errorf("%s: method %s, error %q", r.Path, r.Method, r.Err)
				}
			}
		})
	}
}

// TestIndexDiscoveryRequests checks that the plan is cheap: the names,
// the backend's label names, and one question per resource label the
// seriesQuery does not already require, whatever the number of series and
// however their labels differ.
func TestIndexDiscoveryRequests(t *testing.T) {
	var uniform, mixed []map[string]string
	for i := range 50 {
		for f := range 3 {
			s := map[string]string{"__name__": fmt.Sprintf("m%d_total", f), "namespace": "ns", "pod": fmt.Sprint("p", i), "service": "s", "code": fmt.Sprint(i % 4)}
			uniform = append(uniform, s)
			m := map[string]string{"__name__": s["__name__"], "namespace": "ns", "pod": s["pod"]}
			if i%2 == 0 {
				m["service"] = "s"
			}
			mixed = append(mixed, m)
		}
	}
	const cfg = `
rules:
- seriesQuery: '{__name__=~"^.+_total$",namespace!="",pod!=""}'
  resources: {template: "<<.Resource>>"}
  name: {matches: "^(.*)_total$", as: "${1}_per_second"}
`
	for _, tc := range []struct {
		name           string
		series         []map[string]string
		wantRequests   int // probe included
		wantShapes     int
		wantCustomList int
	}{
		// probe, names, the backend's label names, service!="" (namespace
		// and pod the seriesQuery requires): one shape per name
		{"uniform", uniform, 4, 3, 9},
		// the same: what a name's series carry is the union
		{"mixed", mixed, 4, 3, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := promtest.NewIndex(t, tc.series)
			snap := discover(t, []byte(cfg), srv.URL, config.MethodIndex)
			rep := snap.Reports[0]
			if rep.Requests != tc.wantRequests || len(srv.Requests()) != tc.wantRequests {
				t.Errorf("requests: report %d, server %d, want %d:\n%s", rep.Requests, len(srv.Requests()), tc.wantRequests, strings.Join(srv.Requests(), "\n"))
			}
			if rep.Series != tc.wantShapes || len(snap.CustomMetrics()) != tc.wantCustomList {
				t.Errorf("shapes %d, custom metrics %d; want %d, %d", rep.Series, len(snap.CustomMetrics()), tc.wantShapes, tc.wantCustomList)
			}
			if !reflect.DeepEqual(served(snap), served(discover(t, []byte(cfg), srv.URL, config.MethodSeries))) {
				t.Error("index and series discovery differ")
			}
		})
	}
}

// TestIndexDiscoveryFallback checks auto against backends that do not
// answer the index: it lists series instead (and keeps doing so without
// asking the index again), while index reports the failure.
func TestIndexDiscoveryFallback(t *testing.T) {
	for _, tc := range []struct {
		name     string
		setup    func(*promtest.Index)
		wantAuto config.Method
	}{
		{"index answered", func(*promtest.Index) {}, config.MethodIndex},
		{"no index endpoints", func(x *promtest.Index) { x.NoIndex = true }, config.MethodSeries},
		{"match[] ignored", func(x *promtest.Index) { x.IgnoreMatch = true }, config.MethodSeries},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := promtest.NewIndex(t, edgeSeries)
			tc.setup(srv)
			want := served(discover(t, []byte(edgeConfig), srv.URL, config.MethodSeries))

			cfg, _ := config.Parse([]byte(edgeConfig))
			custom, external, _ := rules.Compile(cfg)
			c, _ := prom.New(prom.Options{URL: srv.URL, Timeout: 5 * time.Second})
			d := New(custom, external, Single(c.WithLimits(prom.Limits{})), adapterMapper(), time.Hour).WithMethod(config.MethodAuto)
			for i := range 2 {
				srv.Reset()
				snap := d.Refresh(context.Background())
				if got := served(snap); !reflect.DeepEqual(got, want) {
					t.Errorf("refresh %d: auto differs from series:\n  %s", i, strings.Join(got, "\n  "))
				}
				for _, r := range snap.Reports {
					if r.Method != tc.wantAuto {
						t.Errorf("refresh %d: %s: method %s, want %s", i, r.Path, r.Method, tc.wantAuto)
					}
				}
				if i == 1 && tc.wantAuto == config.MethodSeries {
					for _, r := range srv.Requests() {
						if !strings.HasPrefix(r, "/api/v1/series ") {
							t.Errorf("refresh after the fallback asked %s", r)
						}
					}
				}
			}

			byIndex := discover(t, []byte(edgeConfig), srv.URL, config.MethodIndex)
			for _, r := range byIndex.Reports {
				if failed := r.Err != ""; failed != (tc.wantAuto == config.MethodSeries) {
					t.Errorf("index method: %s: error %q", r.Path, r.Err)
				}
			}
		})
	}
}

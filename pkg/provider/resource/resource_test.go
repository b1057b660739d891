package resource

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/component-base/metrics/testutil"
	"k8s.io/metrics/pkg/apis/metrics"

	"github.com/promgate/promgate/pkg/budget"
	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/promql"
	"github.com/promgate/promgate/pkg/provider"
)

// testRules are config/promgate.yaml's default resourceRules with each
// query on one line, so that the expected PromQL below is exact text.
const testRules = `
resourceRules:
  cpu:
    containerQuery: 'sum by (<<.GroupBy>>) (rate(container_cpu_usage_seconds_total{<<.LabelMatchers>>,container!="",container!="POD",pod!=""}[1m]))'
    nodeQuery: 'sum by (<<.GroupBy>>) (rate(container_cpu_usage_seconds_total{<<.LabelMatchers>>,id="/"}[1m]))'
    resources:
      overrides:
        node: {resource: node}
        namespace: {resource: namespace}
        pod: {resource: pod}
    containerLabel: container
  memory:
    containerQuery: 'sum by (<<.GroupBy>>) (container_memory_working_set_bytes{<<.LabelMatchers>>,container!="",container!="POD",pod!=""})'
    nodeQuery: 'sum by (<<.GroupBy>>) (container_memory_working_set_bytes{<<.LabelMatchers>>,id="/"})'
    resources:
      overrides:
        node: {resource: node}
        namespace: {resource: namespace}
        pod: {resource: pod}
    containerLabel: container
  window: 1m
`

// Queries the test rules render, with %s for the label matchers.
const (
	podCPU  = `sum by (namespace,pod,container) (rate(container_cpu_usage_seconds_total{%s,container!="",container!="POD",pod!=""}[1m]))`
	podMem  = `sum by (namespace,pod,container) (container_memory_working_set_bytes{%s,container!="",container!="POD",pod!=""})`
	nodeCPU = `sum by (node) (rate(container_cpu_usage_seconds_total{%s,id="/"}[1m]))`
	nodeMem = `sum by (node) (container_memory_working_set_bytes{%s,id="/"})`
)

// t0 is the evaluation time the fake Prometheus stamps samples with.
const t0 = 1700000000.0

// series is one element of a vector result.
type series struct {
	labels map[string]string
	value  string  // as Prometheus sends it: "0.25", "NaN", "+Inf"
	ts     float64 // unix seconds; t0 when zero
}

func ctr(ns, pod, container, value string) series {
	return series{labels: map[string]string{"namespace": ns, "pod": pod, "container": container}, value: value}
}

func node(name, value string) series {
	return series{labels: map[string]string{"node": name}, value: value}
}

func (s series) at(ts float64) series { s.ts = ts; return s }

// fakeProm speaks Prometheus's /api/v1/query: it records every query and
// answers with respond's status and vector.
type fakeProm struct {
	mu      sync.Mutex
	queries []string
	respond func(query string) (int, []series)
	block   bool // hold every request until the client gives up
}

func (f *fakeProm) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/api/v1/query" {
		http.Error(w, "unexpected path "+r.URL.Path, http.StatusNotFound)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	q := r.Form.Get("query")
	f.mu.Lock()
	f.queries = append(f.queries, q)
	f.mu.Unlock()
	if f.block {
		<-r.Context().Done()
		return
	}
	w.Header().Set("Content-Type", "application/json")
	code, ss := f.respond(q)
	if code != http.StatusOK {
		w.WriteHeader(code)
		fmt.Fprint(w, `{"status":"error","errorType":"internal","error":"something broke"}`)
		return
	}
	type sample struct {
		Metric map[string]string `json:"metric"`
		Value  [2]any            `json:"value"`
	}
	result := make([]sample, 0, len(ss))
	for _, s := range ss {
		ts := s.ts
		if ts == 0 {
			ts = t0
		}
		result = append(result, sample{Metric: s.labels, Value: [2]any{ts, s.value}})
	}
	_ = json.NewEncoder(w).Encode(map[string]any{
		"status": "success",
		"data":   map[string]any{"resultType": "vector", "result": result},
	})
}

func (f *fakeProm) sent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := append([]string(nil), f.queries...)
	sort.Strings(out)
	return out
}

// byMetric answers CPU queries with cpu and memory queries with mem.
func byMetric(cpu, mem []series) func(string) (int, []series) {
	return func(q string) (int, []series) {
		if strings.Contains(q, "container_cpu") {
			return http.StatusOK, cpu
		}
		return http.StatusOK, mem
	}
}

func testMapper() apimeta.RESTMapper {
	m := apimeta.NewDefaultRESTMapper([]schema.GroupVersion{{Version: "v1"}})
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, apimeta.RESTScopeNamespace)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Node"}, apimeta.RESTScopeRoot)
	m.Add(schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}, apimeta.RESTScopeRoot)
	return m
}

func parseRules(t *testing.T, text string) *config.ResourceRules {
	t.Helper()
	cfg, err := config.Parse([]byte(text))
	if err != nil {
		t.Fatalf("parsing rules: %v", err)
	}
	return cfg.ResourceRules
}

// newTestProvider starts a fake Prometheus and returns a Provider using it
// through the real client.
func newTestProvider(t *testing.T, rules string, opts Options, f *fakeProm) (*Provider, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	client, err := prom.New(prom.Options{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	// The fake answers by query text; the guard is tested in compat_test.go.
	// A budget, as promgate runs with: the rendered shared queries are kept.
	run := &provider.Runner{Backends: provider.Single(client), Windows: provider.GuardOff, Budget: budget.New(64 << 20),
		Now: func() time.Time { return time.Unix(int64(t0), 0) }}
	p, err := New(parseRules(t, rules), run, testMapper(), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p, srv
}

func pod(ns, name string) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": name}}}
}

func nodeObj(name string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"zone": "z1"}}}
}

func stamp(ts metav1.Time) string {
	return fmt.Sprintf("%.3f", float64(ts.UnixMilli())/1000)
}

// podLines renders results compactly: "ns/name @ts window container{cpu,memory} ...".
func podLines(ms []metrics.PodMetrics) []string {
	var out []string
	for _, m := range ms {
		line := fmt.Sprintf("%s/%s @%s %s", m.Namespace, m.Name, stamp(m.Timestamp), m.Window.Duration)
		for _, c := range m.Containers {
			cpu, mem := c.Usage[corev1.ResourceCPU], c.Usage[corev1.ResourceMemory]
			line += fmt.Sprintf(" %s{cpu=%s,memory=%s%s}", c.Name, cpu.String(), mem.String(), swapOf(c.Usage))
		}
		if m.Labels["app"] != m.Name {
			line += " (labels not copied)"
		}
		out = append(out, line)
	}
	return out
}

// swapOf is ",swap=X" when usage has swap.
func swapOf(usage corev1.ResourceList) string {
	if q, ok := usage[swapResource]; ok {
		return ",swap=" + q.String()
	}
	return ""
}

func nodeLines(ms []metrics.NodeMetrics) []string {
	var out []string
	for _, m := range ms {
		cpu, mem := m.Usage[corev1.ResourceCPU], m.Usage[corev1.ResourceMemory]
		line := fmt.Sprintf("%s @%s %s cpu=%s memory=%s%s", m.Name, stamp(m.Timestamp), m.Window.Duration, cpu.String(), mem.String(), swapOf(m.Usage))
		if m.Labels["zone"] != "z1" {
			line += " (labels not copied)"
		}
		out = append(out, line)
	}
	return out
}

func missing(t *testing.T, resource string) float64 {
	t.Helper()
	RegisterMetrics() // as the server does at start; until then the counter counts nothing
	v, err := testutil.GetCounterMetricValue(missingTotal.WithLabelValues(resource))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func equalLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got: %s\nwant: %s", what, strings.Join(got, "\n      "), strings.Join(want, "\n      "))
	}
}

func queries(cpu, mem, matchers string) []string {
	out := []string{canonical(fmt.Sprintf(cpu, matchers)), canonical(fmt.Sprintf(mem, matchers))}
	sort.Strings(out)
	return out
}

// canonical prints q as the PromQL printer does (sorted matchers), which is
// how queries are sent.
func canonical(q string) string {
	e, err := promql.Parse(q)
	if err != nil {
		return "unparsable: " + q
	}
	return e.String()
}

const (
	mi100 = "104857600" // 100Mi
	mi20  = "20971520"  // 20Mi
)

func TestGetPodMetrics(t *testing.T) {
	many := make([]*metav1.PartialObjectMetadata, 150)
	for i := range many {
		many[i] = pod("big", fmt.Sprintf("p%03d", i))
	}
	tests := []struct {
		name        string
		opts        Options
		pods        []*metav1.PartialObjectMetadata
		cpu, mem    []series
		wantQuery   string // label matchers of both queries
		want        []string
		wantMissing float64
	}{{
		name: "pause container and pod-level series are not counted",
		pods: []*metav1.PartialObjectMetadata{pod("default", "web-1")},
		cpu: []series{
			ctr("default", "web-1", "app", "0.25").at(t0 - 15),
			ctr("default", "web-1", "sidecar", "0.05"),
			ctr("default", "web-1", "POD", "0.01"),
			ctr("default", "web-1", "", "0.31"),
		},
		mem: []series{
			ctr("default", "web-1", "app", mi100),
			ctr("default", "web-1", "sidecar", mi20).at(t0 - 30),
			ctr("default", "web-1", "POD", "1048576"),
			ctr("default", "web-1", "", "125829120"),
		},
		wantQuery: `namespace="default",pod="web-1"`,
		want:      []string{"default/web-1 @1699999970.000 1m0s app{cpu=250m,memory=100Mi} sidecar{cpu=50m,memory=20Mi}"},
	}, {
		name: "same pod name in two namespaces",
		pods: []*metav1.PartialObjectMetadata{pod("b", "web"), pod("a", "web")},
		cpu:  []series{ctr("a", "web", "app", "1"), ctr("b", "web", "app", "2.5")},
		mem:  []series{ctr("b", "web", "app", mi20), ctr("a", "web", "app", mi100)},
		// The matcher selects the cross product; results are keyed by both.
		wantQuery: `namespace=~"a|b",pod="web"`,
		want: []string{
			"b/web @1700000000.000 1m0s app{cpu=2500m,memory=20Mi}",
			"a/web @1700000000.000 1m0s app{cpu=1,memory=100Mi}",
		},
	}, {
		name: "missing containers",
		pods: []*metav1.PartialObjectMetadata{pod("default", "ok"), pod("default", "nodata"), pod("default", "starting"),
			pod("default", "sidecar-starting"), pod("default", "stopped"), pod("default", "pause-only")},
		cpu: []series{
			ctr("default", "ok", "app", "0.1"),
			// starting: "app" has memory but no CPU rate yet: nothing to report.
			// sidecar-starting: "sidecar" is skipped, "app" reported.
			ctr("default", "sidecar-starting", "app", "0.2"),
			// stopped: "init" has a CPU rate from before it stopped but no
			// memory now: skipped, "app" reported.
			ctr("default", "stopped", "init", "0.3"),
			ctr("default", "stopped", "app", "0.4"),
			ctr("default", "pause-only", "POD", "0.001"),
		},
		mem: []series{
			ctr("default", "ok", "app", mi100),
			ctr("default", "starting", "app", mi20),
			ctr("default", "sidecar-starting", "app", mi20),
			ctr("default", "sidecar-starting", "sidecar", mi20),
			ctr("default", "stopped", "app", mi20),
			ctr("default", "pause-only", "POD", mi20),
		},
		wantQuery: `namespace="default",pod=~"nodata|ok|pause-only|sidecar-starting|starting|stopped"`,
		want: []string{
			"default/ok @1700000000.000 1m0s app{cpu=100m,memory=100Mi}",
			"default/sidecar-starting @1700000000.000 1m0s app{cpu=200m,memory=20Mi}",
			"default/stopped @1700000000.000 1m0s app{cpu=400m,memory=20Mi}",
		},
		wantMissing: 3,
	}, {
		name: "NaN, Inf and negative values are missing, never zero",
		pods: []*metav1.PartialObjectMetadata{pod("default", "fine"), pod("default", "nan-cpu"), pod("default", "inf-mem"),
			pod("default", "neg-cpu"), pod("default", "nan-one-of-two"), pod("default", "nan-sidecar")},
		cpu: []series{
			ctr("default", "fine", "app", "0.5"),
			ctr("default", "nan-cpu", "app", "NaN"),
			ctr("default", "inf-mem", "app", "0.5"),
			ctr("default", "neg-cpu", "app", "-0.5"),
			ctr("default", "nan-one-of-two", "app", "0.5"),
			ctr("default", "nan-one-of-two", "app", "NaN"),
			ctr("default", "nan-sidecar", "app", "0.5"),
			ctr("default", "nan-sidecar", "sidecar", "NaN"),
		},
		mem: []series{
			ctr("default", "fine", "app", mi20),
			ctr("default", "nan-cpu", "app", mi20),
			ctr("default", "inf-mem", "app", "+Inf"),
			ctr("default", "neg-cpu", "app", mi20),
			ctr("default", "nan-one-of-two", "app", mi20),
			ctr("default", "nan-sidecar", "app", mi20),
			ctr("default", "nan-sidecar", "sidecar", mi20),
		},
		wantQuery: `namespace="default",pod=~"fine|inf-mem|nan-cpu|nan-one-of-two|nan-sidecar|neg-cpu"`,
		want: []string{
			"default/fine @1700000000.000 1m0s app{cpu=500m,memory=20Mi}",
			"default/nan-sidecar @1700000000.000 1m0s app{cpu=500m,memory=20Mi}",
		},
		wantMissing: 4,
	}, {
		name: "pod names are escaped in the regex",
		pods: []*metav1.PartialObjectMetadata{pod("default", "web.v1"), pod("default", "webxv1")},
		cpu:  []series{ctr("default", "web.v1", "app", "1"), ctr("default", "webxv1", "app", "2")},
		mem:  []series{ctr("default", "web.v1", "app", "1"), ctr("default", "webxv1", "app", "2")},
		// The matcher's value is the regex web\.v1|webxv1, quoted.
		wantQuery: `namespace="default",pod=~"web\\.v1|webxv1"`,
		want: []string{
			"default/web.v1 @1700000000.000 1m0s app{cpu=1,memory=1}",
			"default/webxv1 @1700000000.000 1m0s app{cpu=2,memory=2}",
		},
	}, {
		name: "several series for one container are added up; other pods are ignored",
		pods: []*metav1.PartialObjectMetadata{pod("default", "web")},
		cpu: []series{
			{labels: map[string]string{"namespace": "default", "pod": "web", "container": "app", "id": "/old"}, value: "0.125"},
			{labels: map[string]string{"namespace": "default", "pod": "web", "container": "app", "id": "/new"}, value: "0.25"},
			ctr("default", "other", "app", "9"),
			ctr("elsewhere", "web", "app", "9"),
			// Without the labels naming the pod: ignored (and logged).
			{labels: map[string]string{"container": "app"}, value: "9"},
		},
		mem: []series{
			ctr("default", "web", "app", mi20),
			ctr("default", "other", "app", mi20),
		},
		wantQuery: `namespace="default",pod="web"`,
		want:      []string{"default/web @1700000000.000 1m0s app{cpu=375m,memory=20Mi}"},
	}, {
		name: "many pods in one namespace select the namespace",
		pods: many,
		cpu: []series{
			ctr("big", "p000", "app", "0.001"),
			ctr("big", "p149", "app", "2"),
			ctr("big", "not-asked-for", "app", "3"),
			ctr("other", "p001", "app", "3"),
		},
		mem: []series{
			ctr("big", "p000", "app", "1024"),
			ctr("big", "p149", "app", "4294967296"),
			ctr("big", "not-asked-for", "app", "1"),
		},
		wantQuery: `namespace="big",pod!=""`,
		want: []string{
			"big/p000 @1700000000.000 1m0s app{cpu=1m,memory=1Ki}",
			"big/p149 @1700000000.000 1m0s app{cpu=2,memory=4Gi}",
		},
		wantMissing: 148,
	}, {
		name:      "many names in few namespaces",
		opts:      Options{MaxNamesInQuery: 2},
		pods:      []*metav1.PartialObjectMetadata{pod("n1", "a"), pod("n1", "b"), pod("n2", "c")},
		cpu:       []series{ctr("n1", "a", "app", "1"), ctr("n2", "c", "app", "1"), ctr("n2", "a", "app", "1")},
		mem:       []series{ctr("n1", "a", "app", "1"), ctr("n2", "c", "app", "1"), ctr("n2", "a", "app", "1")},
		wantQuery: `namespace=~"n1|n2",pod!=""`,
		want: []string{
			"n1/a @1700000000.000 1m0s app{cpu=1,memory=1}",
			"n2/c @1700000000.000 1m0s app{cpu=1,memory=1}",
		},
		wantMissing: 1,
	}, {
		name:      "many namespaces select every namespace",
		opts:      Options{MaxNamesInQuery: 2},
		pods:      []*metav1.PartialObjectMetadata{pod("n1", "a"), pod("n2", "b"), pod("n3", "c")},
		cpu:       []series{ctr("n3", "c", "app", "1")},
		mem:       []series{ctr("n3", "c", "app", "1")},
		wantQuery: `namespace!="",pod!=""`,
		want:      []string{"n3/c @1700000000.000 1m0s app{cpu=1,memory=1}"},
		// a and b count as missing.
		wantMissing: 2,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeProm{respond: byMetric(tt.cpu, tt.mem)}
			p, _ := newTestProvider(t, testRules, tt.opts, f)
			before := missing(t, "pod")
			got, err := p.GetPodMetrics(tt.pods...)
			if err != nil {
				t.Fatalf("GetPodMetrics: %v", err)
			}
			equalLines(t, "queries", f.sent(), queries(podCPU, podMem, tt.wantQuery))
			equalLines(t, "pods", podLines(got), tt.want)
			if d := missing(t, "pod") - before; d != tt.wantMissing {
				t.Errorf("missing pods counted: %v, want %v", d, tt.wantMissing)
			}
		})
	}
}

func TestGetNodeMetrics(t *testing.T) {
	tests := []struct {
		name        string
		opts        Options
		nodes       []string
		cpu, mem    []series
		wantQuery   string
		want        []string
		wantMissing float64
	}{{
		name:      "one node",
		nodes:     []string{"n1"},
		cpu:       []series{node("n1", "1.5").at(t0 - 10)},
		mem:       []series{node("n1", "8589934592")},
		wantQuery: `node="n1"`,
		want:      []string{"n1 @1699999990.000 1m0s cpu=1500m memory=8Gi"},
	}, {
		name:  "several nodes; a node missing a resource or all data is left out",
		nodes: []string{"n2", "n1", "n3", "n4", "n5"},
		cpu: []series{
			node("n1", "0.25"), node("n2", "3"), node("n3", "1"), node("n5", "NaN"), node("other", "1"),
			// Lacking the node label: ignored (and logged).
			{labels: map[string]string{"instance": "10.0.0.1:10250"}, value: "7"},
		},
		mem:       []series{node("n1", "1000"), node("n2", "2048"), node("n5", "1")},
		wantQuery: `node=~"n1|n2|n3|n4|n5"`,
		want: []string{
			"n2 @1700000000.000 1m0s cpu=3 memory=2Ki",
			"n1 @1700000000.000 1m0s cpu=250m memory=1k",
		},
		wantMissing: 3,
	}, {
		name:        "many nodes select every node",
		opts:        Options{MaxNamesInQuery: 2},
		nodes:       []string{"n1", "n2", "n3"},
		cpu:         []series{node("n1", "1"), node("n3", "1"), node("n9", "1")},
		mem:         []series{node("n1", "1"), node("n3", "1"), node("n9", "1")},
		wantQuery:   `node!=""`,
		want:        []string{"n1 @1700000000.000 1m0s cpu=1 memory=1", "n3 @1700000000.000 1m0s cpu=1 memory=1"},
		wantMissing: 1,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeProm{respond: byMetric(tt.cpu, tt.mem)}
			p, _ := newTestProvider(t, testRules, tt.opts, f)
			var nodes []*corev1.Node
			for _, n := range tt.nodes {
				nodes = append(nodes, nodeObj(n))
			}
			before := missing(t, "node")
			got, err := p.GetNodeMetrics(nodes...)
			if err != nil {
				t.Fatalf("GetNodeMetrics: %v", err)
			}
			equalLines(t, "queries", f.sent(), queries(nodeCPU, nodeMem, tt.wantQuery))
			equalLines(t, "nodes", nodeLines(got), tt.want)
			if d := missing(t, "node") - before; d != tt.wantMissing {
				t.Errorf("missing nodes counted: %v, want %v", d, tt.wantMissing)
			}
		})
	}
}

func TestNothingRequested(t *testing.T) {
	f := &fakeProm{respond: byMetric(nil, nil)}
	p, _ := newTestProvider(t, testRules, Options{}, f)
	pods, err := p.GetPodMetrics()
	if err != nil || pods == nil || len(pods) != 0 {
		t.Errorf("GetPodMetrics() = %v, %v; want an empty list", pods, err)
	}
	nodes, err := p.GetNodeMetrics()
	if err != nil || nodes == nil || len(nodes) != 0 {
		t.Errorf("GetNodeMetrics() = %v, %v; want an empty list", nodes, err)
	}
	if q := f.sent(); len(q) != 0 {
		t.Errorf("sent %q, want no query", q)
	}
}

func TestBackendErrors(t *testing.T) {
	tests := []struct {
		name      string
		respond   func(string) (int, []series)
		block     bool
		call      func(*Provider) error
		wantField string
	}{{
		name: "prometheus 500 on the pod cpu query",
		respond: func(q string) (int, []series) {
			if strings.Contains(q, "container_cpu") {
				return http.StatusInternalServerError, nil
			}
			return http.StatusOK, []series{ctr("default", "web", "app", "1")}
		},
		call: func(p *Provider) error {
			_, err := p.GetPodMetrics(pod("default", "web"))
			return err
		},
		wantField: "resourceRules.cpu.containerQuery",
	}, {
		name: "prometheus 503 on the node memory query",
		respond: func(q string) (int, []series) {
			if strings.Contains(q, "container_memory") {
				return http.StatusServiceUnavailable, nil
			}
			return http.StatusOK, []series{node("n1", "1")}
		},
		call: func(p *Provider) error {
			_, err := p.GetNodeMetrics(nodeObj("n1"))
			return err
		},
		wantField: "resourceRules.memory.nodeQuery",
	}, {
		name:  "timeout",
		block: true,
		call: func(p *Provider) error {
			_, err := p.GetPodMetrics(pod("default", "web"))
			return err
		},
		wantField: "resourceRules.",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeProm{respond: tt.respond, block: tt.block}
			p, srv := newTestProvider(t, testRules, Options{Timeout: 300 * time.Millisecond}, f)
			start := time.Now()
			err := tt.call(p)
			if err == nil {
				t.Fatal("no error")
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("took %v; the timeout is 300ms", took)
			}
			t.Logf("error: %v", err)
			if !apierrors.IsServiceUnavailable(err) {
				t.Errorf("error %v is not 503 Service Unavailable", err)
			}
			for _, want := range []string{srv.URL, tt.wantField} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

func TestConcurrentCalls(t *testing.T) {
	f := &fakeProm{respond: byMetric(
		[]series{ctr("default", "web", "app", "1"), node("n1", "1")},
		[]series{ctr("default", "web", "app", "1"), node("n1", "1")},
	)}
	p, _ := newTestProvider(t, testRules, Options{}, f)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if ms, err := p.GetPodMetrics(pod("default", "web")); err != nil || len(ms) != 1 {
				t.Errorf("GetPodMetrics = %d items, %v", len(ms), err)
			}
		}()
		go func() {
			defer wg.Done()
			if ms, err := p.GetNodeMetrics(nodeObj("n1")); err != nil || len(ms) != 1 {
				t.Errorf("GetNodeMetrics = %d items, %v", len(ms), err)
			}
		}()
	}
	wg.Wait()
}

func TestNew(t *testing.T) {
	tests := []struct {
		name       string
		rules      string // replaces testRules' text: old => new, separated by " => "
		nilRules   bool
		opts       Options
		wantErr    []string
		wantWindow time.Duration
	}{{
		name:       "default rules",
		wantWindow: time.Minute,
	}, {
		name:       "window from the cpu query's range when unset",
		rules:      "  window: 1m\n => \n|[1m] => [2m]",
		wantWindow: 2 * time.Minute,
	}, {
		name:       "configured window wins",
		rules:      "window: 1m => window: 90s",
		wantWindow: 90 * time.Second,
	}, {
		name:     "no rules",
		nilRules: true,
		wantErr:  []string{"resourceRules: is required"},
	}, {
		name:    "invalid template",
		rules:   `containerQuery: 'sum by (<<.GroupBy>>) (rate( => containerQuery: 'sum by (<<.GroupBy>) ((rate(`,
		wantErr: []string{"resourceRules.cpu.containerQuery:"},
	}, {
		name:    "no label for pods and nodes",
		rules:   "node: {resource: node} => instance: {resource: service}|pod: {resource: pod} => pod_name: {resource: services}",
		wantErr: []string{"resourceRules.cpu.resources: no label names pods", "resourceRules.memory.resources: no label names nodes"},
	}, {
		name:    "invalid container label",
		rules:   "containerLabel: container => containerLabel: container-name",
		wantErr: []string{`resourceRules.cpu.containerLabel: "container-name" is not a valid`, "resourceRules.memory.containerLabel"},
	}, {
		name:    "negative timeout",
		opts:    Options{Timeout: -time.Second},
		wantErr: []string{"timeout must not be negative"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := testRules
			if tt.rules != "" {
				for _, pair := range strings.Split(tt.rules, "|") {
					oldNew := strings.SplitN(pair, " => ", 2)
					text = strings.ReplaceAll(text, oldNew[0], oldNew[1])
				}
			}
			var rr *config.ResourceRules
			if !tt.nilRules {
				rr = parseRules(t, text)
			}
			client, err := prom.New(prom.Options{URL: "http://prometheus.invalid:9090"})
			if err != nil {
				t.Fatal(err)
			}
			p, err := New(rr, &provider.Runner{Backends: provider.Single(client)}, testMapper(), tt.opts)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("no error, want %q", tt.wantErr)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if p.window != tt.wantWindow {
				t.Errorf("window %v, want %v", p.window, tt.wantWindow)
			}
		})
	}
}

// TestShippedRuleFiles checks that the rule files in config/ compile and
// answer through the real client, and logs the queries they send.
func TestShippedRuleFiles(t *testing.T) {
	for _, file := range []string{"promgate.yaml", "resource-rules-node-exporter.yaml"} {
		t.Run(file, func(t *testing.T) {
			cfg, err := config.Load("../../../config/" + file)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.ResourceRules == nil {
				t.Fatal("no resourceRules")
			}
			// Every query gets the same answer, labelled for pods and nodes
			// whichever label a rule file uses for nodes.
			all := []series{{labels: map[string]string{
				"namespace": "default", "pod": "web", "container": "app", "node": "n1", "instance": "n1",
			}, value: "1"}}
			f := &fakeProm{respond: func(string) (int, []series) { return http.StatusOK, all }}
			srv := httptest.NewServer(f)
			defer srv.Close()
			client, err := prom.New(prom.Options{URL: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			p, err := New(cfg.ResourceRules, &provider.Runner{Backends: provider.Single(client)}, testMapper(), Options{})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			pods, err := p.GetPodMetrics(pod("default", "web"), pod("kube-system", "web"))
			if err != nil || len(pods) != 1 {
				t.Errorf("GetPodMetrics = %v, %v; want default/web", podLines(pods), err)
			}
			nodes, err := p.GetNodeMetrics(nodeObj("n1"), nodeObj("n2"))
			if err != nil || len(nodes) != 1 {
				t.Errorf("GetNodeMetrics = %v, %v; want n1", nodeLines(nodes), err)
			}
			for _, q := range f.sent() {
				t.Logf("query:\n%s", q)
			}
		})
	}
}

func TestMissingMetricIsServed(t *testing.T) {
	RegisterMetrics() // again: must not panic
	f := &fakeProm{respond: byMetric(nil, nil)}
	p, _ := newTestProvider(t, testRules, Options{}, f)
	if _, err := p.GetNodeMetrics(nodeObj("gone")); err != nil {
		t.Fatal(err)
	}
	mfs, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "promgate_resource_metrics_missing_total" {
			return
		}
	}
	t.Error("promgate_resource_metrics_missing_total is not in the legacy registry")
}

// With resourceRules.swap, containers and nodes with swap series carry
// "swap" in their usage; those without, and those whose swap value is not
// usable, lack it and keep CPU and memory. The swap queries are shared and
// narrowed as the others.
func TestSwap(t *testing.T) {
	rules := strings.Replace(testRules, "  window: 1m", `  swap:
    containerQuery: 'sum by (<<.GroupBy>>) (container_memory_swap{<<.LabelMatchers>>,container!="",container!="POD",pod!=""})'
    nodeQuery: 'sum by (<<.GroupBy>>) (container_memory_swap{<<.LabelMatchers>>,id="/"})'
    resources:
      overrides:
        node: {resource: node}
        namespace: {resource: namespace}
        pod: {resource: pod}
    containerLabel: container
  window: 1m`, 1)
	cpu := []series{ctr("a", "p1", "app", "0.25"), ctr("a", "p1", "side", "0.1"), ctr("a", "p2", "app", "0.5"), ctr("a", "p3", "app", "1"), node("n1", "2"), node("n2", "3")}
	mem := []series{ctr("a", "p1", "app", "1048576"), ctr("a", "p1", "side", "1048576"), ctr("a", "p2", "app", "2097152"), ctr("a", "p3", "app", "1048576"), node("n1", "8388608"), node("n2", "16777216")}
	swap := []series{ctr("a", "p1", "app", "3145728"), ctr("a", "p3", "app", "-1"), node("n1", "4194304")}
	f := &fakeProm{respond: func(q string) (int, []series) {
		switch {
		case strings.Contains(q, "container_memory_swap"):
			return http.StatusOK, swap
		case strings.Contains(q, "container_cpu"):
			return http.StatusOK, cpu
		}
		return http.StatusOK, mem
	}}
	p, _ := newTestProvider(t, rules, Options{Batch: true, Demand: &provider.Demand{}}, f)
	pods, err := p.GetPodMetrics(pod("a", "p1"), pod("a", "p2"), pod("a", "p3"))
	if err != nil {
		t.Fatal(err)
	}
	equalLines(t, "pods", podLines(pods), []string{
		"a/p1 @1700000000.000 1m0s app{cpu=250m,memory=1Mi,swap=3Mi} side{cpu=100m,memory=1Mi}",
		"a/p2 @1700000000.000 1m0s app{cpu=500m,memory=2Mi}",
		"a/p3 @1700000000.000 1m0s app{cpu=1,memory=1Mi}",
	})
	nodes, err := p.GetNodeMetrics(nodeObj("n1"), nodeObj("n2"))
	if err != nil {
		t.Fatal(err)
	}
	equalLines(t, "nodes", nodeLines(nodes), []string{
		"n1 @1700000000.000 1m0s cpu=2 memory=8Mi,swap=4Mi",
		"n2 @1700000000.000 1m0s cpu=3 memory=16Mi",
	})
	var swapQueries []string
	for _, q := range f.sent() {
		if strings.Contains(q, "container_memory_swap") {
			swapQueries = append(swapQueries, q)
		}
	}
	want := []string{
		canonical(`sum by (namespace,pod,container) (container_memory_swap{namespace="a",pod!="",container!="",container!="POD",pod!=""})`),
		canonical(`sum by (node) (container_memory_swap{node!="",id="/"})`),
	}
	if strings.Join(swapQueries, "\n") != strings.Join(want, "\n") {
		t.Errorf("swap queries:\n%s\nwant:\n%s", strings.Join(swapQueries, "\n"), strings.Join(want, "\n"))
	}
	if got := p.Sharing(); len(got) != 6 {
		t.Errorf("sharing decisions: %v, want two per resource", got)
	}
}

// TestSharedQueryRenderedOnce: a shared container query is rendered once
// per narrowing and rule, not per request (provider.Narrowed), and the
// text kept is the one rendered fresh.
func TestSharedQueryRenderedOnce(t *testing.T) {
	f := &fakeProm{}
	demand := &provider.Demand{MaxObjects: 100, JoinEvery: time.Nanosecond}
	p, _ := newTestProvider(t, testRules, Options{Batch: true, Demand: demand, MaxNamesInQuery: 100}, f)
	set := podsOf([]*metav1.PartialObjectMetadata{pod("ns1", "a"), pod("ns1", "b")})
	for _, r := range []*rule{p.cpu, p.memory} {
		first, _, err := p.sharedPodQuery(r, set)
		if err != nil {
			t.Fatal(err)
		}
		again, _, _ := p.sharedPodQuery(r, podsOf([]*metav1.PartialObjectMetadata{pod("ns1", "a"), pod("ns1", "b")}))
		if again.Expr != first.Expr {
			t.Errorf("%s: rendered again for the same pods", r.Path)
		}
		req, _, _, _ := p.sharedPodRequest(r, set)
		fresh, err := r.ContainerQuery.Build(req)
		if err != nil || fresh.Text != first.Text {
			t.Errorf("%s: kept %q, rendered %q (%v)", r.Path, first.Text, fresh.Text, err)
		}
	}
	if cpu, _, _ := p.sharedPodQuery(p.cpu, set); cpu.Text == "" || strings.Contains(cpu.Text, "memory") {
		t.Errorf("cpu's query: %q", cpu.Text)
	}
	if _, n := p.runner.Budget.Usage(budget.Sharing); n == 0 {
		t.Error("nothing kept in the budget")
	}
}

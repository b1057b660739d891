package custom

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promgate/promgate/pkg/budget"
	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/internal/kubetest"
	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/provider"
	"github.com/promgate/promgate/pkg/rules"
)

// The benchmarks' cluster: benchNamespaces namespaces of benchPods pods,
// and the metric of the first target.
const (
	benchNamespaces = 10
	benchPods       = 300
	benchConfig     = `
rules:
- seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
  resources:
    overrides:
      namespace: {resource: namespace}
      pod: {resource: pod}
  name: {matches: "^http_requests_total$", as: "http_requests_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)'
`
)

// benchMapper knows, like a real cluster's discovery, many more resources
// than the metrics name: a RESTMapper's cost grows with them.
func benchMapper() apimeta.RESTMapper {
	var gvs []schema.GroupVersion
	core := schema.GroupVersion{Version: "v1"}
	gvs = append(gvs, core)
	for g := range 30 {
		gvs = append(gvs, schema.GroupVersion{Group: fmt.Sprintf("group%d.example.com", g), Version: "v1"})
	}
	m := apimeta.NewDefaultRESTMapper(gvs)
	m.Add(core.WithKind("Pod"), apimeta.RESTScopeNamespace)
	m.Add(core.WithKind("Service"), apimeta.RESTScopeNamespace)
	m.Add(core.WithKind("Namespace"), apimeta.RESTScopeRoot)
	m.Add(core.WithKind("Node"), apimeta.RESTScopeRoot)
	for _, gv := range gvs[1:] {
		for k := range 4 {
			m.Add(gv.WithKind(fmt.Sprintf("Kind%d", k)), apimeta.RESTScopeNamespace)
		}
	}
	return m
}

type benchLister struct{}

func (benchLister) Series(_ context.Context, _ string, _, _ time.Time, fn prom.SeriesFunc) error {
	fn("http_requests_total", []prom.Label{{Name: "namespace", Value: "ns-0"}, {Name: "pod", Value: "pod-0"}})
	return nil
}

// benchObjects lists benchPods pods in every namespace.
type benchObjects struct{ names []string }

func (o benchObjects) Names(context.Context, schema.GroupResource, string, labels.Selector) ([]string, error) {
	return o.names, nil
}

// benchQuerier answers every query with the same vector.
type benchQuerier struct {
	vec  model.Vector
	last string
}

func (q *benchQuerier) Query(_ context.Context, query string, _ time.Time) (model.Vector, error) {
	q.last = query
	return q.vec, nil
}

// benchVector is what the batched query returns: one sample per pod of
// every namespace.
func benchVector(namespaces, pods int) model.Vector {
	vec := make(model.Vector, 0, namespaces*pods)
	ts := model.TimeFromUnixNano(time.Unix(1_800_000_000, 0).UnixNano())
	for n := range namespaces {
		for j := range pods {
			vec = append(vec, &model.Sample{
				Metric:    model.Metric{"namespace": model.LabelValue(fmt.Sprintf("ns-%d", n)), "pod": model.LabelValue(fmt.Sprintf("pod-%d", j))},
				Value:     model.SampleValue(10 + float64(j%10) + 0.25),
				Timestamp: ts,
			})
		}
	}
	return vec
}

func benchProvider(b testing.TB, vec model.Vector) (*Provider, *benchQuerier) {
	b.Helper()
	cfg, err := config.Parse([]byte(benchConfig))
	if err != nil {
		b.Fatal(err)
	}
	custom, _, err := rules.Compile(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return benchProviderWith(b, custom, benchMapper(), vec)
}

func benchProviderWith(b testing.TB, custom []*rules.Rule, mapper apimeta.RESTMapper, vec model.Vector) (*Provider, *benchQuerier) {
	b.Helper()
	d := catalog.New(custom, nil, catalog.Single(benchLister{}), mapper, time.Minute)
	d.Refresh(context.Background())
	names := make([]string, benchPods)
	for j := range names {
		names[j] = fmt.Sprintf("pod-%d", j)
	}
	slices.Sort(names) // as ObjectLister.Names returns them
	q := &benchQuerier{vec: vec}
	// The server's default budget: sharing decisions and guard rewrites are
	// remembered across requests, as in production.
	p := New(d, &provider.Runner{Backends: provider.Single(q), Budget: budget.New(0)}, benchObjects{names: names}, mapper)
	return p, q
}

var benchInfo = cmprovider.CustomMetricInfo{GroupResource: schema.GroupResource{Resource: "pods"}, Namespaced: true, Metric: "http_requests_per_second"}

// BenchmarkGetMetricBySelector is the first target without HTTP:
// every pod of a 300-pod namespace, from the batched query's 3,000 samples
// (the default) or from a namespace query's 300.
func BenchmarkGetMetricBySelector(b *testing.B) {
	for _, c := range []struct {
		name  string
		batch bool
		vec   model.Vector
	}{
		{"batched-3000-samples", true, benchVector(benchNamespaces, benchPods)},
		{"namespace-300-samples", false, benchVector(1, benchPods)},
	} {
		b.Run(c.name, func(b *testing.B) {
			p, _ := benchProvider(b, c.vec)
			p.Batch = c.batch
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				list, err := p.GetMetricBySelector(ctx, "ns-0", labels.Everything(), benchInfo, labels.Everything())
				if err != nil {
					b.Fatal(err)
				}
				if len(list.Items) != benchPods {
					b.Fatalf("%d items, want %d", len(list.Items), benchPods)
				}
			}
		})
	}
}

// BenchmarkQueryRendering renders (and parses) the query for 300 pods
// named in an escaped alternation, the unbatched form.
func BenchmarkQueryRendering(b *testing.B) {
	p, q := benchProvider(b, model.Vector{})
	p.Batch = false
	p.MaxNamesInQuery = 1000
	ctx := context.Background()
	pl, err := p.resolve(benchInfo, "ns-0", labels.Everything())
	if err != nil {
		b.Fatal(err)
	}
	names := p.objects.(benchObjects).names
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.query(ctx, pl, names); err != nil {
			b.Fatal(err)
		}
	}
	if len(q.last) < 300*len(`pod\-1|`) {
		b.Fatalf("query too short: %d bytes", len(q.last))
	}
}

// BenchmarkHostileSelector is a hostile caller's request: a
// metricLabelSelector at the request limits (100 values, about 4 kB),
// different every time, with the partial-window guard on, so that the
// guard rewrites and prints a query of some 150 kB per request. It is
// what a selector at the limits costs promgate (docs/soak.md).
func BenchmarkHostileSelector(b *testing.B) {
	p, _ := benchProvider(b, benchVector(benchNamespaces, benchPods))
	p.Batch = true
	p.run.Budget = budget.New(0)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		sel := kubetest.WideSelector(b, "status", i, provider.MaxSelectorValues, 38)
		if _, err := p.GetMetricBySelector(ctx, "ns-0", labels.Everything(), benchInfo, sel); err != nil {
			b.Fatal(err)
		}
	}
}

package catalog

import (
	"context"
	"strconv"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/internal/kubetest"
	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/rules"
)

// benchRules are config/promgate.yaml's discovery rules: broad ones.
const benchRules = `
rules:
- seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}, service: {resource: service}}}
  name: {matches: "^http_requests_total$", as: "http_requests_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)'
- seriesQuery: '{__name__=~"^.+_total$",__name__!~"^(http_requests_total|container_.*)$",namespace!="",pod!=""}'
  resources: {template: "<<.Resource>>"}
  name: {matches: "^(.*)_total$", as: "${1}_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)'
externalRules:
- seriesQuery: '{__name__=~"^queue_.+",namespace!=""}'
  resources: {overrides: {namespace: {resource: namespace}}}
  metricsQuery: '<<.Series>>{<<.LabelMatchers>>}'
`

// benchSeries streams n series spread over names metric names to every
// selector, in process: discovery's own cost, without HTTP or JSON.
type benchSeries struct{ n, names int }

func (s benchSeries) Series(_ context.Context, match string, _, _ time.Time, fn prom.SeriesFunc) error {
	if match == `{__name__=~"^queue_.+",namespace!=""}` {
		return nil
	}
	names := make([]string, s.names)
	for i := range names {
		names[i] = "bench_app_" + strconv.Itoa(i) + "_total"
	}
	lbls := []prom.Label{{Name: "code"}, {Name: "container", Value: "app"}, {Name: "endpoint", Value: "http"},
		{Name: "instance"}, {Name: "job", Value: "pods"}, {Name: "namespace"}, {Name: "pod"}, {Name: "service"}}
	for i := range s.n {
		pod := i / 4
		lbls[0].Value = strconv.Itoa(200 + i%4)
		lbls[3].Value = "10.0.0." + strconv.Itoa(pod%256) + ":8080"
		lbls[5].Value = "ns-" + strconv.Itoa(pod%100)
		lbls[6].Value = "pod-" + strconv.Itoa(pod)
		lbls[7].Value = "svc-" + strconv.Itoa(pod%50)
		fn(names[i%len(names)], lbls)
	}
	return nil
}

func benchDiscoverer(b *testing.B, series benchSeries) *Discoverer {
	b.Helper()
	cfg, err := config.Parse([]byte(benchRules))
	if err != nil {
		b.Fatal(err)
	}
	custom, external, err := rules.Compile(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return New(custom, external, Single(series), kubetest.Mapper(), time.Minute)
}

// BenchmarkRefresh is one discovery of 100,000 series over 100 names with
// broad rules, the stream already decoded.
func BenchmarkRefresh(b *testing.B) {
	d := benchDiscoverer(b, benchSeries{n: 100_000, names: 100})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		snap := d.Refresh(ctx)
		if len(snap.CustomMetrics()) == 0 {
			b.Fatal("no metrics")
		}
	}
}

// BenchmarkSnapshotCustom looks a metric up in a snapshot of 1,000 metrics,
// which every custom metrics request does.
func BenchmarkSnapshotCustom(b *testing.B) {
	d := benchDiscoverer(b, benchSeries{n: 4000, names: 1000})
	snap := d.Refresh(context.Background())
	key := CustomKey{Resource: schema.GroupResource{Resource: "pods"}, Namespaced: true, Metric: "bench_app_500_per_second"}
	if _, ok := snap.Custom(key); !ok {
		b.Fatalf("%v not in the snapshot (%d metrics)", key, len(snap.CustomMetrics()))
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := snap.Custom(key); !ok {
			b.Fatal("not found")
		}
	}
}

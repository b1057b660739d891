package resource

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/promgate/promgate/pkg/budget"
	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/provider"
)

const benchResourceRules = `
resourceRules:
  cpu:
    containerQuery: 'sum by (<<.GroupBy>>) (rate(container_cpu_usage_seconds_total{<<.LabelMatchers>>,container!="",container!="POD",pod!=""}[1m]))'
    nodeQuery: 'sum by (<<.GroupBy>>) (rate(container_cpu_usage_seconds_total{<<.LabelMatchers>>,id="/"}[1m]))'
    resources: {overrides: {node: {resource: node}, namespace: {resource: namespace}, pod: {resource: pod}}}
    containerLabel: container
  memory:
    containerQuery: 'sum by (<<.GroupBy>>) (container_memory_working_set_bytes{<<.LabelMatchers>>,container!="",container!="POD",pod!=""})'
    nodeQuery: 'sum by (<<.GroupBy>>) (container_memory_working_set_bytes{<<.LabelMatchers>>,id="/"})'
    resources: {overrides: {node: {resource: node}, namespace: {resource: namespace}, pod: {resource: pod}}}
    containerLabel: container
  window: 1m
`

// benchResourceQuerier answers CPU and memory queries with one sample per
// container of every pod.
type benchResourceQuerier struct{ cpu, mem model.Vector }

func (q benchResourceQuerier) Query(_ context.Context, query string, _ time.Time) (model.Vector, error) {
	if strings.Contains(query, "container_cpu") {
		return q.cpu, nil
	}
	return q.mem, nil
}

// BenchmarkGetPodMetrics is kubectl top pod -A on 3,000 pods in 10
// namespaces: two queries' samples joined into PodMetrics.
func BenchmarkGetPodMetrics(b *testing.B) {
	cfg, err := config.Parse([]byte(benchResourceRules))
	if err != nil {
		b.Fatal(err)
	}
	m := apimeta.NewDefaultRESTMapper([]schema.GroupVersion{{Version: "v1"}})
	for _, k := range []string{"Pod", "Node", "Namespace"} {
		scope := apimeta.RESTScopeRoot
		if k == "Pod" {
			scope = apimeta.RESTScopeNamespace
		}
		m.Add(schema.GroupVersionKind{Version: "v1", Kind: k}, scope)
	}
	ts := model.TimeFromUnixNano(time.Unix(1_800_000_000, 0).UnixNano())
	var q benchResourceQuerier
	var pods []*metav1.PartialObjectMetadata
	for n := range 10 {
		for j := range 300 {
			ns, name := fmt.Sprintf("ns-%d", n), fmt.Sprintf("pod-%d", j)
			lbls := model.Metric{"namespace": model.LabelValue(ns), "pod": model.LabelValue(name), "container": "app"}
			q.cpu = append(q.cpu, &model.Sample{Metric: lbls, Value: 0.13333333333333333, Timestamp: ts})
			q.mem = append(q.mem, &model.Sample{Metric: lbls, Value: 67108864, Timestamp: ts})
			pods = append(pods, &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})
		}
	}
	// The server's default budget: sharing decisions and guard rewrites are
	// remembered across requests, as in production.
	p, err := New(cfg.ResourceRules, &provider.Runner{Backends: provider.Single(q), Budget: budget.New(0)}, m, Options{Batch: true})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		out, err := p.GetPodMetrics(pods...)
		if err != nil {
			b.Fatal(err)
		}
		if len(out) != len(pods) {
			b.Fatalf("%d pods, want %d", len(out), len(pods))
		}
	}
}

package external

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/labels"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promgate/promgate/pkg/budget"
	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/internal/kubetest"
	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/provider"
	"github.com/promgate/promgate/pkg/rules"
)

type benchLister struct{}

func (benchLister) Series(_ context.Context, _ string, _, _ time.Time, fn prom.SeriesFunc) error {
	fn("queue_messages_ready", []prom.Label{{Name: "namespace", Value: "ns-0"}, {Name: "queue", Value: "q-0"}})
	return nil
}

type benchQuerier struct{ vec model.Vector }

func (q benchQuerier) Query(context.Context, string, time.Time) (model.Vector, error) {
	return q.vec, nil
}

// BenchmarkGetExternalMetric is an HPA's External metric request (one
// queue of one namespace) answered from the batched query's 1,000 series
// (50 namespaces × 20 queues), and unbatched from its own single series.
func BenchmarkGetExternalMetric(b *testing.B) {
	cfg, err := config.Parse([]byte(`
externalRules:
- seriesQuery: '{__name__=~"^queue_.+",namespace!=""}'
  resources: {overrides: {namespace: {resource: namespace}}}
  metricsQuery: '<<.Series>>{<<.LabelMatchers>>}'
`))
	if err != nil {
		b.Fatal(err)
	}
	_, external, err := rules.Compile(cfg)
	if err != nil {
		b.Fatal(err)
	}
	mapper := kubetest.Mapper()
	d := catalog.New(nil, external, catalog.Single(benchLister{}), mapper, time.Minute)
	d.Refresh(context.Background())
	ts := model.TimeFromUnixNano(time.Unix(1_800_000_000, 0).UnixNano())
	var all model.Vector
	for n := range 50 {
		for q := range 20 {
			all = append(all, &model.Sample{Metric: model.Metric{"__name__": "queue_messages_ready",
				"namespace": model.LabelValue(fmt.Sprintf("ns-%d", n)), "queue": model.LabelValue(fmt.Sprintf("q-%d", q))}, Value: 42, Timestamp: ts})
		}
	}
	sel, err := labels.Parse("queue=q-7")
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		batch bool
		vec   model.Vector
	}{{"batched-1000-series", true, all}, {"unbatched-1-series", false, all[17*20+7 : 17*20+8]}} {
		b.Run(c.name, func(b *testing.B) {
			// The server's default budget: sharing decisions and guard rewrites are
			// remembered across requests, as in production.
			p := New(d, &provider.Runner{Backends: provider.Single(benchQuerier{vec: c.vec}), Budget: budget.New(0)}, mapper)
			p.Batch = c.batch
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				list, err := p.GetExternalMetric(ctx, "ns-17", sel, cmprovider.ExternalMetricInfo{Metric: "queue_messages_ready"})
				if err != nil {
					b.Fatal(err)
				}
				if len(list.Items) != 1 {
					b.Fatalf("%d items, want 1", len(list.Items))
				}
			}
		})
	}
}

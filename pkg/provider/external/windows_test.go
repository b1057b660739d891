package external

import (
	"context"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/internal/kubetest"
	"github.com/promgate/promgate/pkg/internal/promtest"
	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/provider"
	"github.com/promgate/promgate/pkg/rules"
)

// TestIncompleteWindowIs503: when every series of an external rate is left
// out for a partly filled window, or none is in its window though it did
// not end, the answer is a 503 saying so rather than an empty list; a
// series with a full window is served.
func TestIncompleteWindowIs503(t *testing.T) {
	cfg, err := config.Parse([]byte(`
externalRules:
- seriesQuery: '{__name__=~"^topic_.*"}'
  resources: {namespaced: false}
  name: {matches: "^topic_(.*)_total$", as: "topic_${1}_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (topic)'
`))
	if err != nil {
		t.Fatal(err)
	}
	_, external, err := rules.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := promtest.NewEngine(t, `
load 15s
	topic_messages_total{topic="full"} 0+150x20
	topic_messages_total{topic="new"} _x17 0+150x3
	topic_messages_total{topic="frozen"} 0+150x14
	topic_messages_total{topic="ended"} 0+150x13 stale
`)
	client, err := prom.New(prom.Options{URL: e.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	d := catalog.New(nil, external, catalog.Single(client), kubetest.Mapper(), time.Hour)
	d.Refresh(context.Background())
	p := New(d, &provider.Runner{Backends: provider.Single(client)}, kubetest.Mapper())
	p.run.Now = func() time.Time { return time.Unix(300, 0) }
	info := cmprovider.ExternalMetricInfo{Metric: "topic_messages_per_second"}
	for _, tt := range []struct {
		sel     string
		batch   bool
		items   int
		unavail bool
	}{
		{sel: "topic=full", items: 1},
		{sel: "topic=full", batch: true, items: 1},
		{sel: "topic=new", unavail: true},
		{sel: "topic=new", batch: true, unavail: true},
		{sel: "topic=none", items: 0},
		// No sample in the window, but the series did not end: the backend
		// was away for longer than the window.
		{sel: "topic=frozen", unavail: true},
		{sel: "topic=frozen", batch: true, unavail: true},
		// Its last sample a staleness marker: the series ended.
		{sel: "topic=ended", items: 0},
		{sel: "topic=ended", batch: true, items: 0},
	} {
		p.Batch = tt.batch
		sel, _ := labels.Parse(tt.sel)
		list, err := p.GetExternalMetric(context.Background(), "ns1", sel, info)
		switch {
		case tt.unavail:
			if !apierrors.IsServiceUnavailable(err) || !strings.Contains(err.Error(), "partly covered") {
				t.Errorf("%s batch=%v: %v, want a 503 naming the partly covered window", tt.sel, tt.batch, err)
			}
		case err != nil:
			t.Errorf("%s batch=%v: %v", tt.sel, tt.batch, err)
		case len(list.Items) != tt.items:
			t.Errorf("%s batch=%v: %d items, want %d", tt.sel, tt.batch, len(list.Items), tt.items)
		}
	}
}

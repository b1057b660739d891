package custom

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/internal/kubetest"
	"github.com/promgate/promgate/pkg/internal/promtest"
	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/provider"
	"github.com/promgate/promgate/pkg/rules"
)

// compatData: x per pod, in two namespaces; pod c of ns1 has no series.
const compatData = `
load 1m
	x{namespace="ns1",pod="a"} 10+0x10
	x{namespace="ns1",pod="b"} 20+0x10
	x{namespace="ns2",pod="a"} 30+0x10
	x{namespace="ns2",pod="c"} 40+0x10
`

// TestPrometheusAdapterValues runs templates from prometheus-adapter
// configs through the provider against Prometheus' own engine, with
// batching off and on, and checks the values prometheus-adapter gives for
// the same template and data (its query: the metric selector, the
// namespace, the objects; grouped by the object label). Sharing must never
// change an answer: these templates used to give wrong values or nothing
// when batched.
func TestPrometheusAdapterValues(t *testing.T) {
	tests := []struct {
		name, tmpl string
		list       string // "*" in ns1: name=value, sorted
		one        string // ns1/a
		shared     bool
	}{
		{name: "default", tmpl: `sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)`,
			list: "a=10 b=20", one: "a=10", shared: true},
		{name: "literal by pod", tmpl: `sum(<<.Series>>{<<.LabelMatchers>>}) by (pod)`,
			list: "a=10 b=20", one: "a=10"},
		{name: "LabelValuesByName without namespace", tmpl: `sum(<<.Series>>{pod=~"<<index .LabelValuesByName "pod">>"}) by (<<.GroupBy>>)`,
			list: "a=40 b=20 c=40", one: "a=40"},
		{name: "LabelValuesByName namespace and pod", tmpl: `sum(<<.Series>>{namespace="<<.LabelValuesByName.namespace>>",pod=~"<<.LabelValuesByName.pod>>"}) by (<<.GroupBy>>)`,
			list: "a=10 b=20", one: "a=10"},
		{name: "share of the selected objects", tmpl: `sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>) / scalar(count(<<.Series>>{<<.LabelMatchers>>}))`,
			list: "a=5 b=10", one: "a=10"},
		{name: "topk", tmpl: `topk(1, sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>))`,
			list: "b=20", one: "a=10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, batch := range []bool{false, true} {
				f := newEngineFixture(t, tt.tmpl)
				f.p.Batch = batch
				f.p.MaxNamesInQuery = 1 // more names than fit: the namespace-wide form where shareable
				list, err := f.p.GetMetricBySelector(context.Background(), "ns1", labels.Everything(), compatInfo, labels.Everything())
				if err != nil {
					t.Fatalf("batch=%v: %v (queries %q)", batch, err, f.engine.Queries())
				}
				var got []string
				for _, it := range list.Items {
					got = append(got, it.DescribedObject.Name+"="+it.Value.String())
				}
				sort.Strings(got)
				if s := strings.Join(got, " "); s != tt.list {
					t.Errorf("batch=%v: list %q, want %q (queries %q)", batch, s, tt.list, f.engine.Queries())
				}
				v, err := f.p.GetMetricByName(context.Background(), types.NamespacedName{Namespace: "ns1", Name: "a"}, compatInfo, labels.Everything())
				if err != nil {
					t.Fatalf("batch=%v: one: %v (queries %q)", batch, err, f.engine.Queries())
				}
				if s := v.DescribedObject.Name + "=" + v.Value.String(); s != tt.one {
					t.Errorf("batch=%v: one %q, want %q (queries %q)", batch, s, tt.one, f.engine.Queries())
				}
				ok, why := f.p.sharingOf(compatInfo)
				if ok != tt.shared {
					t.Errorf("shared = %v (%s), want %v", ok, why, tt.shared)
				}
			}
		})
	}
}

var compatInfo = cmprovider.CustomMetricInfo{GroupResource: kubetest.Pods, Namespaced: true, Metric: "x_metric"}

type engineFixture struct {
	engine *promtest.Engine
	p      *Provider
}

func newEngineFixture(t *testing.T, tmpl string) *engineFixture {
	t.Helper()
	return newEngineFixtureData(t, tmpl, compatData)
}

func newEngineFixtureData(t *testing.T, tmpl, data string) *engineFixture {
	t.Helper()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
rules:
- seriesQuery: 'x{namespace!="",pod!=""}'
  resources:
    overrides:
      namespace: {resource: namespace}
      pod: {resource: pod}
  name: {matches: "^x$", as: "x_metric"}
  metricsQuery: '%s'
`, tmpl)))
	if err != nil {
		t.Fatal(err)
	}
	custom, _, err := rules.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := promtest.NewEngine(t, data)
	client, err := prom.New(prom.Options{URL: e.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	mapper := kubetest.Mapper()
	d := catalog.New(custom, nil, catalog.Single(client), mapper, time.Hour)
	d.Refresh(context.Background())
	objects := &kubetest.Objects{}
	objects.Add(
		kubetest.Object{Resource: kubetest.Pods, Namespace: "ns1", Name: "a"},
		kubetest.Object{Resource: kubetest.Pods, Namespace: "ns1", Name: "b"},
		kubetest.Object{Resource: kubetest.Pods, Namespace: "ns1", Name: "c"},
		kubetest.Object{Resource: kubetest.Pods, Namespace: "ns2", Name: "a"},
		kubetest.Object{Resource: kubetest.Pods, Namespace: "ns2", Name: "c"},
		kubetest.Object{Resource: kubetest.Pods, Namespace: "ns3", Name: "e"}, // no series
	)
	p := New(d, &provider.Runner{Backends: provider.Single(client)}, objects, mapper)
	p.run.Now = func() time.Time { return time.Unix(300, 0) }
	e.Reset()
	return &engineFixture{engine: e, p: p}
}

// TestIncompleteWindowIs503: an object whose rate window samples cover only
// in part is left out of lists, and a GET for it is a 503 saying so, not a
// 404 (the value exists, it is not served yet); with PartialWindows it is
// served.
func TestIncompleteWindowIs503(t *testing.T) {
	const data = `
load 15s
	x{namespace="ns1",pod="a"} 0+150x20
	x{namespace="ns1",pod="b"} _x17 0+150x3
	x{namespace="ns1",pod="d"} _x20 0
	x{namespace="ns2",pod="a"} _x17 0+150x3
	x{namespace="ns1",pod="f"} 0+150x14
	x{namespace="ns1",pod="g"} 0+150x13 stale
`
	f := newEngineFixtureData(t, `sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)`, data)
	ctx := context.Background()
	list, err := f.p.GetMetricBySelector(ctx, "ns1", labels.Everything(), compatInfo, labels.Everything())
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].DescribedObject.Name != "a" {
		t.Errorf("list %+v, want only a", list.Items)
	}
	_, err = f.p.GetMetricByName(ctx, types.NamespacedName{Namespace: "ns1", Name: "b"}, compatInfo, labels.Everything())
	if !apierrors.IsServiceUnavailable(err) || !strings.Contains(err.Error(), "partly covered") {
		t.Errorf("GET b: %v, want a 503 naming the partly covered window", err)
	}
	// One sample: no rate even without the guard, yet the series is there.
	_, err = f.p.GetMetricByName(ctx, types.NamespacedName{Namespace: "ns1", Name: "d"}, compatInfo, labels.Everything())
	if !apierrors.IsServiceUnavailable(err) {
		t.Errorf("GET d (one sample in the window): %v, want a 503", err)
	}
	_, err = f.p.GetMetricByName(ctx, types.NamespacedName{Namespace: "ns1", Name: "c"}, compatInfo, labels.Everything())
	if !apierrors.IsNotFound(err) {
		t.Errorf("GET c (no series): %v, want 404", err)
	}
	// No sample in the window, but the series did not end (its last sample,
	// at 210s, is within the lookback delta): a backend frozen or down for
	// longer than the window, as in the fault suite. Not "no such series".
	_, err = f.p.GetMetricByName(ctx, types.NamespacedName{Namespace: "ns1", Name: "f"}, compatInfo, labels.Everything())
	if !apierrors.IsServiceUnavailable(err) || !strings.Contains(err.Error(), "partly covered") {
		t.Errorf("GET f (no sample in the window, the series not ended): %v, want a 503 naming the partly covered window", err)
	}
	// The series ended (a staleness marker: its target is gone): 404.
	_, err = f.p.GetMetricByName(ctx, types.NamespacedName{Namespace: "ns1", Name: "g"}, compatInfo, labels.Everything())
	if !apierrors.IsNotFound(err) {
		t.Errorf("GET g (series marked stale before the window): %v, want 404", err)
	}
	// A list of which every object was left out is a 503 too: an empty
	// list would read as "no such series".
	_, err = f.p.GetMetricBySelector(ctx, "ns2", labels.Everything(), compatInfo, labels.Everything())
	if !apierrors.IsServiceUnavailable(err) || !strings.Contains(err.Error(), "partly covered") || !strings.Contains(err.Error(), `"ns2"`) {
		t.Errorf("list ns2 (every window partly covered): %v, want a 503 naming the namespace and the partly covered window", err)
	}
	// Pods without any series: an empty list.
	if list, err := f.p.GetMetricBySelector(ctx, "ns3", labels.Everything(), compatInfo, labels.Everything()); err != nil || len(list.Items) != 0 {
		t.Errorf("list ns3 (no series): %+v, %v, want an empty list", list, err)
	}
	f.p.run.Windows = provider.GuardOff
	if _, err := f.p.GetMetricByName(ctx, types.NamespacedName{Namespace: "ns1", Name: "b"}, compatInfo, labels.Everything()); err != nil {
		t.Errorf("GET b with PartialWindows: %v", err)
	}
	if list, err := f.p.GetMetricBySelector(ctx, "ns2", labels.Everything(), compatInfo, labels.Everything()); err != nil || len(list.Items) != 1 {
		t.Errorf("list ns2 with PartialWindows: %+v, %v, want a's value", list, err)
	}
}

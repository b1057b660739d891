package custom

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// TestUncheckedQuery serves a rule whose metricsQuery PromQL cannot parse
// (MetricsQL's keep_metric_names; prometheus-adapter loads it and sends it
// as rendered, and so does promgate, with a warning, or without one on a
// metricsql backend): the query is sent as rendered and its values are
// served, without a window (the HPA then assumes one minute). A metricsql
// backend's rules take the same path (rules.TestDialects).
func TestUncheckedQuery(t *testing.T) {
	f := newFixtureWith(t, `
rules:
- seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
  resources:
    overrides: {namespace: {resource: namespace}, pod: {resource: pod}}
  name: {matches: "^http_requests_total$", as: "http_requests_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m]) keep_metric_names) by (<<.GroupBy>>)'
`)
	if r := f.p.catalog.Snapshot().CustomRules[0]; r.Query.Checked() {
		t.Fatal("the template parses as PromQL; the test needs one that does not")
	}
	srv, p := f.srv, f.p

	// The first request tells the query sent; answer it, and ask again.
	srv.Reset()
	if _, err := p.GetMetricBySelector(context.Background(), "ns1", labels.Everything(), podsInfo, labels.Everything()); err == nil {
		t.Fatal("no fixture yet: want the backend's 400 as an error")
	}
	qs := srv.Queries()
	if len(qs) != 1 || !strings.Contains(qs[0], "keep_metric_names") || !strings.Contains(qs[0], `namespace="ns1"`) {
		t.Fatalf("queries sent %q, want one keep_metric_names query of namespace ns1", qs)
	}
	srv.Vector(qs[0], sample("1.5", "pod", "a"), sample("2.5", "pod", "b"))
	list, err := p.GetMetricBySelector(context.Background(), "ns1", labels.Everything(), podsInfo, labels.Everything())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range list.Items {
		got = append(got, it.DescribedObject.Name+"="+it.Value.String())
		if it.WindowSeconds != nil {
			t.Errorf("%s: window %d, want none for a query promgate cannot read", it.DescribedObject.Name, *it.WindowSeconds)
		}
	}
	if want := "a=1500m b=2500m"; strings.Join(got, " ") != want {
		t.Errorf("items %q, want %s", got, want)
	}
	srv.Reset()
	one := types.NamespacedName{Namespace: "ns1", Name: "a"}
	_, _ = p.GetMetricByName(context.Background(), one, podsInfo, labels.Everything())
	if qs = srv.Queries(); len(qs) != 1 || !strings.Contains(qs[0], `pod="a"`) {
		t.Fatalf("single object: queries sent %q, want one for pod a", qs)
	}
	srv.Vector(qs[0], sample("1.5", "pod", "a"))
	v, err := p.GetMetricByName(context.Background(), one, podsInfo, labels.Everything())
	if err != nil || v.Value.String() != "1500m" || v.WindowSeconds != nil {
		t.Errorf("single object: %+v, %v; want 1500m without a window", v, err)
	}
}

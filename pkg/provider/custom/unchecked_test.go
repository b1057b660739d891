package custom

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/internal/kubetest"
	"github.com/promgate/promgate/pkg/internal/promtest"
	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/rules"
)

// TestUncheckedQuery serves a rule whose metricsQuery PromQL cannot parse
// (MetricsQL's keep_metric_names; prometheus-adapter loads it and sends it
// as rendered, and so does promgate, with a warning, or without one on a
// metricsql backend): the query is sent as rendered and its values are
// served, without a window (the HPA then assumes one minute). A metricsql
// backend's rules take the same path (rules.TestDialects).
func TestUncheckedQuery(t *testing.T) {
	{
		{
			cfg, err := config.Parse([]byte(`
rules:
- seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
  resources:
    overrides: {namespace: {resource: namespace}, pod: {resource: pod}}
  name: {matches: "^http_requests_total$", as: "http_requests_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m]) keep_metric_names) by (<<.GroupBy>>)'
`))
			if err != nil {
				t.Fatal(err)
			}
			crules, _, err := rules.Compile(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if crules[0].Query.Checked() {
				t.Fatal("the template parses as PromQL; the test needs one that does not")
			}
			srv := promtest.New(t)
			srv.Series(`http_requests_total{namespace!="",pod!=""}`,
				map[string]string{"__name__": "http_requests_total", "namespace": "ns1", "pod": "a"},
				map[string]string{"__name__": "http_requests_total", "namespace": "ns1", "pod": "b"})
			client, err := prom.New(prom.Options{URL: srv.URL, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			mapper := kubetest.Mapper()
			d := catalog.New(crules, nil, client, mapper, time.Hour)
			d.Refresh(context.Background())
			objects := &kubetest.Objects{}
			objects.Add(
				kubetest.Object{Resource: kubetest.Pods, Namespace: "ns1", Name: "a"},
				kubetest.Object{Resource: kubetest.Pods, Namespace: "ns1", Name: "b"},
			)
			p := New(d, client, objects, mapper)
			p.now = func() time.Time { return now }

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
	}
}

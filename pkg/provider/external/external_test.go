package external

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/metrics/pkg/apis/external_metrics"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/internal/kubetest"
	"github.com/promgate/promgate/pkg/internal/promtest"
	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/provider"
	"github.com/promgate/promgate/pkg/rules"
)

const testConfig = `
externalRules:
# externalRules[0]: namespaced (the default), one value per series
- seriesQuery: '{__name__=~"^queue_.*",namespace!=""}'
  resources:
    overrides: {namespace: {resource: namespace}}
  metricsQuery: '<<.Series>>{<<.LabelMatchers>>}'
# externalRules[1]: cluster-wide, with value replacements, a rate
- seriesQuery: '{__name__=~"^topic_.*"}'
  resources: {namespaced: false}
  name: {matches: "^topic_(.*)_total$", as: "topic_${1}_per_second"}
  labelValueReplacements:
  - {find: "__", replace: "/"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (topic)'
# externalRules[2]: the default query, namespace under another label
- seriesQuery: 'jobs_waiting'
  resources:
    overrides: {kubernetes_namespace: {resource: namespace}}
`

var now = time.Unix(1700000100, 0)

const sampleTime = 1700000090.5

type fixture struct {
	srv *promtest.Server
	p   *Provider
}

func newFixture(t *testing.T, cfgText string) *fixture {
	t.Helper()
	cfg, err := config.Parse([]byte(cfgText))
	if err != nil {
		t.Fatal(err)
	}
	_, external, err := rules.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := promtest.New(t)
	srv.Series(`{__name__=~"^queue_.*",namespace!=""}`, map[string]string{"__name__": "queue_depth", "namespace": "ns1", "queue": "orders"})
	srv.Series(`{__name__=~"^topic_.*"}`, map[string]string{"__name__": "topic_messages_total", "topic": "a"})
	srv.Series(`jobs_waiting`, map[string]string{"__name__": "jobs_waiting", "kubernetes_namespace": "ns1"})
	client, err := prom.New(prom.Options{URL: srv.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	mapper := kubetest.Mapper()
	d := catalog.New(nil, external, catalog.Single(client), mapper, time.Hour)
	d.Refresh(context.Background())
	srv.Reset()
	p := New(d, &provider.Runner{Backends: provider.Single(client)}, mapper)
	p.run.Now = func() time.Time { return now }
	p.run.Windows = provider.GuardOff // fixtures are keyed by query text; the guard is tested with the engine
	return &fixture{srv: srv, p: p}
}

func sample(value string, lbls ...string) promtest.Sample {
	m := map[string]string{}
	for i := 0; i+1 < len(lbls); i += 2 {
		m[lbls[i]] = lbls[i+1]
	}
	return promtest.Sample{Labels: m, Value: value, Time: sampleTime}
}

func mustSelector(t *testing.T, s string) labels.Selector {
	t.Helper()
	sel, err := labels.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

func int64p(v int64) *int64 { return &v }

func TestGetExternalMetric(t *testing.T) {
	ts := metav1.NewTime(time.UnixMilli(1700000090500))
	tests := []struct {
		name      string
		namespace string
		metric    string
		selector  string
		query     string
		result    []promtest.Sample
		want      []external_metrics.ExternalMetricValue
		values    []string
	}{
		{
			name: "namespaced by default", namespace: "ns1", metric: "queue_depth", selector: "queue=orders",
			query: `queue_depth{queue="orders",namespace="ns1"}`,
			result: []promtest.Sample{
				sample("12", "__name__", "queue_depth", "namespace", "ns1", "queue", "orders", "shard", "2"),
				sample("30", "__name__", "queue_depth", "namespace", "ns1", "queue", "orders", "shard", "1"),
			},
			want: []external_metrics.ExternalMetricValue{
				{MetricName: "queue_depth", MetricLabels: map[string]string{"namespace": "ns1", "queue": "orders", "shard": "1"}, Timestamp: ts},
				{MetricName: "queue_depth", MetricLabels: map[string]string{"namespace": "ns1", "queue": "orders", "shard": "2"}, Timestamp: ts},
			},
			values: []string{"30", "12"},
		},
		{
			name: "every selector operator", namespace: "ns1", metric: "queue_depth", selector: "queue in (a,b),tier notin (x),env!=dev,shard,!paused,region=eu",
			query:  `queue_depth{env!="dev",paused="",queue=~"a|b",region="eu",shard!="",tier!="x",namespace="ns1"}`,
			result: []promtest.Sample{sample("1.5", "queue", "a")},
			want:   []external_metrics.ExternalMetricValue{{MetricName: "queue_depth", MetricLabels: map[string]string{"queue": "a"}, Timestamp: ts}},
			values: []string{"1500m"},
		},
		{
			name: "no selector", namespace: "ns2", metric: "queue_depth",
			query:  `queue_depth{namespace="ns2"}`,
			result: nil,
			want:   nil,
		},
		{
			name: "namespaced: false ignores the namespace, replacements apply", namespace: "ns1", metric: "topic_messages_per_second", selector: "topic in (orders__eu,plain)",
			query:  `sum(rate(topic_messages_total{topic=~"orders/eu|plain"}[2m])) by (topic)`,
			result: []promtest.Sample{sample("0.5", "topic", "orders/eu"), sample("NaN", "topic", "plain"), sample("-Inf", "topic", "x")},
			want:   []external_metrics.ExternalMetricValue{{MetricName: "topic_messages_per_second", MetricLabels: map[string]string{"topic": "orders/eu"}, Timestamp: ts, WindowSeconds: int64p(120)}},
			values: []string{"500m"},
		},
		{
			name: "default query, namespace label from the overrides", namespace: "ns1", metric: "jobs_waiting",
			query:  `sum(jobs_waiting{kubernetes_namespace="ns1"}) by ()`,
			result: []promtest.Sample{sample("7")},
			want:   []external_metrics.ExternalMetricValue{{MetricName: "jobs_waiting", MetricLabels: map[string]string{}, Timestamp: ts}},
			values: []string{"7"},
		},
		{
			name: "no namespace in the request", metric: "jobs_waiting",
			query:  `sum(jobs_waiting{}) by ()`,
			result: []promtest.Sample{sample("7")},
			want:   []external_metrics.ExternalMetricValue{{MetricName: "jobs_waiting", MetricLabels: map[string]string{}, Timestamp: ts}},
			values: []string{"7"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, testConfig)
			f.srv.Vector(tt.query, tt.result...)
			list, err := f.p.GetExternalMetric(context.Background(), tt.namespace, mustSelector(t, tt.selector), cmprovider.ExternalMetricInfo{Metric: tt.metric})
			if err != nil {
				t.Fatalf("GetExternalMetric: %v (queries %q)", err, f.srv.Queries())
			}
			if got := f.srv.Queries(); !reflect.DeepEqual(got, []string{promtest.Canonical(tt.query)}) {
				t.Errorf("queries = %q, want %q", got, tt.query)
			}
			if got := f.srv.Requests()[0].Form.Get("time"); got != "1700000100" {
				t.Errorf("evaluated at %s", got)
			}
			if len(list.Items) != len(tt.want) {
				t.Fatalf("%d items, want %d: %+v", len(list.Items), len(tt.want), list.Items)
			}
			for i := range tt.want {
				got := list.Items[i]
				if got.Value.String() != tt.values[i] {
					t.Errorf("item %d value = %s, want %s", i, got.Value.String(), tt.values[i])
				}
				got.Value = tt.want[i].Value
				if !reflect.DeepEqual(got, tt.want[i]) {
					t.Errorf("item %d:\n%+v\nwant:\n%+v", i, got, tt.want[i])
				}
			}
		})
	}
}

// Two rules serving one name: both queries run, their values are listed
// together, ordered by labels.
func TestSeveralRulesForOneMetric(t *testing.T) {
	f := newFixture(t, `
externalRules:
- seriesQuery: 'backlog'
  metricsQuery: 'max(<<.Series>>{<<.LabelMatchers>>}) by (source)'
- seriesQuery: '{__name__="backlog",source="legacy"}'
  resources: {namespaced: false}
  metricsQuery: 'min(<<.Series>>{<<.LabelMatchers>>}) by (source)'
`)
	f.srv.Series("backlog", map[string]string{"__name__": "backlog"})
	f.srv.Series(`{__name__="backlog",source="legacy"}`, map[string]string{"__name__": "backlog", "source": "legacy"})
	f.srv.Vector(`max(backlog{namespace="ns1"}) by (source)`, sample("2", "source", "new"))
	f.srv.Vector(`min(backlog{}) by (source)`, sample("1", "source", "legacy"))
	// As prometheus-adapter: the last rule naming the metric serves it.
	// The fixture's discovery ran before these series existed.
	p := f.p
	p.catalog.(*catalog.Discoverer).Refresh(context.Background())
	list, err := p.GetExternalMetric(context.Background(), "ns1", labels.Everything(), cmprovider.ExternalMetricInfo{Metric: "backlog"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range list.Items {
		got = append(got, labels.Set(it.MetricLabels).String()+"="+it.Value.String())
	}
	if !reflect.DeepEqual(got, []string{"source=legacy=1"}) {
		t.Errorf("items = %q", got)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name    string
		metric  string
		sel     string
		setup   func(f *fixture)
		code    int32
		message string
	}{
		{
			name: "unknown metric", metric: "nope",
			code: http.StatusNotFound,
			message: "the server could not find the external metric nope; known external metrics: jobs_waiting, queue_depth, topic_messages_per_second " +
				"(kubectl get --raw '/apis/custom.metrics.k8s.io/v1beta2/explain?metric=nope&external=true')",
		},
		{
			name: "prometheus failure", metric: "queue_depth",
			setup: func(f *fixture) {
				f.srv.QueryReply(`queue_depth{namespace="ns1"}`, promtest.Reply{Status: http.StatusBadGateway, ContentType: "text/plain", Body: "bad gateway"})
			},
			code:    http.StatusServiceUnavailable,
			message: "prometheus backend URL: query failed: bad status (HTTP 502, server_error)",
		},
		{
			name: "unsupported selector", metric: "queue_depth", sel: "priority>3",
			code:    http.StatusBadRequest,
			message: `labelSelector: unsupported label selector: operator "gt" on "priority" cannot be expressed in PromQL`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, testConfig)
			if tt.setup != nil {
				tt.setup(f)
			}
			_, err := f.p.GetExternalMetric(context.Background(), "ns1", mustSelector(t, tt.sel), cmprovider.ExternalMetricInfo{Metric: tt.metric})
			var status apierrors.APIStatus
			if !errors.As(err, &status) {
				t.Fatalf("error %v (%T) is not an API status", err, err)
			}
			want := strings.ReplaceAll(tt.message, "URL", f.srv.URL)
			if s := status.Status(); s.Code != tt.code || s.Message != want {
				t.Errorf("status %d %q\nwant %d %q", s.Code, s.Message, tt.code, want)
			}
		})
	}

	// Without any external metric, the message says so.
	f := newFixture(t, "")
	_, err := f.p.GetExternalMetric(context.Background(), "ns1", labels.Everything(), cmprovider.ExternalMetricInfo{Metric: "x"})
	if !apierrors.IsNotFound(err) || err.Error() != "the server could not find the external metric x; no external metric is known (kubectl get --raw '/apis/custom.metrics.k8s.io/v1beta2/explain?metric=x&external=true')" {
		t.Errorf("no metrics: %v", err)
	}
}

func TestListAllExternalMetrics(t *testing.T) {
	f := newFixture(t, testConfig)
	got := f.p.ListAllExternalMetrics()
	want := []cmprovider.ExternalMetricInfo{{Metric: "jobs_waiting"}, {Metric: "queue_depth"}, {Metric: "topic_messages_per_second"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ListAllExternalMetrics = %v", got)
	}
}

package custom

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
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/metrics/pkg/apis/custom_metrics"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promgate/promgate/pkg/budget"
	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/internal/kubetest"
	"github.com/promgate/promgate/pkg/internal/promtest"
	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/provider"
	"github.com/promgate/promgate/pkg/rules"
)

const testConfig = `
rules:
- seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
  resources:
    overrides:
      namespace: {resource: namespace}
      pod: {resource: pod}
      service: {resource: service}
  name: {matches: "^http_requests_total$", as: "http_requests_per_second"}
  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)'
- seriesQuery: '{__name__=~"^node_.*"}'
  resources: {template: "<<.Resource>>"}
  name: {matches: "^node_(.*)$"}
- seriesQuery: 'kube_deployment_spec_replicas'
  resources:
    template: "kube_<<.Group>>_<<.Resource>>"
    overrides: {namespace: {resource: namespace}}
  metricsQuery: 'max(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'
`

// now is the evaluation time the provider asks for; samples are stamped a
// little earlier, as Prometheus does with the last scrape.
var now = time.Unix(1700000100, 0)

const sampleTime = 1700000090.5

type fixture struct {
	srv     *promtest.Server
	objects *kubetest.Objects
	p       *Provider
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, testConfig)
}

// newFixtureWith is newFixture with the rules of cfgText.
func newFixtureWith(t *testing.T, cfgText string) *fixture {
	t.Helper()
	cfg, err := config.Parse([]byte(cfgText))
	if err != nil {
		t.Fatal(err)
	}
	custom, _, err := rules.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := promtest.New(t)
	srv.Series(`http_requests_total{namespace!="",pod!=""}`,
		map[string]string{"__name__": "http_requests_total", "namespace": "ns1", "pod": "a", "service": "web"})
	srv.Series(`{__name__=~"^node_.*"}`, map[string]string{"__name__": "node_load1", "node": "n1"})
	srv.Series(`kube_deployment_spec_replicas`,
		map[string]string{"__name__": "kube_deployment_spec_replicas", "namespace": "ns1", "kube_apps_deployment": "web"})
	client, err := prom.New(prom.Options{URL: srv.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	mapper := kubetest.Mapper()
	d := catalog.New(custom, nil, catalog.Single(client), mapper, time.Hour)
	d.Refresh(context.Background())
	srv.Reset()

	objects := &kubetest.Objects{}
	objects.Add(
		kubetest.Object{Resource: kubetest.Pods, Namespace: "ns1", Name: "a", Labels: map[string]string{"app": "web"}},
		kubetest.Object{Resource: kubetest.Pods, Namespace: "ns1", Name: "b", Labels: map[string]string{"app": "web"}},
		kubetest.Object{Resource: kubetest.Pods, Namespace: "ns1", Name: "c", Labels: map[string]string{"app": "db"}},
		kubetest.Object{Resource: kubetest.Pods, Namespace: "ns2", Name: "a", Labels: map[string]string{"app": "web"}},
		kubetest.Object{Resource: kubetest.Nodes, Name: "n1"},
		kubetest.Object{Resource: kubetest.Nodes, Name: "n2"},
		kubetest.Object{Resource: kubetest.Namespaces, Name: "ns1"},
		kubetest.Object{Resource: kubetest.Namespaces, Name: "ns2"},
	)
	// A budget, as promgate runs with: shared texts, indexes and lists are
	// kept.
	p := New(d, &provider.Runner{Backends: provider.Single(client), Budget: budget.New(64 << 20)}, objects, mapper)
	p.run.Now = func() time.Time { return now }
	// Fixtures are keyed by the query text; the partial-window guard is
	// tested against Prometheus' engine (compat_test.go).
	p.run.Windows = provider.GuardOff
	return &fixture{srv: srv, objects: objects, p: p}
}

func sample(value string, lbls ...string) promtest.Sample {
	m := map[string]string{}
	for i := 0; i+1 < len(lbls); i += 2 {
		m[lbls[i]] = lbls[i+1]
	}
	return promtest.Sample{Labels: m, Value: value, Time: sampleTime}
}

var (
	podsInfo = cmprovider.CustomMetricInfo{GroupResource: kubetest.Pods, Namespaced: true, Metric: "http_requests_per_second"}
	nodeInfo = cmprovider.CustomMetricInfo{GroupResource: kubetest.Nodes, Metric: "load1"}
	nsInfo   = cmprovider.CustomMetricInfo{GroupResource: kubetest.Namespaces, Metric: "http_requests_per_second"}
)

func mustSelector(t *testing.T, s string) labels.Selector {
	t.Helper()
	sel, err := labels.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

func int64p(v int64) *int64 { return &v }

// checkQueries asserts the exact PromQL sent, and that it was evaluated at now.
func (f *fixture) checkQueries(t *testing.T, want ...string) {
	t.Helper()
	for i := range want {
		want[i] = promtest.Canonical(want[i])
	}
	if got := f.srv.Queries(); !reflect.DeepEqual(got, want) {
		t.Errorf("queries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, r := range f.srv.Requests() {
		if r.Form.Get("time") != "1700000100" {
			t.Errorf("query evaluated at %s, want 1700000100", r.Form.Get("time"))
		}
	}
}

func TestGetMetricByName(t *testing.T) {
	ts := metav1.NewTime(time.UnixMilli(1700000090500))
	tests := []struct {
		name      string
		object    types.NamespacedName
		info      cmprovider.CustomMetricInfo
		selector  string
		query     string
		result    []promtest.Sample
		want      custom_metrics.MetricValue
		wantValue string
	}{
		{
			name:   "pod",
			object: types.NamespacedName{Namespace: "ns1", Name: "a"},
			info:   podsInfo,
			query:  `sum(rate(http_requests_total{namespace="ns1",pod="a"}[1m])) by (pod)`,
			result: []promtest.Sample{sample("1.5", "pod", "a")},
			want: custom_metrics.MetricValue{
				DescribedObject: custom_metrics.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: "ns1", Name: "a"},
				Metric:          custom_metrics.MetricIdentifier{Name: "http_requests_per_second"},
				Timestamp:       ts, WindowSeconds: int64p(60),
			},
			wantValue: "1500m",
		},
		{
			name:     "pod with metric label selector",
			object:   types.NamespacedName{Namespace: "ns1", Name: "a"},
			info:     podsInfo,
			selector: "code in (500,503),method!=GET,!canary,env,tier=web",
			query:    `sum(rate(http_requests_total{canary="",code=~"500|503",env!="",method!="GET",tier="web",namespace="ns1",pod="a"}[1m])) by (pod)`,
			result:   []promtest.Sample{sample("0.25", "pod", "a")},
			want: custom_metrics.MetricValue{
				DescribedObject: custom_metrics.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: "ns1", Name: "a"},
				Metric: custom_metrics.MetricIdentifier{Name: "http_requests_per_second", Selector: &metav1.LabelSelector{
					MatchLabels: map[string]string{"tier": "web"},
					MatchExpressions: []metav1.LabelSelectorRequirement{
						{Key: "canary", Operator: metav1.LabelSelectorOpDoesNotExist},
						{Key: "code", Operator: metav1.LabelSelectorOpIn, Values: []string{"500", "503"}},
						{Key: "env", Operator: metav1.LabelSelectorOpExists},
						{Key: "method", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"GET"}},
					},
				}},
				Timestamp: ts, WindowSeconds: int64p(60),
			},
			wantValue: "250m",
		},
		{
			name:   "service, a non-pod namespaced resource",
			object: types.NamespacedName{Namespace: "ns1", Name: "web"},
			info:   cmprovider.CustomMetricInfo{GroupResource: schema.GroupResource{Resource: "service"}, Namespaced: true, Metric: "http_requests_per_second"},
			query:  `sum(rate(http_requests_total{namespace="ns1",service="web"}[1m])) by (service)`,
			result: []promtest.Sample{sample("3", "service", "web")},
			want: custom_metrics.MetricValue{
				DescribedObject: custom_metrics.ObjectReference{Kind: "Service", APIVersion: "v1", Namespace: "ns1", Name: "web"},
				Metric:          custom_metrics.MetricIdentifier{Name: "http_requests_per_second"},
				Timestamp:       ts, WindowSeconds: int64p(60),
			},
			wantValue: "3",
		},
		{
			name:   "cluster-scoped node",
			object: types.NamespacedName{Name: "n1"},
			info:   nodeInfo,
			query:  `sum(node_load1{node="n1"}) by (node)`,
			result: []promtest.Sample{sample("0.75", "node", "n1")},
			want: custom_metrics.MetricValue{
				DescribedObject: custom_metrics.ObjectReference{Kind: "Node", APIVersion: "v1", Name: "n1"},
				Metric:          custom_metrics.MetricIdentifier{Name: "load1"},
				Timestamp:       ts, // no range in the query: no window
			},
			wantValue: "750m",
		},
		{
			// /namespaces/ns1/metrics/http_requests_per_second
			name:   "namespace",
			object: types.NamespacedName{Name: "ns1"},
			info:   nsInfo,
			query:  `sum(rate(http_requests_total{namespace="ns1"}[1m])) by (namespace)`,
			result: []promtest.Sample{sample("12", "namespace", "ns1")},
			want: custom_metrics.MetricValue{
				DescribedObject: custom_metrics.ObjectReference{Kind: "Namespace", APIVersion: "v1", Name: "ns1"},
				Metric:          custom_metrics.MetricIdentifier{Name: "http_requests_per_second"},
				Timestamp:       ts, WindowSeconds: int64p(60),
			},
			wantValue: "12",
		},
		{
			name:   "deployment through a group template",
			object: types.NamespacedName{Namespace: "ns1", Name: "web"},
			info:   cmprovider.CustomMetricInfo{GroupResource: kubetest.Deployments, Namespaced: true, Metric: "kube_deployment_spec_replicas"},
			query:  `max(kube_deployment_spec_replicas{namespace="ns1",kube_apps_deployment="web"}) by (kube_apps_deployment)`,
			result: []promtest.Sample{sample("3", "kube_apps_deployment", "web")},
			want: custom_metrics.MetricValue{
				DescribedObject: custom_metrics.ObjectReference{Kind: "Deployment", APIVersion: "apps/v1", Namespace: "ns1", Name: "web"},
				Metric:          custom_metrics.MetricIdentifier{Name: "kube_deployment_spec_replicas"},
				Timestamp:       ts,
			},
			wantValue: "3",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.srv.Vector(tt.query, tt.result...)
			got, err := f.p.GetMetricByName(context.Background(), tt.object, tt.info, mustSelector(t, tt.selector))
			if err != nil {
				t.Fatalf("GetMetricByName: %v (queries %q)", err, f.srv.Queries())
			}
			f.checkQueries(t, tt.query)
			if got.Value.String() != tt.wantValue {
				t.Errorf("value = %s, want %s", got.Value.String(), tt.wantValue)
			}
			got.Value = tt.want.Value
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("value:\n%+v\nwant:\n%+v", *got, tt.want)
			}
		})
	}
}

func TestGetMetricBySelector(t *testing.T) {
	ts := metav1.NewTime(time.UnixMilli(1700000090500))
	podRef := func(ns, name string) custom_metrics.ObjectReference {
		return custom_metrics.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: ns, Name: name}
	}
	f := newFixture(t)
	f.srv.Vector(`sum(rate(http_requests_total{namespace="ns1",pod=~"a|b"}[1m])) by (pod)`,
		sample("2", "pod", "b"),
		sample("1", "pod", "a"),
		sample("9", "pod", "c"), // not selected: ignored
		sample("8", "pod", "a"), // a second series for a: the last wins, as in prometheus-adapter
	)
	list, err := f.p.GetMetricBySelector(context.Background(), "ns1", mustSelector(t, "app=web"), podsInfo, labels.Everything())
	if err != nil {
		t.Fatal(err)
	}
	f.checkQueries(t, `sum(rate(http_requests_total{namespace="ns1",pod=~"a|b"}[1m])) by (pod)`)
	want := []custom_metrics.MetricValue{
		{DescribedObject: podRef("ns1", "a"), Metric: custom_metrics.MetricIdentifier{Name: "http_requests_per_second"}, Timestamp: ts, WindowSeconds: int64p(60)},
		{DescribedObject: podRef("ns1", "b"), Metric: custom_metrics.MetricIdentifier{Name: "http_requests_per_second"}, Timestamp: ts, WindowSeconds: int64p(60)},
	}
	checkList(t, list, want, "8", "2")
}

func checkList(t *testing.T, list *custom_metrics.MetricValueList, want []custom_metrics.MetricValue, values ...string) {
	t.Helper()
	if len(list.Items) != len(want) {
		t.Fatalf("%d items, want %d: %+v", len(list.Items), len(want), list.Items)
	}
	for i := range want {
		got := list.Items[i]
		if got.Value.String() != values[i] {
			t.Errorf("item %d value = %s, want %s", i, got.Value.String(), values[i])
		}
		got.Value = want[i].Value
		if !reflect.DeepEqual(got, want[i]) {
			t.Errorf("item %d:\n%+v\nwant:\n%+v", i, got, want[i])
		}
	}
}

func TestGetMetricBySelectorForms(t *testing.T) {
	tests := []struct {
		name      string
		namespace string
		selector  string
		info      cmprovider.CustomMetricInfo
		metricSel string
		max       int
		batch     bool
		query     string // "" when no query must be sent
		result    []promtest.Sample
		want      []string // described object names
	}{
		{
			name: "all pods of a namespace", namespace: "ns1", info: podsInfo,
			query:  `sum(rate(http_requests_total{namespace="ns1",pod=~"a|b|c"}[1m])) by (pod)`,
			result: []promtest.Sample{sample("1", "pod", "a"), sample("NaN", "pod", "b"), sample("+Inf", "pod", "c")},
			want:   []string{"a"}, // NaN and Inf are skipped
		},
		{
			name: "one pod selected", namespace: "ns1", selector: "app=db", info: podsInfo,
			query:  `sum(rate(http_requests_total{namespace="ns1",pod="c"}[1m])) by (pod)`,
			result: []promtest.Sample{sample("1", "pod", "c")},
			want:   []string{"c"},
		},
		{
			name: "no object selected", namespace: "ns1", selector: "app=none", info: podsInfo,
			want: nil,
		},
		{
			name: "more objects than fit a regex", namespace: "ns1", info: podsInfo, max: 2,
			query:  `sum(rate(http_requests_total{namespace="ns1",pod!=""}[1m])) by (pod)`,
			result: []promtest.Sample{sample("1", "pod", "a"), sample("2", "pod", "c"), sample("3", "pod", "zzz")},
			want:   []string{"a", "c"},
		},
		{
			name: "metric label selector", namespace: "ns2", info: podsInfo, metricSel: "code=500",
			query:  `sum(rate(http_requests_total{code="500",namespace="ns2",pod="a"}[1m])) by (pod)`,
			result: []promtest.Sample{sample("1", "pod", "a")},
			want:   []string{"a"},
		},
		{
			name: "all nodes", info: nodeInfo,
			query:  `sum(node_load1{node=~"n1|n2"}) by (node)`,
			result: []promtest.Sample{sample("1", "node", "n2")},
			want:   []string{"n2"},
		},
		{
			name: "all namespaces", info: nsInfo,
			query:  `sum(rate(http_requests_total{namespace=~"ns1|ns2"}[1m])) by (namespace)`,
			result: []promtest.Sample{sample("1", "namespace", "ns1"), sample("2", "namespace", "ns2")},
			want:   []string{"ns1", "ns2"},
		},
		{
			name: "batched: one cluster-wide query", namespace: "ns1", selector: "app=web", info: podsInfo, batch: true,
			query: `sum(rate(http_requests_total{pod!=""}[1m])) by (namespace,pod)`,
			result: []promtest.Sample{
				sample("1", "namespace", "ns2", "pod", "a"), // same name, other namespace
				sample("2", "namespace", "ns1", "pod", "b"),
				sample("3", "namespace", "ns1", "pod", "c"), // not selected
				sample("4", "namespace", "ns1", "pod", "a"),
			},
			want: []string{"a", "b"},
		},
		{
			name: "batched nodes", info: nodeInfo, batch: true,
			query:  `sum(node_load1{node!=""}) by (node)`,
			result: []promtest.Sample{sample("1", "node", "n1"), sample("2", "node", "n3")},
			want:   []string{"n1"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if tt.max > 0 {
				f.p.MaxNamesInQuery = tt.max
			}
			f.p.Batch = tt.batch
			if tt.query != "" {
				f.srv.Vector(tt.query, tt.result...)
			}
			list, err := f.p.GetMetricBySelector(context.Background(), tt.namespace, mustSelector(t, tt.selector), tt.info, mustSelector(t, tt.metricSel))
			if err != nil {
				t.Fatalf("GetMetricBySelector: %v (queries %q)", err, f.srv.Queries())
			}
			var wantQueries []string
			if tt.query != "" {
				wantQueries = []string{tt.query}
			}
			f.checkQueries(t, wantQueries...)
			var got []string
			for _, it := range list.Items {
				got = append(got, it.DescribedObject.Name)
				if it.DescribedObject.Namespace != tt.namespace {
					t.Errorf("%s: namespace %q", it.DescribedObject.Name, it.DescribedObject.Namespace)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("objects = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBatchedSingleObject(t *testing.T) {
	f := newFixture(t)
	f.p.Batch = true
	f.srv.Vector(`sum(rate(http_requests_total{pod!=""}[1m])) by (namespace,pod)`,
		sample("1", "namespace", "ns2", "pod", "a"),
		sample("2", "namespace", "ns1", "pod", "a"))
	v, err := f.p.GetMetricByName(context.Background(), types.NamespacedName{Namespace: "ns1", Name: "a"}, podsInfo, labels.Everything())
	if err != nil || v.Value.String() != "2" {
		t.Fatalf("GetMetricByName = %+v, %v", v, err)
	}
}

func TestErrors(t *testing.T) {
	podA := types.NamespacedName{Namespace: "ns1", Name: "a"}
	tests := []struct {
		name    string
		object  types.NamespacedName // for GetMetricByName; zero: GetMetricBySelector in ns1
		info    cmprovider.CustomMetricInfo
		sel     string
		setup   func(f *fixture)
		code    int32
		message string // exact, with URL standing for the backend's URL
	}{
		{
			name: "unknown metric", object: podA,
			info: cmprovider.CustomMetricInfo{GroupResource: kubetest.Pods, Namespaced: true, Metric: "nope"},
			code: http.StatusNotFound,
			message: "the server could not find the metric nope for pods (as namespaced objects); " +
				"metrics known for pods: http_requests_per_second " +
				"(kubectl get --raw '/apis/custom.metrics.k8s.io/v1beta2/explain?metric=nope&resource=pods')",
		},
		{
			name: "known metric, other scope",
			info: cmprovider.CustomMetricInfo{GroupResource: kubetest.Nodes, Namespaced: true, Metric: "load1"},
			code: http.StatusNotFound,
			message: "the server could not find the metric load1 for nodes (as namespaced objects); " +
				"metrics known for nodes: load1 " +
				"(kubectl get --raw '/apis/custom.metrics.k8s.io/v1beta2/explain?metric=load1&resource=nodes')",
		},
		{
			name: "resource without metrics", object: podA,
			info: cmprovider.CustomMetricInfo{GroupResource: kubetest.Ingresses, Namespaced: true, Metric: "x"},
			code: http.StatusNotFound,
			message: "the server could not find the metric x for ingresses.networking.k8s.io (as namespaced objects); no metric is known for ingresses.networking.k8s.io " +
				"(kubectl get --raw '/apis/custom.metrics.k8s.io/v1beta2/explain?metric=x&resource=ingresses.networking.k8s.io')",
		},
		{
			name: "unknown resource", object: podA,
			info:    cmprovider.CustomMetricInfo{GroupResource: schema.GroupResource{Resource: "widgets"}, Namespaced: true, Metric: "x"},
			code:    http.StatusNotFound,
			message: `widgets "resource \"widgets\" for metric \"x\": no matches for /, Resource=widgets" not found`,
		},
		{
			name: "prometheus failure", object: podA, info: podsInfo,
			setup: func(f *fixture) {
				f.srv.QueryReply(`sum(rate(http_requests_total{namespace="ns1",pod="a"}[1m])) by (pod)`,
					promtest.Reply{Status: http.StatusServiceUnavailable, ContentType: "text/plain", Body: "down"})
			},
			code:    http.StatusServiceUnavailable,
			message: "prometheus backend URL: query failed: bad status (HTTP 503, server_error)",
		},
		{
			name: "prometheus failure in a list", info: podsInfo,
			setup: func(f *fixture) {
				f.srv.QueryReply(`sum(rate(http_requests_total{namespace="ns1",pod=~"a|b|c"}[1m])) by (pod)`,
					promtest.Error(http.StatusUnprocessableEntity, "execution", "too many samples"))
			},
			code:    http.StatusServiceUnavailable,
			message: "prometheus backend URL: query failed: bad status (HTTP 422, execution)",
		},
		{
			name: "unsupported metric selector", object: podA, info: podsInfo, sel: "code>499",
			code:    http.StatusBadRequest,
			message: `metricLabelSelector: unsupported label selector: operator "gt" on "code" cannot be expressed in PromQL`,
		},
		{
			name: "metric selector on a non-Prometheus label", info: podsInfo, sel: "app.kubernetes.io/name=web",
			code:    http.StatusBadRequest,
			message: `metricLabelSelector: unsupported label selector: "app.kubernetes.io/name" is not a Prometheus label name`,
		},
		{
			name: "NaN for a single object", object: podA, info: podsInfo,
			setup: func(f *fixture) {
				f.srv.Vector(`sum(rate(http_requests_total{namespace="ns1",pod="a"}[1m])) by (pod)`, sample("NaN", "pod", "a"))
			},
			code:    http.StatusNotFound,
			message: `the server could not find the metric http_requests_per_second for pods a: value is NaN`,
		},
		{
			name: "no series for the object", object: podA, info: podsInfo,
			setup: func(f *fixture) {
				f.srv.Vector(`sum(rate(http_requests_total{namespace="ns1",pod="a"}[1m])) by (pod)`, sample("1", "pod", "b"))
			},
			code:    http.StatusNotFound,
			message: `the server could not find the metric http_requests_per_second for pods a: the query returned no series for it`,
		},
		{
			name: "object cache failure", info: podsInfo,
			setup:   func(f *fixture) { f.objects.Err = errors.New("cache broken") },
			code:    http.StatusInternalServerError,
			message: "Internal error occurred: cache broken",
		},
		{
			name: "object cache timeout", info: podsInfo,
			setup:   func(f *fixture) { f.objects.Err = context.DeadlineExceeded },
			code:    http.StatusServiceUnavailable,
			message: "metrics request timed out: context deadline exceeded",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if tt.setup != nil {
				tt.setup(f)
			}
			var err error
			if tt.object.Name != "" {
				_, err = f.p.GetMetricByName(context.Background(), tt.object, tt.info, mustSelector(t, tt.sel))
			} else {
				_, err = f.p.GetMetricBySelector(context.Background(), "ns1", labels.Everything(), tt.info, mustSelector(t, tt.sel))
			}
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
}

func TestListAllMetrics(t *testing.T) {
	f := newFixture(t)
	var got []string
	for _, m := range f.p.ListAllMetrics() {
		got = append(got, m.String())
	}
	want := []string{
		"deployments.apps/kube_deployment_spec_replicas(namespaced)",
		"namespaces/http_requests_per_second",
		"namespaces/kube_deployment_spec_replicas",
		"nodes/load1",
		"pods/http_requests_per_second(namespaced)",
		"services/http_requests_per_second(namespaced)",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ListAllMetrics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

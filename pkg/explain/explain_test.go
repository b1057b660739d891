package explain

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/internal/kubetest"
	"github.com/promgate/promgate/pkg/internal/promtest"
	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/provider"
	"github.com/promgate/promgate/pkg/provider/custom"
	"github.com/promgate/promgate/pkg/provider/external"
	"github.com/promgate/promgate/pkg/rules"
)

const (
	qApp    = `{job="app"}`
	qBroken = `{__name__=~"^broken_.*"}`
	qQueue  = `{__name__=~"^queue_.*"}`
)

const testConfig = `
rules:
# rules[0]: counters per pod and namespace, renamed
- seriesQuery: '` + qApp + `'
  resources:
    overrides:
      namespace: {resource: namespace}
      pod: {resource: pod}
  name: {matches: "^app_(.*)_total$", as: "${1}_per_second"}
  metricsQuery: sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)
# rules[1]: everything else of the app, but queues
- seriesQuery: '` + qApp + `'
  seriesFilters: [{isNot: "^app_queue_"}]
  resources: {template: "<<.Resource>>"}
# rules[2]: a seriesQuery Prometheus fails
- seriesQuery: '` + qBroken + `'
  resources: {template: "<<.Resource>>"}
externalRules:
- seriesQuery: '` + qQueue + `'
  resources: {namespaced: false}
  metricsQuery: sum(<<.Series>>{<<.LabelMatchers>>}) by (queue)
`

// probeSelector is the selector explain asks Prometheus for: the rule's
// seriesQuery and the metric name.
func probeSelector(seriesQuery, metric string) string {
	return strings.TrimSuffix(seriesQuery, "}") + `,__name__="` + metric + `"}`
}

type fixture struct {
	srv *promtest.Server
	cp  *custom.Provider
	e   *Explainer
}

// newFixture discovers testConfig's metrics from a fake Prometheus. Series
// named app_old have samples only before the last 10 minutes: the
// Prometheus in front of srv answers for them only to a start older than
// that.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	cfg, err := config.Parse([]byte(testConfig))
	if err != nil {
		t.Fatal(err)
	}
	customRules, externalRules, err := rules.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := promtest.New(t)
	app := func(name string, lbls ...string) map[string]string {
		m := map[string]string{"__name__": name, "job": "app"}
		for i := 0; i+1 < len(lbls); i += 2 {
			m[lbls[i]] = lbls[i+1]
		}
		return m
	}
	appSeries := []map[string]string{
		app("app_requests_total", "namespace", "ns1", "pod", "web-0"),
		app("app_requests_total", "namespace", "ns1", "pod", "web-1"),
		app("app_queue_length", "namespace", "ns1", "pod", "web-0"),
		app("app_build_info", "version", "1"),
	}
	srv.Series(qApp, appSeries...)
	for _, s := range appSeries {
		srv.Series(probeSelector(qApp, s["__name__"]), s)
	}
	srv.SeriesReply(qBroken, promtest.Reply{Status: http.StatusInternalServerError, ContentType: "text/plain", Body: "boom"})
	srv.SeriesReply(probeSelector(qBroken, "app_requests_total"), promtest.Reply{Status: http.StatusInternalServerError, ContentType: "text/plain", Body: "boom"})
	srv.Series(qQueue, map[string]string{"__name__": "queue_depth", "queue": "a"}, map[string]string{"__name__": "queue_depth", "queue": "b"})

	old := app("app_old", "namespace", "ns1", "pod", "web-0")
	front := httptest.NewServer(oldSeries(srv, probeSelector(qApp, "app_old"), 10*time.Minute, old))
	t.Cleanup(front.Close)

	client, err := prom.New(prom.Options{URL: front.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	mapper := kubetest.Mapper()
	d := catalog.New(customRules, externalRules, catalog.Single(client), mapper, 10*time.Minute)
	d.Refresh(context.Background())

	objects := &kubetest.Objects{}
	objects.Add(
		kubetest.Object{Resource: kubetest.Pods, Namespace: "ns1", Name: "web-0"},
		kubetest.Object{Resource: kubetest.Pods, Namespace: "ns1", Name: "web-1"},
	)
	run := &provider.Runner{Backends: provider.Single(client), Windows: provider.GuardOff}
	cp := custom.New(d, run, objects, mapper)
	cp.Batch = true
	ep := external.New(d, run, mapper)
	ep.Batch = true
	return &fixture{srv: srv, cp: cp, e: &Explainer{
		Catalog: d, Custom: customRules, External: externalRules, Mapper: mapper,
		Backends: map[string]ExplainBackend{config.DefaultBackend: {Series: client}}, MaxAge: 10 * time.Minute,
		CustomPlanner: cp, ExternalPlanner: ep,
	}}
}

// oldSeries is a Prometheus that has series for match only in a window
// starting more than maxAge ago, and otherwise is srv.
func oldSeries(srv *promtest.Server, match string, maxAge time.Duration, series map[string]string) http.Handler {
	u, _ := url.Parse(srv.URL)
	proxy := httputil.NewSingleHostReverseProxy(u)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/api/v1/series") {
			body, _ := readForm(r)
			if body.Get("match[]") == match {
				start, _ := strconv.ParseFloat(body.Get("start"), 64)
				data := []map[string]string{}
				if time.Since(time.Unix(int64(start), 0)) > maxAge+time.Minute {
					data = append(data, series)
				}
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": data})
				return
			}
		}
		proxy.ServeHTTP(w, r)
	})
}

// readForm parses r's form and restores its body for the proxy.
func readForm(r *http.Request) (url.Values, error) {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(r.Body); err != nil {
		return nil, err
	}
	r.Body.Close()
	v, err := url.ParseQuery(buf.String())
	r.Body = readCloser{bytes.NewReader(buf.Bytes())}
	r.ContentLength = int64(buf.Len())
	return v, err
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

var timeRE = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)

func TestExplainText(t *testing.T) {
	tests := []struct {
		name  string
		req   Request
		setup func(*fixture)
		want  string
	}{
		{
			name: "served, with the query of a request for all pods of a namespace",
			req:  Request{Metric: "requests_per_second", Resource: "pods", Namespace: "ns1", Name: "*", Run: true},
			setup: func(f *fixture) {
				f.srv.Vector(`sum by (namespace, pod) (rate(app_requests_total{pod!=""}[1m]))`,
					promtest.Sample{Labels: map[string]string{"namespace": "ns1", "pod": "web-0"}, Value: "1"},
					promtest.Sample{Labels: map[string]string{"namespace": "ns2", "pod": "web-0"}, Value: "2"})
			},
			want: `metric requests_per_second, resource pods, namespace ns1, name * (discovery of TIME)
served:
  namespaces/requests_per_second (cluster-scoped) by rules[0] (series app_requests_total; shared by all requests: one query per metric, filtered in promgate)
  pods/requests_per_second (namespaced) by rules[0] (series app_requests_total; shared by all requests: one query per metric, filtered in promgate)
rules:
  rules[0]  seriesQuery: {job="app"}
    serves it
  rules[2]  seriesQuery: {__name__=~"^broken_.*"}
    does not serve it
    - its seriesQuery fails: prometheus backend URL: series failed; the backend's answer is in promgate's log (it never succeeded)
query (sent to default):
  sum by (namespace, pod) (rate(app_requests_total{pod!=""}[1m]))
  from rules[0], series app_requests_total, for 2 objects
  guard: off: partial windows are served (--partial-window-guard=off)
  shared: one query for all requests for the metric, filtered in promgate
  ran: 1 values
`,
		},
		{
			name: "discovered in another scope",
			req:  Request{Metric: "requests_per_second", Resource: "pods"},
			want: `metric requests_per_second, resource pods (discovery of TIME)
served:
  namespaces/requests_per_second (cluster-scoped) by rules[0] (series app_requests_total; shared by all requests: one query per metric, filtered in promgate)
  pods/requests_per_second (namespaced) by rules[0] (series app_requests_total; shared by all requests: one query per metric, filtered in promgate)
rules:
  rules[0]  seriesQuery: {job="app"}
    does not serve it
    - discovered on another resource or scope: serves requests_per_second for namespaces (cluster-scoped objects), pods (namespaced objects), not for pods (cluster-scoped objects); ask within a namespace (namespace=)
  rules[2]  seriesQuery: {__name__=~"^broken_.*"}
    does not serve it
    - its seriesQuery fails: prometheus backend URL: series failed; the backend's answer is in promgate's log (it never succeeded)
request: the server could not find the metric requests_per_second for pods (as cluster-scoped objects); metrics known for pods: app_requests_total, requests_per_second (kubectl get --raw '/apis/custom.metrics.k8s.io/v1beta2/explain?metric=requests_per_second&resource=pods')
`,
		},
		{
			name: "filtered by seriesFilters and name.matches",
			req:  Request{Metric: "app_queue_length", Resource: "pods", Namespace: "ns1", Name: "web-0"},
			want: `metric app_queue_length, resource pods, namespace ns1, name web-0 (discovery of TIME)
served:
  nowhere: no rule serves a metric of that name
rules:
  rules[0]  seriesQuery: {job="app"}
    does not serve it
    - series app_queue_length{job,namespace,pod}: filtered by name.matches ^app_(.*)_total$
  rules[1]  seriesQuery: {job="app"}
    does not serve it
    - series app_queue_length{job,namespace,pod}: filtered by seriesFilters[0] isNot ^app_queue_
  rules[2]  seriesQuery: {__name__=~"^broken_.*"}
    does not serve it
    - its seriesQuery fails: prometheus backend URL: series failed; the backend's answer is in promgate's log (it never succeeded)
request: the server could not find the metric app_queue_length for pods (as namespaced objects); metrics known for pods: app_requests_total, requests_per_second (kubectl get --raw '/apis/custom.metrics.k8s.io/v1beta2/explain?metric=app_queue_length&resource=pods')
`,
		},
		{
			name: "renamed by one rule, served by another; no resource label",
			req:  Request{Metric: "app_build_info"},
			want: `metric app_build_info (discovery of TIME)
served:
  nowhere: no rule serves a metric of that name
rules:
  rules[0]  seriesQuery: {job="app"}
    does not serve it
    - series app_build_info{job,version}: filtered by name.matches ^app_(.*)_total$
  rules[1]  seriesQuery: {job="app"}
    does not serve it
    - series app_build_info{job,version}: no label maps to a Kubernetes resource
  rules[2]  seriesQuery: {__name__=~"^broken_.*"}
    does not serve it
    - its seriesQuery fails: prometheus backend URL: series failed; the backend's answer is in promgate's log (it never succeeded)
note: add resource= (or external=true) and namespace=, name= for the query a request sends
`,
		},
		{
			name:  "named otherwise by one rule, served by another, per request",
			req:   Request{Metric: "app_requests_total", Resource: "pods", Namespace: "ns1", Name: "web-0"},
			setup: func(f *fixture) { f.cp.Batch = false },
			want: `metric app_requests_total, resource pods, namespace ns1, name web-0 (discovery of TIME)
served:
  namespaces/app_requests_total (cluster-scoped) by rules[1] (series app_requests_total; shared by all requests: one query per metric, filtered in promgate)
  pods/app_requests_total (namespaced) by rules[1] (series app_requests_total; shared by all requests: one query per metric, filtered in promgate)
rules:
  rules[0]  seriesQuery: {job="app"}
    does not serve it
    - series app_requests_total{job,namespace,pod} is named requests_per_second by the rule's name.matches/name.as
  rules[1]  seriesQuery: {job="app"}
    serves it
  rules[2]  seriesQuery: {__name__=~"^broken_.*"}
    does not serve it
    - its seriesQuery fails: prometheus backend URL: series failed; the backend's answer is in promgate's log (it never succeeded)
query (sent to default):
  sum by (pod) (app_requests_total{namespace="ns1",pod="web-0"})
  from rules[1], series app_requests_total, for 1 objects
  guard: off: partial windows are served (--partial-window-guard=off)
  shareable, but sent per request: batching is off and the request names few objects
note: asking Prometheus for series named like the metric failed for seriesQuery {__name__=~"^broken_.*"}: prometheus backend URL: series failed: bad status (HTTP 500)
`,
		},
		{
			name: "older than max-age",
			req:  Request{Metric: "app_old", Resource: "pods", Namespace: "ns1", Name: "web-0"},
			want: `metric app_old, resource pods, namespace ns1, name web-0 (discovery of TIME)
served:
  nowhere: no rule serves a metric of that name
rules:
  rules[0]  seriesQuery: {job="app"}
    does not serve it
    - series app_old{job,namespace,pod} matched by its seriesQuery have no samples in the last 10m0s (--metrics-max-age), only within 24h0m0s: too old to be discovered
  rules[1]  seriesQuery: {job="app"}
    does not serve it
    - series app_old{job,namespace,pod} matched by its seriesQuery have no samples in the last 10m0s (--metrics-max-age), only within 24h0m0s: too old to be discovered
  rules[2]  seriesQuery: {__name__=~"^broken_.*"}
    does not serve it
    - its seriesQuery fails: prometheus backend URL: series failed; the backend's answer is in promgate's log (it never succeeded)
request: the server could not find the metric app_old for pods (as namespaced objects); metrics known for pods: app_requests_total, requests_per_second (kubectl get --raw '/apis/custom.metrics.k8s.io/v1beta2/explain?metric=app_old&resource=pods')
`,
		},
		{
			name: "external, shared query",
			req:  Request{Metric: "queue_depth", External: true, LabelSelector: "queue=a"},
			want: `metric queue_depth, external, labelSelector queue=a (discovery of TIME)
served:
  external queue_depth by externalRules[0] (series queue_depth; with a selector on any label, sent per request, as prometheus-adapter sends it: sum by (queue) when shared drops "promgate_sample", which the shared query is filtered on)
rules:
  externalRules[0]  seriesQuery: {__name__=~"^queue_.*"}
    serves it
query (sent to default):
  sum by (queue) (queue_depth)
  from externalRules[0], series queue_depth
  guard: off: partial windows are served (--partial-window-guard=off)
  shared: one query for all requests for the metric, filtered in promgate
`,
		},
		{
			name: "unknown everywhere",
			req:  Request{Metric: "nope", External: true},
			want: `metric nope, external (discovery of TIME)
served:
  nowhere: no rule serves a metric of that name
request: the server could not find the external metric nope; known external metrics: queue_depth (kubectl get --raw '/apis/custom.metrics.k8s.io/v1beta2/explain?metric=nope&external=true')
note: no rule's series give this metric, and no series named nope within 24h0m0s matches a rule's seriesQuery; a rule that renames series (name.as) shows the series it dropped under the full discovery (omit metric)
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if tt.setup != nil {
				tt.setup(f)
			}
			rep, err := f.e.Explain(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			if err := rep.WriteText(&b); err != nil {
				t.Fatal(err)
			}
			got := timeRE.ReplaceAllString(b.String(), "TIME")
			got = regexp.MustCompile(`http://127\.0\.0\.1:\d+`).ReplaceAllString(got, "URL")
			if got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// TestExplainDiscovery checks the report without a metric: every rule's
// discovery, as `promgate explain` printed it before.
func TestExplainDiscovery(t *testing.T) {
	f := newFixture(t)
	rep, err := f.e.Explain(context.Background(), Request{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	got := regexp.MustCompile(`http://127\.0\.0\.1:\d+`).ReplaceAllString(timeRE.ReplaceAllString(b.String(), "TIME"), "URL")
	want := `discovery of TIME
rules[0]  seriesQuery: {job="app"}
  series shapes: 3, kept: 1
  dropped 2: filtered by name.matches ^app_(.*)_total$ (e.g. app_queue_length, app_build_info)
  serves namespaces/requests_per_second (cluster-scoped) (series app_requests_total; shared by all requests: one query per metric, filtered in promgate)
  serves pods/requests_per_second (namespaced) (series app_requests_total; shared by all requests: one query per metric, filtered in promgate)
rules[1]  seriesQuery: {job="app"}
  series shapes: 3, kept: 1
  dropped 1: filtered by seriesFilters[0] isNot ^app_queue_ (e.g. app_queue_length)
  dropped 1: no label maps to a Kubernetes resource (e.g. app_build_info{job,version})
  serves namespaces/app_requests_total (cluster-scoped) (series app_requests_total; shared by all requests: one query per metric, filtered in promgate)
  serves pods/app_requests_total (namespaced) (series app_requests_total; shared by all requests: one query per metric, filtered in promgate)
rules[2]  seriesQuery: {__name__=~"^broken_.*"}
  ERROR: prometheus backend URL: series failed; the backend's answer is in promgate's log (it never succeeded)
  series shapes: 0, kept: 0
externalRules[0]  seriesQuery: {__name__=~"^queue_.*"}
  series shapes: 1, kept: 1
  serves external queue_depth (series queue_depth; with a selector on any label, sent per request, as prometheus-adapter sends it: sum by (queue) when shared drops "promgate_sample", which the shared query is filtered on)
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestParseRequest(t *testing.T) {
	tests := []struct {
		query string
		want  Request
		err   string
	}{
		{query: "metric=m&resource=pods&namespace=ns&name=a&run=true", want: Request{Metric: "m", Resource: "pods", Namespace: "ns", Name: "a", Run: true}},
		{query: "metric=m&external=1&labelSelector=queue%3Da", want: Request{Metric: "m", External: true, LabelSelector: "queue=a"}},
		{query: "", want: Request{}},
		{query: "metric=m&run=maybe", err: `run="maybe": not a boolean`},
		{query: "metric=m&external=true&resource=pods", err: `external=true and resource="pods": an external metric describes no resource`},
		{query: "resource=pods", err: "metric is required with resource, external, name or run"},
	}
	for _, tt := range tests {
		v, _ := url.ParseQuery(tt.query)
		got, err := ParseRequest(v)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("%q: error %v, want %q", tt.query, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q: %+v, %v; want %+v", tt.query, got, err, tt.want)
		}
		if back, err := ParseRequest(got.Values()); err != nil || back != got {
			t.Errorf("%q: Values does not round-trip: %+v, %v", tt.query, back, err)
		}
	}
}

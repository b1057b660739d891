// Package monitoring checks deploy/monitoring against the self-metrics
// promgate really exports: the metrics pass promtool's and promlint's
// checks, and every dashboard and alert expression parses as PromQL and
// selects only metrics (and labels) promgate or kube-apiserver export.
package monitoring

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	apiservermetrics "k8s.io/apiserver/pkg/endpoints/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"sigs.k8s.io/yaml"

	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/provider"
	"github.com/promgate/promgate/pkg/query"
	"github.com/promgate/promgate/pkg/rules"
	"github.com/promgate/promgate/pkg/server"
)

const root = "../.."

// external are the metrics the dashboard and alerts may use that a
// promgate process does not export, or exports only once a code path ran
// that this test does not drive, with their labels.
var external = map[string][]string{
	"up": nil, // Prometheus, per target
	// kube-apiserver: k8s.io/kube-aggregator@v0.37
	// pkg/controllers/status/metrics/metrics.go.
	"aggregator_unavailable_apiservice": {"name"},
	// pkg/provider/resource: a pod or node left out of an answer.
	"promgate_resource_metrics_missing_total": {"resource"},
}

// exported runs promgate's instrumented code once and returns the
// families /metrics then serves.
func exported(t *testing.T) []*dto.MetricFamily {
	t.Helper()
	server.RegisterMetrics() // every metric promgate exports, as at start
	ctx := context.Background()

	// Discovery: one rule whose seriesQuery works, one whose fails.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if strings.Contains(r.Form.Get("match[]"), "broken") {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, `{"status":"success","data":[{"__name__":"app_requests_total","namespace":"ns1","pod":"web-0"},{"__name__":"queue_depth","queue":"a"}]}`)
	}))
	defer srv.Close()
	cfg, err := config.Parse([]byte(`
rules:
- seriesQuery: '{__name__=~"app_.*"}'
  resources: {overrides: {pod: {resource: pod}, namespace: {resource: namespace}}}
  name: {matches: "^(.*)_total$"}
- seriesQuery: '{__name__=~"broken_.*"}'
  resources: {template: "<<.Resource>>"}
externalRules:
- seriesQuery: '{__name__=~"queue_.*"}'
`))
	if err != nil {
		t.Fatal(err)
	}
	custom, ext, err := rules.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	client, err := prom.New(prom.Options{URL: srv.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	mapper := apimeta.NewDefaultRESTMapper(nil)
	mapper.Add(schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, apimeta.RESTScopeNamespace)
	mapper.Add(schema.GroupVersionKind{Version: "v1", Kind: "Namespace"}, apimeta.RESTScopeRoot)
	catalog.New(custom, ext, catalog.Single(client), mapper, time.Hour).Refresh(ctx)

	// The query engine: answers, a cached one, a failure, and more
	// answers than its cache holds.
	eng := query.New(backendFunc(func(_ context.Context, q string) (model.Vector, error) {
		if q == "fail" {
			return nil, &prom.Error{Backend: "test", Op: "query", Err: &prom.KindError{Kind: prom.Timeout, Err: context.DeadlineExceeded}}
		}
		return model.Vector{{Value: 1, Timestamp: model.Now()}}, nil
	}), query.Options{Backend: "test", TTL: time.Minute, MaxCacheBytes: 4000})
	for _, q := range []string{"ok", "ok", "fail", "ok1", "ok2", "ok3", "ok4", "ok5", "ok6", "ok7", "ok8", "ok9"} {
		vec, err := eng.Query(ctx, q, time.Now())
		provider.ObserveAnswer(provider.CustomAPI, "requests", time.Now(), vec, err)
	}
	provider.ObserveAnswer(provider.ExternalAPI, "queue_depth", time.Now(), model.Vector{}, nil)

	// Auto cache lifetimes: a metric scraped every 15s, learned.
	auto := query.New(samplesBackend{}, query.Options{Backend: "test", Auto: true, TTL: 5 * time.Second})
	for i := 0; i < 50; i++ {
		if _, err := auto.Query(ctx, `sum(rate(app_requests_total[1m]))`, time.Now()); err != nil {
			t.Fatal(err)
		}
		if d, _ := auto.Learned("app_requests_total"); d > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := auto.Query(ctx, `max(app_requests_total)`, time.Now()); err != nil {
		t.Fatal(err)
	}

	// k8s.io/apiserver's request metrics, as the custom metrics installer
	// records them.
	apiservermetrics.Register()
	req := httptest.NewRequest(http.MethodGet, "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns1/pods/%2A/requests", nil)
	apiservermetrics.MonitorRequest(req, "LIST", "custom.metrics.k8s.io", "v1beta2", "pods", "", "namespace", "custom-metrics", false, "", http.StatusOK, 100, 10*time.Millisecond)

	mfs, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return mfs
}

// samplesBackend is a metric scraped every 15s by one target: the answers
// to the engine's probes.
type samplesBackend struct{}

func (samplesBackend) Query(_ context.Context, q string, ts time.Time) (model.Vector, error) {
	last := model.TimeFromUnixNano(ts.Truncate(15 * time.Second).UnixNano())
	if strings.HasPrefix(q, "topk(") {
		return model.Vector{{Metric: model.Metric{"pod": "a"}, Value: model.SampleValue(float64(last) / 1000), Timestamp: model.TimeFromUnixNano(ts.UnixNano())}}, nil
	}
	return model.Vector{{Value: 1, Timestamp: model.TimeFromUnixNano(ts.UnixNano())}}, nil
}

func (samplesBackend) QuerySamples(_ context.Context, _ string, ts time.Time) (model.Matrix, error) {
	last := model.TimeFromUnixNano(ts.Truncate(15 * time.Second).UnixNano())
	ss := &model.SampleStream{Metric: model.Metric{"__name__": "app_requests_total", "pod": "a"}}
	for i := 8; i >= 0; i-- {
		ss.Values = append(ss.Values, model.SamplePair{Timestamp: last.Add(-time.Duration(i) * 15 * time.Second), Value: 1})
	}
	return model.Matrix{ss}, nil
}

type backendFunc func(ctx context.Context, q string) (model.Vector, error)

func (f backendFunc) Query(ctx context.Context, q string, _ time.Time) (model.Vector, error) {
	return f(ctx, q)
}

// promgateFamilies are the self-metrics promgate defines; the others
// (k8s.io/apiserver, client-go, Go runtime) are their projects' to lint.
func promgateFamilies(mfs []*dto.MetricFamily) []*dto.MetricFamily {
	var out []*dto.MetricFamily
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "promgate_") {
			out = append(out, mf)
		}
	}
	return out
}

func TestSelfMetricsLint(t *testing.T) {
	mfs := promgateFamilies(exported(t))
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	for _, want := range []string{
		"promgate_discovery_series", "promgate_discovery_series_dropped", "promgate_discovery_metrics",
		"promgate_discovery_rule_duration_seconds", "promgate_discovery_rule_failing",
		"promgate_discovery_rule_method", "promgate_discovery_rule_requests",
		"promgate_discovery_rule_last_success_timestamp_seconds", "promgate_discovery_errors_total",
		"promgate_discovery_duration_seconds", "promgate_discovery_last_timestamp_seconds",
		"promgate_queries_total", "promgate_backend_query_duration_seconds", "promgate_backend_queries_in_flight",
		"promgate_memory_budget_bytes", "promgate_memory_budget_entries", "promgate_memory_budget_limit_bytes",
		"promgate_query_cache_lifetime_seconds", "promgate_query_scrape_interval_seconds", "promgate_query_scrape_probes_total",
		"promgate_backend_errors_total", "promgate_metric_answers_total",
		"promgate_served_sample_age_seconds", "promgate_served_newest_sample_timestamp_seconds",
	} {
		if !slices.Contains(names, want) {
			t.Errorf("%s not exported; have %v", want, names)
		}
	}

	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}

	var text bytes.Buffer
	enc := expfmt.NewEncoder(&text, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	promtool := promtoolPath()
	if promtool == "" {
		t.Skip("promtool not found (run make tools, or set PROMTOOL); promlint passed")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = &text
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

func promtoolPath() string {
	if p := os.Getenv("PROMTOOL"); p != "" {
		return p
	}
	p, _ := filepath.Abs(filepath.Join(root, ".cache/bin/promtool"))
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	return ""
}

// known maps each metric name the dashboard and alerts may select to the
// labels it has (job and instance are Prometheus' target labels).
func known(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for name, labels := range external {
		out[name] = labels
	}
	for _, mf := range exported(t) {
		var labels []string
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if !slices.Contains(labels, lp.GetName()) {
					labels = append(labels, lp.GetName())
				}
			}
		}
		name := mf.GetName()
		switch mf.GetType() {
		case dto.MetricType_HISTOGRAM:
			out[name+"_bucket"] = append(slices.Clone(labels), "le")
			out[name+"_sum"] = labels
			out[name+"_count"] = labels
		case dto.MetricType_SUMMARY:
			out[name] = append(slices.Clone(labels), "quantile")
			out[name+"_sum"] = labels
			out[name+"_count"] = labels
		default:
			out[name] = labels
		}
	}
	return out
}

// grafanaVars replaces the dashboard's variables by values PromQL parses.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "${job}", "promgate", "$job", "promgate")

// promParser knows the stable functions only: the dashboard and alerts
// must work on any Prometheus 2 or 3.
var promParser = parser.NewParser(parser.Options{})

// checkExpr parses expr and checks each selector against the known
// metrics and their labels.
func checkExpr(expr string, metrics map[string][]string) error {
	e, err := promParser.ParseExpr(grafanaVars.Replace(expr))
	if err != nil {
		return err
	}
	var errs []error
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		labels, ok := metrics[vs.Name]
		if !ok {
			errs = append(errs, fmt.Errorf("%q is not a metric promgate or kube-apiserver exports", vs.Name))
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Name != model.MetricNameLabel && m.Name != "job" && m.Name != "instance" && !slices.Contains(labels, m.Name) {
				errs = append(errs, fmt.Errorf("%s has no label %q (it has %v)", vs.Name, m.Name, labels))
			}
		}
		return nil
	})
	return errors.Join(errs...)
}

type panel struct {
	ID          int    `json:"id"`
	Type        string `json:"type"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Targets     []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

func TestDashboard(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "deploy/monitoring/promgate-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string  `json:"title"`
		UID    string  `json:"uid"`
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if dash.Title == "" || dash.UID == "" {
		t.Error("dashboard without title or uid")
	}
	metrics := known(t)
	ids := map[int]bool{}
	exprs := 0
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("panel %q: id %d used twice", p.Title, p.ID)
			}
			ids[p.ID] = true
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if p.Title == "" || p.Description == "" || len(p.Targets) == 0 {
				t.Errorf("panel %d %q: needs a title, a description and a query", p.ID, p.Title)
			}
			for _, tg := range p.Targets {
				exprs++
				if err := checkExpr(tg.Expr, metrics); err != nil {
					t.Errorf("panel %q: %s: %v", p.Title, tg.Expr, err)
				}
			}
		}
	}
	walk(dash.Panels)
	if exprs < 20 {
		t.Errorf("only %d queries in the dashboard", exprs)
	}
}

func TestAlertRules(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(root, "deploy/monitoring/promgate-alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(data, &file); err != nil {
		// Strict about structure only; unknown keys of Prometheus' rule
		// format (for, labels, ...) are fine.
		if err := yaml.Unmarshal(data, &file); err != nil {
			t.Fatal(err)
		}
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs/operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	anchors := headingAnchors(string(doc))
	metrics := known(t)
	var alerts []string
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if err := checkExpr(r.Expr, metrics); err != nil {
				t.Errorf("%s: %v", r.Alert, err)
			}
			url := r.Annotations["runbook_url"]
			const prefix = "https://github.com/promgate/promgate/blob/main/docs/operations.md#"
			if !strings.HasPrefix(url, prefix) || !anchors[strings.TrimPrefix(url, prefix)] {
				t.Errorf("%s: runbook_url %q is not a section of docs/operations.md", r.Alert, url)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: needs a summary and a description", r.Alert)
			}
		}
	}
	want := []string{"PromgateDown", "PromgateDiscoveryFailing", "PromgateBackendErrors", "PromgateStaleData", "PromgateAPIServiceUnavailable"}
	if !slices.Equal(alerts, want) {
		t.Errorf("alerts = %v, want %v", alerts, want)
	}
}

// headingAnchors returns the anchors GitHub gives a Markdown file's
// headings: lower case, punctuation dropped, spaces as hyphens.
func headingAnchors(md string) map[string]bool {
	out := map[string]bool{}
	drop := regexp.MustCompile(`[^\p{L}\p{N} _-]`)
	for _, line := range strings.Split(md, "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(line, "#"))
		out[strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(h), ""), " ", "-")] = true
	}
	return out
}

//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// severalBackendsConfig is a configuration naming four backends besides the
// flag-configured default (the world's Prometheus): the Thanos querier, the
// tenancy-enforcing querier as tenant team-b, VictoriaMetrics under its
// /prometheus prefix with a MetricsQL rule, and a proxy to Prometheus that
// the test takes away. Each rule reads one of them under its own name.
const severalBackendsConfig = `backends:
  - name: thanos
    url: %[1]s
  - name: team-b
    url: %[2]s
    http:
      http_headers:
        %[3]s: {values: [team-b]}
  - name: vm
    url: %[4]s/prometheus
    dialect: metricsql
  - name: flaky
    url: %[5]s
    timeout: 5s

rules:
  - seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
    resources:
      overrides: {namespace: {resource: namespace}, pod: {resource: pod}}
    name: {matches: "^http_requests_total$", as: "http_requests_per_second"}
    metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)'
  - seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
    backend: thanos
    resources:
      overrides: {namespace: {resource: namespace}, pod: {resource: pod}}
    name: {matches: "^http_requests_total$", as: "thanos_requests_per_second"}
    metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)'
  # MetricsQL: keep_metric_names is not PromQL.
  - seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
    backend: vm
    resources:
      overrides: {namespace: {resource: namespace}, pod: {resource: pod}}
    name: {matches: "^http_requests_total$", as: "vm_requests_per_second"}
    metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m]) keep_metric_names) by (<<.GroupBy>>)'
  - seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
    backend: flaky
    resources:
      overrides: {namespace: {resource: namespace}, pod: {resource: pod}}
    name: {matches: "^http_requests_total$", as: "flaky_requests_per_second"}
    metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)'

externalRules:
  - seriesQuery: '{__name__="queue_messages_ready",namespace!=""}'
    backend: team-b
    resources:
      overrides: {namespace: {resource: namespace}}
    name: {matches: "^queue_messages_ready$", as: "team_b_queue_messages_ready"}
    metricsQuery: '<<.Series>>{<<.LabelMatchers>>}'
  - seriesQuery: '{__name__="queue_messages_ready",namespace!=""}'
    backend: vm
    resources:
      overrides: {namespace: {resource: namespace}}
    name: {matches: "^queue_messages_ready$", as: "vm_queue_messages_ready"}
    metricsQuery: '<<.Series>>{<<.LabelMatchers>>}'

resourceRules:
  backend: thanos
  cpu:
    containerQuery: 'sum by (<<.GroupBy>>) (rate(container_cpu_usage_seconds_total{<<.LabelMatchers>>,container!="",container!="POD",pod!=""}[1m]))'
    nodeQuery: 'sum by (<<.GroupBy>>) (rate(container_cpu_usage_seconds_total{<<.LabelMatchers>>,id="/"}[1m]))'
    resources:
      overrides: {node: {resource: node}, namespace: {resource: namespace}, pod: {resource: pod}}
    containerLabel: container
  memory:
    containerQuery: 'sum by (<<.GroupBy>>) (container_memory_working_set_bytes{<<.LabelMatchers>>,container!="",container!="POD",pod!=""})'
    nodeQuery: 'sum by (<<.GroupBy>>) (container_memory_working_set_bytes{<<.LabelMatchers>>,id="/"})'
    resources:
      overrides: {node: {resource: node}, namespace: {resource: namespace}, pod: {resource: pod}}
    containerLabel: container
  window: 1m
`

// TestSeveralBackends runs one promgate over five backends, each rule on
// its own: every metric has its backend's values (Thanos' equal to
// Prometheus', VictoriaMetrics' from a MetricsQL rule, team-b's only from
// team-b's series, resource metrics from Thanos); then one backend goes
// away and only its metric fails, with a 503 naming it, while the others
// keep answering; when it is back, so is its metric.
func TestSeveralBackends(t *testing.T) {
	t.Parallel()
	RequireExporter(t)
	thanosURL := backend(t, "THANOS_URL")
	tenancyURL := backend(t, "THANOS_TENANCY_URL")
	vmURL := backend(t, "VM_URL")

	// flaky: a reverse proxy to the world's Prometheus, which the test
	// turns off (every request is refused with a closed connection) and on.
	promURL, err := url.Parse(world.Env["PROMETHEUS_URL"])
	if err != nil || promURL.Host == "" {
		t.Fatalf("PROMETHEUS_URL %q in the world's env file: %v", world.Env["PROMETHEUS_URL"], err)
	}
	var down atomic.Bool
	proxy := httputil.NewSingleHostReverseProxy(promURL)
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
					return
				}
			}
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(flaky.Close)

	ns := CreateNamespace(t, "multi")
	Apply(t, KwokDeployment{Namespace: ns, Name: "web", Replicas: 2, PodAnnotations: map[string]string{
		"e2e.promgate.io/rps": "4", "e2e.promgate.io/cpu": "150m", "e2e.promgate.io/memory": "96Mi",
	}}.YAML())
	pods := WaitForPodsRunning(t, ns, "app=web", 2, 90*time.Second)
	exporterControl(t, "/control/queue", map[string]string{"namespace": ns, "queue": "jobs", "value": "5"})

	cfg := filepath.Join(t.TempDir(), "promgate.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(severalBackendsConfig,
		thanosURL, tenancyURL, world.Env["THANOS_TENANT_HEADER"], vmURL, flaky.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	pg := startPromgate(t, "multi", append([]string{
		"--cert-dir=" + filepath.Join(t.TempDir(), "cert"),
		"--prometheus-url=" + world.Env["PROMETHEUS_URL"],
		"--config=" + cfg,
		"--metrics-relist-interval=5s",
		"--discovery-interval=5s",
		"--query-cache-ttl=0",
	}, worldArgs()...)...)

	custom := func(metric string) string {
		return fmt.Sprintf("/apis/custom.metrics.k8s.io/v1beta2/namespaces/%s/pods/*/%s", ns, metric)
	}
	perPod := map[string]float64{pods[0]: 4, pods[1]: 4}
	customMetrics := []string{"http_requests_per_second", "thanos_requests_per_second", "vm_requests_per_second", "flaky_requests_per_second"}
	externalVM := fmt.Sprintf("/apis/external.metrics.k8s.io/v1beta1/namespaces/%s/vm_queue_messages_ready", ns)
	// team-b's copy of this namespace's queue, and team-a's (none).
	externalTeamB := fmt.Sprintf("/apis/external.metrics.k8s.io/v1beta1/namespaces/%s/team_b_queue_messages_ready", teamBPrefix+ns)
	externalTeamA := fmt.Sprintf("/apis/external.metrics.k8s.io/v1beta1/namespaces/%s/team_b_queue_messages_ready", ns)
	resourcePath := "/apis/metrics.k8s.io/v1beta1/namespaces/" + ns + "/pods"

	t.Run("each rule reads its backend", func(t *testing.T) {
		for _, m := range customMetrics {
			waitStandaloneValues(t, pg, custom(m), perPod)
		}
		waitStandaloneValues(t, pg, externalVM, map[string]float64{"jobs": 5})
		l := waitStandaloneValues(t, pg, externalTeamB, map[string]float64{"jobs": 5})
		if got := l.Items[0].MetricLabels["tenant_id"]; got != "team-b" {
			t.Errorf("team_b_queue_messages_ready: tenant_id %q, want team-b", got)
		}
		code, body, err := pg.get(externalTeamA)
		var none metricValueList
		if err != nil || code != http.StatusOK || decodeJSON(body, &none) != nil || len(none.Items) != 0 {
			t.Errorf("team-b's backend asked for team-a's namespace %s: HTTP %d %v %s, want an empty list", ns, code, err, truncate(body, 300))
		}
		waitResource(t, pg, resourcePath, map[string][2]float64{pods[0]: {0.150, 96 << 20}, pods[1]: {0.150, 96 << 20}})
	})

	t.Run("one backend away: only its metric fails, with a 503 naming it", func(t *testing.T) {
		down.Store(true)
		defer down.Store(false)
		var last string
		err := Poll(30*time.Second, func() (bool, error) {
			code, body, err := pg.get(custom("flaky_requests_per_second"))
			last = fmt.Sprintf("HTTP %d %v: %s", code, err, truncate(body, 400))
			s := decodeStatus(body)
			return err == nil && code == http.StatusServiceUnavailable && strings.Contains(s.Message, "backend flaky"), nil
		})
		if err != nil {
			t.Fatalf("flaky_requests_per_second with its backend down: want a 503 naming backend flaky; last answer %s", last)
		}
		t.Logf("with flaky down: %s", last)
		// The others answer as before, several times over while flaky's
		// discovery fails in the background.
		for round := 0; round < 3; round++ {
			for _, m := range customMetrics[:3] {
				waitStandaloneValues(t, pg, custom(m), perPod)
			}
			waitStandaloneValues(t, pg, externalVM, map[string]float64{"jobs": 5})
			waitStandaloneValues(t, pg, externalTeamB, map[string]float64{"jobs": 5})
			waitResource(t, pg, resourcePath, map[string][2]float64{pods[0]: {0.150, 96 << 20}, pods[1]: {0.150, 96 << 20}})
			time.Sleep(5 * time.Second) // a discovery round
		}
		_, metrics, err := pg.get("/metrics")
		if line := `promgate_discovery_rule_failing{rule="rules[3]"} 1`; err != nil || !strings.Contains(metrics, line) {
			t.Errorf("promgate's /metrics lacks %q (%v)", line, err)
		}
		for _, rule := range []string{"rules[0]", "rules[1]", "rules[2]", "externalRules[0]", "externalRules[1]"} {
			if line := fmt.Sprintf("promgate_discovery_rule_failing{rule=%q} 1", rule); strings.Contains(metrics, line) {
				t.Errorf("promgate's /metrics has %q: a rule of another backend fails too", line)
			}
		}
	})

	t.Run("the backend back: its metric answers again", func(t *testing.T) {
		waitStandaloneValues(t, pg, custom("flaky_requests_per_second"), perPod)
	})
}

// waitResource polls a metrics.k8s.io PodMetrics list on a standalone
// promgate until it holds exactly the wanted pods, each with its containers'
// CPU (cores) and memory (bytes) within rateTolerance.
func waitResource(t *testing.T, pg *standalone, path string, want map[string][2]float64) {
	t.Helper()
	var last string
	err := Poll(150*time.Second, func() (bool, error) {
		code, body, err := pg.get(path)
		last = fmt.Sprintf("HTTP %d %v: %s", code, err, truncate(body, 400))
		if err != nil || code != http.StatusOK {
			return false, nil
		}
		var l podMetricsList
		if json.Unmarshal([]byte(body), &l) != nil || len(l.Items) != len(want) {
			return false, nil
		}
		for _, it := range l.Items {
			w, ok := want[it.Metadata.Name]
			if !ok {
				return false, nil
			}
			var cpu, mem float64
			for _, c := range it.Containers {
				for res, sum := range map[string]*float64{"cpu": &cpu, "memory": &mem} {
					q, err := resource.ParseQuantity(c.Usage[res])
					if err != nil {
						return false, fmt.Errorf("pod %s container %s %s %q: %v", it.Metadata.Name, c.Name, res, c.Usage[res], err)
					}
					*sum += q.AsApproximateFloat64()
				}
			}
			if !near(cpu, w[0]) || !near(mem, w[1]) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("%s: want %v (cpu, memory) within %.0f%%: %v; last answer %s", path, want, rateTolerance*100, err, last)
	}
}

// TestBackendsResourceMetrics reads metrics.k8s.io (pods and nodes)
// through a promgate per scale-out backend: VictoriaMetrics and the
// tenancy-enforcing Thanos querier as tenant team-a (whose series are the
// world's Prometheus'). The custom and external APIs on each backend are
// covered by TestSeveralBackends, TestThanosTenancy and
// TestVictoriaMetricsPathPrefix; make e2e-backends runs the whole core,
// HPAs included, on each.
func TestBackendsResourceMetrics(t *testing.T) {
	t.Parallel()
	RequireExporter(t)
	backends := []struct {
		name, url string
		extra     []string
	}{
		{"vm", backend(t, "VM_URL") + "/prometheus", nil},
		{"thanos-team-a", backend(t, "THANOS_TENANCY_URL"), []string{"--prometheus-header=" + world.Env["THANOS_TENANT_HEADER"] + "=team-a"}},
	}
	ns := CreateNamespace(t, "backend-res")
	Apply(t, KwokDeployment{Namespace: ns, Name: "db", Replicas: 1, PodAnnotations: map[string]string{
		"e2e.promgate.io/cpu": "300m", "e2e.promgate.io/memory": "200Mi",
	}}.YAML())
	pods := WaitForPodsRunning(t, ns, "app=db", 1, 90*time.Second)
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			pg := backendPromgate(t, "res-"+b.name, b.url, b.extra...)
			waitResource(t, pg, "/apis/metrics.k8s.io/v1beta1/namespaces/"+ns+"/pods", map[string][2]float64{pods[0]: {0.300, 200 << 20}})
			var last string
			err := Poll(60*time.Second, func() (bool, error) {
				code, body, err := pg.get("/apis/metrics.k8s.io/v1beta1/nodes/kwok-node-0")
				last = fmt.Sprintf("HTTP %d %v: %s", code, err, truncate(body, 400))
				var n struct{ Usage map[string]string }
				if err != nil || code != http.StatusOK || json.Unmarshal([]byte(body), &n) != nil {
					return false, nil
				}
				cpu, err1 := resource.ParseQuantity(n.Usage["cpu"])
				mem, err2 := resource.ParseQuantity(n.Usage["memory"])
				return err1 == nil && err2 == nil && near(cpu.AsApproximateFloat64(), 1.5) && near(mem.AsApproximateFloat64(), 3<<30), nil
			})
			if err != nil {
				t.Errorf("node kwok-node-0 through %s: want 1.5 cores and 3Gi (the root cgroup); last answer %s", b.name, last)
			}
		})
	}
}

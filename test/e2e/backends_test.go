//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The scale-out backends of the world (hack/world.sh): Thanos (a querier
// over the world's Prometheus and a store gateway, and a querier enforcing
// tenancy over two Prometheus servers, tenants team-a and team-b) and
// VictoriaMetrics single node. These tests run in any world that has them;
// make e2e-backends runs the suite's core with promgate reading each.

// teamBPrefix is what prometheus-b's relabelling puts before every
// namespace: team-b's copy of namespace N is "team-b-N".
const teamBPrefix = "team-b-"

// backend names a backend URL of the world's env file, skipping the test
// when the world runs no scale-out backends.
func backend(t *testing.T, key string) string {
	t.Helper()
	if world.Env["E2E_BACKENDS_RUNNING"] != "1" {
		t.Skip("this world runs no Thanos or VictoriaMetrics (E2E_BACKENDS=0, or the binaries are missing)")
	}
	u := world.Env[key]
	if u == "" {
		t.Fatalf("%s missing from the world's env file", key)
	}
	return u
}

// apiQuery runs an instant query against a Prometheus-compatible API with
// the given headers and returns the vector and the answer's warnings.
func apiQuery(base, query string, header http.Header) ([]PromSample, []string, error) {
	var body struct {
		Status   string
		Error    string
		Warnings []string
		Data     struct {
			ResultType string
			Result     []struct {
				Metric map[string]string
				Value  [2]json.RawMessage
			}
		}
	}
	if err := apiGet(base+"/api/v1/query?"+url.Values{"query": {query}}.Encode(), header, &body); err != nil {
		return nil, nil, err
	}
	if body.Status != "success" || body.Data.ResultType != "vector" {
		return nil, nil, fmt.Errorf("query %q: status %q, result type %q: %s", query, body.Status, body.Data.ResultType, body.Error)
	}
	out := make([]PromSample, 0, len(body.Data.Result))
	for _, r := range body.Data.Result {
		var vs string
		if err := json.Unmarshal(r.Value[1], &vs); err != nil {
			return nil, nil, err
		}
		var f float64
		if _, err := fmt.Sscan(vs, &f); err != nil {
			return nil, nil, err
		}
		out = append(out, PromSample{Metric: r.Metric, Value: f})
	}
	return out, body.Warnings, nil
}

// apiSeries returns the label sets /api/v1/series answers for match.
func apiSeries(base, match string, header http.Header) ([]map[string]string, error) {
	var body struct {
		Status string
		Error  string
		Data   []map[string]string
	}
	if err := apiGet(base+"/api/v1/series?"+url.Values{"match[]": {match}}.Encode(), header, &body); err != nil {
		return nil, err
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("series %q: status %q: %s", match, body.Status, body.Error)
	}
	return body.Data, nil
}

func apiGet(u string, header http.Header, v any) error {
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header = header
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: HTTP %d: %w: %s", u, resp.StatusCode, err, truncate(string(b), 300))
	}
	return nil
}

func tenantHeader(tenant string) http.Header {
	h := http.Header{}
	if tenant != "" {
		h.Set(world.Env["THANOS_TENANT_HEADER"], tenant)
	}
	return h
}

// backendPromgate starts a standalone promgate with the world's rules
// (config/promgate.yaml) reading the given backend URL, with the extra
// flags.
func backendPromgate(t *testing.T, name, backendURL string, extra ...string) *standalone {
	t.Helper()
	args := append([]string{
		"--cert-dir=" + filepath.Join(t.TempDir(), "cert"),
		"--prometheus-url=" + backendURL,
		"--config=" + filepath.Join(world.Root, "config", "promgate.yaml"),
		"--metrics-relist-interval=5s",
		"--discovery-interval=5s",
	}, extra...)
	return startPromgate(t, name, append(args, worldArgs()...)...)
}

// status is the metav1.Status of an error answer.
type status struct {
	Code    int
	Reason  string
	Message string
}

func decodeStatus(body string) status {
	var s status
	_ = json.Unmarshal([]byte(body), &s)
	return s
}

// waitStandaloneValues polls path on a standalone promgate until its list
// holds exactly the wanted objects (named as waitValues names them), each
// within rateTolerance of its value.
func waitStandaloneValues(t *testing.T, pg *standalone, path string, want map[string]float64) metricValueList {
	t.Helper()
	var last string
	var l metricValueList
	err := Poll(150*time.Second, func() (bool, error) {
		code, body, err := pg.get(path)
		last = fmt.Sprintf("HTTP %d %v: %s", code, err, truncate(body, 400))
		if err != nil || code != http.StatusOK {
			return false, nil
		}
		l = metricValueList{}
		if decodeJSON(body, &l) != nil {
			return false, nil
		}
		if len(l.Items) != len(want) {
			return false, nil
		}
		for _, it := range l.Items {
			name := it.DescribedObject.Name
			if name == "" {
				name = it.MetricLabels["queue"]
			}
			w, ok := want[name]
			if !ok || !near(parseQuantity(t, it.Value), w) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("%s: want %v within %.0f%%; last answer %s", path, want, rateTolerance*100, last)
	}
	return l
}

// waitStandaloneValue polls a single-object path (custom.metrics.k8s.io
// .../<resource>/<name>/<metric>, answered with a list of that one object)
// until its value is within rateTolerance of want, and returns it.
func waitStandaloneValue(t *testing.T, pg *standalone, path string, want float64) float64 {
	t.Helper()
	var last string
	var got float64
	err := Poll(150*time.Second, func() (bool, error) {
		code, body, err := pg.get(path)
		last = fmt.Sprintf("HTTP %d %v: %s", code, err, truncate(body, 400))
		if err != nil || code != http.StatusOK {
			return false, nil
		}
		var l metricValueList
		if decodeJSON(body, &l) != nil || len(l.Items) != 1 {
			return false, nil
		}
		got = parseQuantity(t, l.Items[0].Value)
		return near(got, want), nil
	})
	if err != nil {
		t.Fatalf("%s: want %v within %.0f%%; last answer %s", path, want, rateTolerance*100, last)
	}
	return got
}

// TestThanosTenancy reads the querier that enforces tenancy (header
// THANOS-TENANT, label tenant_id) over team-a's Prometheus (the world's)
// and team-b's (the same exporter, namespaces prefixed team-b-): each
// tenant sees only its own series, directly and through a promgate that
// sends the tenant's header.
func TestThanosTenancy(t *testing.T) {
	t.Parallel()
	RequireExporter(t)
	tenancyURL := backend(t, "THANOS_TENANCY_URL")
	ns := CreateNamespace(t, "tenancy")
	Apply(t, KwokDeployment{Namespace: ns, Name: "web", Replicas: 2, PodAnnotations: map[string]string{"e2e.promgate.io/rps": "3"}}.YAML())
	pods := WaitForPodsRunning(t, ns, "app=web", 2, 90*time.Second)
	exporterControl(t, "/control/queue", map[string]string{"namespace": ns, "queue": "jobs", "value": "7"})

	// own: the namespace under which a tenant has this test's series.
	tenants := []struct{ tenant, own, other, otherTenant string }{
		{"team-a", ns, teamBPrefix + ns, "team-b"},
		{"team-b", teamBPrefix + ns, ns, "team-a"},
	}
	for _, tc := range tenants {
		WaitFor(t, 60*time.Second, tc.tenant+"'s series of "+tc.own+" through the querier", func() (bool, error) {
			v, _, err := apiQuery(tenancyURL, fmt.Sprintf(`http_requests_total{namespace=%q}`, tc.own), tenantHeader(tc.tenant))
			return err == nil && len(v) == 4, err // 2 pods x 2 codes
		})
	}

	t.Run("the querier answers each tenant with its own series only", func(t *testing.T) {
		for _, tc := range tenants {
			h := tenantHeader(tc.tenant)
			v, _, err := apiQuery(tenancyURL, `count by (namespace, tenant_id) ({__name__=~"http_requests_total|queue_messages_ready|container_cpu_usage_seconds_total", namespace!=""})`, h)
			if err != nil {
				t.Fatal(err)
			}
			seen := false
			for _, s := range v {
				nsLabel := s.Metric["namespace"]
				if s.Metric["tenant_id"] != tc.tenant || strings.HasPrefix(nsLabel, teamBPrefix) != (tc.tenant == "team-b") {
					t.Errorf("tenant %s sees series of tenant_id=%q namespace=%q", tc.tenant, s.Metric["tenant_id"], nsLabel)
				}
				seen = seen || nsLabel == tc.own
			}
			if !seen {
				t.Errorf("tenant %s: namespace %s missing from %d namespaces", tc.tenant, tc.own, len(v))
			}
			// Asking for the other tenant's namespace gives nothing.
			for _, q := range []string{
				fmt.Sprintf(`http_requests_total{namespace=%q}`, tc.other),
				fmt.Sprintf(`queue_messages_ready{namespace=%q}`, tc.other),
			} {
				if v, _, err := apiQuery(tenancyURL, q, h); err != nil || len(v) != 0 {
					t.Errorf("tenant %s: %s = %d series (%v), want none", tc.tenant, q, len(v), err)
				}
			}
			// Asking for the other tenant by its label: the querier replaces
			// the query's tenant matcher with the header's tenant, so the
			// answer is the asking tenant's own series.
			for _, m := range []string{fmt.Sprintf("%q", tc.otherTenant), `~"team-.*"`} {
				q := fmt.Sprintf(`count by (namespace, tenant_id) (http_requests_total{tenant_id=%s})`, m)
				v, _, err := apiQuery(tenancyURL, q, h)
				if err != nil || len(v) == 0 {
					t.Errorf("tenant %s: %s = %d series (%v), want its own", tc.tenant, q, len(v), err)
				}
				for _, s := range v {
					if s.Metric["tenant_id"] != tc.tenant || strings.HasPrefix(s.Metric["namespace"], teamBPrefix) != (tc.tenant == "team-b") {
						t.Errorf("tenant %s: %s has tenant_id=%q namespace=%q", tc.tenant, q, s.Metric["tenant_id"], s.Metric["namespace"])
					}
				}
			}
			// Series discovery (what promgate lists) is filtered too.
			series, err := apiSeries(tenancyURL, "http_requests_total", h)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range series {
				if s["tenant_id"] != tc.tenant || strings.HasPrefix(s["namespace"], teamBPrefix) != (tc.tenant == "team-b") {
					t.Errorf("tenant %s: /api/v1/series lists %v", tc.tenant, s)
					break
				}
			}
		}
		// Without the header the querier's default tenant has no data.
		if v, _, err := apiQuery(tenancyURL, "count(http_requests_total)", tenantHeader("")); err != nil || len(v) != 0 {
			t.Errorf("no tenant header: count(http_requests_total) = %+v (%v), want no series", v, err)
		}
	})

	t.Run("a promgate with a tenant's header serves that tenant's metrics only", func(t *testing.T) {
		for _, tc := range tenants {
			t.Run(tc.tenant, func(t *testing.T) {
				t.Parallel()
				pg := backendPromgate(t, "tenancy-"+tc.tenant, tenancyURL,
					"--prometheus-header="+world.Env["THANOS_TENANT_HEADER"]+"="+tc.tenant)
				ext := "/apis/external.metrics.k8s.io/v1beta1/namespaces/%s/queue_messages_ready"
				l := waitStandaloneValues(t, pg, fmt.Sprintf(ext, tc.own), map[string]float64{"jobs": 7})
				if got := l.Items[0].MetricLabels["tenant_id"]; got != tc.tenant {
					t.Errorf("external metric of %s: tenant_id %q, want %q", tc.own, got, tc.tenant)
				}
				code, body, err := pg.get(fmt.Sprintf(ext, tc.other))
				var other metricValueList
				if err != nil || code != http.StatusOK || decodeJSON(body, &other) != nil || len(other.Items) != 0 {
					t.Errorf("external metric of the other tenant's %s: HTTP %d %v %s, want an empty list", tc.other, code, err, truncate(body, 300))
				}

				custom := "/apis/custom.metrics.k8s.io/v1beta2/namespaces/%s/%s/http_requests_per_second"
				waitStandaloneValue(t, pg, fmt.Sprintf(custom, tc.own, "pods/"+pods[0]), 3)
				waitStandaloneValue(t, pg, fmt.Sprintf(custom, tc.own, "metrics"), 6)
				for _, obj := range []string{"pods/" + pods[0], "metrics"} {
					code, body, err := pg.get(fmt.Sprintf(custom, tc.other, obj))
					if err != nil || code != http.StatusNotFound {
						t.Errorf("custom metric of the other tenant's %s/%s: HTTP %d %v %s, want 404", tc.other, obj, code, err, truncate(body, 300))
					}
				}
				// The Kubernetes namespace's pods, listed from the cluster: team-a
				// has their values, team-b has none.
				want := map[string]float64{}
				if tc.tenant == "team-a" {
					want = map[string]float64{pods[0]: 3, pods[1]: 3}
				}
				waitStandaloneValues(t, pg, fmt.Sprintf(custom, ns, "pods/*"), want)
			})
		}
	})
}

// TestThanosPartialResponse stops the querier's store gateway: its answers
// become partial (the store's data is missing, Thanos says so in warnings),
// which promgate turns into a 503 naming the backend and the kind, unless
// it runs with --prometheus-allow-partial-response; after the store is
// back, the values are served again.
func TestThanosPartialResponse(t *testing.T) {
	t.Parallel()
	RequireExporter(t)
	thanosURL := backend(t, "THANOS_URL")
	if world.Env["E2E_BACKEND"] == "thanos" {
		t.Skip("the world's promgate reads the querier whose store this test stops")
	}
	ns := CreateNamespace(t, "partial")
	Apply(t, KwokDeployment{Namespace: ns, Name: "web", Replicas: 1, PodAnnotations: map[string]string{"e2e.promgate.io/rps": "4"}}.YAML())
	pods := WaitForPodsRunning(t, ns, "app=web", 1, 90*time.Second)
	exporterControl(t, "/control/queue", map[string]string{"namespace": ns, "queue": "jobs", "value": "9"})

	// No query cache: each request is a query of the querier as it is now.
	strict := backendPromgate(t, "partial", thanosURL, "--query-cache-ttl=0")
	lenient := backendPromgate(t, "partial-allowed", thanosURL, "--query-cache-ttl=0", "--prometheus-allow-partial-response")
	custom := fmt.Sprintf("/apis/custom.metrics.k8s.io/v1beta2/namespaces/%s/pods/%s/http_requests_per_second", ns, pods[0])
	external := fmt.Sprintf("/apis/external.metrics.k8s.io/v1beta1/namespaces/%s/queue_messages_ready", ns)
	for _, pg := range []*standalone{strict, lenient} {
		waitStandaloneValue(t, pg, custom, 4)
		waitStandaloneValues(t, pg, external, map[string]float64{"jobs": 9})
	}
	if _, warnings, err := apiQuery(thanosURL, "up", nil); err != nil || len(warnings) != 0 {
		t.Fatalf("the querier's answer before the store stops: warnings %q, error %v; want none", warnings, err)
	}

	revived := false
	worldSh(t, "kill", "thanos-store", "KILL")
	t.Cleanup(func() {
		if !revived {
			worldSh(t, "revive", "thanos-store")
		}
	})
	stopped := time.Now()
	if _, warnings, err := apiQuery(thanosURL, "up", nil); err != nil || len(warnings) == 0 {
		t.Errorf("the querier's answer with the store down: warnings %q, error %v; want a warning", warnings, err)
	}

	for _, path := range []string{custom, external} {
		var last string
		err := Poll(30*time.Second, func() (bool, error) {
			code, body, err := strict.get(path)
			last = fmt.Sprintf("HTTP %d %v: %s", code, err, truncate(body, 400))
			if err != nil || code != http.StatusServiceUnavailable {
				return false, nil
			}
			s := decodeStatus(body)
			return strings.Contains(s.Message, "prometheus backend "+thanosURL) && strings.Contains(s.Message, "partial response"), nil
		})
		if err != nil {
			t.Errorf("%s with the store down: want a 503 naming %s and \"partial response\"; last answer %s", path, thanosURL, last)
		} else {
			t.Logf("%s: 503 %v after the store stopped: %s", path, time.Since(stopped).Round(time.Millisecond), last)
		}
		// The promgate that accepts partial answers serves the values the
		// querier still has (the store held none of them).
		code, body, err := lenient.get(path)
		if err != nil || code != http.StatusOK {
			t.Errorf("%s with --prometheus-allow-partial-response: HTTP %d %v %s, want 200", path, code, err, truncate(body, 300))
		}
	}
	waitStandaloneValue(t, lenient, custom, 4)
	waitStandaloneValues(t, lenient, external, map[string]float64{"jobs": 9})

	worldSh(t, "revive", "thanos-store")
	revived = true
	back := time.Now()
	waitStandaloneValue(t, strict, custom, 4)
	waitStandaloneValues(t, strict, external, map[string]float64{"jobs": 9})
	t.Logf("values served again %v after the store's revival", time.Since(back).Round(time.Millisecond))
}

// TestVictoriaMetricsPathPrefix reads VictoriaMetrics' Prometheus API under
// a path prefix (/prometheus, the form of VM cluster's
// /select/<accountID>/prometheus): the values match Prometheus', which
// scrapes the same exporter. A wrong prefix is a 503 naming the backend,
// not an empty answer.
func TestVictoriaMetricsPathPrefix(t *testing.T) {
	t.Parallel()
	RequireExporter(t)
	vmURL := backend(t, "VM_URL")
	ns := CreateNamespace(t, "vm")
	Apply(t, KwokDeployment{Namespace: ns, Name: "web", Replicas: 1, PodAnnotations: map[string]string{"e2e.promgate.io/rps": "6"}}.YAML())
	pods := WaitForPodsRunning(t, ns, "app=web", 1, 90*time.Second)
	exporterControl(t, "/control/queue", map[string]string{"namespace": ns, "queue": "jobs", "value": "11"})

	t.Run("values match Prometheus'", func(t *testing.T) {
		t.Parallel()
		pg := backendPromgate(t, "vm", vmURL+"/prometheus")
		path := fmt.Sprintf("/apis/custom.metrics.k8s.io/v1beta2/namespaces/%s/pods/%s/http_requests_per_second", ns, pods[0])
		got := waitStandaloneValue(t, pg, path, 6)
		// VictoriaMetrics' rate() does not extrapolate to the window's ends
		// as Prometheus' does; for a counter growing at a constant rate,
		// sampled every second, both are the rate itself.
		prom := PromQuery(t, fmt.Sprintf(`sum(rate(http_requests_total{namespace=%q,pod=%q}[1m]))`, ns, pods[0]))
		if len(prom) != 1 || !near(got, prom[0].Value) {
			t.Errorf("VictoriaMetrics through promgate: %v; Prometheus: %+v; want equal within %.0f%%", got, prom, rateTolerance*100)
		}
		waitStandaloneValues(t, pg, fmt.Sprintf("/apis/external.metrics.k8s.io/v1beta1/namespaces/%s/queue_messages_ready", ns), map[string]float64{"jobs": 11})
	})

	t.Run("a wrong prefix is a 503 naming the backend", func(t *testing.T) {
		t.Parallel()
		wrong := vmURL + "/nope"
		pg := backendPromgate(t, "vm-wrong-prefix", wrong)
		// metrics.k8s.io queries the backend on every request. (Right after
		// its start promgate may not have read the client CA yet, and takes
		// the admin for system:anonymous: a 403.)
		path := "/apis/metrics.k8s.io/v1beta1/namespaces/" + ns + "/pods"
		var last string
		err := Poll(30*time.Second, func() (bool, error) {
			code, body, err := pg.get(path)
			last = fmt.Sprintf("HTTP %d %v: %s", code, err, truncate(body, 400))
			return err == nil && code != http.StatusForbidden, nil
		})
		code, body, _ := pg.get(path)
		s := decodeStatus(body)
		if err != nil || code != http.StatusServiceUnavailable || !strings.Contains(s.Message, "prometheus backend "+wrong+":") || !strings.Contains(s.Message, "bad status (HTTP 400") {
			t.Errorf("%s: HTTP %d %s (%s); want a 503 naming %s and \"bad status (HTTP 400\"", path, code, truncate(body, 400), last, wrong)
		}
		// Series discovery failed: custom and external metrics are unknown
		// (404), never an empty list of values, and promgate's own metrics
		// say that every rule's discovery fails.
		for _, p := range []string{
			fmt.Sprintf("/apis/custom.metrics.k8s.io/v1beta2/namespaces/%s/pods/*/http_requests_per_second", ns),
			fmt.Sprintf("/apis/external.metrics.k8s.io/v1beta1/namespaces/%s/queue_messages_ready", ns),
		} {
			if code, body, err := pg.get(p); err != nil || code != http.StatusNotFound {
				t.Errorf("%s: HTTP %d %v %s; want 404", p, code, err, truncate(body, 300))
			}
		}
		_, metrics, err := pg.get("/metrics")
		for _, rule := range []string{"rules[0]", "externalRules[0]"} {
			if line := fmt.Sprintf("promgate_discovery_rule_failing{rule=%q} 1", rule); err != nil || !strings.Contains(metrics, line) {
				t.Errorf("promgate's /metrics lacks %q (%v)", line, err)
			}
		}
	})
}

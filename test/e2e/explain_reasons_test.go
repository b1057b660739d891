//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestExplainReasons: a running promgate explains, from real series, each
// reason a metric is missing: series filtered out, a name that does not
// match, no label naming a resource, discovered on another resource, and
// series too old for --metrics-max-age.
func TestExplainReasons(t *testing.T) {
	t.Parallel() // independent of the others; TestDropIn and TestFault, which change shared state, run alone first
	RequireExporter(t)
	ns := CreateNamespace(t, "why")
	old := CreateNamespace(t, "why-old")
	Apply(t, KwokDeployment{Namespace: ns, Name: "web", Replicas: 1, PodAnnotations: map[string]string{"e2e.promgate.io/rps": "3"}}.YAML())
	Apply(t, KwokDeployment{Namespace: old, Name: "gone", Replicas: 1, PodAnnotations: map[string]string{"e2e.promgate.io/rps": "3"}}.YAML())
	WaitForPodsRunning(t, ns, "app=web", 1, 90*time.Second)
	WaitForPodsRunning(t, old, "app=gone", 1, 90*time.Second)
	sel := func(n string) string { return fmt.Sprintf(`http_requests_total{namespace=%q}`, n) }
	WaitFor(t, 60*time.Second, "both namespaces' series in Prometheus", func() (bool, error) {
		a, err1 := promQuery(sel(ns))
		b, err2 := promQuery(sel(old))
		return err1 == nil && err2 == nil && len(a) > 0 && len(b) > 0, nil
	})
	// The old namespace's pod goes away: its series stop.
	MustKubectl(t, "delete", "deployment", "gone", "-n", old, "--wait=true")
	MustKubectl(t, "wait", "--for=delete", "pod", "-l", "app=gone", "-n", old, "--timeout=120s")
	WaitFor(t, 60*time.Second, "the old namespace's series to stop", func() (bool, error) {
		s, err := promQuery(sel(old))
		return err == nil && len(s) == 0, nil
	})
	cutoff := time.Now()

	cfg := fmt.Sprintf(`rules:
# filtered: a seriesFilter drops the series
- seriesQuery: '%[1]s'
  seriesFilters: [{isNot: "^http_requests_total$"}]
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  name: {matches: "^http_requests_total$", as: "why_filtered"}
# naming: name.matches does not match the series
- seriesQuery: '%[1]s'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  name: {matches: "^why_(.*)$", as: "why_named"}
# no resource: no label of the series maps to a resource
- seriesQuery: '%[1]s'
  resources: {overrides: {deployment: {group: apps, resource: deployment}}}
  name: {matches: "^http_requests_total$", as: "why_unmapped"}
# another resource: served for pods, asked for services
- seriesQuery: '%[1]s'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
  name: {matches: "^http_requests_total$", as: "why_elsewhere"}
# too old: the only series stopped before --metrics-max-age (explain looks
# for series named like the metric, so this rule keeps the series' name)
- seriesQuery: '%[2]s'
  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}
`, sel(ns), sel(old))
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// Wait out the max age before starting, so that the first discovery
	// already finds the old series too old.
	const maxAge = 20 * time.Second
	time.Sleep(time.Until(cutoff.Add(maxAge + 5*time.Second)))
	pg := startPromgate(t, "why", append([]string{
		"--cert-dir=" + filepath.Join(t.TempDir(), "cert"),
		"--prometheus-url=" + world.PrometheusURL + "/",
		"--config=" + path,
		"--metrics-relist-interval=10s",
		"--metrics-max-age=" + maxAge.String(),
	}, worldArgs()...)...)

	tests := []struct {
		metric, resource string
		want             string
	}{
		{"why_filtered", "pods", "filtered by seriesFilters[0]"},
		{"http_requests_total", "pods", "filtered by name.matches ^why_(.*)$"},
		{"why_unmapped", "pods", "no label maps to a Kubernetes resource"},
		{"why_elsewhere", "services", "discovered on another resource or scope"},
		{"http_requests_total", "pods", "too old to be discovered"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			q := url.Values{"metric": {tt.metric}, "resource": {tt.resource}, "namespace": {ns}}
			var body string
			err := Poll(60*time.Second, func() (bool, error) {
				code, b, err := pg.get(explainPath + "?" + q.Encode())
				body = b
				return err == nil && code == http.StatusOK && strings.Contains(b, tt.want), nil
			})
			if err != nil {
				t.Errorf("explain of %s for %s does not say %q; last answer:\n%s", tt.metric, tt.resource, tt.want, body)
			}
		})
	}
}

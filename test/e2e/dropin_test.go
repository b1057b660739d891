//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// lvbnRule uses .LabelValuesByName as prometheus-adapter's docs do; it is
// served per request, never shared (promgate check says so).
const lvbnRule = `- seriesQuery: 'http_requests_total{namespace!="",pod!=""}'
  resources:
    overrides:
      namespace: {resource: namespace}
      pod: {resource: pod}
  name: {matches: "^http_requests_total$", as: "http_requests_lvbn"}
  metricsQuery: 'sum(rate(<<.Series>>{namespace="<<.LabelValuesByName.namespace>>",pod=~"<<.LabelValuesByName.pod>>"}[1m])) by (<<.GroupBy>>)'
`

// TestDropIn starts promgate as the prometheus-community chart's Deployment
// starts prometheus-adapter: its exact argument list (the binary path as
// the first argument, a self-signed certificate in --cert-dir, the chart's
// default rules) with only the values pointed at this world, plus the
// kubeconfig flags that a pod gets from its service account. It then
// registers it the way the chart does (custom.metrics.k8s.io APIServices
// with insecureSkipTLSVerify) and drives a real HPA with a metric whose
// template uses .LabelValuesByName.
func TestDropIn(t *testing.T) {
	RequirePromgate(t)
	RequireExporter(t)
	ns := CreateNamespace(t, "dropin")
	Apply(t, KwokDeployment{Namespace: ns, Name: "web", Replicas: 1, PodAnnotations: map[string]string{"e2e.promgate.io/rps": "2"}}.YAML())
	WaitForPodsRunning(t, ns, "app=web", 1, 90*time.Second)
	WaitFor(t, 60*time.Second, "the pod's series in Prometheus", func() (bool, error) {
		s, err := promQuery(fmt.Sprintf(`http_requests_total{namespace=%q}`, ns))
		return err == nil && len(s) > 0, nil
	})

	// The chart's config.yaml with rules.default: true, plus one rule.
	chartRules, err := os.ReadFile(filepath.Join(world.Root, "pkg/catalog/testdata/adapter/helm-default.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	text := strings.Replace(string(chartRules), "\nrules:\n", "\nrules:\n"+lvbnRule, 1)
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	// The chart's args, in its order, but --secure-port (startPromgate
	// appends it: a free port), then what a pod has from its service
	// account, and loopback.
	args := append([]string{
		"/adapter",
		"--cert-dir=" + filepath.Join(dir, "cert"),
		"--prometheus-url=" + world.PrometheusURL + "/",
		"--metrics-relist-interval=1m",
		"--v=4",
		"--config=" + cfg,
	}, worldArgs()...)
	pg := startPromgate(t, "dropin", args...)
	port := pg.port

	// Register it as the chart does, restoring promgate's own registration
	// afterwards.
	for _, name := range []string{"v1beta1.custom.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io"} {
		orig := MustKubectl(t, "get", "apiservice", name, "-o", "jsonpath={.spec.service.port} {.spec.caBundle}")
		origPort, origCA, _ := strings.Cut(orig, " ")
		MustKubectl(t, "patch", "apiservice", name, "--type=merge", "-p",
			fmt.Sprintf(`{"spec":{"service":{"port":%d},"caBundle":null,"insecureSkipTLSVerify":true}}`, port))
		t.Cleanup(func() {
			MustKubectl(t, "patch", "apiservice", name, "--type=merge", "-p",
				fmt.Sprintf(`{"spec":{"service":{"port":%s},"caBundle":%q,"insecureSkipTLSVerify":false}}`, origPort, origCA))
			MustKubectl(t, "wait", "--for=condition=Available", "--timeout=60s", "apiservice/"+name)
		})
	}
	MustKubectl(t, "wait", "--for=condition=Available", "--timeout=60s", "apiservice/v1beta1.custom.metrics.k8s.io", "apiservice/v1beta2.custom.metrics.k8s.io")

	// The chart's default rules name metrics as prometheus-adapter does.
	WaitFor(t, 30*time.Second, "the chart's metric names in discovery", func() (bool, error) {
		names := apiResourceNames(t, "/apis/custom.metrics.k8s.io/v1beta1")
		return names["pods/http_requests"] && names["pods/http_requests_lvbn"] && names["namespaces/http_requests"], nil
	})

	path := fmt.Sprintf("/apis/custom.metrics.k8s.io/v1beta1/namespaces/%s/pods/*/http_requests_lvbn", ns)
	pods := WaitForPodsRunning(t, ns, "app=web", 1, 10*time.Second)
	waitValues(t, path, map[string]float64{pods[0]: 2})

	Apply(t, hpaYAML(ns, "web", 1, 3, `  - type: Pods
    pods:
      metric:
        name: http_requests_lvbn
      target:
        type: AverageValue
        averageValue: "10"
`))
	time.Sleep(10 * time.Second)
	waitReplicas(t, ns, "web", 1, 30*time.Second)
	exporterControl(t, "/control/http", map[string]string{"namespace": ns, "app": "web", "rps": "25"})
	waitReplicas(t, ns, "web", 3, 3*time.Minute)
	if b, err := os.ReadFile(pg.logPath); err == nil && !strings.Contains(string(b), "/adapter") {
		t.Errorf("promgate did not log that it ignored the /adapter argument")
	}
}

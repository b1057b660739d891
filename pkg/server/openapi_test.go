package server

import (
	"encoding/json"
	"strings"
	"testing"

	openapicommon "k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/validation/spec"
	metricsv1 "k8s.io/metrics/pkg/apis/metrics/v1"
	generatedmetrics "sigs.k8s.io/metrics-server/pkg/api/generated/openapi"
)

// TestMetricsV1OpenAPI: metrics.k8s.io/v1's definitions are v1beta1's with
// the type names changed, and every type they depend on is defined.
func TestMetricsV1OpenAPI(t *testing.T) {
	ref := func(name string) spec.Ref { return spec.MustCreateRef("#/definitions/" + name) }
	v1 := metricsV1Definitions(ref)
	beta := generatedmetrics.GetOpenAPIDefinitions(ref)
	all := mergeDefinitions([]openapicommon.GetOpenAPIDefinitions{generatedmetrics.GetOpenAPIDefinitions, metricsV1Definitions})(ref)
	names := []string{metricsv1.PodMetrics{}.OpenAPIModelName(), metricsv1.PodMetricsList{}.OpenAPIModelName(),
		metricsv1.NodeMetrics{}.OpenAPIModelName(), metricsv1.NodeMetricsList{}.OpenAPIModelName(), metricsv1.ContainerMetrics{}.OpenAPIModelName()}
	if len(v1) != len(names) {
		t.Errorf("%d definitions, want %d", len(v1), len(names))
	}
	for _, name := range names {
		d, ok := v1[name]
		if !ok {
			t.Errorf("no definition of %s", name)
			continue
		}
		betaName := strings.Replace(name, ".metrics.v1.", ".metrics.v1beta1.", 1)
		b, ok := beta[betaName]
		if !ok {
			t.Fatalf("no v1beta1 definition %s to compare %s with", betaName, name)
		}
		got, _ := json.Marshal(d.Schema)
		want, _ := json.Marshal(b.Schema)
		if w := strings.ReplaceAll(string(want), ".metrics.v1beta1.", ".metrics.v1."); string(got) != w || strings.Contains(string(got), "v1beta1") {
			t.Errorf("%s:\n%s\nwant v1beta1's with v1's names:\n%s", name, got, w)
		}
		for _, dep := range d.Dependencies {
			if _, ok := all[dep]; !ok {
				t.Errorf("%s depends on %s, which is not defined", name, dep)
			}
		}
	}
}

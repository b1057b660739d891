package server

import (
	"slices"

	openapicommon "k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/validation/spec"
	metricsv1 "k8s.io/metrics/pkg/apis/metrics/v1"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
	generatedmetrics "sigs.k8s.io/metrics-server/pkg/api/generated/openapi"
)

// metricsV1Definitions are the OpenAPI definitions of metrics.k8s.io/v1's
// types. No library generates them (metrics-server's generated code has
// v1beta1's only, Kubernetes' own is not importable), and v1's types are
// v1beta1's field for field, with the same JSON names and documentation: so
// they are v1beta1's generated definitions with the type names, in
// references and dependencies, changed to v1's. TestMetricsV1OpenAPI
// compares the two.
func metricsV1Definitions(ref openapicommon.ReferenceCallback) map[string]openapicommon.OpenAPIDefinition {
	rename := map[string]string{
		metricsv1beta1.PodMetrics{}.OpenAPIModelName():       metricsv1.PodMetrics{}.OpenAPIModelName(),
		metricsv1beta1.PodMetricsList{}.OpenAPIModelName():   metricsv1.PodMetricsList{}.OpenAPIModelName(),
		metricsv1beta1.NodeMetrics{}.OpenAPIModelName():      metricsv1.NodeMetrics{}.OpenAPIModelName(),
		metricsv1beta1.NodeMetricsList{}.OpenAPIModelName():  metricsv1.NodeMetricsList{}.OpenAPIModelName(),
		metricsv1beta1.ContainerMetrics{}.OpenAPIModelName(): metricsv1.ContainerMetrics{}.OpenAPIModelName(),
	}
	renamed := func(name string) string {
		if n, ok := rename[name]; ok {
			return n
		}
		return name
	}
	beta := generatedmetrics.GetOpenAPIDefinitions(func(name string) spec.Ref { return ref(renamed(name)) })
	out := make(map[string]openapicommon.OpenAPIDefinition, len(rename))
	for from, to := range rename {
		d := beta[from]
		d.Dependencies = slices.Clone(d.Dependencies)
		for i, dep := range d.Dependencies {
			d.Dependencies[i] = renamed(dep)
		}
		out[to] = d
	}
	return out
}

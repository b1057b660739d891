package resource

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// missingTotal counts the pods and nodes that were asked for but left out
// of a response for lack of usable data.
var missingTotal = metrics.NewCounterVec(
	&metrics.CounterOpts{
		Namespace:      "promgate",
		Subsystem:      "resource_metrics",
		Name:           "missing_total",
		Help:           "Pods and nodes requested from metrics.k8s.io but left out of the response because Prometheus had no usable CPU and memory values for them.",
		StabilityLevel: metrics.ALPHA,
	},
	[]string{"resource"},
)

var registerOnce sync.Once

// RegisterMetrics registers the provider's self-metrics with the global
// legacy registry, which the apiserver serves on /metrics, once at start
// (server.RegisterMetrics); later calls do nothing.
func RegisterMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(missingTotal)
	})
}

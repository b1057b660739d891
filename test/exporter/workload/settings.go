package workload

import (
	"fmt"
	"math"
	"strconv"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Annotations read from pods and nodes, and their defaults.
const (
	// AnnotationPrefix starts every annotation the exporter reads.
	AnnotationPrefix = "e2e.promgate.io/"
	// AnnotationRPS is a pod's request rate in requests per second (a decimal
	// number, e.g. "2.5").
	AnnotationRPS = AnnotationPrefix + "rps"
	// AnnotationErrorRatio is the share of a pod's requests answered with
	// code 500, a decimal number in [0, 1].
	AnnotationErrorRatio = AnnotationPrefix + "error-ratio"
	// AnnotationCPU is CPU usage in cores as a Kubernetes quantity ("250m").
	// On a pod it applies to every container of the spec; the annotation
	// AnnotationCPU + "." + containerName overrides it for one container. On a
	// node it is the root cgroup's usage.
	AnnotationCPU = AnnotationPrefix + "cpu"
	// AnnotationMemory is the memory working set in bytes as a Kubernetes
	// quantity ("64Mi"), with the same pod, container and node meaning as
	// AnnotationCPU.
	AnnotationMemory = AnnotationPrefix + "memory"
	// AnnotationSwap is the swap in use in bytes as a Kubernetes quantity,
	// with the same pod, container and node meaning as AnnotationCPU; the
	// pause container has none unless AnnotationSwap + ".POD" says so.
	// Without it a cgroup has no swap series (as on a node without swap).
	AnnotationSwap = AnnotationPrefix + "swap"

	// AppLabel is the pod label whose value becomes the service label of
	// http_requests_total and selects pods in the control API.
	AppLabel = "app"

	// DefaultRPS is a pod's request rate without annotation or override.
	DefaultRPS = 1.0
	// DefaultErrorRatio is a pod's error ratio without annotation or override.
	DefaultErrorRatio = 0.0
	// DefaultContainerMilliCPU is a container's CPU usage (100m).
	DefaultContainerMilliCPU = 100
	// DefaultContainerMemory is a container's working set (64Mi).
	DefaultContainerMemory = 64 << 20

	// PauseContainer is the container label of the pod sandbox's series.
	PauseContainer = "POD"
	// PauseImage is the image label of the pod sandbox's series.
	PauseImage = "registry.k8s.io/pause:3.10"
	// PauseMilliCPU is the sandbox's CPU usage (5m).
	PauseMilliCPU = 5
	// PauseMemory is the sandbox's working set (1Mi).
	PauseMemory = 1 << 20

	// DefaultNodeMilliCPU is a node root cgroup's CPU usage (1500m).
	DefaultNodeMilliCPU = 1500
	// DefaultNodeMemory is a node root cgroup's working set (3Gi).
	DefaultNodeMemory = 3 << 30

	// InactiveFileBytes is what container_memory_usage_bytes adds to the
	// working set of every cgroup (10Mi): a query that reads usage instead of
	// working set is off by this much per cgroup.
	InactiveFileBytes = 10 << 20
)

// parseRate parses a non-negative, finite decimal number.
func parseRate(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0, fmt.Errorf("%q is not a finite number >= 0", s)
	}
	return v, nil
}

// parseRatio parses a decimal number in [0, 1].
func parseRatio(s string) (float64, error) {
	v, err := parseRate(s)
	if err != nil {
		return 0, err
	}
	if v > 1 {
		return 0, fmt.Errorf("%q is not in [0, 1]", s)
	}
	return v, nil
}

// parseMilliCPU parses a non-negative CPU quantity into millicores.
func parseMilliCPU(s string) (int64, error) {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a quantity: %w", s, err)
	}
	if q.Sign() < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return q.MilliValue(), nil
}

// parseBytes parses a non-negative memory quantity into bytes (rounded up).
func parseBytes(s string) (int64, error) {
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a quantity: %w", s, err)
	}
	if q.Sign() < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return q.Value(), nil
}

// HTTPOverride replaces a pod's annotations for http_requests_total. A nil
// field leaves the annotation (or default) in force.
type HTTPOverride struct {
	RPS        *float64 `json:"rps,omitempty"`
	ErrorRatio *float64 `json:"errorRatio,omitempty"`
}

// merge returns o with the fields set in n replaced.
func (o HTTPOverride) merge(n HTTPOverride) HTTPOverride {
	if n.RPS != nil {
		o.RPS = n.RPS
	}
	if n.ErrorRatio != nil {
		o.ErrorRatio = n.ErrorRatio
	}
	return o
}

// resolveHTTP returns a pod's request rate and error ratio: the override, else
// the annotation, else the default. An annotation that does not parse is
// reported in errs and the default used.
func resolveHTTP(ann map[string]string, ov HTTPOverride) (rps, ratio float64, errs []string) {
	rps, ratio = DefaultRPS, DefaultErrorRatio
	if s, ok := ann[AnnotationRPS]; ok {
		if v, err := parseRate(s); err != nil {
			errs = append(errs, fmt.Sprintf("annotation %s: %v", AnnotationRPS, err))
		} else {
			rps = v
		}
	}
	if s, ok := ann[AnnotationErrorRatio]; ok {
		if v, err := parseRatio(s); err != nil {
			errs = append(errs, fmt.Sprintf("annotation %s: %v", AnnotationErrorRatio, err))
		} else {
			ratio = v
		}
	}
	if ov.RPS != nil {
		rps = *ov.RPS
	}
	if ov.ErrorRatio != nil {
		ratio = *ov.ErrorRatio
	}
	return rps, ratio, errs
}

// resourceOverride holds run-time values of one resource for the pods of an
// app, keyed by container name; the key "" applies to every container of the
// spec (not to the pause container).
type resourceOverride map[string]int64

// resolveContainer returns one container's value of a resource, first found:
// run-time override for the container, run-time override for all containers,
// annotation base+"."+container, annotation base, def. The pause container
// (PauseContainer) only honours the first and the third, since pod-wide
// values describe the workload's containers. An annotation that does not
// parse is reported in errs and skipped.
func resolveContainer(ann map[string]string, ov resourceOverride, base, container string, def int64, parse func(string) (int64, error)) (v int64, errs []string) {
	pause := container == PauseContainer
	if x, ok := ov[container]; ok {
		return x, nil
	}
	if x, ok := ov[""]; ok && !pause {
		return x, nil
	}
	keys := []string{base + "." + container}
	if !pause {
		keys = append(keys, base)
	}
	for _, k := range keys {
		s, ok := ann[k]
		if !ok {
			continue
		}
		x, err := parse(s)
		if err != nil {
			errs = append(errs, fmt.Sprintf("annotation %s: %v", k, err))
			continue
		}
		return x, errs
	}
	return def, errs
}

// resolveNode returns a node's value of a resource: the override if set,
// else the annotation, else def.
func resolveNode(ann map[string]string, ov *int64, key string, def int64, parse func(string) (int64, error)) (v int64, errs []string) {
	if ov != nil {
		return *ov, nil
	}
	if s, ok := ann[key]; ok {
		x, err := parse(s)
		if err == nil {
			return x, nil
		}
		errs = append(errs, fmt.Sprintf("annotation %s: %v", key, err))
	}
	return def, errs
}

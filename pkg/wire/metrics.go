package wire

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/metrics/pkg/apis/custom_metrics"
	"k8s.io/metrics/pkg/apis/external_metrics"
	"k8s.io/metrics/pkg/apis/metrics"
)

// Versions of the metrics API groups this package writes.
const (
	customV1beta1     = "custom.metrics.k8s.io/v1beta1"
	customV1beta2     = "custom.metrics.k8s.io/v1beta2"
	externalV1beta1   = "external.metrics.k8s.io/v1beta1"
	resourceV1beta1   = "metrics.k8s.io/v1beta1"
	resourceGAVersion = "metrics.k8s.io/v1" // the same fields and tags as v1beta1
)

// resourceVersion reports whether apiVersion is one of metrics.k8s.io's.
func resourceVersion(apiVersion string) bool {
	return apiVersion == resourceV1beta1 || apiVersion == resourceGAVersion
}

// Append appends obj (an internal-version object) as apiVersion's JSON,
// with the serializer's closing newline, and says whether it could: false
// for a type or version it does not write, or an object with a field it
// does not write (b is then returned unchanged).
func Append(b []byte, obj any, apiVersion string) ([]byte, bool) {
	n := len(b)
	if _, ok := writable(obj, apiVersion); !ok {
		return b, false
	}
	var ok bool
	switch o := obj.(type) {
	case *custom_metrics.MetricValueList:
		b, ok = appendMetricValueList(b, o, apiVersion)
	case *external_metrics.ExternalMetricValueList:
		b, ok = appendExternalList(b, o, apiVersion)
	case *metrics.PodMetricsList:
		b, ok = appendPodMetricsList(b, o, apiVersion)
	case *metrics.NodeMetricsList:
		b, ok = appendNodeMetricsList(b, o, apiVersion)
	case *metrics.PodMetrics:
		b, ok = appendPodMetrics(b, o, apiVersion, true)
	case *metrics.NodeMetrics:
		b, ok = appendNodeMetrics(b, o, apiVersion, true)
	}
	if !ok {
		return b[:n], false
	}
	return append(b, '\n'), true
}

// writable returns obj's kind if this package writes obj's type in
// apiVersion (and, for a list, its metadata: see plainListMeta), in either
// encoding; the writers below check nothing of the sort again.
func writable(obj any, apiVersion string) (string, bool) {
	switch o := obj.(type) {
	case *custom_metrics.MetricValueList:
		return "MetricValueList", (apiVersion == customV1beta1 || apiVersion == customV1beta2) && plainListMeta(&o.ListMeta)
	case *external_metrics.ExternalMetricValueList:
		return "ExternalMetricValueList", apiVersion == externalV1beta1 && plainListMeta(&o.ListMeta)
	case *metrics.PodMetricsList:
		return "PodMetricsList", resourceVersion(apiVersion) && plainListMeta(&o.ListMeta)
	case *metrics.NodeMetricsList:
		return "NodeMetricsList", resourceVersion(apiVersion) && plainListMeta(&o.ListMeta)
	case *metrics.PodMetrics:
		return "PodMetrics", resourceVersion(apiVersion)
	case *metrics.NodeMetrics:
		return "NodeMetrics", resourceVersion(apiVersion)
	}
	return "", false
}

// appendMetricValueList writes custom.metrics.k8s.io's list in v1beta1
// (metricName, window, selector per item) or v1beta2 (metric{name,
// selector}, windowSeconds).
func appendMetricValueList(b []byte, l *custom_metrics.MetricValueList, apiVersion string) ([]byte, bool) {
	beta1 := apiVersion == customV1beta1
	b = appendListHead(b, "MetricValueList", apiVersion, &l.ListMeta)
	return appendItems(b, l.Items, func(b []byte, v *custom_metrics.MetricValue) ([]byte, bool) {
		b = appendKey(append(b, '{'), "describedObject")
		b = appendObjectReference(b, &v.DescribedObject)
		if beta1 {
			b = appendField(b, false, "metricName")
			b = appendString(b, v.Metric.Name)
		} else {
			b = appendField(b, false, "metric")
			b = appendKey(append(b, '{'), "name")
			b = appendString(b, v.Metric.Name)
			b = appendField(b, false, "selector")
			b = appendSelector(b, v.Metric.Selector)
			b = append(b, '}')
		}
		b = appendField(b, false, "timestamp")
		b = appendTime(b, v.Timestamp)
		if v.WindowSeconds != nil {
			if beta1 {
				b = appendField(b, false, "window")
			} else {
				b = appendField(b, false, "windowSeconds")
			}
			b = appendInt(b, *v.WindowSeconds)
		}
		b = appendField(b, false, "value")
		b = appendQuantity(b, &v.Value)
		if beta1 {
			b = appendField(b, false, "selector")
			b = appendSelector(b, v.Metric.Selector)
		}
		return append(b, '}'), true
	})
}

// appendObjectReference writes a core/v1 ObjectReference (every field
// omitted when empty).
func appendObjectReference(b []byte, r *custom_metrics.ObjectReference) []byte {
	b = append(b, '{')
	first := true
	b, first = appendNonEmpty(b, first, "kind", r.Kind)
	b, first = appendNonEmpty(b, first, "namespace", r.Namespace)
	b, first = appendNonEmpty(b, first, "name", r.Name)
	b, first = appendNonEmpty(b, first, "uid", string(r.UID))
	b, first = appendNonEmpty(b, first, "apiVersion", r.APIVersion)
	b, first = appendNonEmpty(b, first, "resourceVersion", r.ResourceVersion)
	b, _ = appendNonEmpty(b, first, "fieldPath", r.FieldPath)
	return append(b, '}')
}

// appendExternalList writes external.metrics.k8s.io/v1beta1's list.
func appendExternalList(b []byte, l *external_metrics.ExternalMetricValueList, apiVersion string) ([]byte, bool) {
	b = appendListHead(b, "ExternalMetricValueList", apiVersion, &l.ListMeta)
	return appendItems(b, l.Items, func(b []byte, v *external_metrics.ExternalMetricValue) ([]byte, bool) {
		b = appendKey(append(b, '{'), "metricName")
		b = appendString(b, v.MetricName)
		b = appendField(b, false, "metricLabels")
		b = appendStringMap(b, v.MetricLabels)
		b = appendField(b, false, "timestamp")
		b = appendTime(b, v.Timestamp)
		if v.WindowSeconds != nil {
			b = appendField(b, false, "window")
			b = appendInt(b, *v.WindowSeconds)
		}
		b = appendField(b, false, "value")
		b = appendQuantity(b, &v.Value)
		return append(b, '}'), true
	})
}

// appendPodMetricsList writes metrics.k8s.io's PodMetricsList (v1beta1 or v1).
func appendPodMetricsList(b []byte, l *metrics.PodMetricsList, apiVersion string) ([]byte, bool) {
	return appendResourceMetricsList(b, "PodMetricsList", apiVersion, &l.ListMeta, l.Items, appendPodMetrics)
}

// appendNodeMetricsList writes metrics.k8s.io's NodeMetricsList (v1beta1 or v1).
func appendNodeMetricsList(b []byte, l *metrics.NodeMetricsList, apiVersion string) ([]byte, bool) {
	return appendResourceMetricsList(b, "NodeMetricsList", apiVersion, &l.ListMeta, l.Items, appendNodeMetrics)
}

// appendResourceMetricsList writes a metrics.k8s.io/v1beta1 list of kind
// whose items item writes.
func appendResourceMetricsList[T any](b []byte, kind, apiVersion string, m *metav1.ListMeta, items []T,
	item func([]byte, *T, string, bool) ([]byte, bool)) ([]byte, bool) {
	b = appendListHead(b, kind, apiVersion, m)
	return appendItems(b, items, func(b []byte, v *T) ([]byte, bool) { return item(b, v, apiVersion, false) })
}

// appendPodMetrics writes one PodMetrics: with its kind and apiVersion
// when it is the answer itself (top), without them as a list's item.
func appendPodMetrics(b []byte, p *metrics.PodMetrics, apiVersion string, top bool) ([]byte, bool) {
	b, ok := appendItemHead(b, "PodMetrics", apiVersion, top, &p.ObjectMeta)
	if !ok {
		return b, false
	}
	b = appendField(b, false, "timestamp")
	b = appendTime(b, p.Timestamp)
	b = appendField(b, false, "window")
	b = appendString(b, p.Window.Duration.String())
	b = appendField(b, false, "containers")
	if p.Containers == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range p.Containers {
			c := &p.Containers[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = appendKey(append(b, '{'), "name")
			b = appendString(b, c.Name)
			b = appendField(b, false, "usage")
			b = appendResourceList(b, c.Usage)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}'), true
}

// appendNodeMetrics writes one NodeMetrics (see appendPodMetrics).
func appendNodeMetrics(b []byte, n *metrics.NodeMetrics, apiVersion string, top bool) ([]byte, bool) {
	b, ok := appendItemHead(b, "NodeMetrics", apiVersion, top, &n.ObjectMeta)
	if !ok {
		return b, false
	}
	b = appendField(b, false, "timestamp")
	b = appendTime(b, n.Timestamp)
	b = appendField(b, false, "window")
	b = appendString(b, n.Window.Duration.String())
	b = appendField(b, false, "usage")
	b = appendResourceList(b, n.Usage)
	return append(b, '}'), true
}

// appendItemHead writes {"kind":…,"apiVersion":…, (top only) and
// "metadata":{…}. Object metadata is written for the fields the resource
// metrics storage sets (name, namespace, creation time, labels); an object
// with any other field set is left to the library.
func appendItemHead(b []byte, kind, apiVersion string, top bool, m *metav1.ObjectMeta) ([]byte, bool) {
	if !plainObjectMeta(m) {
		return b, false
	}
	b = append(b, '{')
	if top {
		b = appendKey(b, "kind")
		b = appendString(b, kind)
		b = appendField(b, false, "apiVersion")
		b = appendString(b, apiVersion)
		b = append(b, ',')
	}
	b = appendKey(b, "metadata")
	b = append(b, '{')
	first := true
	b, first = appendNonEmpty(b, first, "name", m.Name)
	b, first = appendNonEmpty(b, first, "namespace", m.Namespace)
	if !m.CreationTimestamp.IsZero() {
		b = appendField(b, first, "creationTimestamp")
		b = appendTime(b, m.CreationTimestamp)
		first = false
	}
	if len(m.Labels) > 0 {
		b = appendField(b, first, "labels")
		b = appendStringMap(b, m.Labels)
	}
	return append(b, '}'), true
}

// plainObjectMeta says whether m has only the fields this package writes:
// name, namespace, creation time and labels.
func plainObjectMeta(m *metav1.ObjectMeta) bool {
	//lint:ignore SA1019 an object with a self link is left to the library
	self := m.SelfLink
	return m.GenerateName == "" && self == "" && m.UID == "" && m.ResourceVersion == "" && m.Generation == 0 &&
		m.DeletionTimestamp == nil && m.DeletionGracePeriodSeconds == nil && m.Annotations == nil &&
		m.OwnerReferences == nil && m.Finalizers == nil && m.ManagedFields == nil
}

// appendResourceList writes a ResourceList (a map of quantities; null
// when nil).
func appendResourceList(b []byte, l corev1.ResourceList) []byte {
	return appendMap(b, l, func(b []byte, q resource.Quantity) []byte { return appendQuantity(b, &q) })
}

package wire

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/metrics/pkg/apis/custom_metrics"
	"k8s.io/metrics/pkg/apis/external_metrics"
	"k8s.io/metrics/pkg/apis/metrics"
)

// The Kubernetes protobuf encoding of the same lists: the serializer's
// "k8s\x00" prefix and runtime.Unknown envelope around the versioned
// object's message, with the fields the generated (gogo) marshallers
// write: strings and non-pointer messages always, pointers and
// collections when set, maps in key order.

// protoPrefix starts every Kubernetes protobuf message
// (runtime/serializer/protobuf).
const protoPrefix = "k8s\x00"

// Wire types.
const (
	wireVarint = 0
	wireBytes  = 2
)

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendTag(b []byte, field, wire int) []byte { return appendVarint(b, uint64(field<<3|wire)) }

// pString appends a string field (written even when empty, as gogo does
// for non-nullable strings).
func pString(b []byte, field int, s string) []byte {
	b = appendTag(b, field, wireBytes)
	b = appendVarint(b, uint64(len(s)))
	return append(b, s...)
}

// pInt appends an int64 field (negative values in ten bytes, as
// protobuf's int64).
func pInt(b []byte, field int, v int64) []byte {
	return appendVarint(appendTag(b, field, wireVarint), uint64(v))
}

// open starts a nested message; end closes it as field, inserting its tag
// and length before the body written since open.
func open(b []byte) ([]byte, int) { return b, len(b) }

func end(b []byte, start, field int) []byte {
	var h [20]byte
	head := appendVarint(appendTag(h[:0], field, wireBytes), uint64(len(b)-start))
	n := len(b)
	b = append(b, head...) // grow by len(head)
	copy(b[start+len(head):], b[start:n])
	copy(b[start:], head)
	return b
}

func pTime(b []byte, field int, t metav1.Time) []byte {
	b, s := open(b)
	if !t.IsZero() { // seconds only, nanos written as 0 (metav1.Time.ProtoTime)
		b = pInt(b, 1, t.Unix())
		b = pInt(b, 2, 0)
	}
	return end(b, s, field)
}

func pQuantity(b []byte, field int, q *resource.Quantity) []byte {
	b, s := open(b)
	b = pString(b, 1, quantityText(q))
	return end(b, s, field)
}

func sortedKeys[M ~map[K]V, K ~string, V any](m M) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// pStringMap appends a map<string,string> field: one entry message per
// key, in key order; nothing when empty.
func pStringMap(b []byte, field int, m map[string]string) []byte {
	for _, k := range sortedKeys(m) {
		var s int
		b, s = open(b)
		b = pString(b, 1, k)
		b = pString(b, 2, m[k])
		b = end(b, s, field)
	}
	return b
}

func pSelector(b []byte, field int, sel *metav1.LabelSelector) []byte {
	if sel == nil {
		return b
	}
	b, s := open(b)
	b = pStringMap(b, 1, sel.MatchLabels)
	for _, e := range sel.MatchExpressions {
		var es int
		b, es = open(b)
		b = pString(b, 1, e.Key)
		b = pString(b, 2, string(e.Operator))
		for _, v := range e.Values {
			b = pString(b, 3, v)
		}
		b = end(b, es, 2)
	}
	return end(b, s, field)
}

func pListMeta(b []byte, field int, m *metav1.ListMeta) []byte {
	b, s := open(b)
	//lint:ignore SA1019 written as the library writes it, while it exists
	b = pString(b, 1, m.SelfLink)
	b = pString(b, 2, m.ResourceVersion)
	b = pString(b, 3, m.Continue)
	if m.RemainingItemCount != nil {
		b = pInt(b, 4, *m.RemainingItemCount)
	}
	return end(b, s, field)
}

func pObjectReference(b []byte, field int, r *custom_metrics.ObjectReference) []byte {
	b, s := open(b)
	b = pString(b, 1, r.Kind)
	b = pString(b, 2, r.Namespace)
	b = pString(b, 3, r.Name)
	b = pString(b, 4, string(r.UID))
	b = pString(b, 5, r.APIVersion)
	b = pString(b, 6, r.ResourceVersion)
	b = pString(b, 7, r.FieldPath)
	return end(b, s, field)
}

// AppendProtobuf appends obj (an internal-version object) as apiVersion's
// Kubernetes protobuf, and says whether it could (see Append).
func AppendProtobuf(b []byte, obj any, apiVersion string) ([]byte, bool) {
	n := len(b)
	kind, ok := writable(obj, apiVersion)
	if !ok {
		return b, false
	}
	b = append(b, protoPrefix...)
	// runtime.Unknown, at the top level: no tag or length
	b, t := open(b)
	b = pString(b, 1, apiVersion)
	b = pString(b, 2, kind)
	b = end(b, t, 1)
	b, r := open(b)
	switch o := obj.(type) {
	case *custom_metrics.MetricValueList:
		b, ok = pMetricValueList(b, o, apiVersion == customV1beta1)
	case *external_metrics.ExternalMetricValueList:
		b, ok = pExternalList(b, o)
	case *metrics.PodMetricsList:
		b, ok = pPodMetricsList(b, o)
	case *metrics.NodeMetricsList:
		b, ok = pNodeMetricsList(b, o)
	case *metrics.PodMetrics:
		b, ok = pPodMetrics(b, o)
	case *metrics.NodeMetrics:
		b, ok = pNodeMetrics(b, o)
	}
	if !ok {
		return b[:n], false
	}
	b = end(b, r, 2)
	b = pString(b, 3, "") // contentEncoding
	b = pString(b, 4, "") // contentType
	return b, true
}

func pMetricValueList(b []byte, l *custom_metrics.MetricValueList, beta1 bool) ([]byte, bool) {
	return pList(b, &l.ListMeta, l.Items, func(b []byte, v *custom_metrics.MetricValue) ([]byte, bool) {
		b = pObjectReference(b, 1, &v.DescribedObject)
		if beta1 {
			b = pString(b, 2, v.Metric.Name)
		} else {
			var ms int
			b, ms = open(b)
			b = pString(b, 1, v.Metric.Name)
			b = pSelector(b, 2, v.Metric.Selector)
			b = end(b, ms, 2)
		}
		b = pTime(b, 3, v.Timestamp)
		if v.WindowSeconds != nil {
			b = pInt(b, 4, *v.WindowSeconds)
		}
		b = pQuantity(b, 5, &v.Value)
		if beta1 {
			b = pSelector(b, 6, v.Metric.Selector)
		}
		return b, true
	})
}

func pExternalList(b []byte, l *external_metrics.ExternalMetricValueList) ([]byte, bool) {
	return pList(b, &l.ListMeta, l.Items, func(b []byte, v *external_metrics.ExternalMetricValue) ([]byte, bool) {
		b = pString(b, 1, v.MetricName)
		b = pStringMap(b, 2, v.MetricLabels)
		b = pTime(b, 3, v.Timestamp)
		if v.WindowSeconds != nil {
			b = pInt(b, 4, *v.WindowSeconds)
		}
		b = pQuantity(b, 5, &v.Value)
		return b, true
	})
}

// pObjectMeta writes the metadata fields appendItemHead does; false for
// an object with any other field set.
func pObjectMeta(b []byte, field int, m *metav1.ObjectMeta) ([]byte, bool) {
	if !plainObjectMeta(m) {
		return b, false
	}
	b, s := open(b)
	b = pString(b, 1, m.Name)
	b = pString(b, 2, "") // generateName
	b = pString(b, 3, m.Namespace)
	b = pString(b, 4, "") // selfLink
	b = pString(b, 5, "") // uid
	b = pString(b, 6, "") // resourceVersion
	b = pInt(b, 7, 0)     // generation
	b = pTime(b, 8, m.CreationTimestamp)
	b = pStringMap(b, 11, m.Labels)
	return end(b, s, field), true
}

func pResourceList(b []byte, field int, l corev1.ResourceList) []byte {
	for _, k := range sortedKeys(l) {
		q := l[k]
		var s int
		b, s = open(b)
		b = pString(b, 1, string(k))
		b = pQuantity(b, 2, &q)
		b = end(b, s, field)
	}
	return b
}

func pDuration(b []byte, field int, d metav1.Duration) []byte {
	b, s := open(b)
	b = pInt(b, 1, int64(d.Duration))
	return end(b, s, field)
}

func pPodMetrics(b []byte, p *metrics.PodMetrics) ([]byte, bool) {
	b, ok := pObjectMeta(b, 1, &p.ObjectMeta)
	if !ok {
		return b, false
	}
	b = pTime(b, 2, p.Timestamp)
	b = pDuration(b, 3, p.Window)
	for i := range p.Containers {
		c := &p.Containers[i]
		var s int
		b, s = open(b)
		b = pString(b, 1, c.Name)
		b = pResourceList(b, 2, c.Usage)
		b = end(b, s, 4)
	}
	return b, true
}

func pNodeMetrics(b []byte, n *metrics.NodeMetrics) ([]byte, bool) {
	b, ok := pObjectMeta(b, 1, &n.ObjectMeta)
	if !ok {
		return b, false
	}
	b = pTime(b, 2, n.Timestamp)
	b = pDuration(b, 3, n.Window)
	return pResourceList(b, 4, n.Usage), true
}

func pPodMetricsList(b []byte, l *metrics.PodMetricsList) ([]byte, bool) {
	return pList(b, &l.ListMeta, l.Items, pPodMetrics)
}

func pNodeMetricsList(b []byte, l *metrics.NodeMetricsList) ([]byte, bool) {
	return pList(b, &l.ListMeta, l.Items, pNodeMetrics)
}

// pList writes a list's metadata (field 1) and its items (field 2, one
// message each, written by item); false if one cannot be.
func pList[T any](b []byte, m *metav1.ListMeta, items []T, item func([]byte, *T) ([]byte, bool)) ([]byte, bool) {
	b = pListMeta(b, 1, m)
	for i := range items {
		var s int
		var ok bool
		b, s = open(b)
		if b, ok = item(b, &items[i]); !ok {
			return b, false
		}
		b = end(b, s, 2)
	}
	return b, true
}

// Package wire writes the metrics APIs' answers as JSON and as Kubernetes
// protobuf without reflection or conversion: the bytes the API library's
// serializers write for the same object (apimachinery's
// runtime/serializer/json, encoding/json after the conversion to the
// requested version; runtime/serializer/protobuf, the generated
// marshallers in their runtime.Unknown envelope), for the shapes promgate
// serves: custom.metrics.k8s.io v1beta1 and v1beta2,
// external.metrics.k8s.io v1beta1 and metrics.k8s.io v1beta1 and v1. Anything
// else (another type, version or media type, pretty output, a field this
// package does not write) is left to the library.
//
// Negotiated wraps the library's NegotiatedSerializer of an API group; the
// tests compare every shape byte for byte with the library's output.
package wire

import (
	"encoding/json"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// safe[b] says whether encoding/json writes the ASCII byte b as itself in
// a string (with its default HTML escaping): printable, and none of
// " \ < > &.
var safe = func() (t [256]bool) {
	for b := 0x20; b < 0x7f; b++ {
		t[b] = true
	}
	for _, b := range `"\<>&` {
		t[b] = false
	}
	return t
}()

// appendString appends s as a JSON string, as encoding/json writes it.
// Strings of safe ASCII (names, label values, nearly all of them) are
// copied; anything else goes through encoding/json itself.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !safe[s[i]] {
			q, err := json.Marshal(s)
			if err != nil { // cannot happen for a string
				panic(err)
			}
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendKey appends "key": (key is a field name known to be safe).
func appendKey(b []byte, key string) []byte {
	b = append(b, '"')
	b = append(b, key...)
	return append(b, '"', ':')
}

// appendField appends ,"key": (or "key": as an object's first field).
func appendField(b []byte, first bool, key string) []byte {
	if !first {
		b = append(b, ',')
	}
	return appendKey(b, key)
}

// appendTime appends t as metav1.Time.MarshalJSON writes it: null when
// zero, else RFC 3339 in UTC, seconds.
func appendTime(b []byte, t metav1.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, time.RFC3339)
	return append(b, '"')
}

// appendQuantity appends q as resource.Quantity.MarshalJSON writes it:
// its text (the cached one, else the canonical form) quoted.
func appendQuantity(b []byte, q *resource.Quantity) []byte {
	b = append(b, '"')
	b = append(b, quantityText(q)...)
	return append(b, '"')
}

// quantityText is q's text as MarshalJSON and the protobuf marshaller
// write it. String caches the text in its receiver: it is called on a
// copy, so that q (which may be shared by concurrent requests) is never
// written, and costs nothing when q already carries its text (promgate's
// values do, see pkg/provider/custom).
func quantityText(q *resource.Quantity) string {
	c := *q
	return c.String()
}

// appendInt appends a JSON number.
func appendInt(b []byte, v int64) []byte { return strconv.AppendInt(b, v, 10) }

// appendStringMap appends m as encoding/json writes a map[string]string:
// null when nil, keys in order.
func appendStringMap(b []byte, m map[string]string) []byte {
	return appendMap(b, m, appendString)
}

// appendMap appends m as encoding/json writes a map with string keys, each
// value written by value: null when nil, keys in order.
func appendMap[M ~map[K]V, K ~string, V any](b []byte, m M, value func([]byte, V) []byte) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	b = append(b, '{')
	for i, k := range sortedKeys(m) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, string(k))
		b = append(b, ':')
		b = value(b, m[k])
	}
	return append(b, '}')
}

// appendStrings appends a []string (null when nil).
func appendStrings(b []byte, s []string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, v := range s {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, v)
	}
	return append(b, ']')
}

// appendSelector appends a *metav1.LabelSelector (null when nil).
func appendSelector(b []byte, s *metav1.LabelSelector) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	b = append(b, '{')
	first := true
	if len(s.MatchLabels) > 0 {
		b = appendField(b, first, "matchLabels")
		b = appendStringMap(b, s.MatchLabels)
		first = false
	}
	if len(s.MatchExpressions) > 0 {
		b = appendField(b, first, "matchExpressions")
		b = append(b, '[')
		for i, e := range s.MatchExpressions {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendKey(append(b, '{'), "key")
			b = appendString(b, e.Key)
			b = appendField(b, false, "operator")
			b = appendString(b, string(e.Operator))
			if len(e.Values) > 0 {
				b = appendField(b, false, "values")
				b = appendStrings(b, e.Values)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendNonEmpty appends the string field key (as appendField) unless
// value is empty (omitempty), and says whether the object is still
// without fields.
func appendNonEmpty(b []byte, first bool, key, value string) ([]byte, bool) {
	if value == "" {
		return b, first
	}
	return appendString(appendField(b, first, key), value), false
}

// appendItems appends a list's items and closes the list: null when nil,
// each item written by item; false if one cannot be.
func appendItems[T any](b []byte, items []T, item func([]byte, *T) ([]byte, bool)) ([]byte, bool) {
	if items == nil {
		return append(b, "null}"...), true
	}
	b = append(b, '[')
	for i := range items {
		if i > 0 {
			b = append(b, ',')
		}
		var ok bool
		if b, ok = item(b, &items[i]); !ok {
			return b, false
		}
	}
	return append(b, "]}"...), true
}

// appendListMeta appends "metadata":{...} of a list.
func appendListMeta(b []byte, m *metav1.ListMeta) []byte {
	b = appendField(b, false, "metadata")
	b = append(b, '{')
	first := true
	//lint:ignore SA1019 written as the library writes it, while it exists
	b, first = appendNonEmpty(b, first, "selfLink", m.SelfLink)
	b, first = appendNonEmpty(b, first, "resourceVersion", m.ResourceVersion)
	b, first = appendNonEmpty(b, first, "continue", m.Continue)
	if m.RemainingItemCount != nil {
		b = appendField(b, first, "remainingItemCount")
		b = appendInt(b, *m.RemainingItemCount)
	}
	return append(b, '}')
}

// plainListMeta says whether m has only the fields appendListMeta writes
// (a shard selector's ShardInfo is left to the library).
func plainListMeta(m *metav1.ListMeta) bool { return m.ShardInfo == nil }

// appendListHead appends {"kind":…,"apiVersion":…,"metadata":{…},"items":
func appendListHead(b []byte, kind, apiVersion string, m *metav1.ListMeta) []byte {
	b = appendKey(append(b, '{'), "kind")
	b = appendString(b, kind)
	b = appendField(b, false, "apiVersion")
	b = appendString(b, apiVersion)
	b = appendListMeta(b, m)
	return appendField(b, false, "items")
}

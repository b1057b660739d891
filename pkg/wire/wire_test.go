package wire

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/metrics/pkg/apis/custom_metrics"
	cmv1beta1 "k8s.io/metrics/pkg/apis/custom_metrics/v1beta1"
	cmv1beta2 "k8s.io/metrics/pkg/apis/custom_metrics/v1beta2"
	"k8s.io/metrics/pkg/apis/external_metrics"
	emv1beta1 "k8s.io/metrics/pkg/apis/external_metrics/v1beta1"
	"k8s.io/metrics/pkg/apis/metrics"
	mv1 "k8s.io/metrics/pkg/apis/metrics/v1"
	mv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
	cmapiserver "sigs.k8s.io/custom-metrics-apiserver/pkg/apiserver"
	metricsapi "sigs.k8s.io/metrics-server/pkg/api"
)

// encode encodes obj with enc, with an allocator as the API handlers do.
func encode(t testing.TB, enc runtime.Encoder, obj runtime.Object) []byte {
	t.Helper()
	var buf bytes.Buffer
	var err error
	if a, ok := enc.(runtime.EncoderWithAllocator); ok {
		err = a.EncodeWithAllocator(obj, &buf, &runtime.Allocator{})
	} else {
		err = enc.Encode(obj, &buf)
	}
	if err != nil {
		t.Fatalf("%s: %v", enc.Identifier(), err)
	}
	return buf.Bytes()
}

// libraryAndWire encodes obj as gv's mediaType with the library's codec
// factory (what the API handlers write) and with Negotiated's encoder.
func libraryAndWire(t *testing.T, ns runtime.NegotiatedSerializer, mediaType string, gv schema.GroupVersion, obj runtime.Object) (lib, wire []byte) {
	t.Helper()
	info, ok := runtime.SerializerInfoForMediaType(ns.SupportedMediaTypes(), mediaType)
	if !ok {
		t.Fatalf("no %s serializer", mediaType)
	}
	return encode(t, ns.EncoderForVersion(info.Serializer, gv), obj), encode(t, Negotiated(ns).EncoderForVersion(info.Serializer, gv), obj)
}

// same checks, for JSON and protobuf, that the wire encoder wrote obj
// itself (not the library, unless wantLibrary) and that the bytes are the
// library's.
func same(t *testing.T, ns runtime.NegotiatedSerializer, gv schema.GroupVersion, obj runtime.Object, wantLibrary bool) {
	t.Helper()
	for _, c := range []struct {
		mediaType string
		appendTo  func([]byte, any, string) ([]byte, bool)
	}{{runtime.ContentTypeJSON, Append}, {runtime.ContentTypeProtobuf, AppendProtobuf}} {
		lib, got := libraryAndWire(t, ns, c.mediaType, gv, obj)
		if !bytes.Equal(lib, got) {
			t.Fatalf("%s %T as %s differs from the library's\nlibrary: %q\nwire:    %q", gv, obj, c.mediaType, lib, got)
		}
		_, wrote := c.appendTo(nil, obj, gv.String())
		if wrote == wantLibrary {
			t.Fatalf("%s %T as %s: wrote it = %v, want %v", gv, obj, c.mediaType, wrote, !wantLibrary)
		}
	}
}

var (
	customV1   = schema.GroupVersion{Group: "custom.metrics.k8s.io", Version: "v1beta1"}
	customV2   = schema.GroupVersion{Group: "custom.metrics.k8s.io", Version: "v1beta2"}
	externalV1 = schema.GroupVersion{Group: "external.metrics.k8s.io", Version: "v1beta1"}
	resourceV1 = schema.GroupVersion{Group: "metrics.k8s.io", Version: "v1beta1"}
	resourceGA = schema.GroupVersion{Group: "metrics.k8s.io", Version: "v1"}
)

// awkward strings: what JSON escapes (HTML characters, quotes, control
// characters, U+2028, invalid UTF-8) next to plain names.
var awkward = []string{"", "pod-0", "a<b>&c", `q"uo\te`, "tab\there\nnl", "\x00\x1f\x7f", "ünïcödé", "line\u2028sep\u2029", "bad\xffutf8", "emoji 🚀"}

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

func randomString(r *rand.Rand) string {
	if r.IntN(3) > 0 {
		return fmt.Sprintf("name-%d", r.IntN(1000))
	}
	return pick(r, awkward)
}

func randomQuantity(r *rand.Rand) resource.Quantity {
	switch r.IntN(6) {
	case 0:
		return *resource.NewMilliQuantity(r.Int64N(1e9)-1e8, resource.DecimalSI)
	case 1:
		return *resource.NewQuantity(r.Int64N(1<<40), resource.BinarySI)
	case 2:
		return *resource.NewScaledQuantity(r.Int64N(1e6), resource.Scale(r.IntN(20)-10))
	case 3: // parsed, canonical or not
		return resource.MustParse(pick(r, []string{"1.5", "1500m", "0.1Gi", "12e3", "1Ki", "0", "-3", "123456789012345678901234567890", "0.000000001", "2.5Mi"}))
	case 4:
		q := resource.MustParse(fmt.Sprintf("%.6f", r.Float64()))
		return *resource.NewDecimalQuantity(*q.AsDec(), resource.DecimalSI)
	}
	return resource.Quantity{}
}

func randomTime(r *rand.Rand) metav1.Time {
	if r.IntN(8) == 0 {
		return metav1.Time{}
	}
	loc := pick(r, []*time.Location{time.UTC, time.FixedZone("x", 5*3600+1800), time.Local})
	return metav1.NewTime(time.Unix(1_700_000_000+r.Int64N(1e8), r.Int64N(1e9)).In(loc))
}

func randomSelector(r *rand.Rand) *metav1.LabelSelector {
	switch r.IntN(4) {
	case 0:
		return nil
	case 1:
		return &metav1.LabelSelector{}
	}
	s := &metav1.LabelSelector{}
	if r.IntN(2) == 0 {
		s.MatchLabels = map[string]string{}
		for range r.IntN(4) {
			s.MatchLabels[randomString(r)] = randomString(r)
		}
	}
	for range r.IntN(3) {
		e := metav1.LabelSelectorRequirement{Key: randomString(r), Operator: metav1.LabelSelectorOperator(pick(r, []string{"In", "NotIn", "Exists", ""}))}
		if r.IntN(3) > 0 {
			e.Values = []string{}
			for range r.IntN(3) {
				e.Values = append(e.Values, randomString(r))
			}
		}
		s.MatchExpressions = append(s.MatchExpressions, e)
	}
	return s
}

func randomWindow(r *rand.Rand) *int64 {
	if r.IntN(4) == 0 {
		return nil
	}
	w := pick(r, []int64{0, 30, 60, 300, -1})
	return &w
}

func randomListMeta(r *rand.Rand) metav1.ListMeta {
	if r.IntN(2) == 0 {
		return metav1.ListMeta{}
	}
	//lint:ignore SA1019 the encoder writes it as the library does
	m := metav1.ListMeta{SelfLink: randomString(r), ResourceVersion: randomString(r), Continue: randomString(r)}
	if r.IntN(2) == 0 {
		n := r.Int64N(100)
		m.RemainingItemCount = &n
	}
	return m
}

func randomObjectReference(r *rand.Rand) custom_metrics.ObjectReference {
	o := custom_metrics.ObjectReference{Kind: "Pod", Namespace: randomString(r), Name: randomString(r), APIVersion: "/v1"}
	if r.IntN(4) == 0 {
		o = custom_metrics.ObjectReference{Kind: randomString(r), Name: randomString(r), UID: types.UID(randomString(r)),
			APIVersion: randomString(r), ResourceVersion: randomString(r), FieldPath: randomString(r)}
	}
	return o
}

func randomCustomList(r *rand.Rand) *custom_metrics.MetricValueList {
	l := &custom_metrics.MetricValueList{ListMeta: randomListMeta(r)}
	if r.IntN(10) == 0 {
		return l // nil items
	}
	l.Items = []custom_metrics.MetricValue{}
	sel := randomSelector(r) // shared, as promgate's answers share it
	for range r.IntN(6) {
		v := custom_metrics.MetricValue{
			DescribedObject: randomObjectReference(r),
			Metric:          custom_metrics.MetricIdentifier{Name: randomString(r), Selector: sel},
			Timestamp:       randomTime(r),
			WindowSeconds:   randomWindow(r),
			Value:           randomQuantity(r),
		}
		if r.IntN(10) == 0 {
			v.Metric.Selector = randomSelector(r)
		}
		if r.IntN(10) == 0 {
			v.TypeMeta = metav1.TypeMeta{Kind: "MetricValue", APIVersion: randomString(r)}
		}
		l.Items = append(l.Items, v)
	}
	return l
}

func randomExternalList(r *rand.Rand) *external_metrics.ExternalMetricValueList {
	l := &external_metrics.ExternalMetricValueList{ListMeta: randomListMeta(r)}
	if r.IntN(10) == 0 {
		return l
	}
	l.Items = []external_metrics.ExternalMetricValue{}
	for range r.IntN(6) {
		v := external_metrics.ExternalMetricValue{MetricName: randomString(r), Timestamp: randomTime(r), WindowSeconds: randomWindow(r), Value: randomQuantity(r)}
		if r.IntN(5) > 0 {
			v.MetricLabels = map[string]string{}
			for range r.IntN(4) {
				v.MetricLabels[randomString(r)] = randomString(r)
			}
		}
		l.Items = append(l.Items, v)
	}
	return l
}

func randomObjectMeta(r *rand.Rand, namespaced bool) metav1.ObjectMeta {
	m := metav1.ObjectMeta{Name: randomString(r), CreationTimestamp: randomTime(r)}
	if namespaced {
		m.Namespace = randomString(r)
	}
	if r.IntN(3) > 0 {
		m.Labels = map[string]string{}
		for range r.IntN(4) {
			m.Labels[randomString(r)] = randomString(r)
		}
	}
	return m
}

func randomUsage(r *rand.Rand) corev1.ResourceList {
	if r.IntN(8) == 0 {
		return nil
	}
	u := corev1.ResourceList{}
	for _, k := range []corev1.ResourceName{"cpu", "memory", "swap", corev1.ResourceName(randomString(r))} {
		if r.IntN(4) > 0 {
			u[k] = randomQuantity(r)
		}
	}
	return u
}

func randomPodMetrics(r *rand.Rand) metrics.PodMetrics {
	p := metrics.PodMetrics{ObjectMeta: randomObjectMeta(r, true), Timestamp: randomTime(r),
		Window: metav1.Duration{Duration: time.Duration(r.Int64N(int64(5 * time.Minute)))}}
	if r.IntN(8) > 0 {
		p.Containers = []metrics.ContainerMetrics{}
		for range r.IntN(4) {
			p.Containers = append(p.Containers, metrics.ContainerMetrics{Name: randomString(r), Usage: randomUsage(r)})
		}
	}
	return p
}

func randomNodeMetrics(r *rand.Rand) metrics.NodeMetrics {
	return metrics.NodeMetrics{ObjectMeta: randomObjectMeta(r, false), Timestamp: randomTime(r),
		Window: metav1.Duration{Duration: time.Duration(r.IntN(300)) * time.Second}, Usage: randomUsage(r)}
}

// TestSameAsLibrary compares the wire encoder's bytes with the library's
// for random lists of every kind and version it writes.
func TestSameAsLibrary(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			switch i % 6 {
			case 0:
				same(t, cmapiserver.Codecs, customV1, randomCustomList(r), false)
			case 1:
				same(t, cmapiserver.Codecs, customV2, randomCustomList(r), false)
			case 2:
				same(t, cmapiserver.Codecs, externalV1, randomExternalList(r), false)
			case 3:
				l := &metrics.PodMetricsList{ListMeta: randomListMeta(r)}
				for range r.IntN(5) {
					l.Items = append(l.Items, randomPodMetrics(r))
				}
				if r.IntN(3) == 0 && l.Items == nil {
					l.Items = []metrics.PodMetrics{}
				}
				same(t, metricsapi.Codecs, resourceGV(r), l, false)
			case 4:
				l := &metrics.NodeMetricsList{ListMeta: randomListMeta(r)}
				for range r.IntN(5) {
					l.Items = append(l.Items, randomNodeMetrics(r))
				}
				same(t, metricsapi.Codecs, resourceGV(r), l, false)
			case 5:
				p, n := randomPodMetrics(r), randomNodeMetrics(r)
				same(t, metricsapi.Codecs, resourceGV(r), &p, false)
				same(t, metricsapi.Codecs, resourceGV(r), &n, false)
			}
		})
	}
}

// resourceGV is one of metrics.k8s.io's versions, at random.
func resourceGV(r *rand.Rand) schema.GroupVersion {
	if r.IntN(2) == 0 {
		return resourceGA
	}
	return resourceV1
}

// TestLeftToLibrary: what the wire encoder does not write goes to the
// library, with the library's bytes.
func TestLeftToLibrary(t *testing.T) {
	withAnnotations := metrics.PodMetrics{ObjectMeta: metav1.ObjectMeta{Name: "p", Annotations: map[string]string{"a": "b"}}}
	withOwner := metrics.NodeMetricsList{Items: []metrics.NodeMetrics{{ObjectMeta: metav1.ObjectMeta{Name: "n", UID: "u"}}}}
	sharded := custom_metrics.MetricValueList{ListMeta: metav1.ListMeta{ShardInfo: &metav1.ShardInfo{Selector: "x"}}}
	for _, c := range []struct {
		name string
		ns   runtime.NegotiatedSerializer
		gv   schema.GroupVersion
		obj  runtime.Object
	}{
		{"a status", cmapiserver.Codecs, customV2, &metav1.Status{Status: metav1.StatusFailure, Message: "no", Code: 503}},
		{"an unknown version", cmapiserver.Codecs, schema.GroupVersion{Group: "custom.metrics.k8s.io", Version: "v1beta1"}, &external_metrics.ExternalMetricValueList{}},
		{"metadata it does not write", metricsapi.Codecs, resourceV1, &withAnnotations},
		{"metadata it does not write, in a list", metricsapi.Codecs, resourceV1, &withOwner},
		{"a shard's list", cmapiserver.Codecs, customV2, &sharded},
		{"metric identifier of another version", cmapiserver.Codecs, externalV1, &custom_metrics.MetricValueList{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if strings.Contains(c.name, "unknown version") || strings.Contains(c.name, "another version") {
				// the library cannot encode these either; only Append's refusal is checked
				if _, ok := Append(nil, c.obj, c.gv.String()); ok {
					t.Fatal("Append wrote an object of another group")
				}
				if _, ok := AppendProtobuf(nil, c.obj, c.gv.String()); ok {
					t.Fatal("Append wrote an object of another group")
				}
				return
			}
			same(t, c.ns, c.gv, c.obj, true)
		})
	}
}

// TestAppendKeepsPrefix: a refusal leaves the buffer as it was.
func TestAppendKeepsPrefix(t *testing.T) {
	p := metrics.PodMetrics{ObjectMeta: metav1.ObjectMeta{Name: "p", Finalizers: []string{"f"}}}
	l := &metrics.PodMetricsList{Items: []metrics.PodMetrics{{ObjectMeta: metav1.ObjectMeta{Name: "ok"}}, p}}
	for _, f := range []func([]byte, any, string) ([]byte, bool){Append, AppendProtobuf} {
		b, ok := f([]byte("prefix"), l, resourceV1.String())
		if ok || string(b) != "prefix" {
			t.Fatalf("= %q, %v; want the prefix alone, false", b, ok)
		}
	}
}

// podsAnswer is scenario A's answer: n pods of one namespace.
func podsAnswer(n int) *custom_metrics.MetricValueList {
	l := &custom_metrics.MetricValueList{}
	w := int64(60)
	now := metav1.NewTime(time.Unix(1_765_000_000, 0))
	sel := &metav1.LabelSelector{}
	for i := range n {
		q := resource.NewMilliQuantity(int64(1000+i), resource.DecimalSI)
		_ = q.String() // promgate's values carry their text (pkg/provider/custom)
		l.Items = append(l.Items, custom_metrics.MetricValue{
			DescribedObject: custom_metrics.ObjectReference{Kind: "Pod", Namespace: "ns-0", Name: fmt.Sprintf("pod-%d", i), APIVersion: "/v1"},
			Metric:          custom_metrics.MetricIdentifier{Name: "http_requests_per_second", Selector: sel},
			Timestamp:       now, WindowSeconds: &w, Value: *q,
		})
	}
	return l
}

// BenchmarkEncodePods compares the library's encoder with the wire
// encoder on a Pods answer of 300 items (v1beta2 JSON).
func BenchmarkEncodePods(b *testing.B) {
	info, _ := runtime.SerializerInfoForMediaType(cmapiserver.Codecs.SupportedMediaTypes(), runtime.ContentTypeJSON)
	pb, _ := runtime.SerializerInfoForMediaType(cmapiserver.Codecs.SupportedMediaTypes(), runtime.ContentTypeProtobuf)
	l := podsAnswer(300)
	for _, c := range []struct {
		name string
		enc  runtime.Encoder
	}{
		{"library", cmapiserver.Codecs.EncoderForVersion(info.Serializer, customV2)},
		{"wire", Negotiated(cmapiserver.Codecs).EncoderForVersion(info.Serializer, customV2)},
		{"library-protobuf", cmapiserver.Codecs.EncoderForVersion(pb.Serializer, customV2)},
		{"wire-protobuf", Negotiated(cmapiserver.Codecs).EncoderForVersion(pb.Serializer, customV2)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var n int
			for b.Loop() {
				n = len(encode(b, c.enc, l))
			}
			b.SetBytes(int64(n))
		})
	}
}

// TestKnownFields fails when a type this package writes gains or loses a
// field (a new release of the API libraries): the writers and plainListMeta
// / plainObjectMeta must then be brought up to date.
func TestKnownFields(t *testing.T) {
	for _, c := range []struct {
		v    any
		want string
	}{
		{metav1.ObjectMeta{}, "Name GenerateName Namespace SelfLink UID ResourceVersion Generation CreationTimestamp DeletionTimestamp DeletionGracePeriodSeconds Labels Annotations OwnerReferences Finalizers ManagedFields"},
		{metav1.ListMeta{}, "SelfLink ResourceVersion Continue RemainingItemCount ShardInfo"},
		{metav1.LabelSelector{}, "MatchLabels MatchExpressions"},
		{metav1.LabelSelectorRequirement{}, "Key Operator Values"},
		{custom_metrics.MetricValue{}, "TypeMeta DescribedObject Metric Timestamp WindowSeconds Value"},
		{custom_metrics.MetricIdentifier{}, "Name Selector"},
		{custom_metrics.ObjectReference{}, "Kind Namespace Name UID APIVersion ResourceVersion FieldPath"},
		{cmv1beta1.MetricValue{}, "TypeMeta DescribedObject MetricName Timestamp WindowSeconds Value Selector"},
		{cmv1beta2.MetricValue{}, "TypeMeta DescribedObject Metric Timestamp WindowSeconds Value"},
		{cmv1beta2.MetricIdentifier{}, "Name Selector"},
		{corev1.ObjectReference{}, "Kind Namespace Name UID APIVersion ResourceVersion FieldPath"},
		{external_metrics.ExternalMetricValue{}, "TypeMeta MetricName MetricLabels Timestamp WindowSeconds Value"},
		{emv1beta1.ExternalMetricValue{}, "TypeMeta MetricName MetricLabels Timestamp WindowSeconds Value"},
		{metrics.PodMetrics{}, "TypeMeta ObjectMeta Timestamp Window Containers"},
		{metrics.NodeMetrics{}, "TypeMeta ObjectMeta Timestamp Window Usage"},
		{metrics.ContainerMetrics{}, "Name Usage"},
		{mv1beta1.PodMetrics{}, "TypeMeta ObjectMeta Timestamp Window Containers"},
		{mv1beta1.NodeMetrics{}, "TypeMeta ObjectMeta Timestamp Window Usage"},
		{mv1beta1.ContainerMetrics{}, "Name Usage"},
		{mv1.PodMetrics{}, "TypeMeta ObjectMeta Timestamp Window Containers"},
		{mv1.NodeMetrics{}, "TypeMeta ObjectMeta Timestamp Window Usage"},
		{mv1.ContainerMetrics{}, "Name Usage"},
	} {
		typ := reflect.TypeOf(c.v)
		var names []string
		for f := range typ.Fields() {
			names = append(names, f.Name)
		}
		if got := strings.Join(names, " "); got != c.want {
			t.Errorf("%s has fields %q, the writers know %q", typ, got, c.want)
		}
	}
}

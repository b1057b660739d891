package wire

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	cmapiserver "sigs.k8s.io/custom-metrics-apiserver/pkg/apiserver"
)

// TestMemo: a memoized serializer writes what the serializer it wraps
// writes, for every media type and version, keeps each encoding once, and
// keeps at most maxMemoEncodings of them, charging their bytes.
func TestMemo(t *testing.T) {
	ns := Negotiated(cmapiserver.Codecs)
	r := rand.New(rand.NewPCG(3, 4))
	yaml, ok := runtime.SerializerInfoForMediaType(ns.SupportedMediaTypes(), "application/yaml")
	if !ok {
		t.Fatal("no YAML serializer")
	}
	list := randomCustomList(r)
	for len(list.Items) < 3 || ns.EncoderForVersion(yaml.Serializer, customV2).Encode(list, &bytes.Buffer{}) != nil {
		list = randomCustomList(r) // a list YAML can write (no control characters)
	}
	var charged []int64
	m := &Memo{Charge: func(n int64) { charged = append(charged, n) }}
	type way struct {
		mediaType string
		gv        schema.GroupVersion
	}
	ways := []way{
		{runtime.ContentTypeJSON, customV1}, {runtime.ContentTypeProtobuf, customV1},
		{runtime.ContentTypeJSON, customV2}, {runtime.ContentTypeProtobuf, customV2},
		{"application/yaml", customV2},
	}
	var kept int64
	for round := range 3 {
		for i, w := range ways {
			info, ok := runtime.SerializerInfoForMediaType(ns.SupportedMediaTypes(), w.mediaType)
			if !ok {
				t.Fatalf("no %s serializer", w.mediaType)
			}
			want := encode(t, ns.EncoderForVersion(info.Serializer, w.gv), list)
			got := encode(t, Memoized(ns, m).EncoderForVersion(info.Serializer, w.gv), list)
			if !bytes.Equal(got, want) {
				t.Fatalf("round %d, %s %s: memoized %q, want %q", round, w.gv, w.mediaType, got, want)
			}
			if round == 0 && i < maxMemoEncodings {
				kept += int64(len(want))
			}
		}
	}
	if len(charged) != maxMemoEncodings {
		t.Fatalf("charged %d times (%v), want once per encoding kept (%d)", len(charged), charged, maxMemoEncodings)
	}
	if got := m.Bytes(); got < kept || got != charged[len(charged)-1] {
		t.Errorf("memo holds %d bytes, last charged %d, want the %d of its encodings and their encoders' names", got, charged[len(charged)-1], kept)
	}
	// Changing the object after memoizing is what the contract forbids:
	// the memo answers with what it kept.
	list.Items = list.Items[:1]
	info, _ := runtime.SerializerInfoForMediaType(ns.SupportedMediaTypes(), runtime.ContentTypeJSON)
	if got, fresh := encode(t, Memoized(ns, m).EncoderForVersion(info.Serializer, customV1), list), encode(t, ns.EncoderForVersion(info.Serializer, customV1), list); bytes.Equal(got, fresh) {
		t.Error("the memo encoded the object again")
	}
	if _, ok := Memoized(ns, nil).(negotiated); !ok {
		t.Error("Memoized with a nil memo is not the serializer")
	}
}

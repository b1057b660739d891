package wire

import (
	"bytes"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/handlers/negotiation"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
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

// TestMemoWrite: a memo writes a kept encoding as the library's writer
// writes the object (status, Content-Type, bytes) for every Accept header
// and version, and leaves to the library what it keeps no encoding of, a
// failed negotiation and an encoding the library may compress.
func TestMemoWrite(t *testing.T) {
	ns := Negotiated(cmapiserver.Codecs)
	r := rand.New(rand.NewPCG(5, 6))
	list := randomCustomList(r)
	for len(list.Items) < 2 {
		list = randomCustomList(r)
	}
	library := func(s runtime.NegotiatedSerializer, accept string, gv schema.GroupVersion) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/apis/custom.metrics.k8s.io/"+gv.Version+"/namespaces/a/pods/*/m", nil)
		req.Header.Set("Accept", accept)
		rec := httptest.NewRecorder()
		responsewriters.WriteObjectNegotiated(s, negotiation.DefaultEndpointRestrictions, gv, rec, req, http.StatusOK, list, false)
		return rec
	}
	memo := func(m *Memo, accept string, gv schema.GroupVersion) (*httptest.ResponseRecorder, bool) {
		req := httptest.NewRequest(http.MethodGet, "/apis/custom.metrics.k8s.io/"+gv.Version+"/namespaces/a/pods/*/m", nil)
		req.Header.Set("Accept", accept)
		rec := httptest.NewRecorder()
		return rec, m.Write(rec, req, ns, gv)
	}
	for _, accept := range []string{"", "*/*", runtime.ContentTypeJSON, runtime.ContentTypeProtobuf + ", */*", "application/json;as=Table;g=meta.k8s.io;v=v1, application/json", runtime.ContentTypeProtobuf} {
		for _, gv := range []schema.GroupVersion{customV1, customV2} {
			m := &Memo{}
			if _, ok := memo(m, accept, gv); ok {
				t.Fatalf("%q %s: an empty memo wrote an answer", accept, gv)
			}
			want := library(ns, accept, gv)
			if got := library(Memoized(ns, m), accept, gv); got.Body.String() != want.Body.String() {
				t.Fatalf("%q %s: the memoized serializer wrote %q, want %q", accept, gv, got.Body, want.Body)
			}
			got, ok := memo(m, accept, gv)
			if !ok {
				t.Fatalf("%q %s: the memo did not write the encoding it keeps", accept, gv)
			}
			if got.Code != want.Code || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") || !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
				t.Errorf("%q %s: memo wrote %d %q %q, the library %d %q %q", accept, gv, got.Code, got.Header().Get("Content-Type"), got.Body, want.Code, want.Header().Get("Content-Type"), want.Body)
			}
		}
	}
	if _, ok := memo(nil, "", customV1); ok {
		t.Error("a nil memo wrote an answer")
	}
	m := &Memo{}
	library(Memoized(ns, m), runtime.ContentTypeJSON, customV1)
	if _, ok := memo(m, "text/html", customV1); ok {
		t.Error("a memo wrote an answer for a media type nothing serves")
	}
	info, _ := runtime.SerializerInfoForMediaType(ns.SupportedMediaTypes(), runtime.ContentTypeJSON)
	big := &Memo{}
	big.store(ns.EncoderForVersion(info.Serializer, customV1).Identifier(), make([]byte, compressFrom+1))
	if _, ok := memo(big, runtime.ContentTypeJSON, customV1); ok {
		t.Error("a memo wrote an encoding the library may compress")
	}
}

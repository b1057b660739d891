package wire

import (
	"io"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Negotiated returns ns with one change: the encoder it gives for its
// (non-pretty) JSON serializer and a group version writes the metrics
// lists with Append, and everything else as ns's encoder does. Install an
// API group with it in place of the library's codec factory.
func Negotiated(ns runtime.NegotiatedSerializer) runtime.NegotiatedSerializer {
	for _, info := range ns.SupportedMediaTypes() {
		if info.MediaType == runtime.ContentTypeJSON && info.Serializer != nil {
			return negotiated{NegotiatedSerializer: ns, json: info.Serializer.Identifier()}
		}
	}
	return ns
}

type negotiated struct {
	runtime.NegotiatedSerializer
	json runtime.Identifier // the JSON serializer's
}

func (n negotiated) EncoderForVersion(enc runtime.Encoder, gv runtime.GroupVersioner) runtime.Encoder {
	inner := n.NegotiatedSerializer.EncoderForVersion(enc, gv)
	v, ok := gv.(schema.GroupVersion)
	if !ok || enc.Identifier() != n.json {
		return inner
	}
	return &encoder{inner: inner, apiVersion: v.String()}
}

// encoder writes the lists Append knows in apiVersion's JSON, and passes
// every other object to inner.
type encoder struct {
	inner      runtime.Encoder
	apiVersion string
}

// buffers holds encoding buffers; ones grown past maxPooled are dropped,
// so that one large answer does not stay allocated.
var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

const maxPooled = 1 << 20

func (e *encoder) Encode(obj runtime.Object, w io.Writer) error {
	p := buffers.Get().(*[]byte)
	b, ok := Append((*p)[:0], obj, e.apiVersion)
	if !ok {
		buffers.Put(p)
		return e.inner.Encode(obj, w)
	}
	_, err := w.Write(b)
	if cap(b) <= maxPooled {
		*p = b
		buffers.Put(p)
	}
	return err
}

func (e *encoder) Identifier() runtime.Identifier {
	return e.inner.Identifier() + runtime.Identifier(",promgate-wire")
}

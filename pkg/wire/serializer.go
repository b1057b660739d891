package wire

import (
	"io"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Negotiated returns ns with one change: the encoder it gives for its
// (non-pretty) JSON or its protobuf serializer and a group version writes
// the metrics lists with Append or AppendProtobuf, and everything else as
// ns's encoder does. Install an API group with it in place of the
// library's codec factory.
func Negotiated(ns runtime.NegotiatedSerializer) runtime.NegotiatedSerializer {
	n := negotiated{NegotiatedSerializer: ns}
	for _, info := range ns.SupportedMediaTypes() {
		if info.Serializer == nil {
			continue
		}
		switch info.MediaType {
		case runtime.ContentTypeJSON:
			n.json = info.Serializer.Identifier()
		case runtime.ContentTypeProtobuf:
			n.protobuf = info.Serializer.Identifier()
		}
	}
	return n
}

type negotiated struct {
	runtime.NegotiatedSerializer
	json, protobuf runtime.Identifier // the serializers' (empty: none)
}

func (n negotiated) EncoderForVersion(enc runtime.Encoder, gv runtime.GroupVersioner) runtime.Encoder {
	inner := n.NegotiatedSerializer.EncoderForVersion(enc, gv)
	v, ok := gv.(schema.GroupVersion)
	if !ok {
		return inner
	}
	switch id := enc.Identifier(); {
	case id == n.json && id != "":
		return &encoder{inner: inner, apiVersion: v.String(), appendTo: Append}
	case id == n.protobuf && id != "":
		return &encoder{inner: inner, apiVersion: v.String(), appendTo: AppendProtobuf}
	}
	return inner
}

// encoder writes the lists appendTo knows in apiVersion, and passes every
// other object to inner.
type encoder struct {
	inner      runtime.Encoder
	apiVersion string
	appendTo   func([]byte, any, string) ([]byte, bool)
}

// buffers holds encoding buffers; ones grown past maxPooled are dropped,
// so that one large answer does not stay allocated.
var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

const maxPooled = 1 << 20

// write writes obj if appendTo knows it; false: it is inner's.
func (e *encoder) write(obj runtime.Object, w io.Writer) (bool, error) {
	p := buffers.Get().(*[]byte)
	b, ok := e.appendTo((*p)[:0], obj, e.apiVersion)
	if !ok {
		buffers.Put(p)
		return false, nil
	}
	_, err := w.Write(b)
	if cap(b) <= maxPooled {
		*p = b
		buffers.Put(p)
	}
	return true, err
}

func (e *encoder) Encode(obj runtime.Object, w io.Writer) error {
	if done, err := e.write(obj, w); done {
		return err
	}
	return e.inner.Encode(obj, w)
}

// EncodeWithAllocator is Encode; objects left to inner get the allocator
// (the protobuf serializer wants one).
func (e *encoder) EncodeWithAllocator(obj runtime.Object, w io.Writer, a runtime.MemoryAllocator) error {
	if done, err := e.write(obj, w); done {
		return err
	}
	if inner, ok := e.inner.(runtime.EncoderWithAllocator); ok {
		return inner.EncodeWithAllocator(obj, w, a)
	}
	return e.inner.Encode(obj, w)
}

func (e *encoder) Identifier() runtime.Identifier {
	return e.inner.Identifier() + runtime.Identifier(",promgate-wire")
}

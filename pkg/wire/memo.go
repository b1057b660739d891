package wire

import (
	"bytes"
	"io"
	"net/http"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/endpoints/handlers/negotiation"
)

// maxMemoEncodings bounds the encodings a Memo keeps: JSON and protobuf of
// two versions of a group. An object asked for in more ways than that is
// encoded per request for the others.
const maxMemoEncodings = 4

// A Memo keeps the encodings of one object that many requests are answered
// with (a list shared by every request that reads the same answer), by
// encoder, so that each encoder writes it once. The object must not change
// while its Memo is in use. The zero Memo is ready to use; a nil *Memo
// keeps nothing.
type Memo struct {
	// Charge, if set, is told the bytes the memo holds after each
	// encoding it keeps (the owner charges them to its memory budget).
	Charge func(bytes int64)

	mu    sync.Mutex
	ids   [maxMemoEncodings]runtime.Identifier
	enc   [maxMemoEncodings][]byte
	n     int
	bytes int64
}

// load returns the encoding kept for id.
func (m *Memo) load(id runtime.Identifier) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := 0; i < m.n; i++ {
		if m.ids[i] == id {
			return m.enc[i], true
		}
	}
	return nil, false
}

// store keeps b as id's encoding, unless the memo is full or has one.
func (m *Memo) store(id runtime.Identifier, b []byte) {
	m.mu.Lock()
	for i := 0; i < m.n; i++ {
		if m.ids[i] == id {
			m.mu.Unlock()
			return
		}
	}
	if m.n == maxMemoEncodings {
		m.mu.Unlock()
		return
	}
	m.ids[m.n], m.enc[m.n] = id, b
	m.n++
	m.bytes += int64(len(b) + len(id))
	total, charge := m.bytes, m.Charge
	m.mu.Unlock()
	if charge != nil {
		charge(total)
	}
}

// Bytes returns the bytes of the encodings kept.
func (m *Memo) Bytes() int64 {
	if m == nil {
		return 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bytes
}

// compressFrom is the size from which the library's response writer may
// compress an answer (responsewriters' defaultGzipThresholdBytes, 128 KiB):
// Write leaves larger ones to it.
const compressFrom = 128 << 10

// Write answers req with 200 and the encoding m keeps of its object for the
// media type and version req negotiates with ns, the status, Content-Type
// and bytes responsewriters.WriteObjectNegotiated writes for it, and
// reports whether it did. It does not when m keeps no such encoding, the
// negotiation fails or the encoding is one the library might compress:
// then the caller writes the object with the library (through Memoized, so
// that m keeps what is encoded). Doing without the library's writer on
// every request saves its tracing spans and buffering, 4 % of a proxied
// request's CPU (make bench's row 15).
func (m *Memo) Write(w http.ResponseWriter, req *http.Request, ns runtime.NegotiatedSerializer, gv schema.GroupVersion) bool {
	if m == nil {
		return false
	}
	_, info, err := negotiation.NegotiateOutputMediaType(req, ns, negotiation.DefaultEndpointRestrictions)
	if err != nil {
		return false
	}
	b, ok := m.load(ns.EncoderForVersion(info.Serializer, gv).Identifier())
	if !ok || len(b) > compressFrom {
		return false
	}
	w.Header().Set("Content-Type", info.MediaType)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return true
}

// Memoized returns ns whose encoders write the object they are given from
// m: the first time with ns's encoder, which m keeps, and then m's bytes.
// Give it only the encodings of m's object (one serializer per request);
// with a nil m it is ns.
func Memoized(ns runtime.NegotiatedSerializer, m *Memo) runtime.NegotiatedSerializer {
	if m == nil {
		return ns
	}
	return memoized{NegotiatedSerializer: ns, m: m}
}

type memoized struct {
	runtime.NegotiatedSerializer
	m *Memo
}

func (s memoized) EncoderForVersion(enc runtime.Encoder, gv runtime.GroupVersioner) runtime.Encoder {
	inner := s.NegotiatedSerializer.EncoderForVersion(enc, gv)
	return &memoEncoder{inner: inner, id: inner.Identifier(), m: s.m}
}

// memoEncoder writes its object's encoding from m, keeping inner's the
// first time.
type memoEncoder struct {
	inner runtime.Encoder
	id    runtime.Identifier
	m     *Memo
}

func (e *memoEncoder) Encode(obj runtime.Object, w io.Writer) error {
	if b, ok := e.m.load(e.id); ok {
		_, err := w.Write(b)
		return err
	}
	var buf bytes.Buffer
	if err := e.inner.Encode(obj, &buf); err != nil {
		return err
	}
	b := buf.Bytes()
	e.m.store(e.id, b)
	_, err := w.Write(b)
	return err
}

func (e *memoEncoder) Identifier() runtime.Identifier { return e.id }

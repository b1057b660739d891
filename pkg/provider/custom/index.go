package custom

import (
	"fmt"
	"math"
	"time"
	"unsafe"

	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/promgate/promgate/pkg/budget"
	"github.com/promgate/promgate/pkg/quantity"
)

// found is an object's sample and its value as a Quantity (or why it
// cannot be one).
type found struct {
	s   *model.Sample // nil: no sample for the object
	q   resource.Quantity
	err error
}

// foundOf converts s's value.
func foundOf(s *model.Sample) found {
	v := float64(s.Value)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return found{s: s, err: fmt.Errorf("value is %v", v)}
	}
	q, err := quantity.FromFloat(v)
	_ = q.String() // keeps its text, which every request's encoding reads
	return found{s: s, q: q, err: err}
}

// An index is one shared answer's samples by namespace and object, so that
// a request for 300 pods reads 300 entries instead of scanning the whole
// cluster's answer. An answer is recognised by identity: the query engine
// hands every request the same cached vector until it expires, so the
// index is built once per answer.
//
// Indexes are kept in the memory budget (budget.Index), keyed by backend
// and query text. The text includes the request's metricLabelSelector, so
// their number follows requests, not the configuration; each is charged
// for its map and for the answer it keeps alive, and lives at most
// indexLifetime past its building, so that an index never pins an answer
// the cache has let go of for long.
//
// Each entry holds the sample's value already converted to a Quantity:
// the conversion is done once per answer, not once per request.
type index struct {
	first *model.Sample // identity of the answer indexed
	n     int
	byObj map[objKey]int32 // into entries
	found []found
}

type objKey struct{ namespace, name string }

// indexLifetime bounds how long an index is kept: a shared answer lives at
// most --query-cache-max-ttl (1m) in the cache.
const indexLifetime = 2 * time.Minute

// indexEntryBytes is what one object costs in an index: the map's key
// (two string headers) and position, doubled for the map's slot overhead,
// and the converted value's struct (what it points to: heapBytes).
const indexEntryBytes = int64(unsafe.Sizeof(objKey{})+unsafe.Sizeof(int32(0)))*2 + int64(unsafe.Sizeof(found{}))

// heapBytes is what f holds beyond its struct: the value's text (kept by
// String), as many bytes again for its digits when it needs more than an
// int64, and an error's message.
func (f *found) heapBytes() int64 {
	c := f.q // String caches in its receiver: never in f, which is shared
	n := 2 * int64(len(c.String()))
	if f.err != nil {
		n += int64(len(f.err.Error()))
	}
	return n
}

// indexOf returns the index of vec, the answer of query sent to backend,
// from b, building (and keeping) it when vec is not the answer indexed
// last.
func indexOf(b *budget.Budget, backend, query string, vec model.Vector, nsLabel, resourceLabel string) *index {
	if v, ok := b.GetIn(budget.Index, backend, query); ok {
		if idx := v.(*index); len(vec) > 0 && idx.first == vec[0] && idx.n == len(vec) {
			return idx
		}
	}
	idx := &index{n: len(vec), byObj: make(map[objKey]int32, len(vec)), found: make([]found, 0, len(vec))}
	if len(vec) > 0 {
		idx.first = vec[0]
	}
	size := int64(len(vec))*indexEntryBytes + budget.VectorSize(vec)
	for _, s := range vec {
		k := objKey{name: string(s.Metric[model.LabelName(resourceLabel)])}
		if nsLabel != "" {
			k.namespace = string(s.Metric[model.LabelName(nsLabel)])
		}
		f := foundOf(s)
		size += f.heapBytes()
		if i, ok := idx.byObj[k]; ok {
			idx.found[i] = f // as prometheus-adapter: the last sample for an object wins
			continue
		}
		idx.byObj[k] = int32(len(idx.found))
		idx.found = append(idx.found, f)
	}
	b.PutIn(budget.Index, backend, query, idx, size, time.Now().Add(indexLifetime))
	return idx
}

// lookup returns the sample of object name, in namespace when the answer
// spans namespaces (byNamespace) and otherwise whatever its namespace
// label says (the query selected the namespace).
func (idx *index) lookup(namespace, name string, byNamespace bool) (found, bool) {
	if i, ok := idx.byObj[objKey{namespace, name}]; ok {
		return idx.found[i], true
	}
	if byNamespace {
		return found{}, false
	}
	// One namespace was selected by the query: the samples' namespace
	// label, if any, is that namespace or absent.
	if i, ok := idx.byObj[objKey{"", name}]; ok {
		return idx.found[i], true
	}
	return found{}, false
}

package custom

import (
	"time"
	"unsafe"

	"github.com/prometheus/common/model"

	"github.com/promgate/promgate/pkg/budget"
)

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
type index struct {
	first *model.Sample // identity of the answer indexed
	n     int
	byObj map[objKey]*model.Sample
}

type objKey struct{ namespace, name string }

// indexLifetime bounds how long an index is kept: a shared answer lives at
// most --query-cache-max-ttl (1m) in the cache.
const indexLifetime = 2 * time.Minute

// indexEntryBytes is what one object costs in an index's map: the key's
// two string headers, the pointer, and the map's slot overhead.
const indexEntryBytes = int64(unsafe.Sizeof(objKey{})+unsafe.Sizeof(&model.Sample{})) * 2

// indexOf returns the index of vec, the answer of query, from b, building
// (and keeping) it when vec is not the answer indexed last.
func indexOf(b *budget.Budget, query string, vec model.Vector, nsLabel, resourceLabel string) *index {
	if v, ok := b.Get(budget.Index, query); ok {
		if idx := v.(*index); len(vec) > 0 && idx.first == vec[0] && idx.n == len(vec) {
			return idx
		}
	}
	idx := &index{n: len(vec), byObj: make(map[objKey]*model.Sample, len(vec))}
	if len(vec) > 0 {
		idx.first = vec[0]
	}
	for _, s := range vec {
		k := objKey{name: string(s.Metric[model.LabelName(resourceLabel)])}
		if nsLabel != "" {
			k.namespace = string(s.Metric[model.LabelName(nsLabel)])
		}
		idx.byObj[k] = s // as prometheus-adapter: the last sample for an object wins
	}
	b.Put(budget.Index, query, idx, int64(len(vec))*indexEntryBytes+budget.VectorSize(vec), time.Now().Add(indexLifetime))
	return idx
}

// lookup returns the sample of object name, in namespace when the answer
// spans namespaces (byNamespace) and otherwise whatever its namespace
// label says (the query selected the namespace).
func (idx *index) lookup(namespace, name string, byNamespace bool) (*model.Sample, bool) {
	if byNamespace {
		s, ok := idx.byObj[objKey{namespace, name}]
		return s, ok
	}
	// One namespace was selected by the query: the samples' namespace
	// label, if any, is that namespace or absent.
	if s, ok := idx.byObj[objKey{namespace, name}]; ok {
		return s, true
	}
	s, ok := idx.byObj[objKey{"", name}]
	return s, ok
}

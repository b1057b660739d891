package custom

import (
	"sync"

	"github.com/prometheus/common/model"
)

// indexes remembers, per shared query, an index of its latest answer by
// namespace and object, so that a request for 300 pods reads 300 entries
// instead of scanning the whole cluster's answer. An answer is recognised
// by identity: the query engine hands every request the same cached
// vector until it expires, so the index is built once per answer.
type indexes struct {
	mu sync.Mutex
	m  map[string]*index
}

// maxIndexes bounds the remembered indexes (shared queries are one per
// metric and metric selector); when full, the memory starts over.
const maxIndexes = 256

// index is one answer's samples by namespace and object.
type index struct {
	first *model.Sample // identity of the answer indexed
	n     int
	byObj map[objKey]*model.Sample
}

type objKey struct{ namespace, name string }

// get returns the index of vec, the answer of query, building it when vec
// is not the answer indexed last.
func (x *indexes) get(query string, vec model.Vector, nsLabel, resourceLabel string) *index {
	x.mu.Lock()
	defer x.mu.Unlock()
	if idx, ok := x.m[query]; ok && len(vec) > 0 && idx.first == vec[0] && idx.n == len(vec) {
		return idx
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
	if x.m == nil || len(x.m) >= maxIndexes {
		x.m = map[string]*index{}
	}
	x.m[query] = idx
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

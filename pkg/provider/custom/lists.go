package custom

import (
	"slices"
	"time"
	"unsafe"
	"weak"

	"k8s.io/metrics/pkg/apis/custom_metrics"

	"github.com/promgate/promgate/pkg/budget"
	"github.com/promgate/promgate/pkg/wire"
)

// A sharedList is the list of values requests read from one shared answer
// (an index) for one namespace, object list and metric. Every poll of a
// namespace's HPAs reads the same list until the answer, the namespace's
// objects or the metric's resolution change, and building it (300 values)
// and encoding it cost more than the rest of such a request (make bench's
// row 15, 2026-12-07: 18 % and 12 % of promgate's CPU). It is kept in the
// memory budget (budget.List), with its encodings (wire.Memo), and is
// read-only once kept.
type sharedList struct {
	// What the list was built from: the index (one answer) and the
	// resolution by identity, the object names (objects.Cache hands out
	// the same slice until a namespace's objects change, so that identity
	// mostly decides; else they are compared) and the answer's window. The
	// index is held weakly: a list must not keep an answer alive that the
	// budget let go of (its bytes are charged to the index, not the list).
	idx    weak.Pointer[index]
	names  []string
	res    *resolution
	window int64 // -1: none

	list *custom_metrics.MetricValueList
	enc  wire.Memo
}

// listLifetime bounds how long a list is kept: its index lives at most
// indexLifetime.
const listLifetime = indexLifetime

// listKey is the budget key of the list a request reads in its query's
// scope: the namespace and label selector (which chose the names), the
// metric (resource and name) and the metric selector as the request gave
// it (echoed in every value).
func listKey(pl *plan, selector, metricSelector string) string {
	return pl.namespace + "\x00" + selector + "\x00" + pl.info.GroupResource.String() + "\x00" + pl.info.Metric + "\x00" + metricSelector
}

func windowOf(w *int64) int64 {
	if w == nil {
		return -1
	}
	return *w
}

// listOf returns the list kept under key for these inputs, if any.
func listOf(b *budget.Budget, query, key string, idx *index, names []string, res *resolution, window *int64) (*sharedList, bool) {
	v, ok := b.GetIn(budget.List, query, key)
	if !ok {
		return nil, false
	}
	l := v.(*sharedList)
	if l.idx.Value() != idx || l.res != res || l.window != windowOf(window) || !sameNames(l.names, names) {
		return nil, false
	}
	return l, true
}

// sameNames reports whether a and b hold the same names.
func sameNames(a, b []string) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0] || slices.Equal(a, b))
}

// listItemBytes is what one value costs in a kept list besides its name:
// the struct (its reference's kind and version, the metric's name and
// selector and the window are shared by every value of a list).
const listItemBytes = int64(unsafe.Sizeof(custom_metrics.MetricValue{}))

// keepList keeps list, built from these inputs, under key, charging the
// budget for its values and, as they are written, its encodings.
func keepList(b *budget.Budget, query, key string, idx *index, names []string, res *resolution, window *int64, list *custom_metrics.MetricValueList) *sharedList {
	l := &sharedList{idx: weak.Make(idx), names: names, res: res, window: windowOf(window), list: list}
	size := int64(unsafe.Sizeof(*l)) + int64(len(list.Items))*listItemBytes
	for i := range list.Items {
		size += int64(len(list.Items[i].DescribedObject.Name))
	}
	expires := time.Now().Add(listLifetime)
	l.enc.Charge = func(encoded int64) {
		// Kept again with its new size (unless it has been let go of).
		if v, ok := b.GetIn(budget.List, query, key); ok && v == l {
			b.PutIn(budget.List, query, key, l, size+encoded, expires)
		}
	}
	b.PutIn(budget.List, query, key, l, size, expires)
	return l
}

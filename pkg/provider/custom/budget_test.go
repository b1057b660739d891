package custom

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/promgate/promgate/pkg/budget"
	"github.com/promgate/promgate/pkg/internal/kubetest"
	"github.com/promgate/promgate/pkg/provider"
)

// wideQuerier answers every query with the same answer of n pods, as the
// query engine hands every caller the one cached answer of a shared query.
type wideQuerier struct {
	vec model.Vector

	mu      sync.Mutex
	longest int // the longest query text received
}

func newWideQuerier(n int) *wideQuerier {
	vec := make(model.Vector, n)
	for i := range vec {
		pod := fmt.Sprintf("pod-%06d", i)
		if i < 3 {
			pod = []string{"a", "b", "c"}[i] // the fixture's pods of ns1
		}
		vec[i] = &model.Sample{
			Metric:    model.Metric{"namespace": "ns1", "pod": model.LabelValue(pod)},
			Value:     1,
			Timestamp: model.TimeFromUnixNano(now.UnixNano()),
		}
	}
	return &wideQuerier{vec: vec}
}

func (q *wideQuerier) Query(_ context.Context, text string, _ time.Time) (model.Vector, error) {
	q.mu.Lock()
	q.longest = max(q.longest, len(text))
	q.mu.Unlock()
	return q.vec, nil
}

// TestSelectorLimits: a metricLabelSelector over the limits is a 400 that
// names the limit, before any query is built; one at the limits is served.
func TestSelectorLimits(t *testing.T) {
	tests := []struct {
		name       string
		values     int
		valueBytes int
		want       string // in the 400's message; "" for served
	}{
		{"8,000 values, as kube-apiserver lets through", 8000, 12, "has 8000 values; at most 100"},
		{"one value too many", provider.MaxSelectorValues + 1, 8, "at most 100 are accepted"},
		{"at both limits", provider.MaxSelectorValues, 38, ""},
		{"too many bytes", provider.MaxSelectorValues, 63, "is 6408 bytes long; at most 4096 are accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			q := newWideQuerier(10)
			f.p.run.Backends = provider.Single(q)
			_, err := f.p.GetMetricBySelector(context.Background(), "ns1", labels.Everything(), podsInfo, kubetest.WideSelector(t, "status", 0, tt.values, tt.valueBytes))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "metricLabelSelector") {
				t.Fatalf("error %v; want a 400 naming metricLabelSelector and %q", err, tt.want)
			}
			if q.longest != 0 {
				t.Errorf("a query of %d bytes was sent", q.longest)
			}
		})
	}
}

// TestRequestMemoryStaysInBudget is the hostile caller of the custom API:
// many requests for one metric, each with a distinct metricLabelSelector
// at the limits, guard on, answers shared. The guarded queries and the
// indexes of the 20,000-pod answer they make promgate remember stay within
// the budget, and the heap grows by about the budget, not by what the
// requests ask for (before, the guarded texts and one index per selector
// were kept beside it: 40 selectors kept 418 MiB of indexes).
func TestRequestMemoryStaysInBudget(t *testing.T) {
	const (
		requests = 60
		limit    = 48 << 20
	)
	f := newFixture(t)
	q := newWideQuerier(20000)
	f.p.run.Backends = provider.Single(q)
	f.p.run.Windows = provider.GuardStrict
	f.p.Batch = true
	f.p.run.Budget = budget.New(limit)

	before := heapInUse()
	for i := range requests {
		sel := kubetest.WideSelector(t, "status", i, provider.MaxSelectorValues, 38)
		list, err := f.p.GetMetricBySelector(context.Background(), "ns1", labels.Everything(), podsInfo, sel)
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Items) != 3 {
			t.Fatalf("%d items, want the 3 pods of ns1 the objects list", len(list.Items))
		}
	}
	grown := heapInUse() - before
	for _, k := range []budget.Kind{budget.Guarded, budget.Index} {
		bytes, n := f.p.run.Budget.Usage(k)
		t.Logf("budget: %s %d entries, %d kB", k, n, bytes>>10)
	}
	t.Logf("%d requests: heap grew %d MiB; budget %d MiB holds %d; longest query %d kB",
		requests, grown>>20, limit>>20, f.p.run.Budget.Bytes()>>20, q.longest>>10)
	if f.p.run.Budget.Bytes() > limit {
		t.Errorf("the budget holds %d bytes, over its %d", f.p.run.Budget.Bytes(), limit)
	}
	if _, n := f.p.run.Budget.Usage(budget.Index); n == 0 {
		t.Error("no index kept: the test does not reach the shared path")
	}
	if _, n := f.p.run.Budget.Usage(budget.Guarded); n == 0 {
		t.Error("no guarded query kept: the test does not reach the guard")
	}
	// The answer itself (shared, 20,000 samples) is held by the querier;
	// the rest must fit the budget, with room for estimates. (Before, with
	// the indexes beside the budget: +100 MiB for these 60 requests.)
	if grown > limit+16<<20 {
		t.Errorf("heap grew %d MiB for %d requests, over the %d MiB budget and 16 MiB", grown>>20, requests, limit>>20)
	}
	if q.longest > 256<<10 {
		t.Errorf("a query of %d kB was sent; the selector limits should keep it under 256 kB", q.longest>>10)
	}
}

// heapInUse returns the live heap after a collection.
func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

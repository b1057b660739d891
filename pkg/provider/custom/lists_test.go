package custom

import (
	"context"
	"reflect"
	"runtime"
	"testing"

	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/metrics/pkg/apis/custom_metrics"

	"github.com/promgate/promgate/pkg/budget"
	"github.com/promgate/promgate/pkg/internal/kubetest"
	"github.com/promgate/promgate/pkg/provider"
)

// TestSharedLists: requests that read the same shared answer for the same
// namespace, objects and metric get the same list and encodings memo; a
// change of any of them (the answer, the objects, the label or metric
// selector) gives a new list; the library's chain gets a copy; the lists
// are charged to the budget.
func TestSharedLists(t *testing.T) {
	f := newFixture(t)
	q := newWideQuerier(10)
	f.p.run.Backends = provider.Single(q)
	f.p.Batch = true
	f.p.run.Budget = budget.New(64 << 20)
	ctx := context.Background()
	get := func(sel, msel string) (*custom_metrics.MetricValueList, bool) {
		t.Helper()
		l, m, err := f.p.SharedMetricBySelector(ctx, "ns1", mustSelector(t, sel), podsInfo, mustSelector(t, msel))
		if err != nil {
			t.Fatal(err)
		}
		return l, m != nil
	}
	first, shared := get("", "")
	if !shared || len(first.Items) != 3 {
		t.Fatalf("%d items, shared %v; want the 3 pods of ns1, shared", len(first.Items), shared)
	}
	if again, _ := get("", ""); again != first {
		t.Error("the same request got a new list")
	}
	if bytes, n := f.p.run.Budget.Usage(budget.List); n != 1 || bytes < 3*listItemBytes {
		t.Errorf("budget: %d lists of %d bytes, want 1 charged for its 3 values", n, bytes)
	}
	for _, c := range []struct{ name, sel, msel string }{
		{"another label selector", "app=web", ""},
		{"another metric selector", "", "status=x"},
	} {
		if l, _ := get(c.sel, c.msel); l == first {
			t.Errorf("%s: the same list", c.name)
		}
	}
	// The chain's copy: equal, but not the shared list or its items.
	lib, err := f.p.GetMetricBySelector(ctx, "ns1", labels.Everything(), podsInfo, labels.Everything())
	if err != nil || lib == first || &lib.Items[0] == &first.Items[0] || !reflect.DeepEqual(lib.Items, first.Items) {
		t.Errorf("the chain's list: %v, shared %v, equal %v", err, lib == first, err == nil && reflect.DeepEqual(lib.Items, first.Items))
	}
	// A new object in the namespace, then a new answer.
	f.objects.Add(kubetest.Object{Resource: kubetest.Pods, Namespace: "ns1", Name: "d"})
	withD, _ := get("", "")
	if withD == first {
		t.Error("a new object: the same list")
	}
	if again, _ := get("", ""); again != withD {
		t.Error("names equal but not the same slice: a new list")
	}
	q.vec = append(model.Vector(nil), q.vec...)
	q.vec[0] = &model.Sample{Metric: q.vec[0].Metric, Value: 7, Timestamp: q.vec[0].Timestamp}
	l, _ := get("", "")
	if l == withD || l.Items[0].Value.String() != "7" {
		t.Errorf("a new answer: same list %v, first value %s", l == withD, l.Items[0].Value.String())
	}
}

// TestSharedListDoesNotPinIndex: a list kept in the budget does not keep
// its index, and with it the answer, alive: their bytes are the index's
// entry's, which the budget may let go of first.
func TestSharedListDoesNotPinIndex(t *testing.T) {
	b := budget.New(1 << 20)
	idx := &index{n: 1, byObj: map[objKey]int32{{"ns", "a"}: 0}, found: make([]found, 1)}
	l := keepList(b, "q", "k", idx, []string{"a"}, nil, nil, &custom_metrics.MetricValueList{})
	if got, ok := listOf(b, "q", "k", idx, []string{"a"}, nil, nil); !ok || got != l {
		t.Fatal("the list is not found for its index")
	}
	idx = nil
	runtime.GC()
	if l.idx.Value() != nil {
		t.Error("a kept list keeps its index alive")
	}
}

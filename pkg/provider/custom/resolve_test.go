package custom

import (
	"context"
	"sync/atomic"
	"testing"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/rules"
)

// countingMapper counts the lookups that reach the RESTMapper.
type countingMapper struct {
	apimeta.RESTMapper
	n atomic.Int64
}

func (m *countingMapper) ResourceFor(r schema.GroupVersionResource) (schema.GroupVersionResource, error) {
	m.n.Add(1)
	return m.RESTMapper.ResourceFor(r)
}

func (m *countingMapper) KindFor(r schema.GroupVersionResource) (schema.GroupVersionKind, error) {
	m.n.Add(1)
	return m.RESTMapper.KindFor(r)
}

// What the REST mapper says about a metric is looked up once, not per
// request, and again after the catalog changes.
func TestResolutionsAreReused(t *testing.T) {
	cfg, err := config.Parse([]byte(benchConfig))
	if err != nil {
		t.Fatal(err)
	}
	custom, _, err := rules.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper := &countingMapper{RESTMapper: benchMapper()}
	p, _ := benchProviderWith(t, custom, mapper, benchVector(2, benchPods))
	get := func() {
		t.Helper()
		list, err := p.GetMetricBySelector(context.Background(), "ns-1", labels.Everything(), benchInfo, labels.Everything())
		if err != nil || len(list.Items) != benchPods || list.Items[0].DescribedObject.Kind != "Pod" || list.Items[0].DescribedObject.APIVersion != "v1" {
			t.Fatalf("GetMetricBySelector: %v, %+v", err, list)
		}
	}
	get()
	first := mapper.n.Load()
	if first == 0 {
		t.Fatal("the mapper was not asked")
	}
	for range 5 {
		get()
	}
	if n := mapper.n.Load(); n != first {
		t.Errorf("5 more requests made %d more mapper lookups, want 0", n-first)
	}
	// A new snapshot (the next discovery) is resolved afresh.
	p.catalog.(*catalog.Discoverer).Refresh(context.Background())
	get()
	if n := mapper.n.Load(); n != 2*first {
		t.Errorf("after a refresh: %d lookups, want %d", n-first, first)
	}
}

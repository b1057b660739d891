package query

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

// benchBackend answers every query at once with the same vector.
type benchBackend struct{ vec model.Vector }

func (b benchBackend) Query(context.Context, string, time.Time) (model.Vector, error) {
	return b.vec, nil
}

// BenchmarkEngineUncached is the engine's own cost for a query that
// reaches the backend (TTL 0: coalescing, the concurrency limit, the
// deadline), from parallel callers; BenchmarkEngineCached is the cache hit.
func BenchmarkEngineUncached(b *testing.B) {
	e := New(benchBackend{vec: model.Vector{{Metric: model.Metric{"pod": "a"}, Value: 1}}}, Options{TTL: 0})
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if v, err := e.Query(ctx, `sum(rate(http_requests_total{pod!=""}[1m])) by (namespace,pod)`, time.Time{}); err != nil || len(v) != 1 {
				b.Fatal(v, err)
			}
		}
	})
}

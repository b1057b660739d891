package prom

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/promgate/promgate/pkg/internal/promtest"
)

func TestQuerySamples(t *testing.T) {
	srv := promtest.New(t)
	// A range-vector selector in an instant query, as Prometheus answers it.
	srv.QueryReply(`up{job="a"}[1m]`, promtest.Success(map[string]any{"resultType": "matrix", "result": []any{
		map[string]any{"metric": map[string]string{"__name__": "up", "job": "a"}, "values": []any{
			[]any{1700000000.123, "1"}, []any{1700000015.123, "1"}, []any{1700000030.123, "0"},
		}},
	}}))
	srv.Vector(`up`)
	srv.QueryReply(`big[1m]`, promtest.Success(map[string]any{"resultType": "matrix", "result": []any{
		map[string]any{"metric": map[string]string{"a": "1"}, "values": []any{[]any{1, "1"}, []any{2, "1"}}},
		map[string]any{"metric": map[string]string{"a": "2"}, "values": []any{[]any{1, "1"}}},
	}}))
	ctx := context.Background()

	m, err := newClient(t, srv, Options{}).QuerySamples(ctx, `up{job="a"}[1m]`, time.Unix(1700000031, 0))
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 1 || m[0].Metric["job"] != "a" || len(m[0].Values) != 3 ||
		m[0].Values[1].Timestamp != model.TimeFromUnixNano(1700000015123*1e6) || m[0].Values[2].Value != 0 {
		t.Errorf("matrix = %v", m)
	}
	if _, err := newClient(t, srv, Options{}).QuerySamples(ctx, `up`, time.Time{}); KindOf(err) != InvalidResponse ||
		err.Error() != "prometheus backend "+srv.URL+`: query failed: query "up" returned a vector, want a matrix` {
		t.Errorf("a vector: %v", err)
	}
	lc := newClient(t, srv, Options{}).WithLimits(Limits{MaxSamples: 2})
	if _, err := lc.QuerySamples(ctx, `big[1m]`, time.Time{}); KindOf(err) != TooLarge {
		t.Errorf("3 samples over a limit of 2: %v (kind %q), want too large", err, KindOf(err))
	}
	if _, err := newClient(t, srv, Options{}).WithLimits(Limits{MaxSamples: 3}).QuerySamples(ctx, `big[1m]`, time.Time{}); err != nil {
		t.Errorf("3 samples within a limit of 3: %v", err)
	}
}

package external

import (
	"context"
	"fmt"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promgate/promgate/pkg/budget"
	"github.com/promgate/promgate/pkg/internal/kubetest"
	"github.com/promgate/promgate/pkg/provider"
)

// TestSelectorLimits: a labelSelector over the limits is a 400 that names
// the limit, before any query is sent; one at the limits is served.
func TestSelectorLimits(t *testing.T) {
	info := cmprovider.ExternalMetricInfo{Metric: "queue_depth"}
	tests := []struct {
		name       string
		values     int
		valueBytes int
		want       string // in the 400's message; "" for served
	}{
		{"8,000 values", 8000, 12, "labelSelector has 8000 values; at most 100"},
		{"one value too many", provider.MaxSelectorValues + 1, 8, "at most 100 are accepted"},
		{"at both limits", provider.MaxSelectorValues, 38, ""},
		{"too many bytes", provider.MaxSelectorValues, 63, "labelSelector is 6407 bytes long; at most 4096 are accepted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, testConfig)
			_, err := f.p.GetExternalMetric(context.Background(), "ns1", kubetest.WideSelector(t, "queue", 0, tt.values, tt.valueBytes), info)
			if tt.want == "" {
				if len(f.srv.Queries()) != 1 {
					t.Fatalf("queries %q, want the one query (err %v)", f.srv.Queries(), err)
				}
				return
			}
			if !apierrors.IsBadRequest(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v; want a 400 with %q", err, tt.want)
			}
			if qs := f.srv.Queries(); len(qs) != 0 {
				t.Errorf("queries sent: %d", len(qs))
			}
		})
	}
}

// TestSharingDecisionsInBudget: sharing decisions are remembered per
// selector shape, and shapes come from requests (label names of the
// caller's choosing); they are kept within the budget, and reused.
func TestSharingDecisionsInBudget(t *testing.T) {
	const limit = 128 << 10
	f := newFixture(t, testConfig)
	f.p.Batch = true
	f.p.run.Budget = budget.New(limit)
	info := cmprovider.ExternalMetricInfo{Metric: "queue_depth"}
	for i := range 500 {
		// A distinct shape each time: a label name of 60 bytes.
		key := fmt.Sprintf("l%059d", i)
		if _, err := f.p.GetExternalMetric(context.Background(), "ns1", kubetest.WideSelector(t, key, i, 1, 8), info); err != nil && !apierrors.IsServiceUnavailable(err) {
			t.Fatal(err)
		}
	}
	bytes, n := f.p.run.Budget.Usage(budget.Sharing)
	t.Logf("500 shapes: %d decisions kept, %d kB; budget %d kB", n, bytes>>10, limit>>10)
	if f.p.run.Budget.Bytes() > limit || n == 0 || n == 500 {
		t.Errorf("%d decisions, %d bytes kept in a budget of %d: want some, within it", n, f.p.run.Budget.Bytes(), limit)
	}
	// A shape asked again is decided from the budget: the shared query is
	// sent without building the request's own.
	f.srv.Reset()
	_, _ = f.p.GetExternalMetric(context.Background(), "ns1", kubetest.WideSelector(t, "queue", 1, 1, 8), info)
	_, _ = f.p.GetExternalMetric(context.Background(), "ns1", kubetest.WideSelector(t, "queue", 2, 1, 8), info)
	if qs := f.srv.Queries(); len(qs) != 2 || qs[0] != qs[1] || strings.Contains(qs[0], "queue=") {
		t.Errorf("queries %q, want the shared query twice", qs)
	}
}

package catalog

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/rules"
)

// TestSetRules: new rules take effect with the next discovery; until it has
// finished, the snapshot of the old rules keeps serving.
func TestSetRules(t *testing.T) {
	srv, d := setup(t, `
rules:
- seriesQuery: 'a_total{namespace!=""}'
  resources: {overrides: {namespace: {resource: namespace}}}
`)
	srv.Series(`a_total{namespace!=""}`, map[string]string{"__name__": "a_total", "namespace": "ns1"})
	srv.Series(`b_total{namespace!=""}`, map[string]string{"__name__": "b_total", "namespace": "ns1"})
	d.Refresh(context.Background())
	names := func() []string {
		var out []string
		for _, m := range d.Snapshot().CustomMetrics() {
			out = append(out, m.Metric)
		}
		return out
	}
	if got := names(); !slices.Equal(got, []string{"a_total"}) {
		t.Fatalf("before: %v", got)
	}
	cfg, err := config.Parse([]byte(`
rules:
- seriesQuery: 'b_total{namespace!=""}'
  resources: {overrides: {namespace: {resource: namespace}}}
`))
	if err != nil {
		t.Fatal(err)
	}
	custom, external, err := rules.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.SetRules(custom, external)
	if got := names(); !slices.Equal(got, []string{"a_total"}) {
		t.Errorf("after SetRules, before discovery: %v, want the old snapshot", got)
	}
	d.Refresh(context.Background())
	if got := names(); !slices.Equal(got, []string{"b_total"}) {
		t.Errorf("after discovery: %v", got)
	}
	if len(d.last) != 1 {
		t.Errorf("results kept for %d series queries, want the one still configured", len(d.last))
	}
}

// TestEmptyAnswerKeepsSeries: a seriesQuery whose answer turns empty (a
// Prometheus that just restarted) keeps its series for the grace period,
// then lets them go.
func TestEmptyAnswerKeepsSeries(t *testing.T) {
	srv, d := setup(t, `
rules:
- seriesQuery: 'a_total{namespace!=""}'
  resources: {overrides: {namespace: {resource: namespace}}}
`)
	srv.Series(`a_total{namespace!=""}`, map[string]string{"__name__": "a_total", "namespace": "ns1"})
	ctx := context.Background()
	if n := len(d.Refresh(ctx).CustomMetrics()); n != 1 {
		t.Fatalf("%d metrics, want 1", n)
	}
	srv.Series(`a_total{namespace!=""}`)
	if n := len(d.Refresh(ctx).CustomMetrics()); n != 1 {
		t.Errorf("after an empty answer: %d metrics, want the last non-empty result kept", n)
	}
	// Past the grace period the series are gone.
	d.mu.Lock()
	for q, r := range d.last {
		r.at = r.at.Add(-d.emptyGrace() - time.Second)
		d.last[q] = r
	}
	d.mu.Unlock()
	if n := len(d.Refresh(ctx).CustomMetrics()); n != 0 {
		t.Errorf("after the grace period: %d metrics, want 0", n)
	}
}

package catalog

import (
	"context"
	"testing"
	"time"

	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/internal/kubetest"
	"github.com/promgate/promgate/pkg/internal/promtest"
	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/rules"
)

// TestBackends: each rule lists its series from its own backend, the same
// seriesQuery on two backends is two discovery calls, and a backend that
// fails keeps only its own rules at their last good result.
func TestBackends(t *testing.T) {
	cfg, err := config.Parse([]byte(`
backends:
- {name: other, url: "http://other:9090"}
externalRules:
- seriesQuery: '{__name__=~"^queue_.*"}'
- seriesQuery: '{__name__=~"^queue_.*"}'
  name: {matches: "^queue_(.*)$", as: "other_$1"}
  backend: other
`))
	if err != nil {
		t.Fatal(err)
	}
	_, external, err := rules.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	def, other := promtest.New(t), promtest.New(t)
	const q = `{__name__=~"^queue_.*"}`
	def.Series(q, map[string]string{"__name__": "queue_depth", "queue": "a"})
	other.Series(q, map[string]string{"__name__": "queue_age", "queue": "b"})
	client := func(url string) *prom.Client {
		c, err := prom.New(prom.Options{URL: url, Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	d := New(nil, external, listerMap{config.DefaultBackend: client(def.URL), "other": client(other.URL)}, kubetest.Mapper(), 10*time.Minute)
	snap := d.Refresh(context.Background())
	got := map[string]string{}
	for _, m := range snap.ExternalMetrics() {
		e, _ := snap.ExternalEntry(m.Metric)
		got[m.Metric] = e.Rule.Backend
	}
	want := map[string]string{"queue_depth": "default", "other_age": "other"}
	if len(got) != len(want) || got["queue_depth"] != "default" || got["other_age"] != "other" {
		t.Fatalf("metrics by backend %v, want %v", got, want)
	}
	if n := len(def.SeriesMatches()) + len(other.SeriesMatches()); n != 2 {
		t.Errorf("%d series calls, want one per backend", n)
	}

	other.SeriesReply(q, promtest.Error(503, "unavailable", "store down"))
	def.Series(q, map[string]string{"__name__": "queue_depth", "queue": "a"}, map[string]string{"__name__": "queue_size", "queue": "a"})
	snap = d.Refresh(context.Background())
	if _, ok := snap.ExternalEntry("other_age"); !ok {
		t.Error("other's metric is gone while other fails: want its last good result kept")
	}
	if _, ok := snap.ExternalEntry("queue_size"); !ok {
		t.Error("the default backend's new metric is missing while other fails")
	}
	if rep := snap.Reports[1]; rep.Backend != "other" || rep.Err == "" {
		t.Errorf("other's report: backend %q, error %q: want other and its failure", rep.Backend, rep.Err)
	}
}

// listerMap is Listers by backend name.
type listerMap map[string]SeriesLister

func (m listerMap) Lister(backend string) (SeriesLister, bool) {
	l, ok := m[backend]
	return l, ok
}

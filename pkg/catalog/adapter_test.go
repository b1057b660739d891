package catalog

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/rules"
)

// adapterMapper is the cluster of testdata/adapter: the harness that made
// the golden files (testdata/adapter/harness) has the same.
func adapterMapper() apimeta.RESTMapper {
	core := schema.GroupVersion{Version: "v1"}
	gvs := []schema.GroupVersion{core, {Group: "apps", Version: "v1"}, {Group: "batch", Version: "v1"},
		{Group: "networking.k8s.io", Version: "v1"}, {Group: "storage.k8s.io", Version: "v1"}, {Group: "cheese.io", Version: "v1"}}
	m := apimeta.NewDefaultRESTMapper(gvs)
	ns, root := apimeta.RESTScopeNamespace, apimeta.RESTScopeRoot
	for _, k := range []struct {
		gv   schema.GroupVersion
		kind string
		s    apimeta.RESTScope
	}{
		{core, "Pod", ns}, {core, "Service", ns}, {core, "Namespace", root}, {core, "Node", root},
		{core, "PersistentVolume", root}, {core, "PersistentVolumeClaim", ns},
		{gvs[1], "Deployment", ns}, {gvs[1], "StatefulSet", ns}, {gvs[2], "Job", ns},
		{gvs[3], "Ingress", ns}, {gvs[4], "StorageClass", root}, {gvs[5], "Brand", ns},
	} {
		m.Add(k.gv.WithKind(k.kind), k.s)
	}
	return m
}

// universeLister answers /api/v1/series from a fixed list of series, in
// its order, selecting them as Prometheus does.
type universeLister []map[string]string

func (u universeLister) Series(_ context.Context, match string, _, _ time.Time, fn prom.SeriesFunc) error {
	ms, err := parser.NewParser(parser.Options{}).ParseMetricSelector(match)
	if err != nil {
		return err
	}
next:
	for _, s := range u {
		for _, m := range ms {
			if !m.Matches(s[m.Name]) {
				continue next
			}
		}
		var ls []prom.Label
		for k, v := range s {
			if k != "__name__" {
				ls = append(ls, prom.Label{Name: k, Value: v})
			}
		}
		sort.Slice(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name })
		fn(s["__name__"], ls)
	}
	return nil
}

type goldenCustom struct {
	Resource   string `json:"resource"`
	Namespaced bool   `json:"namespaced"`
	Metric     string `json:"metric"`
	Rule       string `json:"rule"`
	Series     string `json:"series"`
}

type goldenExternal struct {
	Metric string `json:"metric"`
	Rule   string `json:"rule"`
	Series string `json:"series"`
}

// TestPrometheusAdapterConfigs checks that configs in the shapes of
// prometheus-adapter's documentation, config-gen and Helm chart load and
// give, for a fixed set of series, exactly the metrics prometheus-adapter
// lists for them, each served by the rule and series prometheus-adapter
// picks (see testdata/adapter/harness for how the golden files were made).
func TestPrometheusAdapterConfigs(t *testing.T) {
	b, err := os.ReadFile("testdata/adapter/series.json")
	if err != nil {
		t.Fatal(err)
	}
	var universe universeLister
	if err := json.Unmarshal(b, &universe); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob("testdata/adapter/*.yaml")
	if len(files) < 6 {
		t.Fatalf("only %d configs in testdata/adapter", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			var want struct {
				Custom   []goldenCustom   `json:"custom"`
				External []goldenExternal `json:"external"`
			}
			b, err := os.ReadFile(strings.TrimSuffix(f, ".yaml") + ".golden.json")
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &want); err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(f)
			if err != nil {
				t.Fatal(err)
			}
			if ws := cfg.Warnings(); len(ws) > 0 {
				t.Errorf("warnings: %v", ws)
			}
			custom, external, err := rules.Compile(cfg)
			if err != nil {
				t.Fatal(err)
			}
			snap := New(custom, external, Single(universe), adapterMapper(), time.Hour).Refresh(context.Background())

			gotCustom := []goldenCustom{}
			for _, m := range snap.CustomMetrics() {
				e, ok := snap.Custom(CustomKey{Resource: m.GroupResource, Namespaced: m.Namespaced, Metric: m.Metric})
				if !ok {
					t.Errorf("listed %v has no entry", m)
					continue
				}
				gotCustom = append(gotCustom, goldenCustom{Resource: m.GroupResource.String(), Namespaced: m.Namespaced, Metric: m.Metric, Rule: e.Rule.Path, Series: e.Series})
			}
			sort.Slice(gotCustom, func(i, j int) bool {
				if gotCustom[i].Resource != gotCustom[j].Resource {
					return gotCustom[i].Resource < gotCustom[j].Resource
				}
				return gotCustom[i].Metric < gotCustom[j].Metric
			})
			diff(t, "custom", gotCustom, want.Custom)

			gotExternal := []goldenExternal{}
			for _, m := range snap.ExternalMetrics() {
				e, ok := snap.ExternalEntry(m.Metric)
				if !ok {
					t.Errorf("listed %v has no entry", m)
					continue
				}
				gotExternal = append(gotExternal, goldenExternal{Metric: m.Metric, Rule: e.Rule.Path, Series: e.Series})
			}
			diff(t, "external", gotExternal, want.External)

			if name == "last-wins" {
				wantOverridden := map[string][]Override{
					"rules[0]":         {{Resource: schema.GroupResource{Resource: "pods"}, Namespaced: true, Metric: "requests", By: "rules[2]"}},
					"externalRules[1]": {{Metric: "depth", By: "externalRules[2]"}},
				}
				for _, r := range snap.Reports {
					if !reflect.DeepEqual(r.Overridden, wantOverridden[r.Path]) {
						t.Errorf("%s: Overridden = %+v, want %+v", r.Path, r.Overridden, wantOverridden[r.Path])
					}
				}
			}
		})
	}
}

func diff[T comparable](t *testing.T, what string, got, want []T) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	in := func(xs []T, x T) bool {
		for _, y := range xs {
			if y == x {
				return true
			}
		}
		return false
	}
	for _, g := range got {
		if !in(want, g) {
			t.Errorf("%s: extra %+v", what, g)
		}
	}
	for _, w := range want {
		if !in(got, w) {
			t.Errorf("%s: missing %+v", what, w)
		}
	}
}

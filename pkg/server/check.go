package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/common/model"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/provider"
	"github.com/promgate/promgate/pkg/provider/custom"
	"github.com/promgate/promgate/pkg/provider/external"
	"github.com/promgate/promgate/pkg/provider/resource"
	"github.com/promgate/promgate/pkg/rules"
)

// checkMapper knows the core resources, which is what check can assume.
func checkMapper() apimeta.RESTMapper {
	mapper := apimeta.NewDefaultRESTMapper([]schema.GroupVersion{{Version: "v1"}})
	for _, kind := range []string{"Pod", "Service", "Endpoints"} {
		mapper.Add(schema.GroupVersionKind{Version: "v1", Kind: kind}, apimeta.RESTScopeNamespace)
	}
	for _, kind := range []string{"Node", "Namespace"} {
		mapper.Add(schema.GroupVersionKind{Version: "v1", Kind: kind}, apimeta.RESTScopeRoot)
	}
	return mapper
}

// CheckConfig compiles every rule, resource rules against the core
// resources (pods, nodes, namespaces) that they describe, and reports the
// warnings (what prometheus-adapter loads but promgate cannot check) and,
// per rule, whether its queries are shared by all requests (`promgate
// check`).
func CheckConfig(cfg *config.Config) ([]string, error) {
	customRules, externalRules, err := rules.Compile(cfg)
	mapper := checkMapper()
	var rp *resource.Provider
	if cfg.ResourceRules != nil {
		var rerr error
		b, _ := cfg.Backend(cfg.ResourceRules.Backend)
		rp, rerr = resource.New(cfg.ResourceRules, &provider.Runner{Backends: provider.Single(offline{})}, mapper, resource.Options{Dialect: b.Dialect})
		err = errors.Join(err, rerr)
	}
	if err != nil {
		return nil, err
	}
	var report []string
	for _, w := range ConfigWarnings(cfg, customRules, externalRules) {
		report = append(report, "warning: "+w)
	}
	for _, r := range append(append([]*rules.Rule(nil), customRules...), externalRules...) {
		if r.Backend != config.DefaultBackend {
			report = append(report, fmt.Sprintf("%s: reads from backend %s", r.Path, r.Backend))
		}
	}
	for _, r := range customRules {
		report = append(report, ruleSharing(r, mapper)...)
	}
	for _, r := range externalRules {
		ns := ""
		if r.Namespaced {
			ns = r.Resources.NamespaceLabel(mapper)
		}
		report = append(report, r.Path+".metricsQuery: "+external.SharingOf(r.Query, ns).String())
	}
	if rp != nil {
		for _, w := range rp.Warnings() {
			report = append(report, "warning: "+w)
		}
		report = append(report, rp.Sharing()...)
	}
	return report, nil
}

// ruleSharing says, for each resource a custom rule's overrides name (pods
// for a template-only mapping), whether its queries are shared.
func ruleSharing(r *rules.Rule, mapper apimeta.RESTMapper) []string {
	nsLabel := r.Resources.NamespaceLabel(mapper)
	var grs []schema.GroupResource
	for _, l := range r.Resources.OverrideLabels() {
		if gr, ok := r.Resources.ResourceForLabel(l, mapper); ok {
			grs = append(grs, gr)
		}
	}
	if len(grs) == 0 {
		grs = []schema.GroupResource{{Resource: "pods"}}
	}
	var out []string
	for _, gr := range grs {
		if gr.Group == "" && gr.Resource == "namespaces" {
			continue // metrics about namespaces: the namespace is the object
		}
		rl, err := r.Resources.LabelForResource(gr, mapper)
		if err != nil {
			continue
		}
		ns := nsLabel
		if !catalog.Namespaced(gr) {
			ns = ""
		}
		out = append(out, r.Path+".metricsQuery for "+gr.String()+": "+custom.SharingOf(r.Query, "some_metric", rl, ns).String())
	}
	return out
}

// offline is the querier of `check`, which never queries.
type offline struct{}

func (offline) Query(context.Context, string, time.Time) (model.Vector, error) {
	return nil, errors.New("promgate check does not query Prometheus")
}

package server

import (
	"fmt"
	"os"

	apimeta "k8s.io/apimachinery/pkg/api/meta"

	"github.com/promgate/promgate/pkg/backend"
	"github.com/promgate/promgate/pkg/budget"
	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/explain"
	"github.com/promgate/promgate/pkg/objects"
	"github.com/promgate/promgate/pkg/provider"
	"github.com/promgate/promgate/pkg/provider/custom"
	"github.com/promgate/promgate/pkg/provider/external"
	"github.com/promgate/promgate/pkg/query"
	"github.com/promgate/promgate/pkg/rules"
)

// What serve and offline explain build alike, from one Config.

// configFile is the configuration file as loaded: its bytes (which the
// reload watcher records), the parsed configuration and its compiled rules.
type configFile struct {
	data             []byte
	cfg              *config.Config
	custom, external []*rules.Rule
}

// loadConfigFile reads path once, parses and compiles it.
func loadConfigFile(path string) (*configFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	cfg, err := config.ParseFile(path, data)
	if err != nil {
		return nil, err
	}
	customRules, externalRules, err := rules.Compile(cfg)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return &configFile{data: data, cfg: cfg, custom: customRules, external: externalRules}, nil
}

// newBackends builds the default backend from the flags and those f's
// configuration names; b is the memory budget of their caches.
func (c *Config) newBackends(f *configFile, b *budget.Budget) (*backend.Set, error) {
	backends, err := backend.New(backend.Defaults{
		Client:    c.Prometheus,
		Limits:    c.Limits,
		Discovery: c.Discovery.Method,
		Engine: query.Options{
			TTL:           c.Cache.TTL,
			Auto:          c.Cache.Auto,
			MinTTL:        c.Cache.MinTTL,
			MaxTTL:        c.Cache.MaxTTL,
			MaxConcurrent: c.Cache.MaxConcurrent,
			Timeout:       c.Prometheus.Timeout,
			Budget:        b,
		},
	}, f.cfg.Backends)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", c.ConfigFile, err)
	}
	return backends, nil
}

// newDiscoverer is the discovery of f's rules on backends.
func (c *Config) newDiscoverer(f *configFile, backends *backend.Set, mapper apimeta.RESTMapper) *catalog.Discoverer {
	return catalog.New(f.custom, f.external, backends, mapper, c.Discovery.EffectiveMaxAge()).WithMethods(backends.Methods())
}

// newRunner sends the providers' queries to backends; b is the memory
// budget of the guarded queries (nil: none, offline).
func (c *Config) newRunner(backends *backend.Set, b *budget.Budget) *provider.Runner {
	return &provider.Runner{Backends: backends, Budget: b, Windows: c.Query.Windows}
}

// newProviders builds the custom and external metrics providers on cat,
// sending their queries through run.
func (c *Config) newProviders(cat custom.Catalog, run *provider.Runner, objs *objects.Cache, mapper apimeta.RESTMapper) (*custom.Provider, *external.Provider) {
	cp := custom.New(cat, run, objs, mapper)
	cp.MaxNamesInQuery = c.Query.MaxNamesInQuery
	cp.Batch = c.Query.Batch
	cp.Demand = c.newDemand()
	ep := external.New(cat, run, mapper)
	ep.Batch = c.Query.Batch
	return cp, ep
}

// newDemand is a provider's memory of what requests asked its shared
// queries about (nil: they read the whole cluster).
func (c *Config) newDemand() *provider.Demand {
	if c.Query.DemandNamespaces <= 0 {
		return nil
	}
	return &provider.Demand{MaxNamespaces: c.Query.DemandNamespaces, MaxObjects: c.Query.DemandObjects}
}

// newExplainer explains with cat's rules and plans with the providers.
func (c *Config) newExplainer(cat explain.Catalog, mapper apimeta.RESTMapper, backends *backend.Set,
	cp *custom.Provider, ep *external.Provider) *explain.Explainer {
	return &explain.Explainer{
		Catalog: cat, Mapper: mapper,
		MaxAge: c.Discovery.EffectiveMaxAge(), Backends: explainBackends(backends),
		CustomPlanner: cp, ExternalPlanner: ep,
	}
}

// explainBackends are the backends as explain asks them for series.
func explainBackends(s *backend.Set) map[string]explain.ExplainBackend {
	out := map[string]explain.ExplainBackend{}
	for _, n := range s.Names() {
		b, _ := s.Get(n)
		out[n] = explain.ExplainBackend{Series: b.Client, URL: b.URL}
	}
	return out
}

// ConfigWarnings gathers what prometheus-adapter loads but promgate
// cannot check statically: config fields and query templates.
func ConfigWarnings(cfg *config.Config, customRules, externalRules []*rules.Rule) []string {
	var out []string
	for _, w := range cfg.Warnings() {
		out = append(out, w.String())
	}
	for _, r := range append(append([]*rules.Rule(nil), customRules...), externalRules...) {
		out = append(out, r.Warnings...)
	}
	return out
}

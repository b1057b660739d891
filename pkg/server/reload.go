package server

import (
	"context"
	"errors"
	"fmt"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/provider/resource"
	"github.com/promgate/promgate/pkg/reload"
	"github.com/promgate/promgate/pkg/rules"
)

// reloader builds the configuration watcher: a changed file is prepared
// (reloadPolicy), refusals are recorded as Events on promgate's Pod.
func (s *Server) reloader(disc *catalog.Discoverer, mapper apimeta.RESTMapper, rg *resourceGetter, restConfig *rest.Config) *reload.Watcher {
	return &reload.Watcher{
		Path:     s.cfg.ConfigFile,
		Interval: s.cfg.ReloadInterval,
		Prepare:  s.reloadPolicy(disc, mapper, rg),
		Refused:  reload.PodEvents(restConfig),
	}
}

// reloadPolicy is what a reload may change: the file is parsed (from the
// bytes the watcher hashed, never a second read), compiled and checked
// whole, then swapped in (rules into discovery, which keeps serving the
// current snapshot until the new rules' discovery is done; resource rules
// into metrics.k8s.io, rg, when served). Backends, and whether
// metrics.k8s.io is served, need a restart. In-flight requests finish
// with the rules they started with.
func (s *Server) reloadPolicy(disc *catalog.Discoverer, mapper apimeta.RESTMapper, rg *resourceGetter) reload.Prepare {
	return func(ctx context.Context, path string, data []byte) (func(), error) {
		cfg, err := config.ParseFile(path, data)
		if err != nil {
			return nil, err
		}
		if why := s.backends.Changed(cfg); why != "" {
			return nil, fmt.Errorf("config %s: the new configuration %s: backends are applied at start, so that needs a restart", path, why)
		}
		customRules, externalRules, err := rules.Compile(cfg)
		if err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
		var rp *resource.Provider
		switch {
		case rg != nil && cfg.ResourceRules == nil:
			return nil, errors.New("resourceRules were removed: metrics.k8s.io is served, so that needs a restart (or --enable-resource-metrics=false)")
		case rg != nil:
			rp, err = s.resourceProvider(cfg.ResourceRules, mapper)
			if err != nil {
				return nil, fmt.Errorf("config %s: %w", path, err)
			}
		case cfg.ResourceRules != nil && s.cfg.ResourceMetrics:
			klog.InfoS("resourceRules added: metrics.k8s.io is served after a restart", "config", path)
		}
		for _, w := range ConfigWarnings(cfg, customRules, externalRules) {
			logConfigWarning(path, w)
		}
		return func() {
			disc.SetRules(customRules, externalRules)
			if rp != nil {
				rg.p.Store(rp)
			}
			go disc.Refresh(ctx)
		}, nil
	}
}

package main

import (
	"context"
	"fmt"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	genericapiserver "k8s.io/apiserver/pkg/server"
	metricsapi "sigs.k8s.io/metrics-server/pkg/api"

	"k8s.io/klog/v2"

	"github.com/promgate/promgate/pkg/backend"
	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/objects"
	"github.com/promgate/promgate/pkg/provider"
	"github.com/promgate/promgate/pkg/provider/resource"
	"github.com/promgate/promgate/pkg/provider/resource/storage"
)

// installResourceMetrics prepares metrics.k8s.io: the provider now (so a
// bad resourceRules stops start-up), the API group once the server exists.
func (o *serveOptions) installResourceMetrics(_ context.Context, rr *config.ResourceRules, backends *backend.Set, mapper apimeta.RESTMapper, objs *objects.Cache) (*resourceGetter, error) {
	p, err := o.resourceProvider(rr, backends, mapper)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", o.configFile, err)
	}
	getter := &resourceGetter{}
	getter.p.Store(p)
	for _, w := range p.Warnings() {
		klog.InfoS("Config loaded with a warning: prometheus-adapter accepts this, promgate cannot check it", "config", o.configFile, "warning", w)
	}
	informers, err := o.base.Informers()
	if err != nil {
		return nil, err
	}
	nodes := informers.Core().V1().Nodes()
	nodes.Informer() // register before the server starts the factory
	pods := objs.GenericLister(schema.GroupResource{Resource: "pods"}, o.requestTimeout)
	o.resourceHook = func(s *genericapiserver.GenericAPIServer) error {
		// promgate's storage, not metrics-server's: that one wraps errors,
		// which turns a backend failure's 503 into a 500.
		info := metricsapi.Build(storage.Pods(getter, pods), storage.Nodes(getter, nodes.Lister()))
		return s.InstallAPIGroup(&info)
	}
	return getter, nil
}

// resourceProvider builds the resource provider for rr, on the backend
// rr names.
func (o *serveOptions) resourceProvider(rr *config.ResourceRules, backends *backend.Set, mapper apimeta.RESTMapper) (*resource.Provider, error) {
	name := rr.Backend
	if name == "" {
		name = config.DefaultBackend
	}
	b, ok := backends.Get(name)
	if !ok {
		return nil, fmt.Errorf("resourceRules.backend: backend %q is not configured in this server (a reload cannot add backends)", name)
	}
	return resource.New(rr, o.runner(backends), mapper, o.resourceOptions(b.Dialect))
}

// runner sends the providers' queries to backends.
func (o *serveOptions) runner(backends provider.Backends) *provider.Runner {
	return &provider.Runner{Backends: backends, Budget: o.budget, PartialWindows: o.partialWindows}
}

// resourceOptions are the resource provider's options from the flags.
func (o *serveOptions) resourceOptions(dialect string) resource.Options {
	return resource.Options{Timeout: o.requestTimeout, MaxNamesInQuery: o.maxNames, Batch: o.batch, Dialect: dialect}
}

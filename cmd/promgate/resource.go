package main

import (
	"context"
	"fmt"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	genericapiserver "k8s.io/apiserver/pkg/server"
	metricsapi "sigs.k8s.io/metrics-server/pkg/api"

	"k8s.io/klog/v2"

	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/objects"
	"github.com/promgate/promgate/pkg/provider/resource"
	"github.com/promgate/promgate/pkg/provider/resource/storage"
	"github.com/promgate/promgate/pkg/query"
)

// installResourceMetrics prepares metrics.k8s.io: the provider now (so a
// bad resourceRules stops start-up), the API group once the server exists.
func (o *serveOptions) installResourceMetrics(_ context.Context, rr *config.ResourceRules, q *query.Engine, mapper apimeta.RESTMapper, objs *objects.Cache) (*resourceGetter, error) {
	p, err := resource.New(rr, q, mapper, o.resourceOptions())
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

// resourceOptions are the resource provider's options from the flags.
func (o *serveOptions) resourceOptions() resource.Options {
	return resource.Options{Timeout: o.requestTimeout, MaxNamesInQuery: o.maxNames, Batch: o.batch, PartialWindows: o.partialWindows}
}

package main

import (
	"context"
	"fmt"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	genericapiserver "k8s.io/apiserver/pkg/server"
	metricsapi "sigs.k8s.io/metrics-server/pkg/api"

	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/objects"
	"github.com/promgate/promgate/pkg/provider/resource"
	"github.com/promgate/promgate/pkg/provider/resource/storage"
	"github.com/promgate/promgate/pkg/query"
)

// installResourceMetrics prepares metrics.k8s.io: the provider now (so a
// bad resourceRules stops start-up), the API group once the server exists.
func (o *serveOptions) installResourceMetrics(_ context.Context, rr *config.ResourceRules, q *query.Engine, mapper apimeta.RESTMapper, objs *objects.Cache) error {
	getter, err := resource.New(rr, q, mapper, resource.Options{Timeout: o.requestTimeout, MaxNamesInQuery: o.maxNames, Batch: o.batch, PartialWindows: o.partialWindows})
	if err != nil {
		return fmt.Errorf("config %s: %w", o.configFile, err)
	}
	informers, err := o.base.Informers()
	if err != nil {
		return err
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
	return nil
}

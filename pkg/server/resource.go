package server

import (
	"fmt"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/metrics/pkg/apis/metrics"
	metricsv1 "k8s.io/metrics/pkg/apis/metrics/v1"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
	metricsapi "sigs.k8s.io/metrics-server/pkg/api"

	"github.com/promgate/promgate/pkg/backend"
	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/provider/resource"
	"github.com/promgate/promgate/pkg/provider/resource/storage"
	"github.com/promgate/promgate/pkg/wire"
)

// resourceGetter is the metrics.k8s.io getter a reload can replace.
type resourceGetter struct {
	p atomic.Pointer[resource.Provider]
}

func (g *resourceGetter) GetPodMetrics(pods ...*metav1.PartialObjectMetadata) ([]metrics.PodMetrics, error) {
	return g.p.Load().GetPodMetrics(pods...)
}

func (g *resourceGetter) GetNodeMetrics(nodes ...*corev1.Node) ([]metrics.NodeMetrics, error) {
	return g.p.Load().GetNodeMetrics(nodes...)
}

// resourceMetrics is metrics.k8s.io, prepared before the server exists.
type resourceMetrics struct {
	getter *resourceGetter
	// install adds the API group to the built server.
	install func(*genericapiserver.GenericAPIServer) error
}

// getterOrNil is nil when metrics.k8s.io is not served.
func (rm *resourceMetrics) getterOrNil() *resourceGetter {
	if rm == nil {
		return nil
	}
	return rm.getter
}

// prepareResourceMetrics prepares metrics.k8s.io: the provider now (so a
// bad resourceRules stops start-up), the API group once the server exists.
func (s *Server) prepareResourceMetrics(k *cluster) (*resourceMetrics, error) {
	p, err := s.resourceProvider(s.file.cfg.ResourceRules, k.mapper)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", s.cfg.ConfigFile, err)
	}
	getter := &resourceGetter{}
	getter.p.Store(p)
	for _, w := range p.Warnings() {
		logConfigWarning(s.cfg.ConfigFile, w)
	}
	informers, err := s.cfg.Adapter.Informers()
	if err != nil {
		return nil, err
	}
	nodes := informers.Core().V1().Nodes()
	nodes.Informer() // register before the server starts the factory
	pods := k.objects.GenericLister(schema.GroupResource{Resource: "pods"}, s.cfg.ResourceTimeout)
	return &resourceMetrics{getter: getter, install: func(gs *genericapiserver.GenericAPIServer) error {
		// promgate's storage, not metrics-server's: that one wraps errors,
		// which turns a backend failure's 503 into a 500.
		info := metricsapi.Build(storage.Pods(getter, pods), storage.Nodes(getter, nodes.Lister()))
		// v1 (Kubernetes 1.37's, which kubectl asks for first) from the
		// same storage: its types are v1beta1's, field for field.
		info.VersionedResourcesStorageMap[metricsv1.SchemeGroupVersion.Version] = info.VersionedResourcesStorageMap[metricsv1beta1.SchemeGroupVersion.Version]
		info.NegotiatedSerializer = wire.Negotiated(info.NegotiatedSerializer)
		return gs.InstallAPIGroup(&info)
	}}, nil
}

// resourceProvider builds the resource provider for rr, on the backend
// rr names.
func (s *Server) resourceProvider(rr *config.ResourceRules, mapper apimeta.RESTMapper) (*resource.Provider, error) {
	name := rr.Backend
	if name == "" {
		name = config.DefaultBackend
	}
	b, ok := s.backends.Get(name)
	if !ok {
		return nil, fmt.Errorf("resourceRules.backend: backend %q is not configured in this server (a reload cannot add backends)", name)
	}
	return resource.New(rr, s.runner(), mapper, s.resourceOptions(b))
}

// resourceOptions are the resource provider's options on backend b.
func (s *Server) resourceOptions(b *backend.Backend) resource.Options {
	return resource.Options{
		Timeout: s.cfg.ResourceTimeout, MaxNamesInQuery: s.cfg.Query.MaxNamesInQuery,
		Batch: s.cfg.Query.Batch, Demand: s.cfg.newDemand(), Dialect: b.Dialect,
	}
}

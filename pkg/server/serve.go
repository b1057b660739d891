package server

import (
	"context"
	"errors"
	"net/http"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	openapicommon "k8s.io/kube-openapi/pkg/common"
	cmapiserver "sigs.k8s.io/custom-metrics-apiserver/pkg/apiserver"
	basecmd "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd"
	generatedcore "sigs.k8s.io/custom-metrics-apiserver/pkg/generated/openapi/core"
	generatedcustommetrics "sigs.k8s.io/custom-metrics-apiserver/pkg/generated/openapi/custommetrics"
	generatedexternalmetrics "sigs.k8s.io/custom-metrics-apiserver/pkg/generated/openapi/externalmetrics"
	metricsapi "sigs.k8s.io/metrics-server/pkg/api"
	generatedmetrics "sigs.k8s.io/metrics-server/pkg/api/generated/openapi"

	"github.com/promgate/promgate/pkg/authn"
	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/objects"
	"github.com/promgate/promgate/pkg/provider"
	"github.com/promgate/promgate/pkg/provider/custom"
	"github.com/promgate/promgate/pkg/provider/external"
)

// cluster is what the server reads of the cluster.
type cluster struct {
	mapper     apimeta.RESTMapper
	restConfig *rest.Config
	objects    *objects.Cache
}

// Run connects to the cluster, starts discovery and the reload watcher,
// and serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	base := s.cfg.Adapter
	k, err := s.connect(ctx)
	if err != nil {
		return err
	}
	disc := s.cfg.newDiscoverer(s.file, s.backends, k.mapper)
	go disc.Run(ctx, s.cfg.Discovery.RelistInterval)
	cp, ep := s.cfg.newProviders(disc, s.runner(), k.objects, k.mapper)
	setOpenAPI(base)

	var rm *resourceMetrics
	if s.cfg.ResourceMetrics && s.file.cfg.ResourceRules != nil {
		if rm, err = s.prepareResourceMetrics(k); err != nil {
			return err
		}
	}
	if s.cfg.ReloadInterval > 0 {
		w := s.reloader(disc, k.mapper, rm.getterOrNil(), k.restConfig)
		w.StartWith(s.file.data)
		go w.Run(ctx)
	}
	cfg, err := base.Config()
	if err != nil {
		return err
	}
	// Proxied requests: the front proxy's certificate verified once, not
	// per request (pkg/authn).
	auth := &cfg.GenericConfig.Authentication
	auth.Authenticator = authn.Wrap(auth.Authenticator, auth.RequestHeaderConfig)
	if s.cfg.HotPath {
		installHotPath(cfg.GenericConfig, cp)
	}
	server, err := base.Server()
	if err != nil {
		return err
	}
	if err := s.install(server.GenericAPIServer, rm, disc, k.mapper, cp, ep); err != nil {
		return err
	}
	s.logStart(rm != nil)
	return server.GenericAPIServer.PrepareRun().RunWithContext(ctx)
}

// runner sends the serving providers' queries to the backends' engines.
func (s *Server) runner() *provider.Runner { return s.cfg.newRunner(s.backends, s.budget) }

// connect builds the REST mapper (refreshed periodically, so that
// resources created after start, CRDs, can be described by metrics
// without a restart) and the cache of objects' metadata.
func (s *Server) connect(ctx context.Context) (*cluster, error) {
	base := s.cfg.Adapter
	mapper, err := base.RESTMapper()
	if err != nil {
		return nil, err
	}
	if r, ok := mapper.(interface{ RunUntil(<-chan struct{}) }); ok {
		r.RunUntil(ctx.Done())
	}
	restConfig, err := base.ClientConfig()
	if err != nil {
		return nil, err
	}
	mdClient, err := metadata.NewForConfig(restConfig)
	if err != nil {
		return nil, err
	}
	return &cluster{mapper: mapper, restConfig: restConfig, objects: objects.New(mdClient, mapper, ctx.Done())}, nil
}

// install adds to the built server what needs it: metrics.k8s.io, the
// explain endpoint and the readiness check of the first discovery.
func (s *Server) install(gs *genericapiserver.GenericAPIServer, rm *resourceMetrics, disc *catalog.Discoverer,
	mapper apimeta.RESTMapper, cp *custom.Provider, ep *external.Provider) error {
	if err := installCustomMetrics(gs, cp); err != nil {
		return err
	}
	if err := installExternalMetrics(gs, ep); err != nil {
		return err
	}
	if rm != nil {
		if err := rm.install(gs); err != nil {
			return err
		}
	}
	if err := installExplain(gs, s.cfg.newExplainer(disc, mapper, s.backends, cp, ep)); err != nil {
		return err
	}
	return gs.AddReadyzChecks(healthz.NamedCheck("promgate-discovery", func(*http.Request) error {
		select {
		case <-disc.Ready():
			return nil
		default:
			return errors.New("first series discovery has not finished")
		}
	}))
}

func (s *Server) logStart(resourceMetrics bool) {
	for _, n := range s.backends.Names() {
		b, _ := s.backends.Get(n)
		klog.InfoS("backend", "name", n, "url", b.URL, "dialect", b.Dialect)
	}
	klog.InfoS("starting promgate", "prometheus", s.backends.Default().Client.Name(), "backends", len(s.backends.Names()),
		"customRules", len(s.file.custom), "externalRules", len(s.file.external), "resourceMetrics", resourceMetrics)
}

// setOpenAPI describes the metrics APIs in the server's OpenAPI v2 and v3
// documents.
func setOpenAPI(base *basecmd.AdapterBase) {
	defs := mergeDefinitions([]openapicommon.GetOpenAPIDefinitions{
		generatedcore.GetOpenAPIDefinitions,
		generatedcustommetrics.GetOpenAPIDefinitions,
		generatedexternalmetrics.GetOpenAPIDefinitions,
		generatedmetrics.GetOpenAPIDefinitions,
		metricsV1Definitions,
	})
	namer := openapinamer.NewDefinitionNamer(cmapiserver.Scheme, metricsapi.Scheme)
	base.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(defs, namer)
	base.OpenAPIConfig.Info.Title, base.OpenAPIConfig.Info.Version = "promgate", "v1"
	base.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(defs, namer)
	base.OpenAPIV3Config.Info.Title, base.OpenAPIV3Config.Info.Version = "promgate", "v1"
}

func mergeDefinitions(getters []openapicommon.GetOpenAPIDefinitions) openapicommon.GetOpenAPIDefinitions {
	return func(ref openapicommon.ReferenceCallback) map[string]openapicommon.OpenAPIDefinition {
		out := map[string]openapicommon.OpenAPIDefinition{}
		for _, g := range getters {
			for k, v := range g(ref) {
				out[k] = v
			}
		}
		return out
	}
}

package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"

	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/client-go/metadata"
	"k8s.io/klog/v2"
	openapicommon "k8s.io/kube-openapi/pkg/common"
	cmapiserver "sigs.k8s.io/custom-metrics-apiserver/pkg/apiserver"
	generatedcore "sigs.k8s.io/custom-metrics-apiserver/pkg/generated/openapi/core"
	generatedcustommetrics "sigs.k8s.io/custom-metrics-apiserver/pkg/generated/openapi/custommetrics"
	generatedexternalmetrics "sigs.k8s.io/custom-metrics-apiserver/pkg/generated/openapi/externalmetrics"
	metricsapi "sigs.k8s.io/metrics-server/pkg/api"
	generatedmetrics "sigs.k8s.io/metrics-server/pkg/api/generated/openapi"

	"github.com/promgate/promgate/pkg/backend"
	"github.com/promgate/promgate/pkg/budget"
	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/memlimit"
	"github.com/promgate/promgate/pkg/objects"
	"github.com/promgate/promgate/pkg/provider/custom"
	"github.com/promgate/promgate/pkg/provider/external"
	"github.com/promgate/promgate/pkg/query"
	"github.com/promgate/promgate/pkg/rules"
)

// runServe validates the flags and runs the server until a signal.
func runServe(o *serveOptions) error {
	if errs := o.Validate(); len(errs) > 0 {
		return utilerrors.NewAggregate(errs)
	}
	o.complete()
	return o.run()
}

func (o *serveOptions) run() error {
	ctx := genericapiserver.SetupSignalContext()
	if limit, from, err := memlimit.Set("/sys/fs/cgroup", o.memLimitRatio); err != nil {
		klog.InfoS("Container memory limit not read; the Go runtime has no soft limit", "err", err)
	} else if limit > 0 {
		klog.InfoS("Go runtime soft memory limit set", "bytes", limit, "ratio", o.memLimitRatio, "containerLimitFrom", from)
	}
	// Read once: what is served is what the reload watcher records.
	cfgData, err := os.ReadFile(o.configFile)
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	cfg, err := config.ParseFile(o.configFile, cfgData)
	if err != nil {
		return err
	}
	customRules, externalRules, err := rules.Compile(cfg)
	if err != nil {
		return fmt.Errorf("config %s: %w", o.configFile, err)
	}
	for _, w := range configWarnings(cfg, customRules, externalRules) {
		klog.InfoS("Config loaded with a warning: prometheus-adapter accepts this, promgate cannot check it", "config", o.configFile, "warning", w)
	}
	promOpts, err := o.promOptions()
	if err != nil {
		return err
	}
	query.RegisterMetrics()
	o.budget = budget.New(o.cacheBytes)
	backends, err := backend.New(backend.Defaults{
		Client:    promOpts,
		Limits:    o.limits,
		Discovery: catalog.Method(o.discovery),
		Engine: query.Options{
			TTL:           o.cacheTTL,
			Auto:          o.cacheAuto,
			MinTTL:        o.cacheMinTTL,
			MaxTTL:        o.cacheMaxTTL,
			MaxConcurrent: o.maxConcurrent,
			Timeout:       o.prom.Timeout,
			Budget:        o.budget,
		},
	}, cfg.Backends)
	if err != nil {
		return fmt.Errorf("config %s: %w", o.configFile, err)
	}
	def := backends.Default()
	mapper, err := o.base.RESTMapper()
	if err != nil {
		return err
	}
	// Refresh API discovery periodically, so that resources created after
	// start (CRDs) can be described by metrics without a restart.
	if r, ok := mapper.(interface{ RunUntil(<-chan struct{}) }); ok {
		r.RunUntil(ctx.Done())
	}
	restConfig, err := o.base.ClientConfig()
	if err != nil {
		return err
	}
	mdClient, err := metadata.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	objectCache := objects.New(mdClient, mapper, ctx.Done())

	maxAge := o.maxAge
	if maxAge == 0 {
		maxAge = o.relistInterval
	}
	disc := catalog.New(customRules, externalRules, def.Client, mapper, maxAge).WithBackends(backends.Listers()).WithMethods(backends.Methods())
	go disc.Run(ctx, o.relistInterval)

	run := o.runner(backends)
	cp := custom.New(disc, run, objectCache, mapper)
	cp.MaxNamesInQuery = o.maxNames
	cp.Batch = o.batch
	o.base.WithCustomMetrics(cp)
	ep := external.New(disc, run, mapper)
	ep.Batch = o.batch
	o.base.WithExternalMetrics(ep)

	defs := []openapicommon.GetOpenAPIDefinitions{
		generatedcore.GetOpenAPIDefinitions,
		generatedcustommetrics.GetOpenAPIDefinitions,
		generatedexternalmetrics.GetOpenAPIDefinitions,
		generatedmetrics.GetOpenAPIDefinitions,
	}
	namer := openapinamer.NewDefinitionNamer(cmapiserver.Scheme, metricsapi.Scheme)
	o.base.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(mergeDefinitions(defs), namer)
	o.base.OpenAPIConfig.Info.Title, o.base.OpenAPIConfig.Info.Version = "promgate", "v1"
	o.base.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(mergeDefinitions(defs), namer)
	o.base.OpenAPIV3Config.Info.Title, o.base.OpenAPIV3Config.Info.Version = "promgate", "v1"

	var rg *resourceGetter
	if o.resourceAPI && cfg.ResourceRules != nil {
		if rg, err = o.installResourceMetrics(ctx, cfg.ResourceRules, backends, mapper, objectCache); err != nil {
			return err
		}
	}
	if o.reloadInterval > 0 {
		w := o.reloader(disc, backends, mapper, rg, restConfig)
		w.StartWith(cfgData)
		go w.Run(ctx)
	}
	server, err := o.base.Server()
	if err != nil {
		return err
	}
	if o.resourceHook != nil {
		if err := o.resourceHook(server.GenericAPIServer); err != nil {
			return err
		}
	}
	if err := installExplain(server.GenericAPIServer, disc, backends, mapper, maxAge, cp, ep); err != nil {
		return err
	}
	if err := server.GenericAPIServer.AddReadyzChecks(healthz.NamedCheck("promgate-discovery", func(*http.Request) error {
		select {
		case <-disc.Ready():
			return nil
		default:
			return errors.New("first series discovery has not finished")
		}
	})); err != nil {
		return err
	}
	for _, n := range backends.Names() {
		b, _ := backends.Get(n)
		klog.InfoS("backend", "name", n, "url", b.URL, "dialect", b.Dialect)
	}
	klog.InfoS("starting promgate", "prometheus", def.Client.Name(), "backends", len(backends.Names()), "customRules", len(customRules), "externalRules", len(externalRules), "resourceMetrics", o.resourceHook != nil)
	return server.GenericAPIServer.PrepareRun().RunWithContext(ctx)
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

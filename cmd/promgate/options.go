package main

import (
	"errors"
	goflag "flag"
	"fmt"
	"time"

	"github.com/spf13/pflag"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/klog/v2"
	basecmd "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd"

	"github.com/promgate/promgate/pkg/server"
)

// serveOptions are the flags of "promgate serve", by section. Every flag
// of prometheus-adapter v0.12 exists with the same name and meaning; where
// a default differs on purpose, the flag's help says so (see also
// docs/migration.md).
type serveOptions struct {
	Config     *ConfigOptions
	Prometheus *PrometheusOptions
	Discovery  *DiscoveryOptions
	Query      *QueryOptions
	Cache      *CacheOptions
	Resource   *ResourceOptions
	Server     *ServerOptions

	fss *cliflag.NamedFlagSets // once made, by Flags
}

func newServeOptions() *serveOptions {
	return &serveOptions{
		Config:     NewConfigOptions(),
		Prometheus: NewPrometheusOptions(),
		Discovery:  NewDiscoveryOptions(),
		Query:      NewQueryOptions(),
		Cache:      NewCacheOptions(),
		Resource:   NewResourceOptions(),
		Server:     NewServerOptions(),
	}
}

// Flags returns every flag, by section: promgate's own, the apiserver's
// (secure serving, delegated authentication and authorization, audit,
// features), the lister's, and klog's.
func (o *serveOptions) Flags() cliflag.NamedFlagSets {
	if o.fss != nil {
		return *o.fss
	}
	fss := cliflag.NamedFlagSets{}
	o.Config.AddFlags(fss.FlagSet("config"))
	o.Prometheus.AddFlags(fss.FlagSet("prometheus"))
	o.Discovery.AddFlags(fss.FlagSet("discovery"))
	o.Query.AddFlags(fss.FlagSet("query"))
	o.Cache.AddFlags(fss.FlagSet("query cache"))
	o.Resource.AddFlags(fss.FlagSet("resource metrics"))
	o.Server.AddFlags(fss.FlagSet("server"))
	gfs := goflag.NewFlagSet("klog", goflag.ContinueOnError)
	klog.InitFlags(gfs)
	fss.FlagSet("logging").AddGoFlagSet(gfs)
	o.fss = &fss
	return fss
}

// Validate checks the flags without I/O and returns every problem found.
func (o *serveOptions) Validate() []error {
	var errs []error
	errs = append(errs, o.Config.Validate()...)
	errs = append(errs, o.Discovery.Validate()...)
	errs = append(errs, o.Server.Validate()...)
	errs = append(errs, o.Cache.Validate()...)
	errs = append(errs, o.Query.Validate()...)
	errs = append(errs, o.Resource.Validate()...)
	return append(errs, o.Prometheus.Validate()...)
}

// ServerConfig is the server's configuration from the flags.
func (o *serveOptions) ServerConfig() (*server.Config, error) {
	cfg := &server.Config{}
	o.Config.ApplyTo(cfg)
	o.Discovery.ApplyTo(cfg)
	o.Query.ApplyTo(cfg)
	o.Cache.ApplyTo(cfg)
	o.Resource.ApplyTo(cfg)
	o.Server.ApplyTo(cfg)
	if err := o.Prometheus.ApplyTo(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// ServerOptions are the aggregated API server's and its cluster clients'
// (custom-metrics-apiserver's AdapterBase), and the process'.
type ServerOptions struct {
	Adapter          *basecmd.AdapterBase
	DisableHTTP2     bool
	MemoryLimitRatio float64
	HotPath          bool
}

// NewServerOptions returns the defaults.
func NewServerOptions() *ServerOptions {
	return &ServerOptions{
		Adapter: &basecmd.AdapterBase{
			Name:              "promgate",
			DiscoveryInterval: time.Minute,
			FlagSet:           pflag.NewFlagSet("promgate", pflag.ContinueOnError),
		},
		MemoryLimitRatio: 0.9,
		HotPath:          true,
	}
}

// AddFlags adds the AdapterBase's flags and promgate's server flags to fs.
func (o *ServerOptions) AddFlags(fs *pflag.FlagSet) {
	base := o.Adapter.Flags()
	if f := base.Lookup("discovery-interval"); f != nil {
		f.Usage += " (prometheus-adapter never refreshed it; promgate does, every minute by default, so CRDs created later are served.)"
	}
	fs.AddFlagSet(base)
	fs.BoolVar(&o.DisableHTTP2, "disable-http2", o.DisableHTTP2, "Disable HTTP/2 on the serving port (prometheus-adapter's name for --disable-http2-serving).")
	fs.BoolVar(&o.HotPath, "hot-path", o.HotPath, "Answer the custom metrics lists HPAs ask for (GET …/namespaces/NS/RESOURCE/NAME/METRIC with at most labelSelector and metricLabelSelector) without the API library's generic request chain, with the same authentication, authorization and answers; every other request, and every one the chain would refuse, takes the chain. Off by itself when an audit policy, CORS, HSTS or API priority and fairness is configured (docs/operations.md).")
	fs.Float64Var(&o.MemoryLimitRatio, "memory-limit-ratio", o.MemoryLimitRatio, "Soft memory limit of the Go runtime, as a share of the container's memory limit (cgroup), so that the garbage of bursts is collected before that limit; 0: none. GOMEMLIMIT, when set, takes precedence.")
}

// Validate checks the flags without I/O.
func (o *ServerOptions) Validate() []error {
	var errs []error
	if o.Adapter.DiscoveryInterval <= 0 {
		errs = append(errs, errors.New("--discovery-interval must be positive"))
	}
	if o.MemoryLimitRatio < 0 || o.MemoryLimitRatio > 1 {
		errs = append(errs, fmt.Errorf("--memory-limit-ratio %v: want 0 (none) to 1", o.MemoryLimitRatio))
	}
	return errs
}

// ApplyTo hands the AdapterBase to the server, --disable-http2 applied.
func (o *ServerOptions) ApplyTo(cfg *server.Config) {
	if o.DisableHTTP2 {
		o.Adapter.CustomMetricsAdapterServerOptions.SecureServing.DisableHTTP2Serving = true
	}
	cfg.Adapter, cfg.MemoryLimitRatio, cfg.HotPath = o.Adapter, o.MemoryLimitRatio, o.HotPath
}

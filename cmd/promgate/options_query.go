package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/provider"
	"github.com/promgate/promgate/pkg/provider/resource"
	"github.com/promgate/promgate/pkg/query"
	"github.com/promgate/promgate/pkg/server"
)

// ConfigOptions are the rules file and its reloading.
type ConfigOptions struct {
	File           string
	ReloadInterval time.Duration
}

// NewConfigOptions returns the defaults.
func NewConfigOptions() *ConfigOptions { return &ConfigOptions{ReloadInterval: 5 * time.Second} }

// AddFlags adds --config and --config-reload-interval to fs.
func (o *ConfigOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.File, "config", o.File, "Path to the rules file (prometheus-adapter format). Required.")
	fs.DurationVar(&o.ReloadInterval, "config-reload-interval", o.ReloadInterval, "How often the --config file is read for changes; a change, or SIGHUP, reloads the rules without a restart, and a config that fails to load is refused (the last good one keeps serving). 0 disables reloading. (prometheus-adapter needs a restart.)")
}

// Validate checks the flags without I/O.
func (o *ConfigOptions) Validate() []error {
	var errs []error
	if o.File == "" {
		errs = append(errs, errors.New("--config is required"))
	}
	if o.ReloadInterval < 0 {
		errs = append(errs, errors.New("--config-reload-interval must not be negative"))
	}
	return errs
}

// ApplyTo sets the rules file and its reload interval.
func (o *ConfigOptions) ApplyTo(cfg *server.Config) {
	cfg.ConfigFile, cfg.ReloadInterval = o.File, o.ReloadInterval
}

// DiscoveryOptions are how series are discovered; serve and explain share
// them, so that explain reports the metrics the server lists.
type DiscoveryOptions struct {
	RelistInterval time.Duration
	MaxAge         time.Duration
	Method         string
}

// NewDiscoveryOptions returns the defaults.
func NewDiscoveryOptions() *DiscoveryOptions {
	return &DiscoveryOptions{RelistInterval: time.Minute, Method: string(config.MethodSeries)}
}

// AddFlags adds the discovery flags to fs.
func (o *DiscoveryOptions) AddFlags(fs *pflag.FlagSet) {
	fs.DurationVar(&o.RelistInterval, "metrics-relist-interval", o.RelistInterval, "How often series are rediscovered. (prometheus-adapter defaults to 10m.)")
	fs.StringVar(&o.Method, "discovery-method", o.Method, "How series are discovered: series (every series of /api/v1/series, as prometheus-adapter), index (Prometheus' label index: a few requests per seriesQuery, but a stopped metric stays listed up to 2-3 hours) or auto (index, else series). Backends of the config file inherit it. See docs/discovery.md.")
	fs.DurationVar(&o.MaxAge, "metrics-max-age", o.MaxAge, "Only series with samples this recent are discovered (0: the relist interval). Must not be less than --metrics-relist-interval.")
}

// Validate checks the flags without I/O.
func (o *DiscoveryOptions) Validate() []error {
	var errs []error
	if o.RelistInterval <= 0 {
		errs = append(errs, errors.New("--metrics-relist-interval must be positive"))
	}
	if o.MaxAge < 0 {
		errs = append(errs, errors.New("--metrics-max-age must not be negative"))
	} else if o.MaxAge > 0 && o.MaxAge < o.RelistInterval {
		errs = append(errs, fmt.Errorf("--metrics-max-age (%s) must not be less than --metrics-relist-interval (%s): series seen between relists would be missed", o.MaxAge, o.RelistInterval))
	}
	if _, err := config.ParseMethod(o.Method); err != nil {
		errs = append(errs, fmt.Errorf("--discovery-method: %w", err))
	}
	return errs
}

// ApplyTo sets the discovery; Validate has checked the method.
func (o *DiscoveryOptions) ApplyTo(cfg *server.Config) {
	cfg.Discovery = server.DiscoveryConfig{Method: config.Method(o.Method), RelistInterval: o.RelistInterval, MaxAge: o.MaxAge}
}

// QueryOptions decide the query a request sends; serve and explain share
// them, so that explain shows the query the server sends.
type QueryOptions struct {
	MaxNames int
	Batch    bool
	// Guard is the partial-window guard by name (provider.WindowGuards).
	Guard string
	// DemandNamespaces bounds the namespaces a shared query reads.
	DemandNamespaces int
	// DemandObjects bounds the object names a shared query reads.
	DemandObjects int
	// PartialWindows is the deprecated --serve-partial-windows: Guard off.
	PartialWindows bool
}

// NewQueryOptions returns the defaults.
func NewQueryOptions() *QueryOptions {
	return &QueryOptions{MaxNames: provider.DefaultMaxNamesInQuery, Batch: true, Guard: provider.GuardCanary.String(),
		DemandNamespaces: provider.DefaultDemandNamespaces, DemandObjects: provider.DefaultDemandObjects}
}

// AddFlags adds the query flags to fs.
func (o *QueryOptions) AddFlags(fs *pflag.FlagSet) {
	fs.IntVar(&o.MaxNames, "max-names-in-query", o.MaxNames, "Most object names put in one query's regex; larger sets select the whole namespace and are filtered in promgate.")
	fs.BoolVar(&o.Batch, "query-batching", o.Batch, "Share one query per metric among all requests, filtered in promgate, where the rule's query is proven equivalent to the per-request one (`promgate check` says, per rule). (prometheus-adapter sends one query per request; false restores that.)")
	fs.IntVar(&o.DemandNamespaces, "shared-query-namespaces", o.DemandNamespaces, "Narrow a shared query to the namespaces requests asked it about in the last 10 minutes, up to this many (past them, the whole cluster); 0 always reads the whole cluster. Namespaces join a query at most every 15 s, together; until its namespace joins, a request reads its own query (docs/operations.md).")
	fs.IntVar(&o.DemandObjects, "shared-query-objects", o.DemandObjects, "With --shared-query-namespaces, narrow a shared query further to the objects (pods, say) requests asked it about in those namespaces, up to this many names (past them, whole namespaces); 0 reads whole namespaces. Objects join with the namespaces (docs/operations.md).")
	fs.StringVar(&o.Guard, "partial-window-guard", o.Guard, "How values over windows that samples cover only in part (after an outage or restart, for a new pod) are kept out of answers: canary (check one or two series per metric beside each query, and serve a series once it has been in the answers for the query's window; when the checks disagree, strict: about 1.1x the query's cost), strict (check every series in the query: 60-80x the query's cost on Prometheus), or off (serve them). See docs/partial-windows.md.")
	fs.BoolVar(&o.PartialWindows, "serve-partial-windows", o.PartialWindows, "Serve rates over windows that samples cover only in part: --partial-window-guard=off.")
	_ = fs.MarkDeprecated("serve-partial-windows", "use --partial-window-guard=off")
}

// Validate checks the flags without I/O.
func (o *QueryOptions) Validate() []error {
	var errs []error
	if o.MaxNames < 1 {
		errs = append(errs, errors.New("--max-names-in-query must be at least 1"))
	}
	if o.DemandNamespaces < 0 {
		errs = append(errs, errors.New("--shared-query-namespaces must not be negative"))
	}
	if o.DemandObjects < 0 {
		errs = append(errs, errors.New("--shared-query-objects must not be negative"))
	}

	if _, ok := provider.WindowGuards[o.Guard]; !ok {
		errs = append(errs, fmt.Errorf("--partial-window-guard=%q: want canary, strict or off", o.Guard))
	}
	return errs
}

// ApplyTo sets how queries are built.
func (o *QueryOptions) ApplyTo(cfg *server.Config) {
	g := provider.WindowGuards[o.Guard]
	if o.PartialWindows {
		g = provider.GuardOff
	}
	cfg.Query = server.QueryConfig{MaxNamesInQuery: o.MaxNames, Batch: o.Batch, Windows: g,
		DemandNamespaces: o.DemandNamespaces, DemandObjects: o.DemandObjects}
}

// CacheOptions are the query engines' cache, memory budget and
// concurrency.
type CacheOptions struct {
	TTL            time.Duration // fixed, or the fallback of Auto
	Auto           bool
	MinTTL, MaxTTL time.Duration
	MaxBytes       int64
	MaxConcurrent  int
}

// NewCacheOptions returns the defaults.
func NewCacheOptions() *CacheOptions {
	return &CacheOptions{TTL: query.DefaultTTL, Auto: true, MinTTL: query.DefaultMinTTL, MaxTTL: query.DefaultMaxTTL, MaxConcurrent: query.DefaultMaxConcurrent}
}

// AddFlags adds the cache flags to fs.
func (o *CacheOptions) AddFlags(fs *pflag.FlagSet) {
	fs.Var(&cacheTTLValue{o}, "query-cache-ttl", "How long a query result is reused for identical queries: auto (about one scrape interval of the metrics it reads, learned from their samples; 5s while not known) or a fixed duration (0 disables; identical in-flight queries are always shared). See docs/operations.md, Cache lifetimes. (prometheus-adapter has no cache; 0 restores that.)")
	fs.DurationVar(&o.MinTTL, "query-cache-min-ttl", o.MinTTL, "With --query-cache-ttl=auto, the shortest lifetime of a result: a metric scraped more often is queried at most this often.")
	fs.DurationVar(&o.MaxTTL, "query-cache-max-ttl", o.MaxTTL, "With --query-cache-ttl=auto, the longest lifetime of a result, however rarely the metric is scraped.")
	fs.Int64Var(&o.MaxBytes, "query-cache-max-bytes", o.MaxBytes, "Memory budget, estimated, in bytes (0: 256 MiB), of everything kept for requests: cached answers, guarded queries, indexes of shared answers, sharing decisions; least recently used first out.")
	fs.IntVar(&o.MaxConcurrent, "max-concurrent-queries", o.MaxConcurrent, "Most queries running against Prometheus at once.")
}

// Validate checks the flags without I/O.
func (o *CacheOptions) Validate() []error {
	var errs []error
	if o.TTL < 0 {
		errs = append(errs, errors.New("--query-cache-ttl must not be negative"))
	}
	if o.MinTTL <= 0 || o.MaxTTL <= 0 {
		errs = append(errs, errors.New("--query-cache-min-ttl and --query-cache-max-ttl must be positive"))
	} else if o.MinTTL > o.MaxTTL {
		errs = append(errs, fmt.Errorf("--query-cache-min-ttl (%s) must not be more than --query-cache-max-ttl (%s)", o.MinTTL, o.MaxTTL))
	}
	if o.MaxConcurrent < 1 {
		errs = append(errs, errors.New("--max-concurrent-queries must be at least 1"))
	}
	if o.MaxBytes < 0 {
		errs = append(errs, errors.New("--query-cache-max-bytes must not be negative"))
	}
	return errs
}

// ApplyTo sets the engines' cache.
func (o *CacheOptions) ApplyTo(cfg *server.Config) {
	cfg.Cache = server.CacheConfig{TTL: o.TTL, Auto: o.Auto, MinTTL: o.MinTTL, MaxTTL: o.MaxTTL, MaxConcurrent: o.MaxConcurrent, MaxBytes: o.MaxBytes}
}

// cacheTTLValue is --query-cache-ttl: "auto" or a duration.
type cacheTTLValue struct{ o *CacheOptions }

func (v *cacheTTLValue) String() string {
	if v.o == nil { // pflag's zero value, for the help
		return ""
	}
	if v.o.Auto {
		return "auto"
	}
	return v.o.TTL.String()
}

func (v *cacheTTLValue) Set(s string) error {
	if s == "auto" {
		v.o.Auto, v.o.TTL = true, query.DefaultTTL
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf(`want "auto" or a duration such as 5s: %w`, err)
	}
	v.o.Auto, v.o.TTL = false, d
	return nil
}

func (*cacheTTLValue) Type() string { return "auto|duration" }

// ResourceOptions are metrics.k8s.io's.
type ResourceOptions struct {
	Enabled bool
	Timeout time.Duration
}

// NewResourceOptions returns the defaults.
func NewResourceOptions() *ResourceOptions {
	return &ResourceOptions{Enabled: true, Timeout: resource.DefaultTimeout}
}

// AddFlags adds the metrics.k8s.io flags to fs.
func (o *ResourceOptions) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.Enabled, "enable-resource-metrics", o.Enabled, "Serve metrics.k8s.io (kubectl top, HPA Resource metrics) when the config has resourceRules.")
	fs.DurationVar(&o.Timeout, "resource-metrics-timeout", o.Timeout, "Deadline for answering one metrics.k8s.io request.")
}

// Validate checks the flags without I/O.
func (o *ResourceOptions) Validate() []error {
	if o.Timeout <= 0 {
		return []error{errors.New("--resource-metrics-timeout must be positive")}
	}
	return nil
}

// ApplyTo sets metrics.k8s.io's options.
func (o *ResourceOptions) ApplyTo(cfg *server.Config) {
	cfg.ResourceMetrics, cfg.ResourceTimeout = o.Enabled, o.Timeout
}

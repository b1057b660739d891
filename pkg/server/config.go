// Package server runs promgate: a Config, filled by the command's flags,
// completes into a Server (the configuration file loaded and compiled, the
// backends built, the metrics registered) that connects to the cluster
// and serves the metrics APIs until its context ends. Offline
// `promgate explain` builds its discovery and providers with the same
// Config and the same wiring, so that it reports what the server would.
package server

import (
	"time"

	"k8s.io/klog/v2"
	basecmd "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd"

	"github.com/promgate/promgate/pkg/backend"
	"github.com/promgate/promgate/pkg/budget"
	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/memlimit"
	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/provider"
	"github.com/promgate/promgate/pkg/provider/resource"
	"github.com/promgate/promgate/pkg/query"
	"github.com/promgate/promgate/pkg/reload"
)

// Config is everything the server is run with. The command's options
// fill it (their ApplyTo); its zero values are not defaults: the options
// hold the defaults, once.
type Config struct {
	// Adapter is the aggregated API server and its clients of the cluster
	// (secure serving, authentication, authorization, audit, the lister).
	// Offline explain has none.
	Adapter *basecmd.AdapterBase

	// ConfigFile is the rules file.
	ConfigFile string
	// ReloadInterval is how often ConfigFile is read for changes (0: never).
	ReloadInterval time.Duration

	// Prometheus is the default backend's client, headers parsed.
	Prometheus prom.Options
	// Limits bound the default backend's answers.
	Limits prom.Limits

	// Discovery is how series are discovered.
	Discovery DiscoveryConfig
	// Query decides the query a request sends.
	Query QueryConfig
	// Cache is the query engine's cache, budget and concurrency.
	Cache CacheConfig

	// ResourceMetrics serves metrics.k8s.io when the config has resourceRules.
	ResourceMetrics bool
	// ResourceTimeout is the deadline of one metrics.k8s.io request.
	ResourceTimeout time.Duration

	// HotPath answers the HPAs' custom metrics lists without the API
	// library's generic request chain (pkg/hotpath).
	HotPath bool

	// MemoryLimitRatio is the Go runtime's soft memory limit as a share of
	// the container's memory limit (0: none).
	MemoryLimitRatio float64
}

// DiscoveryConfig is how series are discovered.
type DiscoveryConfig struct {
	Method         config.Method
	RelistInterval time.Duration
	// MaxAge is how recent a series' samples must be (0: RelistInterval).
	MaxAge time.Duration
}

// EffectiveMaxAge is MaxAge, or RelistInterval when MaxAge is 0.
func (d DiscoveryConfig) EffectiveMaxAge() time.Duration {
	if d.MaxAge == 0 {
		return d.RelistInterval
	}
	return d.MaxAge
}

// QueryConfig decides the query a request sends; explain plans with it too.
type QueryConfig struct {
	MaxNamesInQuery int
	Batch           bool
	// Windows is the partial-window guard.
	Windows provider.WindowGuard
	// DemandNamespaces bounds the namespaces a shared query is narrowed
	// to (provider.Demand); 0 reads the whole cluster.
	DemandNamespaces int
	// DemandObjects bounds the object names a shared query narrowed to
	// namespaces is narrowed to further; 0 reads whole namespaces.
	DemandObjects int
}

// CacheConfig is the query engines' cache, memory budget and concurrency.
type CacheConfig struct {
	// TTL is the fixed lifetime, or the fallback of Auto.
	TTL            time.Duration
	Auto           bool
	MinTTL, MaxTTL time.Duration
	MaxConcurrent  int
	// MaxBytes is the memory budget (0: budget.DefaultMaxBytes).
	MaxBytes int64
}

// Server is a completed Config: what can be prepared without the cluster
// is; Run connects to it and serves.
type Server struct {
	cfg      *Config
	file     *configFile
	budget   *budget.Budget
	backends *backend.Set
}

// Complete sets the soft memory limit, registers the metrics, loads and
// compiles the configuration file and builds the backends. Its errors
// name the file or the backend at fault.
func (c *Config) Complete() (*Server, error) {
	if limit, from, err := memlimit.Set("/sys/fs/cgroup", c.MemoryLimitRatio); err != nil {
		klog.InfoS("Container memory limit not read; the Go runtime has no soft limit", "err", err)
	} else if limit > 0 {
		klog.InfoS("Go runtime soft memory limit set", "bytes", limit, "ratio", c.MemoryLimitRatio, "containerLimitFrom", from)
	}
	// Read once: what is served is what the reload watcher records.
	f, err := loadConfigFile(c.ConfigFile)
	if err != nil {
		return nil, err
	}
	for _, w := range ConfigWarnings(f.cfg, f.custom, f.external) {
		logConfigWarning(c.ConfigFile, w)
	}
	RegisterMetrics()
	s := &Server{cfg: c, file: f, budget: budget.New(c.Cache.MaxBytes)}
	if s.backends, err = c.newBackends(f, s.budget); err != nil {
		return nil, err
	}
	return s, nil
}

// RegisterMetrics registers every metric promgate exports, once, at
// start: the packages' own registrations are then no-ops.
func RegisterMetrics() {
	query.RegisterMetrics()
	catalog.RegisterMetrics()
	provider.RegisterMetrics()
	resource.RegisterMetrics()
	budget.RegisterMetrics()
	reload.RegisterMetrics()
}

// logConfigWarning logs what prometheus-adapter loads but promgate cannot
// check, as start and reloads do.
func logConfigWarning(path, warning string) {
	klog.InfoS("Config loaded with a warning: prometheus-adapter accepts this, promgate cannot check it", "config", path, "warning", warning)
}

package main

import (
	"errors"
	goflag "flag"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/pflag"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/klog/v2"
	basecmd "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd"

	"github.com/promgate/promgate/pkg/budget"
	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/query"
)

// serveOptions are the flags of "promgate serve". Every flag of
// prometheus-adapter v0.12 exists with the same name and meaning; where a
// default differs on purpose, the flag's help says so and why (see also
// docs/migration.md).
type serveOptions struct {
	base *basecmd.AdapterBase

	configFile     string
	prom           prom.Options
	headers        []string
	relistInterval time.Duration
	maxAge         time.Duration
	maxNames       int
	resourceAPI    bool
	requestTimeout time.Duration
	cacheTTL       time.Duration // fixed, or the fallback of cacheAuto
	cacheAuto      bool
	cacheMinTTL    time.Duration
	cacheMaxTTL    time.Duration
	maxConcurrent  int
	batch          bool
	disableHTTP2   bool
	limits         prom.Limits
	cacheBytes     int64
	budget         *budget.Budget // from cacheBytes, at run
	memLimitRatio  float64
	partialWindows bool
	reloadInterval time.Duration
	discovery      string

	// resourceHook installs metrics.k8s.io once the server exists.
	resourceHook func(*genericapiserver.GenericAPIServer) error
}

func newServeOptions() *serveOptions {
	o := &serveOptions{
		base: &basecmd.AdapterBase{
			Name:              "promgate",
			DiscoveryInterval: time.Minute,
			FlagSet:           pflag.NewFlagSet("promgate", pflag.ContinueOnError),
		},
		prom: prom.Options{
			URL:     "http://localhost:9090/",
			Timeout: 10 * time.Second,
			Verb:    "POST",
		},
		relistInterval: time.Minute,
		maxNames:       100,
		resourceAPI:    true,
		requestTimeout: 10 * time.Second,
		cacheTTL:       query.DefaultTTL,
		cacheAuto:      true,
		cacheMinTTL:    query.DefaultMinTTL,
		cacheMaxTTL:    query.DefaultMaxTTL,
		maxConcurrent:  16,
		memLimitRatio:  0.9,
		batch:          true,
		reloadInterval: 5 * time.Second,
		discovery:      string(catalog.MethodSeries),
	}
	return o
}

// flags returns every flag: the apiserver's (secure serving, delegated
// authentication and authorization, audit, features), the lister's, klog's
// and promgate's own.
func (o *serveOptions) flags() *pflag.FlagSet {
	fs := o.base.Flags()
	fs.StringVar(&o.configFile, "config", o.configFile, "Path to the rules file (prometheus-adapter format). Required.")
	fs.StringVar(&o.prom.URL, "prometheus-url", o.prom.URL, "URL of the Prometheus-compatible API (Prometheus, Thanos Query, Mimir, VictoriaMetrics); a path prefix is kept. (prometheus-adapter's default is https://localhost; promgate's is Prometheus' own port.)")
	fs.StringVar(&o.prom.AuthConfigFile, "prometheus-auth-config", o.prom.AuthConfigFile, "kubeconfig file whose cluster (CA) and user (token, client certificate) authenticate to Prometheus; its server is ignored. Cannot be combined with --prometheus-auth-incluster, --prometheus-token-file, --prometheus-ca-file or the client certificate flags.")
	fs.BoolVar(&o.prom.InCluster, "prometheus-auth-incluster", o.prom.InCluster, "Authenticate to Prometheus with the pod's service account token and the cluster CA. Cannot be combined with --prometheus-auth-config, --prometheus-token-file, --prometheus-ca-file or the client certificate flags.")
	fs.StringVar(&o.prom.CAFile, "prometheus-ca-file", o.prom.CAFile, "CA bundle that signs Prometheus' serving certificate.")
	fs.StringVar(&o.prom.TokenFile, "prometheus-token-file", o.prom.TokenFile, "File holding a bearer token for Prometheus; re-read when it changes. Refused with an http:// --prometheus-url unless --prometheus-allow-credentials-over-http.")
	fs.StringVar(&o.prom.CertFile, "prometheus-client-tls-cert-file", o.prom.CertFile, "Client certificate for mutual TLS with Prometheus (reloaded when it changes; needs --prometheus-client-tls-key-file).")
	fs.StringVar(&o.prom.KeyFile, "prometheus-client-tls-key-file", o.prom.KeyFile, "Client key for mutual TLS with Prometheus (needs --prometheus-client-tls-cert-file).")
	fs.StringArrayVar(&o.headers, "prometheus-header", o.headers, "Header added to every Prometheus request, as Name=Value (repeatable; e.g. X-Scope-OrgID=tenant for Mimir). Values are never logged.")
	fs.StringVar(&o.prom.Verb, "prometheus-verb", o.prom.Verb, "HTTP method for queries: GET or POST. Queries whose URL would pass 4 KiB are POSTed anyway. (prometheus-adapter defaults to GET; promgate to POST, because queries naming many pods overflow URL limits with GET, 414.)")
	fs.BoolVar(&o.prom.AllowCredentialsOverHTTP, strings.TrimPrefix(prom.FlagAllowCredentialsOverHTTP, "--"), o.prom.AllowCredentialsOverHTTP, "Allow sending a bearer token (--prometheus-token-file, --prometheus-auth-incluster, a --prometheus-auth-config user) or an Authorization header to an http:// --prometheus-url, in the clear. Only for a trusted network path; prometheus-adapter allowed this silently.")
	fs.DurationVar(&o.prom.Timeout, "prometheus-timeout", o.prom.Timeout, "Timeout of one Prometheus request; also sent to Prometheus as the query timeout. (prometheus-adapter has no timeout: a hung Prometheus held requests until the client gave up.)")
	fs.DurationVar(&o.relistInterval, "metrics-relist-interval", o.relistInterval, "How often series are rediscovered. (prometheus-adapter defaults to 10m; promgate to 1m, since its discovery keeps only series and label names, so new metrics appear within a minute.)")
	fs.StringVar(&o.discovery, "discovery-method", o.discovery, "How series are discovered: series (the default: stream every series of /api/v1/series, as prometheus-adapter; a metric disappears once its series are older than --metrics-max-age), auto (read Prometheus' index, /api/v1/labels and /api/v1/label/__name__/values, a few requests per seriesQuery whatever the number of series; fall back to /api/v1/series, logged once, where a backend does not answer them), index (the index only; a backend that does not answer it is a discovery error). index and auto cost a few requests per seriesQuery instead of every series, but keep a metric whose series all stopped until Prometheus compacts its head block, up to 2-3 hours, rather than for --metrics-max-age. Backends of the config file inherit it unless they set discovery. See docs/discovery.md.")
	fs.DurationVar(&o.maxAge, "metrics-max-age", o.maxAge, "Only series with samples this recent are discovered (0: the relist interval). Must not be less than --metrics-relist-interval.")
	fs.BoolVar(&o.disableHTTP2, "disable-http2", o.disableHTTP2, "Disable HTTP/2 on the serving port (prometheus-adapter's name for --disable-http2-serving).")
	fs.IntVar(&o.maxNames, "max-names-in-query", o.maxNames, "Most object names put in one query's regex; larger sets select the whole namespace and are filtered in promgate.")
	fs.BoolVar(&o.resourceAPI, "enable-resource-metrics", o.resourceAPI, "Serve metrics.k8s.io (kubectl top, HPA Resource metrics) when the config has resourceRules.")
	fs.Var(&cacheTTLValue{o}, "query-cache-ttl", "How long a query result is reused for identical queries: auto, or a fixed duration (0 disables; identical in-flight queries are always shared). auto derives each result's lifetime from the scrape interval of the metrics its query reads, learned from their raw samples once per metric every 10 minutes: until the next scrape of a metric scraped at one phase (one target), one interval for a job whose targets are scraped at different phases, within --query-cache-min-ttl and --query-cache-max-ttl; a metric whose interval is not known yet (or cannot be learned) gets 5s. So HPAs polling a metric send at most one Prometheus query per scrape interval, and no answer lags a fresh one by more than an interval. A fixed duration is reused for that long whatever the scrape interval; keep it below it. (prometheus-adapter has no cache; 0 restores that. Before auto, promgate's default was 5s, a third of the HPA's 15s sync period.)")
	fs.DurationVar(&o.cacheMinTTL, "query-cache-min-ttl", o.cacheMinTTL, "With --query-cache-ttl=auto, the shortest lifetime of a result: a metric scraped more often is queried at most this often. Raise it to bound the queries of fast-scraped metrics (with a 1s interval, HPAs polling a metric every 15s send up to 15 queries per sync period).")
	fs.DurationVar(&o.cacheMaxTTL, "query-cache-max-ttl", o.cacheMaxTTL, "With --query-cache-ttl=auto, the longest lifetime of a result, however rarely the metric is scraped.")
	fs.BoolVar(&o.batch, "query-batching", o.batch, "Share one query per metric among all requests through the query cache, filtered in promgate: custom metrics about objects from one cluster-wide query per metric (grouped by namespace and object), external metrics from the rule's query without the request's selector and namespace, resource metrics from one query per resource over all pods or nodes. Only where the rule's query is proven equivalent to the per-request one on its syntax tree (`promgate check` says, per rule); other rules are sent per request, as prometheus-adapter sends them. (prometheus-adapter sends one query per request; false restores that.)")
	fs.Int64Var(&o.limits.MaxResponseBytes, "prometheus-max-response-bytes", o.limits.MaxResponseBytes, "Largest answer read from Prometheus, in bytes (0: 64 MiB; negative: no limit). A larger answer is a 503, never a partial value.")
	fs.IntVar(&o.limits.MaxSamples, "prometheus-max-samples", o.limits.MaxSamples, "Most samples accepted in one query's answer (0: 500,000; negative: no limit). More is a 503.")
	fs.IntVar(&o.limits.MaxSeries, "prometheus-max-series", o.limits.MaxSeries, "Most series accepted in one /api/v1/series answer, and label names or values in one /api/v1/labels or /api/v1/label/<name>/values answer (0: 2,000,000; negative: no limit). More fails that discovery, which keeps its last good result.")
	fs.BoolVar(&o.limits.AllowPartialResponse, "prometheus-allow-partial-response", o.limits.AllowPartialResponse, "Serve answers the backend marks as partial (Thanos partial responses, a warning of missing data, VictoriaMetrics' isPartial). By default they are a 503: a sum over part of the pods is a wrong number, not a smaller one.")
	fs.Float64Var(&o.memLimitRatio, "memory-limit-ratio", o.memLimitRatio, "Soft memory limit of the Go runtime, as a share of the container's memory limit (cgroup), so that garbage from bursts of requests is collected before the limit is reached; 0: none. GOMEMLIMIT, when set, takes precedence.")
	fs.Int64Var(&o.cacheBytes, "query-cache-max-bytes", o.cacheBytes, "Memory budget, estimated, in bytes (0: 256 MiB), of everything kept for requests: cached answers, guarded queries, indexes of shared answers, sharing decisions; least recently used first out.")
	fs.DurationVar(&o.reloadInterval, "config-reload-interval", o.reloadInterval, "How often the --config file is read for changes (a ConfigMap update, an atomic symlink swap); a change, or SIGHUP, reloads rules and resource rules without a restart. A config that fails to load is refused and the last good one keeps serving (promgate_config_last_reload_successful). 0 disables reloading. (prometheus-adapter needs a restart.)")
	fs.BoolVar(&o.partialWindows, "serve-partial-windows", o.partialWindows, "Serve rates computed over windows that samples cover only in part (after a Prometheus outage or restart, a scrape gap, for a new pod). By default such series are left out (see docs/partial-windows.md): their rates read low and would scale workloads down; metrics-server likewise leaves out pods it has not seen twice.")
	fs.IntVar(&o.maxConcurrent, "max-concurrent-queries", o.maxConcurrent, "Most queries running against Prometheus at once.")
	fs.DurationVar(&o.requestTimeout, "resource-metrics-timeout", o.requestTimeout, "Deadline for answering one metrics.k8s.io request.")
	if f := fs.Lookup("discovery-interval"); f != nil {
		f.Usage += " (prometheus-adapter never refreshed it; promgate does, every minute by default, so CRDs created later are served.)"
	}

	gfs := goflag.NewFlagSet("klog", goflag.ContinueOnError)
	klog.InitFlags(gfs)
	fs.AddGoFlagSet(gfs)
	return fs
}

// Validate checks the flags without I/O and returns every problem found.
func (o *serveOptions) Validate() []error {
	var errs []error
	if o.configFile == "" {
		errs = append(errs, errors.New("--config is required"))
	}
	if o.prom.Timeout <= 0 {
		errs = append(errs, errors.New("--prometheus-timeout must be positive"))
	}
	if o.relistInterval <= 0 {
		errs = append(errs, errors.New("--metrics-relist-interval must be positive"))
	}
	if o.maxAge < 0 {
		errs = append(errs, errors.New("--metrics-max-age must not be negative"))
	} else if o.maxAge > 0 && o.maxAge < o.relistInterval {
		errs = append(errs, fmt.Errorf("--metrics-max-age (%s) must not be less than --metrics-relist-interval (%s): series seen between relists would be missed", o.maxAge, o.relistInterval))
	}
	if _, err := catalog.ParseMethod(o.discovery); err != nil {
		errs = append(errs, fmt.Errorf("--discovery-method: %w", err))
	}
	if o.base.DiscoveryInterval <= 0 {
		errs = append(errs, errors.New("--discovery-interval must be positive"))
	}
	if o.cacheTTL < 0 {
		errs = append(errs, errors.New("--query-cache-ttl must not be negative"))
	}
	if o.cacheMinTTL <= 0 || o.cacheMaxTTL <= 0 {
		errs = append(errs, errors.New("--query-cache-min-ttl and --query-cache-max-ttl must be positive"))
	} else if o.cacheMinTTL > o.cacheMaxTTL {
		errs = append(errs, fmt.Errorf("--query-cache-min-ttl (%s) must not be more than --query-cache-max-ttl (%s)", o.cacheMinTTL, o.cacheMaxTTL))
	}
	if o.maxConcurrent < 1 {
		errs = append(errs, errors.New("--max-concurrent-queries must be at least 1"))
	}
	if o.maxNames < 1 {
		errs = append(errs, errors.New("--max-names-in-query must be at least 1"))
	}
	if o.requestTimeout <= 0 {
		errs = append(errs, errors.New("--resource-metrics-timeout must be positive"))
	}
	if o.reloadInterval < 0 {
		errs = append(errs, errors.New("--config-reload-interval must not be negative"))
	}
	if o.cacheBytes < 0 {
		errs = append(errs, errors.New("--query-cache-max-bytes must not be negative"))
	}
	if o.memLimitRatio < 0 || o.memLimitRatio > 1 {
		errs = append(errs, fmt.Errorf("--memory-limit-ratio %v: want 0 (none) to 1", o.memLimitRatio))
	}
	po, err := o.promOptions()
	if err != nil {
		errs = append(errs, err)
	}
	return append(errs, po.Validate()...)
}

// promOptions returns the Prometheus client options, headers included.
func (o *serveOptions) promOptions() (prom.Options, error) {
	po := o.prom
	h, err := parseHeaders(o.headers)
	po.Headers = h
	return po, err
}

// complete applies flags that set other components' options.
func (o *serveOptions) complete() {
	if o.disableHTTP2 {
		o.base.CustomMetricsAdapterServerOptions.SecureServing.DisableHTTP2Serving = true
	}
}

// cacheTTLValue is --query-cache-ttl: "auto" or a duration.
type cacheTTLValue struct{ o *serveOptions }

func (v *cacheTTLValue) String() string {
	if v.o == nil { // pflag's zero value, for the help
		return ""
	}
	if v.o.cacheAuto {
		return "auto"
	}
	return v.o.cacheTTL.String()
}

func (v *cacheTTLValue) Set(s string) error {
	if s == "auto" {
		v.o.cacheAuto, v.o.cacheTTL = true, query.DefaultTTL
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf(`want "auto" or a duration such as 5s: %w`, err)
	}
	v.o.cacheAuto, v.o.cacheTTL = false, d
	return nil
}

func (*cacheTTLValue) Type() string { return "auto|duration" }

// parseHeaders parses --prometheus-header values. Errors never show a
// value: a malformed one may well be an API key.
func parseHeaders(in []string) (map[string][]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := map[string][]string{}
	var errs []error
	for i, h := range in {
		k, v, ok := strings.Cut(h, "=")
		k = strings.TrimSpace(k)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("--prometheus-header #%d: want Name=Value (not shown, it may hold a secret)", i+1))
		case !validHeaderName(k):
			errs = append(errs, fmt.Errorf("--prometheus-header #%d: the text before \"=\" is not a header name (a space or colon?); want Name=Value (not shown, it may hold a secret)", i+1))
		case strings.ContainsAny(v, "\r\n\x00"):
			errs = append(errs, fmt.Errorf("--prometheus-header #%d (%s): the value has a line break or NUL (value not shown)", i+1, k))
		default:
			k = http.CanonicalHeaderKey(k)
			out[k] = append(out[k], v)
		}
	}
	return out, errors.Join(errs...)
}

// validHeaderName reports whether s is an HTTP token (RFC 9110, 5.6.2).
func validHeaderName(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(c rune) bool {
		return !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.ContainsRune("!#$%&'*+-.^_`|~", c))
	})
}

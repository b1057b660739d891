package main

import (
	goflag "flag"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/klog/v2"
	basecmd "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd"

	"github.com/promgate/promgate/pkg/prom"
)

// serveOptions are the flags of "promgate serve". Names follow
// prometheus-adapter's wherever it has one.
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
	cacheTTL       time.Duration
	maxConcurrent  int
	batch          bool

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
	}
	return o
}

// flags returns every flag: the apiserver's (secure serving, delegated
// authentication and authorization, audit, features), the lister's, klog's
// and promgate's own.
func (o *serveOptions) flags() *pflag.FlagSet {
	fs := o.base.Flags()
	fs.StringVar(&o.configFile, "config", o.configFile, "Path to the rules file (prometheus-adapter format). Required.")
	fs.StringVar(&o.prom.URL, "prometheus-url", o.prom.URL, "URL of the Prometheus-compatible API (Prometheus, Thanos Query, Mimir, VictoriaMetrics); a path prefix is kept.")
	fs.StringVar(&o.prom.AuthConfigFile, "prometheus-auth-config", o.prom.AuthConfigFile, "kubeconfig file whose cluster and user authenticate to Prometheus.")
	fs.BoolVar(&o.prom.InCluster, "prometheus-auth-incluster", o.prom.InCluster, "Authenticate to Prometheus with the pod's service account.")
	fs.StringVar(&o.prom.CAFile, "prometheus-ca-file", o.prom.CAFile, "CA bundle that signs Prometheus' serving certificate.")
	fs.StringVar(&o.prom.TokenFile, "prometheus-token-file", o.prom.TokenFile, "File holding a bearer token for Prometheus; re-read when it changes.")
	fs.StringVar(&o.prom.CertFile, "prometheus-client-tls-cert-file", o.prom.CertFile, "Client certificate for mutual TLS with Prometheus.")
	fs.StringVar(&o.prom.KeyFile, "prometheus-client-tls-key-file", o.prom.KeyFile, "Client key for mutual TLS with Prometheus.")
	fs.StringArrayVar(&o.headers, "prometheus-header", o.headers, "Header added to every Prometheus request, as Name=Value (repeatable; e.g. X-Scope-OrgID=tenant for Mimir).")
	fs.StringVar(&o.prom.Verb, "prometheus-verb", o.prom.Verb, "HTTP method for queries: GET or POST. Queries too long for a URL are always POSTed.")
	fs.DurationVar(&o.prom.Timeout, "prometheus-timeout", o.prom.Timeout, "Timeout of one Prometheus request; also sent to Prometheus as the query timeout.")
	fs.DurationVar(&o.relistInterval, "metrics-relist-interval", o.relistInterval, "How often series are rediscovered.")
	fs.DurationVar(&o.maxAge, "metrics-max-age", o.maxAge, "Only series with samples this recent are discovered (0: the relist interval).")
	fs.IntVar(&o.maxNames, "max-names-in-query", o.maxNames, "Most object names put in one query's regex; larger sets select the whole namespace and are filtered in promgate.")
	fs.BoolVar(&o.resourceAPI, "enable-resource-metrics", o.resourceAPI, "Serve metrics.k8s.io (kubectl top, HPA Resource metrics) when the config has resourceRules.")
	fs.DurationVar(&o.cacheTTL, "query-cache-ttl", 5*time.Second, "How long a query result is reused for identical queries (0 disables; identical in-flight queries are always shared). Keep it below the scrape interval.")
	fs.BoolVar(&o.batch, "query-batching", true, "Share one query per metric among all requests through the query cache: custom metrics about objects from one cluster-wide query per metric (grouped by namespace and object), external metrics from the rule's query without the request's selector and namespace (only where the query keeps each series' labels), resource metrics from one query per resource over all pods or nodes; the results are filtered in promgate. Turn off for custom metricsQuery templates that do not aggregate by <<.GroupBy>>.")
	fs.IntVar(&o.maxConcurrent, "max-concurrent-queries", 16, "Most queries running against Prometheus at once.")
	fs.DurationVar(&o.requestTimeout, "resource-metrics-timeout", 10*time.Second, "Deadline for answering one metrics.k8s.io request.")

	gfs := goflag.NewFlagSet("klog", goflag.ContinueOnError)
	klog.InitFlags(gfs)
	fs.AddGoFlagSet(gfs)
	return fs
}

// validate checks the flags that do not need I/O.
func (o *serveOptions) validate() []error {
	var errs []error
	if o.configFile == "" {
		errs = append(errs, fmt.Errorf("--config is required"))
	}
	if o.prom.URL == "" {
		errs = append(errs, fmt.Errorf("--prometheus-url is required"))
	}
	if v := strings.ToUpper(o.prom.Verb); v != "GET" && v != "POST" {
		errs = append(errs, fmt.Errorf("--prometheus-verb must be GET or POST, not %q", o.prom.Verb))
	}
	if o.prom.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("--prometheus-timeout must be positive"))
	}
	if o.relistInterval <= 0 {
		errs = append(errs, fmt.Errorf("--metrics-relist-interval must be positive"))
	}
	if o.maxAge < 0 {
		errs = append(errs, fmt.Errorf("--metrics-max-age must not be negative"))
	}
	if o.cacheTTL < 0 {
		errs = append(errs, fmt.Errorf("--query-cache-ttl must not be negative"))
	}
	if o.maxConcurrent < 1 {
		errs = append(errs, fmt.Errorf("--max-concurrent-queries must be at least 1"))
	}
	if o.maxNames < 1 {
		errs = append(errs, fmt.Errorf("--max-names-in-query must be at least 1"))
	}
	if (o.prom.CertFile == "") != (o.prom.KeyFile == "") {
		errs = append(errs, fmt.Errorf("--prometheus-client-tls-cert-file and --prometheus-client-tls-key-file go together"))
	}
	headers, err := parseHeaders(o.headers)
	if err != nil {
		errs = append(errs, err)
	}
	o.prom.Headers = headers
	return errs
}

func parseHeaders(in []string) (map[string][]string, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := map[string][]string{}
	for _, h := range in {
		k, v, ok := strings.Cut(h, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("--prometheus-header %q: want Name=Value", h)
		}
		out[k] = append(out[k], v)
	}
	return out, nil
}

package main

import (
	"errors"
	"strings"

	"github.com/spf13/pflag"

	"github.com/promgate/promgate/pkg/backend"
	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/query"
	"github.com/promgate/promgate/pkg/server"
)

// PrometheusOptions are the --prometheus-* flags: the default backend's
// client and answer limits. serve and explain define them here, once.
type PrometheusOptions struct {
	Client prom.Options
	// Headers are the --prometheus-header values, Name=Value.
	Headers []string
	Limits  prom.Limits
}

// NewPrometheusOptions returns the defaults.
func NewPrometheusOptions() *PrometheusOptions {
	return &PrometheusOptions{Client: prom.Options{
		URL:     "http://localhost:9090/",
		Timeout: query.DefaultTimeout,
		Verb:    "POST",
	}}
}

// AddFlags adds the --prometheus-* flags to fs.
func (o *PrometheusOptions) AddFlags(fs *pflag.FlagSet) {
	c := &o.Client
	fs.StringVar(&c.URL, "prometheus-url", c.URL, "URL of the Prometheus-compatible API (Prometheus, Thanos Query, Mimir, VictoriaMetrics); a path prefix is kept. (prometheus-adapter's default is https://localhost; promgate's is Prometheus' own port.)")
	fs.StringVar(&c.AuthConfigFile, "prometheus-auth-config", c.AuthConfigFile, "kubeconfig file whose cluster (CA) and user (token, client certificate) authenticate to Prometheus; its server is ignored. Cannot be combined with --prometheus-auth-incluster, --prometheus-token-file, --prometheus-ca-file or the client certificate flags.")
	fs.BoolVar(&c.InCluster, "prometheus-auth-incluster", c.InCluster, "Authenticate to Prometheus with the pod's service account token and the cluster CA. Cannot be combined with --prometheus-auth-config, --prometheus-token-file, --prometheus-ca-file or the client certificate flags.")
	fs.StringVar(&c.CAFile, "prometheus-ca-file", c.CAFile, "CA bundle that signs Prometheus' serving certificate.")
	fs.StringVar(&c.TokenFile, "prometheus-token-file", c.TokenFile, "File holding a bearer token for Prometheus; re-read when it changes. Refused with an http:// --prometheus-url unless --prometheus-allow-credentials-over-http.")
	fs.StringVar(&c.CertFile, "prometheus-client-tls-cert-file", c.CertFile, "Client certificate for mutual TLS with Prometheus (reloaded when it changes; needs --prometheus-client-tls-key-file).")
	fs.StringVar(&c.KeyFile, "prometheus-client-tls-key-file", c.KeyFile, "Client key for mutual TLS with Prometheus (needs --prometheus-client-tls-cert-file).")
	fs.StringArrayVar(&o.Headers, strings.TrimPrefix(backend.FlagHeader, "--"), o.Headers, "Header added to every Prometheus request, as Name=Value (repeatable; e.g. X-Scope-OrgID=tenant for Mimir). Values are never logged.")
	fs.StringVar(&c.Verb, "prometheus-verb", c.Verb, "HTTP method for queries: GET or POST; queries whose URL would pass 4 KiB are POSTed anyway. (prometheus-adapter defaults to GET, whose long URLs fail with 414.)")
	fs.BoolVar(&c.AllowCredentialsOverHTTP, strings.TrimPrefix(prom.FlagAllowCredentialsOverHTTP, "--"), c.AllowCredentialsOverHTTP, "Allow sending a bearer token (--prometheus-token-file, --prometheus-auth-incluster, a --prometheus-auth-config user) or an Authorization header to an http:// --prometheus-url, in the clear. Only for a trusted network path.")
	fs.DurationVar(&c.Timeout, "prometheus-timeout", c.Timeout, "Timeout of one Prometheus request; also sent as the query's timeout. (prometheus-adapter has none.)")
	fs.Int64Var(&o.Limits.MaxResponseBytes, strings.TrimPrefix(prom.FlagMaxResponseBytes, "--"), o.Limits.MaxResponseBytes, "Largest answer read from Prometheus, in bytes (0: 64 MiB; negative: no limit). More is a 503.")
	fs.IntVar(&o.Limits.MaxSamples, strings.TrimPrefix(prom.FlagMaxSamples, "--"), o.Limits.MaxSamples, "Most samples in one query's answer (0: 500,000; negative: no limit). More is a 503.")
	fs.IntVar(&o.Limits.MaxSeries, strings.TrimPrefix(prom.FlagMaxSeries, "--"), o.Limits.MaxSeries, "Most series in one /api/v1/series answer, or label names or values in one index answer (0: 2,000,000; negative: no limit). More fails that discovery.")
	fs.BoolVar(&o.Limits.AllowPartialResponse, "prometheus-allow-partial-response", o.Limits.AllowPartialResponse, "Serve answers the backend marks as partial (Thanos, VictoriaMetrics); by default they are a 503.")
}

// Validate checks the flags without I/O.
func (o *PrometheusOptions) Validate() []error {
	var errs []error
	if o.Client.Timeout <= 0 {
		errs = append(errs, errors.New("--prometheus-timeout must be positive"))
	}
	c, err := o.client()
	if err != nil {
		errs = append(errs, err)
	}
	return append(errs, c.Validate()...)
}

// ApplyTo sets the default backend's client, headers parsed, and limits.
func (o *PrometheusOptions) ApplyTo(cfg *server.Config) error {
	c, err := o.client()
	if err != nil {
		return err
	}
	cfg.Prometheus, cfg.Limits = c, o.Limits
	return nil
}

// client returns the client options with the headers parsed.
func (o *PrometheusOptions) client() (prom.Options, error) {
	c := o.Client
	h, err := backend.ParseHeaders(o.Headers)
	c.Headers = h
	return c, err
}

package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	commoncfg "github.com/prometheus/common/config"
	pmodel "github.com/prometheus/common/model"
)

// DefaultBackend is the name of the backend the --prometheus-* flags
// configure. Rules that name no backend read from it, so that
// prometheus-adapter's configurations work unchanged.
const DefaultBackend = "default"

// Dialects of query language a backend speaks.
const (
	// DialectPromQL (the default): templates are parsed as PromQL and
	// request values are injected into the parsed query.
	DialectPromQL = "promql"
	// DialectMetricsQL: VictoriaMetrics' superset of PromQL. A template
	// that PromQL's parser cannot read is sent as rendered, with every
	// request value restricted to characters that cannot end a string,
	// regex or label list (see package promql).
	DialectMetricsQL = "metricsql"
)

// Backend is a Prometheus-compatible server that rules can read from
// (Prometheus, Thanos Query, Mimir or Cortex, VictoriaMetrics), besides the
// default one of the --prometheus-* flags.
type Backend struct {
	// Name identifies the backend in rules (rules[].backend), errors,
	// logs, explain output and the backend label of self-metrics.
	Name string `json:"name" yaml:"name"`
	// URL is the base URL of the backend's Prometheus HTTP API, with any
	// path prefix: http://thanos-query:9090/, or
	// http://vmselect:8481/select/<accountID>/prometheus for a
	// VictoriaMetrics cluster tenant.
	URL string `json:"url" yaml:"url"`
	// HTTP is Prometheus' own HTTP client configuration, as in its
	// scrape_configs and remote_write: authorization (credentials_file is
	// re-read on every request), basic_auth, oauth2, tls_config
	// (certificate files are reloaded when they change), http_headers
	// (for tenants: X-Scope-OrgID, THANOS-TENANT), proxy_url,
	// follow_redirects, enable_http2. Relative file names are relative to
	// the configuration file's directory.
	HTTP commoncfg.HTTPClientConfig `json:"http,omitempty" yaml:"http,omitempty"`
	// Timeout bounds every request (default: the default backend's,
	// --prometheus-timeout). It is also sent as the query's timeout.
	Timeout pmodel.Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	// Verb is GET or POST (default POST).
	Verb string `json:"verb,omitempty" yaml:"verb,omitempty"`
	// Params are URL parameters added to every query and series request,
	// e.g. Thanos' partial_response and dedup, VictoriaMetrics'
	// extra_label or nocache. They cannot replace the parameters promgate
	// sets itself (query, time, timeout, match[], start, end).
	Params map[string][]string `json:"params,omitempty" yaml:"params,omitempty"`
	// Dialect is promql (default) or metricsql.
	Dialect string `json:"dialect,omitempty" yaml:"dialect,omitempty"`
	// Discovery is how series are discovered on this backend (a Method):
	// series (/api/v1/series, every series, as prometheus-adapter), auto
	// (index, falling back to series where the backend does not answer
	// it) or index (/api/v1/labels and /api/v1/label/__name__/values, a
	// few requests per seriesQuery). Unset, the backend inherits the
	// default backend's, --discovery-method (series unless set). See
	// docs/discovery.md.
	Discovery string `json:"discovery,omitempty" yaml:"discovery,omitempty"`
	// AllowPartialResponse serves answers the backend marks as partial
	// (a Thanos store or Mimir ingester missing). By default they are
	// 503s, because a sum over some of the pods is a wrong number.
	AllowPartialResponse bool `json:"allowPartialResponse,omitempty" yaml:"allowPartialResponse,omitempty"`
	// AllowCredentialsOverHTTP permits credentials on a plain http:// URL.
	AllowCredentialsOverHTTP bool `json:"allowCredentialsOverHTTP,omitempty" yaml:"allowCredentialsOverHTTP,omitempty"`
	// MaxResponseBytes, MaxSamples and MaxSeries bound one answer (0: the
	// values of --prometheus-max-response-bytes, --prometheus-max-samples
	// and --prometheus-max-series; negative: no limit). MaxSeries bounds
	// the series of a /api/v1/series answer and the label names or values
	// of a /api/v1/labels or /api/v1/label/<name>/values answer.
	MaxResponseBytes int64 `json:"maxResponseBytes,omitempty" yaml:"maxResponseBytes,omitempty"`
	MaxSamples       int   `json:"maxSamples,omitempty" yaml:"maxSamples,omitempty"`
	MaxSeries        int   `json:"maxSeries,omitempty" yaml:"maxSeries,omitempty"`
	// MaxConcurrentQueries bounds the queries in flight to this backend
	// (0: that of --max-concurrent-queries).
	MaxConcurrentQueries int `json:"maxConcurrentQueries,omitempty" yaml:"maxConcurrentQueries,omitempty"`
}

// reservedParams are the parameters promgate sets on its requests.
var reservedParams = []string{"query", "time", "timeout", "match[]", "start", "end", "step", "limit"}

var backendNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$`)

// BackendNames returns the names rules may use: DefaultBackend and those
// of c.Backends.
func (c *Config) BackendNames() []string {
	out := []string{DefaultBackend}
	for _, b := range c.Backends {
		if !slices.Contains(out, b.Name) {
			out = append(out, b.Name)
		}
	}
	return out
}

// Backend returns the configured backend called name, if any.
func (c *Config) Backend(name string) (Backend, bool) {
	for _, b := range c.Backends {
		if b.Name == name {
			return b, true
		}
	}
	return Backend{}, false
}

func (b Backend) validate(path string) []error {
	var errs []error
	switch {
	case b.Name == "":
		errs = append(errs, Fieldf(path+".name", "is required"))
	case b.Name == DefaultBackend:
		errs = append(errs, Fieldf(path+".name", "%q is the backend of the --prometheus-* flags; choose another name", DefaultBackend))
	case !backendNameRE.MatchString(b.Name):
		errs = append(errs, Fieldf(path+".name", "%q is not a valid backend name (lower-case letters, digits, '-' and '_', at most 63)", b.Name))
	}
	if b.URL == "" {
		errs = append(errs, Fieldf(path+".url", "is required"))
	} else if u, err := url.Parse(b.URL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		errs = append(errs, Fieldf(path+".url", "want http:// or https://host[:port][/prefix]"))
	} else if u.User != nil {
		errs = append(errs, Fieldf(path+".url", "must not hold credentials: use http.basic_auth"))
	}
	if v := strings.ToUpper(b.Verb); v != "" && v != "GET" && v != "POST" {
		errs = append(errs, Fieldf(path+".verb", "must be GET or POST, not %q", b.Verb))
	}
	switch Method(b.Discovery) {
	case "", MethodAuto, MethodIndex, MethodSeries:
	default:
		errs = append(errs, Fieldf(path+".discovery", "must be %s, %s or %s, not %q", MethodAuto, MethodIndex, MethodSeries, b.Discovery))
	}
	if b.Dialect != "" && b.Dialect != DialectPromQL && b.Dialect != DialectMetricsQL {
		errs = append(errs, Fieldf(path+".dialect", "must be %s or %s, not %q", DialectPromQL, DialectMetricsQL, b.Dialect))
	}
	if time.Duration(b.Timeout) < 0 {
		errs = append(errs, Fieldf(path+".timeout", "must not be negative"))
	}
	if b.MaxConcurrentQueries < 0 {
		errs = append(errs, Fieldf(path+".maxConcurrentQueries", "must not be negative"))
	}
	for _, k := range sortedKeys(b.Params) {
		if slices.Contains(reservedParams, k) {
			errs = append(errs, Fieldf(fmt.Sprintf("%s.params[%q]", path, k), "is set by promgate itself"))
		}
	}
	if err := b.HTTP.Validate(); err != nil {
		errs = append(errs, Fieldf(path+".http", "%v", err))
	}
	if !b.AllowCredentialsOverHTTP && strings.HasPrefix(strings.ToLower(b.URL), "http://") {
		if what := credentials(b.HTTP); what != "" {
			errs = append(errs, Fieldf(path+".http", "%s would be sent in the clear to the plain http:// URL: use https://, or set allowCredentialsOverHTTP if the network path is trusted", what))
		}
	}
	return errs
}

// credentials names the credentials c sends, if any.
func credentials(c commoncfg.HTTPClientConfig) string {
	switch {
	case c.Authorization != nil && (c.Authorization.Credentials != "" || c.Authorization.CredentialsFile != "" || c.Authorization.CredentialsRef != ""):
		return "http.authorization (a bearer token)"
	case c.BearerToken != "" || c.BearerTokenFile != "":
		return "a bearer token"
	case c.BasicAuth != nil:
		return "http.basic_auth (a username and password)"
	case c.OAuth2 != nil:
		return "http.oauth2 (a client secret and tokens)"
	}
	if c.HTTPHeaders != nil {
		for k := range c.HTTPHeaders.Headers {
			if strings.EqualFold(k, "Authorization") {
				return "http.http_headers Authorization"
			}
		}
	}
	return ""
}

// setDirectory makes the backends' relative file names relative to the
// directory of the configuration file at path.
func (c *Config) setDirectory(path string) {
	for i := range c.Backends {
		c.Backends[i].HTTP.SetDirectory(filepath.Dir(path))
	}
}

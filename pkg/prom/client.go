// Package prom talks to a Prometheus-compatible backend (Prometheus, Thanos,
// Mimir, VictoriaMetrics) over its HTTP API: instant queries, label names
// and values read whole and decoded in place, and a streaming decoder for
// /api/v1/series so that discovery never holds a whole response in memory.
// Every answer is bounded by Limits while it is read.
//
// client.go holds the options and the transport (prometheus/common's HTTP
// client configuration, or client-go's for a kubeconfig); request.go sends
// every call, with the POST-then-GET verb fallback of client_golang's v1
// API; envelope.go reads the status, errors and warnings around an
// answer's data; scanner.go is the JSON scanner of the answers read whole;
// bounded.go bounds what is read. client_golang's v1 and prometheus/common's
// model packages are the API's types.
package prom

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	commoncfg "github.com/prometheus/common/config"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Options configure a Client. Field names follow prometheus-adapter's flags,
// and the errors of Validate and New name those flags.
type Options struct {
	// URL is the backend's base URL, e.g. http://prometheus:9090/ (a path
	// prefix such as /prometheus or /api/prom is kept).
	URL string
	// Timeout bounds every request; it is also sent to the backend as the
	// query's own timeout.
	Timeout time.Duration
	// AuthConfigFile is a kubeconfig whose cluster and user entries
	// authenticate to the backend (prometheus-adapter's --prometheus-auth-config).
	// Its CA, client certificate and credentials are the only ones used:
	// it cannot be combined with CAFile, CertFile, KeyFile or TokenFile.
	AuthConfigFile string
	// InCluster authenticates with the pod's service account, like
	// AuthConfigFile with the in-cluster configuration.
	InCluster bool
	// CAFile, CertFile, KeyFile configure TLS; the certificate is reloaded
	// when the files change.
	CAFile, CertFile, KeyFile string
	// InsecureSkipVerify disables server certificate checks (tests only).
	InsecureSkipVerify bool
	// TokenFile holds a bearer token; it is re-read when it changes.
	TokenFile string
	// Headers are added to every request (e.g. X-Scope-OrgID for tenants).
	// Their values are treated as secrets: they are never logged.
	Headers map[string][]string
	// Verb is GET or POST (default). POST is used for long queries regardless.
	Verb string
	// AllowCredentialsOverHTTP permits sending a bearer token, basic auth or
	// an Authorization header to a plain http:// URL. Without it such
	// options are refused, since anyone on the path could read them.
	AllowCredentialsOverHTTP bool

	// Name identifies the backend in errors, logs and metrics (default: the
	// URL without credentials).
	Name string
	// HTTPConfig, when set, is the whole HTTP client configuration (a
	// configuration file's backend: Prometheus' own schema); the CA, cert,
	// key, token, in-cluster and kubeconfig options must then be unset.
	// Headers still apply.
	HTTPConfig *commoncfg.HTTPClientConfig
	// Params are added to every query and series request (Thanos'
	// partial_response or dedup, VictoriaMetrics' extra_label); they
	// never replace the parameters the client sets itself.
	Params url.Values
}

// Flag names of the options, for errors that tell the user what to change.
const (
	flagURL        = "--prometheus-url"
	flagAuthConfig = "--prometheus-auth-config"
	flagInCluster  = "--prometheus-auth-incluster"
	flagCAFile     = "--prometheus-ca-file"
	flagCertFile   = "--prometheus-client-tls-cert-file"
	flagKeyFile    = "--prometheus-client-tls-key-file"
	flagTokenFile  = "--prometheus-token-file"
	flagHeader     = "--prometheus-header"
	flagVerb       = "--prometheus-verb"

	// FlagMaxResponseBytes, FlagMaxSamples and FlagMaxSeries are the
	// flags of Limits.MaxResponseBytes, Limits.MaxSamples and
	// Limits.MaxSeries, named by the errors of answers over them.
	FlagMaxResponseBytes = "--prometheus-max-response-bytes"
	FlagMaxSamples       = "--prometheus-max-samples"
	FlagMaxSeries        = "--prometheus-max-series"

	// FlagAllowCredentialsOverHTTP is the flag of AllowCredentialsOverHTTP.
	FlagAllowCredentialsOverHTTP = "--prometheus-allow-credentials-over-http"
)

// Validate reports every option that is missing, malformed, contradicts
// another, or would send credentials in the clear. It does no I/O; New
// also checks the credentials of AuthConfigFile once it has read it.
func (o Options) Validate() []error {
	var errs []error
	if o.URL == "" {
		errs = append(errs, errors.New("prometheus URL is required ("+flagURL+")"))
	} else if u, err := url.Parse(o.URL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		errs = append(errs, fmt.Errorf("invalid prometheus URL %q (%s): want http:// or https://host[:port][/prefix]", redactURL(o.URL), flagURL))
	}
	if v := strings.ToUpper(o.Verb); v != "" && v != http.MethodGet && v != http.MethodPost {
		errs = append(errs, fmt.Errorf("prometheus verb must be GET or POST, not %q (%s)", o.Verb, flagVerb))
	}
	if o.HTTPConfig != nil {
		for _, f := range []flagUse{{o.TokenFile != "", flagTokenFile}, {o.CAFile != "", flagCAFile}, {o.CertFile != "", flagCertFile},
			{o.KeyFile != "", flagKeyFile}, {o.AuthConfigFile != "", flagAuthConfig}, {o.InCluster, flagInCluster}} {
			if f.set {
				errs = append(errs, fmt.Errorf("prometheus client config: %s cannot be combined with an HTTP client configuration", f.name))
			}
		}
		if err := o.HTTPConfig.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("prometheus client config: %w", err))
		}
	}
	authHeader := false
	for k := range o.Headers {
		authHeader = authHeader || strings.EqualFold(k, "Authorization")
	}
	errs = append(errs, o.authConflicts(authHeader)...)
	if !o.AllowCredentialsOverHTTP && isPlainHTTP(o.URL) {
		u, _ := url.Parse(o.URL)
		for _, f := range []flagUse{
			{u != nil && u.User != nil, flagURL + " user info (a username and password)"},
			{o.TokenFile != "", flagTokenFile + " (a bearer token)"},
			{o.InCluster, flagInCluster + " (the service account token)"},
			{authHeader, flagHeader + " Authorization=..."},
		} {
			if f.set {
				errs = append(errs, credentialsOverHTTP(f.name, o.URL))
			}
		}
	}
	return errs
}

// authConflicts reports the credential options that contradict each
// other; authHeader tells whether Headers set Authorization.
func (o Options) authConflicts(authHeader bool) []error {
	var errs []error
	// A kubeconfig (or the in-cluster config) brings its own CA, client
	// certificate and credentials. prometheus-adapter silently ignored one
	// side or the other; promgate refuses the combination instead.
	var kube, supplies string
	switch {
	case o.AuthConfigFile != "":
		kube, supplies = flagAuthConfig, "the kubeconfig supplies the CA, client certificate and credentials; set them there"
		if o.InCluster {
			errs = append(errs, conflict(flagAuthConfig, flagInCluster, "both choose the credentials for Prometheus; keep one"))
		}
	case o.InCluster:
		kube, supplies = flagInCluster, "the in-cluster config supplies the CA and the service account token; use --prometheus-auth-config with a kubeconfig to choose others"
	}
	if kube != "" {
		for _, f := range []flagUse{{o.TokenFile != "", flagTokenFile}, {o.CAFile != "", flagCAFile}, {o.CertFile != "", flagCertFile}, {o.KeyFile != "", flagKeyFile}} {
			if f.set {
				errs = append(errs, conflict(f.name, kube, supplies))
			}
		}
	} else if (o.CertFile == "") != (o.KeyFile == "") {
		errs = append(errs, errors.New("prometheus client config: "+flagCertFile+" and "+flagKeyFile+" go together"))
	}
	if authHeader {
		for _, f := range []flagUse{{o.TokenFile != "", flagTokenFile}, {o.AuthConfigFile != "", flagAuthConfig}, {o.InCluster, flagInCluster}} {
			if f.set {
				errs = append(errs, conflict(flagHeader+" Authorization=...", f.name, "both set the Authorization header; keep one"))
			}
		}
	}
	return errs
}

// flagUse is a flag and whether it is set.
type flagUse struct {
	set  bool
	name string
}

// conflict is the error of two options that contradict each other.
func conflict(a, b, why string) error {
	return fmt.Errorf("prometheus auth config: %s conflicts with %s: %s", a, b, why)
}

// isPlainHTTP reports whether raw is an http:// URL.
func isPlainHTTP(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && strings.EqualFold(u.Scheme, "http")
}

// credentialsOverHTTP is the error of credentials (what) that would go to
// the plain http:// rawURL.
func credentialsOverHTTP(what, rawURL string) error {
	return fmt.Errorf("prometheus credentials: %s would be sent in the clear to %s (%s is plain http://): use an https:// URL, or set %s if the network path is trusted",
		what, redactURL(rawURL), flagURL, FlagAllowCredentialsOverHTTP)
}

// redactURL drops user info and query, which may hold credentials.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<invalid URL>"
	}
	r := *u
	r.User, r.RawQuery, r.ForceQuery, r.Fragment = nil, "", false, ""
	return r.String()
}

// Client is a Prometheus HTTP API client bound to one backend.
type Client struct {
	name    string
	params  url.Values
	base    *url.URL
	timeout time.Duration
	http    *http.Client
}

// Error is a failure of the backend (unreachable, timed out, 5xx, or a
// query it rejected). Callers turn it into 503 Service Unavailable.
type Error struct {
	// Backend names the backend (its URL without credentials).
	Backend string
	// Op is what was attempted: "query", "series", "labels" or "label
	// values".
	Op  string
	Err error
}

// Error reads "prometheus backend <name>: <op> failed: <the error>".
func (e *Error) Error() string {
	return fmt.Sprintf("prometheus backend %s: %s failed: %v", e.Backend, e.Op, e.Err)
}

// Unwrap returns the failure.
func (e *Error) Unwrap() error { return e.Err }

// New builds a Client from opts, after Validate.
func New(opts Options) (*Client, error) {
	if errs := opts.Validate(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	u, err := url.Parse(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("invalid prometheus URL %q: %w", opts.URL, err)
	}
	verb := strings.ToUpper(opts.Verb)
	if verb == "" {
		verb = http.MethodPost
	}
	rt, err := roundTripper(opts)
	if err != nil {
		return nil, err
	}
	if verb == http.MethodGet {
		rt = &getRoundTripper{next: rt}
	}
	hc := &http.Client{Transport: rt, Timeout: opts.Timeout}
	name := opts.Name
	if name == "" {
		name = redactURL(opts.URL)
	}
	return &Client{
		name:    name,
		params:  opts.Params,
		base:    u,
		timeout: opts.Timeout,
		http:    hc,
	}, nil
}

// roundTripper builds the transport: from a kubeconfig (or the in-cluster
// config) like prometheus-adapter, or from the TLS and token options. The
// extra headers are set innermost, below client-go's debugging round
// tripper, so that -v=7 and above never log their values.
func roundTripper(opts Options) (http.RoundTripper, error) {
	if opts.AuthConfigFile != "" || opts.InCluster {
		return kubeRoundTripper(opts)
	}
	if opts.HTTPConfig != nil {
		rt, err := commoncfg.NewRoundTripperFromConfig(*opts.HTTPConfig, "promgate", commoncfg.WithUserAgent("promgate"))
		if err != nil {
			return nil, fmt.Errorf("prometheus client config: %w", err)
		}
		return withHeaders(rt, opts.Headers), nil
	}
	cfg := commoncfg.DefaultHTTPClientConfig
	cfg.TLSConfig = commoncfg.TLSConfig{
		CAFile:             opts.CAFile,
		CertFile:           opts.CertFile,
		KeyFile:            opts.KeyFile,
		InsecureSkipVerify: opts.InsecureSkipVerify,
	}
	if opts.TokenFile != "" {
		cfg.Authorization = &commoncfg.Authorization{Type: "Bearer", CredentialsFile: opts.TokenFile}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("prometheus client config: %w", err)
	}
	rt, err := commoncfg.NewRoundTripperFromConfig(cfg, "promgate", commoncfg.WithUserAgent("promgate"))
	if err != nil {
		return nil, fmt.Errorf("prometheus client config: %w", err)
	}
	return withHeaders(rt, opts.Headers), nil
}

// kubeRoundTripper builds the transport from a kubeconfig or the in-cluster
// config (see roundTripper).
func kubeRoundTripper(opts Options) (http.RoundTripper, error) {
	var rc *rest.Config
	var err error
	if opts.InCluster {
		rc, err = rest.InClusterConfig()
	} else {
		// client-go applies a kubeconfig's CA, client certificate and
		// credentials only when its server is https://: for an https://
		// backend, that server is the backend's URL, so that an http://
		// one in the kubeconfig does not silently drop them.
		server := ""
		if !isPlainHTTP(opts.URL) {
			server = opts.URL
		}
		rc, err = clientcmd.BuildConfigFromFlags(server, opts.AuthConfigFile)
	}
	if err != nil {
		return nil, fmt.Errorf("prometheus auth config: %w", err)
	}
	if !opts.AllowCredentialsOverHTTP && isPlainHTTP(opts.URL) {
		if what := kubeconfigCredentials(rc); what != "" {
			src := flagInCluster
			if !opts.InCluster {
				src = flagAuthConfig + " " + opts.AuthConfigFile
			}
			return nil, credentialsOverHTTP(fmt.Sprintf("%s (%s)", src, what), opts.URL)
		}
	}
	rc.Wrap(func(rt http.RoundTripper) http.RoundTripper { return withHeaders(rt, opts.Headers) })
	rt, err := rest.TransportFor(rc)
	if err != nil {
		return nil, fmt.Errorf("prometheus auth config: %w", err)
	}
	return rt, nil
}

// kubeconfigCredentials names the credentials rc sends, if any.
func kubeconfigCredentials(rc *rest.Config) string {
	switch {
	case rc.BearerToken != "" || rc.BearerTokenFile != "":
		return "a bearer token"
	case rc.Username != "" || rc.Password != "":
		return "a username and password"
	case rc.ExecProvider != nil:
		return "an exec credential plugin"
	case rc.AuthProvider != nil:
		return "an auth provider"
	}
	return ""
}

// withHeaders sets h on every request rt sends, replacing what the
// request had under those names.
func withHeaders(rt http.RoundTripper, h map[string][]string) http.RoundTripper {
	if len(h) == 0 {
		return rt
	}
	return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		for k := range h {
			r.Header.Del(k)
		}
		for k, vs := range h {
			for _, v := range vs {
				r.Header.Add(k, v)
			}
		}
		return rt.RoundTrip(r)
	})
}

// roundTripperFunc is a function as an http.RoundTripper.
type roundTripperFunc func(*http.Request) (*http.Response, error)

// RoundTrip calls f.
func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Name identifies the backend in errors and logs.
func (c *Client) Name() string { return c.name }

// WithTimeout returns a copy of c whose requests are bounded by d instead
// (and that sends d to the backend as the query's timeout), sharing c's
// transport: for queries that run in the background and may take longer
// than a request can wait, such as the query engine's probes.
func (c *Client) WithTimeout(d time.Duration) *Client {
	out := *c
	hc := *c.http
	hc.Timeout = d
	out.http, out.timeout = &hc, d
	return &out
}

// queryTimeout is the time left for the backend: the context's deadline or
// the client's timeout, whichever is sooner.
func (c *Client) queryTimeout(ctx context.Context) time.Duration {
	d := c.timeout
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); d <= 0 || left < d {
			d = left
		}
	}
	return promDuration(d)
}

// promDuration rounds a positive d down to a value whose String() the
// Prometheus HTTP API accepts as a duration: whole seconds from one second
// up (time.Duration prints 2.5s, which Prometheus rejects), otherwise whole
// milliseconds, and at least 1ms.
func promDuration(d time.Duration) time.Duration {
	switch {
	case d <= 0:
		return 0
	case d >= time.Second:
		return d.Truncate(time.Second)
	case d >= time.Millisecond:
		return d.Truncate(time.Millisecond)
	default:
		return time.Millisecond
	}
}

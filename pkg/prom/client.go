// Package prom talks to a Prometheus-compatible backend (Prometheus, Thanos,
// Mimir, VictoriaMetrics) over its HTTP API: instant queries through
// client_golang's api/v1 client, and a streaming decoder for /api/v1/series
// so that discovery never holds a whole response in memory.
package prom

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	commoncfg "github.com/prometheus/common/config"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Options configure a Client. Field names follow prometheus-adapter's flags.
type Options struct {
	// URL is the backend's base URL, e.g. http://prometheus:9090/ (a path
	// prefix such as /prometheus or /api/prom is kept).
	URL string
	// Timeout bounds every request; it is also sent to the backend as the
	// query's own timeout.
	Timeout time.Duration
	// AuthConfigFile is a kubeconfig whose cluster and user entries
	// authenticate to the backend (prometheus-adapter's --prometheus-auth-config).
	AuthConfigFile string
	// InCluster authenticates with the pod's service account.
	InCluster bool
	// CAFile, CertFile, KeyFile configure TLS; the certificate is reloaded
	// when the files change.
	CAFile, CertFile, KeyFile string
	// InsecureSkipVerify disables server certificate checks (tests only).
	InsecureSkipVerify bool
	// TokenFile holds a bearer token; it is re-read when it changes.
	TokenFile string
	// Headers are added to every request (e.g. X-Scope-OrgID for tenants).
	Headers map[string][]string
	// Verb is GET or POST (default). POST is used for long queries regardless.
	Verb string
}

// Client is a Prometheus HTTP API client bound to one backend.
type Client struct {
	name    string
	base    *url.URL
	timeout time.Duration
	http    *http.Client
	raw     api.Client // requests and reads answers; Query decodes them itself
}

// Error is a failure of the backend (unreachable, timed out, 5xx, or a
// query it rejected). Callers turn it into 503 Service Unavailable.
type Error struct {
	// Backend names the backend (its URL without credentials).
	Backend string
	// Op is what was attempted: "query" or "series".
	Op  string
	Err error
}

func (e *Error) Error() string {
	return fmt.Sprintf("prometheus backend %s: %s failed: %v", e.Backend, e.Op, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// maxGetURL is the longest request URL sent with GET when Verb is GET;
// longer queries go as POST to avoid 414 URI Too Long.
const maxGetURL = 4096

// New builds a Client from opts.
func New(opts Options) (*Client, error) {
	if opts.URL == "" {
		return nil, errors.New("prometheus URL is required")
	}
	u, err := url.Parse(opts.URL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("invalid prometheus URL %q", opts.URL)
	}
	verb := strings.ToUpper(opts.Verb)
	if verb == "" {
		verb = http.MethodPost
	}
	if verb != http.MethodGet && verb != http.MethodPost {
		return nil, fmt.Errorf("prometheus verb must be GET or POST, not %q", opts.Verb)
	}
	rt, err := roundTripper(opts)
	if err != nil {
		return nil, err
	}
	if verb == http.MethodGet {
		rt = &getRoundTripper{next: rt}
	}
	hc := &http.Client{Transport: rt, Timeout: opts.Timeout}
	ac, err := api.NewClient(api.Config{Address: opts.URL, Client: hc})
	if err != nil {
		return nil, err
	}
	redacted := *u
	redacted.User = nil
	return &Client{
		name:    redacted.String(),
		base:    u,
		timeout: opts.Timeout,
		http:    hc,
		raw:     ac,
	}, nil
}

func roundTripper(opts Options) (http.RoundTripper, error) {
	if opts.AuthConfigFile != "" || opts.InCluster {
		var rc *rest.Config
		var err error
		if opts.InCluster {
			rc, err = rest.InClusterConfig()
		} else {
			rc, err = clientcmd.BuildConfigFromFlags("", opts.AuthConfigFile)
		}
		if err != nil {
			return nil, fmt.Errorf("prometheus auth config: %w", err)
		}
		rt, err := rest.TransportFor(rc)
		if err != nil {
			return nil, fmt.Errorf("prometheus auth config: %w", err)
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

func withHeaders(rt http.RoundTripper, h map[string][]string) http.RoundTripper {
	if len(h) == 0 {
		return rt
	}
	return roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		for k, vs := range h {
			r.Header.Del(k)
			for _, v := range vs {
				r.Header.Add(k, v)
			}
		}
		return rt.RoundTrip(r)
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// getRoundTripper turns the client's form POSTs into GETs for backends or
// proxies that only allow GET, as long as the URL stays short.
type getRoundTripper struct{ next http.RoundTripper }

func (g *getRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method != http.MethodPost || r.GetBody == nil ||
		r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		return g.next.RoundTrip(r)
	}
	form, err := readBody(r.GetBody)
	if err != nil {
		closeBody(r) // a RoundTripper always closes the body it was given
		return nil, err
	}
	u := *r.URL
	u.RawQuery = string(form)
	if len(u.String()) > maxGetURL {
		return g.next.RoundTrip(r)
	}
	closeBody(r)
	nr := r.Clone(r.Context())
	nr.Method = http.MethodGet
	nr.URL = &u
	nr.Body, nr.GetBody, nr.ContentLength = nil, nil, 0
	nr.Header.Del("Content-Type")
	return g.next.RoundTrip(nr)
}

func closeBody(r *http.Request) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
}

func readBody(get func() (io.ReadCloser, error)) ([]byte, error) {
	body, err := get()
	if err != nil {
		return nil, err
	}
	defer func() { _ = body.Close() }()
	return io.ReadAll(body)
}

// Name identifies the backend in errors and logs.
func (c *Client) Name() string { return c.name }

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

// Package backend builds the Prometheus-compatible servers promgate reads
// from: the default one, configured by the --prometheus-* flags, and those
// a configuration file names (config.Backend). Each has its own client,
// limits and query engine (coalescing, cache, concurrency limit and the
// backend label of the self-metrics), so that a slow or failing backend
// only affects the rules that read from it.
package backend

import (
	"context"
	"fmt"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/provider"
	"github.com/promgate/promgate/pkg/query"
)

// Backend is one backend: its client and its query engine.
type Backend struct {
	// Name is config.DefaultBackend or the name of a config.Backend.
	Name string
	// URL is the backend's URL without credentials.
	URL string
	// Dialect is config.DialectPromQL or config.DialectMetricsQL.
	Dialect string
	// Discovery is how discovery lists the backend's series.
	Discovery config.Method
	// Client lists series (discovery) and runs uncached queries (explain).
	Client *prom.LimitedClient
	// Engine runs the providers' queries.
	Engine *query.Engine
}

// Query runs query through the backend's engine.
func (b *Backend) Query(ctx context.Context, q string, ts time.Time) (model.Vector, error) {
	return b.Engine.Query(ctx, q, ts)
}

// CanariesNow returns the series of metric the partial-window guard
// checks (query.Engine.CanariesNow).
func (b *Backend) CanariesNow(ctx context.Context, metric, rule string) []model.Metric {
	return b.Engine.CanariesNow(ctx, metric, rule)
}

// CanaryGone says a canary of metric is gone (query.Engine.CanaryGone).
func (b *Backend) CanaryGone(metric string) { b.Engine.CanaryGone(metric) }

// Set is the backends of a server, by name. It is immutable.
type Set struct {
	byName     map[string]*Backend
	configured []config.Backend
}

// Defaults are the settings of the default backend, which the configured
// ones inherit where they leave a setting unset.
type Defaults struct {
	Client prom.Options
	Limits prom.Limits
	Engine query.Options
	// Discovery is the default backend's discovery method (empty: the
	// discoverer's default, series), which configured backends inherit
	// unless they set their own.
	Discovery config.Method
}

// New builds the default backend from def and one backend per element of
// configured. Its errors name the backend.
func New(def Defaults, configured []config.Backend) (*Set, error) {
	s := &Set{byName: map[string]*Backend{}, configured: configured}
	co := def.Client
	if co.Name == "" {
		co.Name = redact(co.URL)
	}
	b, err := build(config.DefaultBackend, co, def.Limits, def.Engine, config.DialectPromQL)
	if err != nil {
		return nil, err
	}
	b.Discovery = def.Discovery
	s.byName[config.DefaultBackend] = b
	for _, cb := range configured {
		hc := cb.HTTP
		opts := prom.Options{
			Name:                     cb.Name,
			URL:                      cb.URL,
			Timeout:                  def.Client.Timeout,
			Verb:                     cb.Verb,
			HTTPConfig:               &hc,
			Params:                   url.Values(cb.Params),
			AllowCredentialsOverHTTP: cb.AllowCredentialsOverHTTP,
		}
		if cb.Timeout > 0 {
			opts.Timeout = time.Duration(cb.Timeout)
		}
		lim := def.Limits
		lim.AllowPartialResponse = cb.AllowPartialResponse
		if cb.MaxResponseBytes != 0 {
			lim.MaxResponseBytes = cb.MaxResponseBytes
		}
		if cb.MaxSamples != 0 {
			lim.MaxSamples = cb.MaxSamples
		}
		if cb.MaxSeries != 0 {
			lim.MaxSeries = cb.MaxSeries
		}
		eo := def.Engine
		eo.Timeout = opts.Timeout
		if cb.MaxConcurrentQueries > 0 {
			eo.MaxConcurrent = cb.MaxConcurrentQueries
		}
		dialect := cb.Dialect
		if dialect == "" {
			dialect = config.DialectPromQL
		}
		b, err := build(cb.Name, opts, lim, eo, dialect)
		if err != nil {
			return nil, err
		}
		b.Discovery = def.Discovery
		if cb.Discovery != "" {
			if b.Discovery, err = config.ParseMethod(cb.Discovery); err != nil {
				return nil, fmt.Errorf("backend %q: %w", cb.Name, err)
			}
		}
		s.byName[cb.Name] = b
	}
	return s, nil
}

// ProbeTimeout bounds the query engine's probes of a backend (or its
// timeout, if longer).
const ProbeTimeout = time.Minute

func build(name string, opts prom.Options, lim prom.Limits, eo query.Options, dialect string) (*Backend, error) {
	c, err := prom.New(opts)
	if err != nil {
		return nil, fmt.Errorf("backend %q: %w", name, err)
	}
	lc := c.WithLimits(lim)
	eo.Backend = c.Name()
	// Probes run in the background and read the latest samples of up to
	// four scrape targets' series of a metric (all of them where the
	// backend has no label index): at hundreds of thousands of series that
	// can take longer than a request's timeout.
	eo.ProbeTimeout = max(ProbeTimeout, eo.Timeout)
	eo.Prober = lc.WithTimeout(eo.ProbeTimeout)
	return &Backend{Name: name, URL: redact(opts.URL), Dialect: dialect, Client: lc, Engine: query.New(lc, eo)}, nil
}

// redact drops user info and query from a URL.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<invalid URL>"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

// Get returns the backend called name.
func (s *Set) Get(name string) (*Backend, bool) {
	b, ok := s.byName[name]
	return b, ok
}

// Default returns the default backend.
func (s *Set) Default() *Backend { return s.byName[config.DefaultBackend] }

// Names returns the backends' names, the default first, then sorted.
func (s *Set) Names() []string {
	out := make([]string, 0, len(s.byName))
	for n := range s.byName {
		if n != config.DefaultBackend {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return append([]string{config.DefaultBackend}, out...)
}

// Querier returns the engine of the backend called name (provider.Backends).
func (s *Set) Querier(name string) (provider.Querier, bool) {
	b, ok := s.byName[name]
	if !ok {
		return nil, false
	}
	return b, true
}

// Lister returns a backend's series lister, for discovery
// (catalog.Listers).
func (s *Set) Lister(name string) (catalog.SeriesLister, bool) {
	b, ok := s.byName[name]
	if !ok {
		return nil, false
	}
	return b.Client, true
}

// Methods returns each backend's discovery method.
func (s *Set) Methods() map[string]config.Method {
	out := make(map[string]config.Method, len(s.byName))
	for n, b := range s.byName {
		out[n] = b.Discovery
	}
	return out
}

// Changed says how the backends of cfg differ from those s was built
// from, or returns "" when they are the same: a reload applies new rules,
// not new backends (their clients, engines and caches live as long as the
// server).
func (s *Set) Changed(cfg *config.Config) string {
	old := map[string]config.Backend{}
	for _, b := range s.configured {
		old[b.Name] = b
	}
	var why []string
	for _, b := range cfg.Backends {
		prev, ok := old[b.Name]
		switch {
		case !ok:
			why = append(why, fmt.Sprintf("adds backend %q", b.Name))
		case !reflect.DeepEqual(prev, b):
			why = append(why, fmt.Sprintf("changes backend %q", b.Name))
		}
		delete(old, b.Name)
	}
	for n := range old {
		why = append(why, fmt.Sprintf("removes backend %q", n))
	}
	sort.Strings(why)
	return strings.Join(why, ", ")
}

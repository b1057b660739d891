// Package query is promgate's one place on the hot path to Prometheus: it
// coalesces identical in-flight queries, caches results for a short TTL,
// bounds the number of concurrent queries per backend, and gives every
// query a deadline that reaches the backend.
package query

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"golang.org/x/sync/singleflight"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Backend runs instant queries.
type Backend interface {
	Query(ctx context.Context, query string, ts time.Time) (model.Vector, error)
}

// Options configure an Engine.
type Options struct {
	// TTL is how long a result is served from cache. Zero disables the
	// cache (identical in-flight queries are still coalesced). Keep it
	// below the scrape interval: a cached value is never fresher than this.
	TTL time.Duration
	// MaxConcurrent bounds the queries running against the backend at once
	// (default 16).
	MaxConcurrent int
	// Timeout bounds one backend query, independent of which caller's
	// request started it (default 10s).
	Timeout time.Duration
	// Backend names the backend in metrics.
	Backend string
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Engine wraps a Backend. It is safe for concurrent use.
type Engine struct {
	backend Backend
	opts    Options
	sem     chan struct{}
	group   singleflight.Group

	mu      sync.Mutex
	cache   map[string]entry
	sweepAt time.Time
}

type entry struct {
	vec     model.Vector
	at      time.Time // when the backend answered
	expires time.Time
}

// Result is a query's outcome, with when it was computed.
type Result struct {
	Vector model.Vector
	// At is when the backend evaluated the query (equals the query time).
	At time.Time
	// Cached is true when the result came from the cache.
	Cached bool
}

// New returns an Engine over backend.
func New(backend Backend, opts Options) *Engine {
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = 16
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Backend == "" {
		opts.Backend = "prometheus"
	}
	return &Engine{backend: backend, opts: opts, sem: make(chan struct{}, opts.MaxConcurrent), cache: map[string]entry{}}
}

// Query returns the result of query evaluated now, from the cache if a
// result younger than the TTL exists, or by joining an identical query in
// flight, or by running it. The ts argument is ignored: promgate always
// asks for the latest values, and sharing needs one evaluation time.
func (e *Engine) Query(ctx context.Context, query string, _ time.Time) (model.Vector, error) {
	r, err := e.Do(ctx, query)
	return r.Vector, err
}

// Do is Query returning the Result's metadata too. Callers must not modify
// the returned vector: it is shared.
func (e *Engine) Do(ctx context.Context, query string) (Result, error) {
	now := e.opts.Now()
	if e.opts.TTL > 0 {
		e.mu.Lock()
		c, ok := e.cache[query]
		e.mu.Unlock()
		if ok && now.Before(c.expires) {
			queriesTotal.WithLabelValues(e.opts.Backend, "cache").Inc()
			return Result{Vector: c.vec, At: c.at, Cached: true}, nil
		}
	}
	ch := e.group.DoChan(query, func() (any, error) {
		return e.run(query)
	})
	select {
	case <-ctx.Done():
		return Result{}, ctx.Err()
	case res := <-ch:
		if res.Err != nil {
			return Result{}, res.Err
		}
		c := res.Val.(entry)
		if res.Shared {
			queriesTotal.WithLabelValues(e.opts.Backend, "coalesced").Inc()
		}
		return Result{Vector: c.vec, At: c.at}, nil
	}
}

// run executes query against the backend under the concurrency limit. It
// does not use any caller's context: a query shared by many callers must
// not fail because the first of them went away. Its own deadline still
// bounds it.
func (e *Engine) run(query string) (entry, error) {
	ctx, cancel := context.WithTimeout(context.Background(), e.opts.Timeout)
	defer cancel()
	select {
	case e.sem <- struct{}{}:
	case <-ctx.Done():
		queriesTotal.WithLabelValues(e.opts.Backend, "rejected").Inc()
		return entry{}, errors.New("too many concurrent queries: " + ctx.Err().Error())
	}
	defer func() { <-e.sem }()
	inflight.WithLabelValues(e.opts.Backend).Inc()
	defer inflight.WithLabelValues(e.opts.Backend).Dec()

	start := e.opts.Now()
	vec, err := e.backend.Query(ctx, query, start)
	queryDuration.WithLabelValues(e.opts.Backend).Observe(e.opts.Now().Sub(start).Seconds())
	if err != nil {
		queriesTotal.WithLabelValues(e.opts.Backend, "error").Inc()
		return entry{}, err
	}
	queriesTotal.WithLabelValues(e.opts.Backend, "backend").Inc()
	c := entry{vec: vec, at: start, expires: start.Add(e.opts.TTL)}
	if e.opts.TTL > 0 {
		e.store(query, c)
	}
	return c, nil
}

func (e *Engine) store(query string, c entry) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cache[query] = c
	now := e.opts.Now()
	if now.After(e.sweepAt) {
		for k, v := range e.cache {
			if now.After(v.expires) {
				delete(e.cache, k)
			}
		}
		e.sweepAt = now.Add(e.opts.TTL)
	}
}

var (
	queriesTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Name:           "promgate_queries_total",
		Help:           "Queries answered, by backend and how: backend (sent to the backend), cache, coalesced (joined an identical query in flight), error, rejected (concurrency limit).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"backend", "result"})
	queryDuration = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Name:           "promgate_backend_query_duration_seconds",
		Help:           "Duration of queries sent to the backend.",
		Buckets:        metrics.ExponentialBuckets(0.001, 2, 15),
		StabilityLevel: metrics.ALPHA,
	}, []string{"backend"})
	inflight = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Name:           "promgate_backend_queries_in_flight",
		Help:           "Queries running against the backend now.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"backend"})
	registerOnce sync.Once
)

// RegisterMetrics registers the engine's self-metrics with the server's
// registry (served on /metrics). Safe to call more than once.
func RegisterMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(queriesTotal, queryDuration, inflight)
	})
}

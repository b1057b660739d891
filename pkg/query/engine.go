// Package query is promgate's one place on the hot path to Prometheus: it
// coalesces identical in-flight queries, caches results within a memory
// budget, bounds the number of concurrent queries per backend, and gives
// every query a deadline that reaches the backend.
//
// # Cache lifetimes
//
// A result lives a fixed TTL (Options.TTL), or, with Options.Auto, a
// lifetime derived from the scrape interval of the metrics its query
// reads. An answer only changes when Prometheus ingests a scrape of one of
// the series it reads (or a sample leaves a range window, which for a
// window that is a multiple of the interval happens at the same times), so
// a lifetime of about one interval sends at most one query per metric per
// interval, and HPAs polling every 15s cost at most ⌈15s / interval⌉
// queries per metric and sync period.
//
// The interval cannot be read from the answer: an instant query's samples
// carry the evaluation time, rate() or not. It is learned by a probe, in
// the background, once per metric name and Options.ProbeEvery (10m), two
// queries bounded whatever the metric's size, both built on the syntax
// tree from the metric's name, the rule's series selector the caller
// passed (WithRuleSelector) and the backend's answer, never from request
// input; sel is name{<the rule selector's matchers other than those on
// __name__>}, or the name alone without a selector, with one that does
// not parse, or with one whose name matchers exclude the metric:
//
//  1. topk(1, timestamp(sel)) or bottomk(1, timestamp(sel)): the newest
//     and the oldest of the series' latest sample times (timestamp of a
//     vector selector is the sample's own time), two samples at most;
//  2. name{<every label of the newest series>}[4 × MaxTTL]: one series' raw
//     samples (a matrix). Its spacing is the interval: the median spacing
//     counts the scrapes the span covers (gaps of missed scrapes span
//     several), the span divided by their count is the interval.
//
// What a lifetime should be depends on how the metric's series are
// scraped:
//
//   - One phase: one target, or targets scraped in step (the latest
//     samples of step 1 lie within a tenth of the interval, and the raw
//     samples of step 2 agree with them within 50ms). The answer is exact until the
//     next scrape is visible, so the result lives until then: the next
//     phase+k×interval after the query, plus a grace for the scrape's
//     duration and ingestion of a fifth of the interval, at most 2s.
//     Whichever the HPAs' phases, one query per metric and interval
//     suffices, and an answer lags a fresh one by at most the grace (plus
//     the minimum lifetime, for a query just before a scrape is visible).
//   - Many phases: a job's targets are spread over the interval, so the
//     answer changes at every target's scrape and no lifetime keeps it
//     exact. The result lives one interval from the query: every series in
//     it is then at most one scrape behind the freshest answer, and one
//     query per interval suffices.
//
// Either way, a query is sent at most once per interval and metric, and
// a phase that is wrong (Prometheus moved its targets' scrape offsets
// since the probe) costs freshness only up to that same interval. A scrape
// slower than the grace delays an aligned answer by up to an interval
// too. What is learned is keyed by metric name, from the probe started
// by the first query that reads it, which reads the series of the rule
// that query serves (all the metric's series without a rule selector):
// rules selecting the metric from jobs scraped at other intervals or
// phases share it, and so do all the namespaces a rule serves.
//
// A lifetime is clamped to [MinTTL, MaxTTL] (1s, 1m); a query reading
// several metrics takes the shortest of theirs. A metric whose interval is
// not known (not yet probed, fewer than two samples in the probe's window,
// a probe failure, a backend that returns no raw samples, past the 4096
// metrics or 1 MiB of their names an engine learns), or a query without a
// metric name, gets the fixed TTL, as without Auto. A metric the probe
// found no series of gets the interval most learned metrics are scraped
// at (the fixed TTL while none is), and is probed again after ProbeEvery,
// or sooner, once MaxTTL has passed, when an answer reading it holds a
// series.
// Errors are never cached. What was learned is exported as
// promgate_query_scrape_interval_seconds, the chosen lifetimes as
// promgate_query_cache_lifetime_seconds by mode.
//
// The probe runs with a fixed TTL too: step 1's newest and oldest series
// are the canaries of the partial-window guard (Engine.Canaries), the
// series whose windows are checked beside a query for the whole metric's.
//
// Prometheus' /api/v1/targets would give scrape intervals and last scrape
// times too, but only Prometheus serves it (not Thanos Query, Mimir or
// VictoriaMetrics' query API), it needs the target that scrapes a metric
// to be found from its labels, and after relabelling that is not always
// possible; the probe reads what every backend serves, the samples.
package query

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"golang.org/x/sync/singleflight"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/promgate/promgate/pkg/budget"
	"github.com/promgate/promgate/pkg/prom"
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
	// With Auto, it is the lifetime of results whose metrics' scrape
	// interval is not known.
	TTL time.Duration
	// Auto derives each result's lifetime from the scrape interval of the
	// metrics its query reads, learned by probing the backend (see the
	// package doc), within [MinTTL, MaxTTL]. It needs a Backend that is
	// also a SampleQuerier; otherwise every result lives TTL.
	Auto bool
	// MinTTL and MaxTTL bound Auto lifetimes (defaults DefaultMinTTL,
	// DefaultMaxTTL).
	MinTTL, MaxTTL time.Duration
	// ProbeEvery is how often a metric's scrape interval is learned again
	// (default DefaultProbeEvery).
	ProbeEvery time.Duration
	// Prober, when set, is the backend the probes query (the same server
	// with a longer timeout: a probe reads every series of a metric, which
	// in a large cluster takes longer than a request may wait, and it runs
	// in the background); nil: the Backend. ProbeTimeout bounds a probe
	// (default Timeout).
	Prober       Backend
	ProbeTimeout time.Duration
	// ProbeWait bounds how long a request waits for a metric's first probe
	// to learn its canaries (default DefaultProbeWait, at most half the
	// request's time left); past it the request is sent without them (the
	// strict guard) and the probe goes on.
	ProbeWait time.Duration
	// MaxConcurrent bounds the queries running against the backend at once
	// (default 16).
	MaxConcurrent int
	// Timeout bounds one backend query, independent of which caller's
	// request started it (default 10s).
	Timeout time.Duration
	// Budget holds the cached results, within the memory budget shared
	// with everything else kept for requests (see package budget). Nil: a
	// budget of MaxCacheBytes of the engine's own.
	Budget *budget.Budget
	// MaxCacheBytes is the budget of an engine without Budget (default
	// budget.DefaultMaxBytes).
	MaxCacheBytes int64
	// Backend names the backend in metrics and errors.
	Backend string
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Engine wraps a Backend. It is safe for concurrent use.
type Engine struct {
	backend Backend
	prober  Backend       // what probes query (Options.Prober, or backend)
	samples SampleQuerier // the prober's raw samples; nil: none to learn from
	opts    Options
	sem     chan struct{}
	group   singleflight.Group

	cache *budget.Budget

	learner learner
	probes  sync.WaitGroup // probes running (tests wait for them)
}

type entry struct {
	vec     model.Vector
	at      time.Time // when the backend answered
	expires time.Time
}

// result is a query's outcome, with when it was computed.
type result struct {
	Vector model.Vector
	// At is when the backend evaluated the query (equals the query time).
	At time.Time
	// Cached is true when the result came from the cache.
	Cached bool
}

// Defaults of Options.
const (
	// DefaultMaxConcurrent bounds the queries in flight to one backend
	// (--max-concurrent-queries).
	DefaultMaxConcurrent = 16
	// DefaultTimeout is a query's deadline (--prometheus-timeout).
	DefaultTimeout = 10 * time.Second
	// DefaultProbeWait is how long a request waits for a first probe.
	DefaultProbeWait = 2 * time.Second
)

// New returns an Engine over backend.
func New(backend Backend, opts Options) *Engine {
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = DefaultMaxConcurrent
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Backend == "" {
		opts.Backend = "prometheus"
	}
	if opts.MinTTL <= 0 {
		opts.MinTTL = DefaultMinTTL
	}
	if opts.MaxTTL <= 0 {
		opts.MaxTTL = DefaultMaxTTL
	}
	opts.MinTTL = min(opts.MinTTL, opts.MaxTTL)
	if opts.ProbeEvery <= 0 {
		opts.ProbeEvery = DefaultProbeEvery
	}
	if opts.ProbeTimeout <= 0 {
		opts.ProbeTimeout = opts.Timeout
	}
	if opts.ProbeWait <= 0 {
		opts.ProbeWait = DefaultProbeWait
	}
	e := &Engine{backend: backend, opts: opts, sem: make(chan struct{}, opts.MaxConcurrent), cache: opts.Budget}
	if e.cache == nil {
		e.cache = budget.New(opts.MaxCacheBytes).WithClock(opts.Now)
	}
	e.learner.metrics, e.learner.probing = map[string]*scrape{}, map[string]chan struct{}{}
	e.prober = backend
	if opts.Prober != nil {
		e.prober = opts.Prober
	}
	if sq, ok := e.prober.(SampleQuerier); ok {
		e.samples = sq // probes learn intervals (Auto) and canaries (Canaries)
	}
	return e
}

// Query returns the result of query evaluated now, from the cache if a
// result younger than the TTL exists, or by joining an identical query in
// flight, or by running it. The ts argument is ignored: promgate always
// asks for the latest values, and sharing needs one evaluation time.
func (e *Engine) Query(ctx context.Context, query string, _ time.Time) (model.Vector, error) {
	r, err := e.do(ctx, query)
	return r.Vector, err
}

// do is Query returning the result's metadata too. Callers must not modify
// the returned vector: it is shared.
func (e *Engine) do(ctx context.Context, query string) (result, error) {
	if c, ok := e.lookup(query); ok {
		queriesTotal.WithLabelValues(e.opts.Backend, "cache").Inc()
		return result{Vector: c.vec, At: c.at, Cached: true}, nil
	}
	rule := ruleSelector(ctx) // the rule's selector, for probes (WithRuleSelector)
	ch := e.group.DoChan(query, func() (any, error) {
		return e.run(query, rule)
	})
	select {
	case <-ctx.Done():
		kind := prom.Timeout
		if ctx.Err() == context.Canceled {
			kind = prom.Canceled
		}
		return result{}, &prom.Error{Backend: e.opts.Backend, Op: "query", Err: &prom.KindError{Kind: kind, Err: ctx.Err()}}
	case res := <-ch:
		if res.Err != nil {
			return result{}, res.Err
		}
		c := res.Val.(entry)
		if res.Shared {
			queriesTotal.WithLabelValues(e.opts.Backend, "coalesced").Inc()
		}
		return result{Vector: c.vec, At: c.at}, nil
	}
}

// run executes query against the backend under the concurrency limit. It
// does not use any caller's context: a query shared by many callers must
// not fail because the first of them went away. Its own deadline still
// bounds it.
func (e *Engine) run(query, rule string) (entry, error) {
	ctx, cancel := context.WithTimeout(context.Background(), e.opts.Timeout)
	defer cancel()
	select {
	case e.sem <- struct{}{}:
		if ctx.Err() != nil { // the deadline came with the slot
			<-e.sem
			return e.queueFull(ctx)
		}
	case <-ctx.Done():
		return e.queueFull(ctx)
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
	life, mode := e.lifetime(query, rule, start, len(vec) > 0)
	c := entry{vec: vec, at: start, expires: start.Add(life)}
	if life > 0 {
		cacheLifetime.WithLabelValues(e.opts.Backend, mode).Observe(life.Seconds())
		e.cache.PutIn(budget.Answer, e.opts.Backend, query, &c, budget.VectorSize(vec), c.expires)
	}
	return c, nil
}

// queueFull is the error of a query that found no free slot before its
// deadline.
func (e *Engine) queueFull(ctx context.Context) (entry, error) {
	queriesTotal.WithLabelValues(e.opts.Backend, "rejected").Inc()
	return entry{}, &prom.Error{Backend: e.opts.Backend, Op: "query", Err: &prom.KindError{
		Kind: prom.QueueFull,
		Err:  fmt.Errorf("%d queries running, none finished within %v: %w", e.opts.MaxConcurrent, e.opts.Timeout, ctx.Err()),
	}}
}

// lookup returns the cached result of query if it is younger than its
// lifetime, marking it recently used.
func (e *Engine) lookup(query string) (*entry, bool) {
	if e.opts.TTL <= 0 && !e.opts.Auto {
		return nil, false
	}
	v, ok := e.cache.GetIn(budget.Answer, e.opts.Backend, query)
	if !ok {
		return nil, false
	}
	return v.(*entry), true
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
	cacheLifetime = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Name:           "promgate_query_cache_lifetime_seconds",
		Help:           "Lifetimes given to cached query results, by backend and how they were chosen: fixed (--query-cache-ttl), unknown (auto, a metric's scrape interval not known: the fallback TTL), aligned (auto, until the next scrape of a metric scraped at one phase), interval (auto, one scrape interval: targets at different phases).",
		Buckets:        []float64{0.5, 1, 2, 5, 10, 15, 20, 30, 60, 120, 300},
		StabilityLevel: metrics.ALPHA,
	}, []string{"backend", "mode"})
	scrapeInterval = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Name:           "promgate_query_scrape_interval_seconds",
		Help:           "Scrape interval learned for a metric (--query-cache-ttl=auto), by backend and metric name; absent while not known.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"backend", "metric"})
	probesTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Name:           "promgate_query_scrape_probes_total",
		Help:           "Queries of a metric's raw samples to learn its scrape interval (--query-cache-ttl=auto), by backend and outcome: learned, unknown (too few samples or no series), error.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"backend", "result"})
	registerOnce sync.Once
)

// RegisterMetrics registers the engine's self-metrics with the server's
// registry (served on /metrics). Safe to call more than once.
func RegisterMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(queriesTotal, queryDuration, inflight, cacheLifetime, scrapeInterval, probesTotal)
	})
}

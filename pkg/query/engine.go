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
// tree from the rule's own selector and the backend's answer, never from
// request input:
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
// too. What is learned is keyed by metric name, from the selector of the
// first query that reads it: queries selecting the metric from jobs
// scraped at other intervals or phases share it.
//
// A lifetime is clamped to [MinTTL, MaxTTL] (1s, 1m); a query reading
// several metrics takes the shortest of theirs. A metric whose interval is
// not known (not yet probed, no series, fewer than two samples in the
// probe's window, a probe failure, a backend that returns no raw samples),
// or a query without a metric name, gets the fixed TTL, today's behaviour.
// Errors are never cached. What was learned is exported as
// promgate_query_scrape_interval_seconds, the chosen lifetimes as
// promgate_query_cache_lifetime_seconds by mode.
//
// Prometheus' /api/v1/targets would give scrape intervals and last scrape
// times too, but only Prometheus serves it (not Thanos Query, Mimir or
// VictoriaMetrics' query API), it needs the target that scrapes a metric
// to be found from its labels, and after relabelling that is not always
// possible; the probe reads what every backend serves, the samples.
package query

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"
	"unsafe"

	"github.com/prometheus/common/model"
	"golang.org/x/sync/singleflight"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"

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
	// MaxConcurrent bounds the queries running against the backend at once
	// (default 16).
	MaxConcurrent int
	// Timeout bounds one backend query, independent of which caller's
	// request started it (default 10s).
	Timeout time.Duration
	// MaxCacheBytes bounds the estimated memory of the cached results
	// (default DefaultMaxCacheBytes); the least recently used results are
	// evicted first, and a result larger than a quarter of it is not cached.
	MaxCacheBytes int64
	// Backend names the backend in metrics and errors.
	Backend string
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// DefaultMaxCacheBytes is the default cache budget: some 30 cluster-wide
// answers of the largest clusters, or thousands of per-namespace ones.
const DefaultMaxCacheBytes = 256 << 20

// Engine wraps a Backend. It is safe for concurrent use.
type Engine struct {
	backend Backend
	samples SampleQuerier // nil: the backend has no raw samples to learn from
	opts    Options
	sem     chan struct{}
	group   singleflight.Group

	mu      sync.Mutex
	cache   map[string]*list.Element // of *entry
	lru     list.List                // most recently used first
	bytes   int64
	sweepAt time.Time

	learner learner
	probes  sync.WaitGroup // probes running (tests wait for them)
}

type entry struct {
	query   string
	vec     model.Vector
	at      time.Time // when the backend answered
	expires time.Time
	size    int64 // vectorSize(vec)
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
	if opts.MaxCacheBytes <= 0 {
		opts.MaxCacheBytes = DefaultMaxCacheBytes
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
	e := &Engine{backend: backend, opts: opts, sem: make(chan struct{}, opts.MaxConcurrent), cache: map[string]*list.Element{}}
	e.learner.metrics, e.learner.probing = map[string]*scrape{}, map[string]bool{}
	if sq, ok := backend.(SampleQuerier); ok && opts.Auto {
		e.samples = sq
	}
	return e
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
	if c, ok := e.lookup(query); ok {
		queriesTotal.WithLabelValues(e.opts.Backend, "cache").Inc()
		return Result{Vector: c.vec, At: c.at, Cached: true}, nil
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
		return Result{}, &prom.Error{Backend: e.opts.Backend, Op: "query", Err: &prom.KindError{Kind: kind, Err: ctx.Err()}}
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
	life, mode := e.lifetime(query, rule, start)
	c := entry{query: query, vec: vec, at: start, expires: start.Add(life)}
	if life > 0 {
		cacheLifetime.WithLabelValues(e.opts.Backend, mode).Observe(life.Seconds())
		e.store(&c)
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

// lookup returns the cached result of query if it is younger than the TTL,
// marking it recently used.
func (e *Engine) lookup(query string) (*entry, bool) {
	if e.opts.TTL <= 0 && !e.opts.Auto {
		return nil, false
	}
	now := e.opts.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	el, ok := e.cache[query]
	if !ok {
		return nil, false
	}
	c := el.Value.(*entry)
	if !now.Before(c.expires) {
		e.remove(el)
		return nil, false
	}
	e.lru.MoveToFront(el)
	return c, true
}

// store caches c, then evicts the least recently used results until the
// cache fits its budget. Expired results are dropped once per TTL.
func (e *Engine) store(c *entry) {
	c.size = vectorSize(c.query, c.vec)
	if c.size > e.opts.MaxCacheBytes/4 {
		cacheSkipped.WithLabelValues(e.opts.Backend).Inc()
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if el, ok := e.cache[c.query]; ok {
		e.remove(el)
	}
	e.cache[c.query] = e.lru.PushFront(c)
	e.bytes += c.size
	now := e.opts.Now()
	if now.After(e.sweepAt) {
		for el := e.lru.Back(); el != nil; {
			prev := el.Prev()
			if !now.Before(el.Value.(*entry).expires) {
				e.remove(el)
			}
			el = prev
		}
		e.sweepAt = now.Add(max(e.opts.TTL, e.opts.MinTTL))
	}
	for e.bytes > e.opts.MaxCacheBytes {
		e.remove(e.lru.Back())
		cacheEvictions.WithLabelValues(e.opts.Backend).Inc()
	}
	cacheBytes.WithLabelValues(e.opts.Backend).Set(float64(e.bytes))
	cacheEntries.WithLabelValues(e.opts.Backend).Set(float64(len(e.cache)))
}

// remove drops a cached result; e.mu is held.
func (e *Engine) remove(el *list.Element) {
	c := e.lru.Remove(el).(*entry)
	delete(e.cache, c.query)
	e.bytes -= c.size
	cacheBytes.WithLabelValues(e.opts.Backend).Set(float64(e.bytes))
	cacheEntries.WithLabelValues(e.opts.Backend).Set(float64(len(e.cache)))
}

// Sizes of what a decoded vector is made of, measured with prom's decoder
// (Go 1.26, amd64): a sample with two short labels keeps 325 bytes alive,
// 82 of them the answer's text.
const (
	sampleBytes   = int64(unsafe.Sizeof(model.Sample{}) + unsafe.Sizeof(&model.Sample{}))
	mapBytes      = 200 // a label map of up to 8 labels
	labelBytes    = 32  // each label past 8
	jsonPerSample = 40  // {"metric":{},"value":[1800000000.123,"12.5"]},
	jsonPerLabel  = 6   // "":"",
	entryBytes    = 200 // the cache's own entry, list element and map slot
)

// vectorSize estimates the memory a cached vector keeps alive: its samples
// and label maps, and the answer's text, since the decoder slices label
// strings out of it (so the text is counted, not the strings).
func vectorSize(query string, vec model.Vector) int64 {
	n := entryBytes + int64(len(query)) + int64(cap(vec))*8
	for _, s := range vec {
		n += sampleBytes + mapBytes + jsonPerSample
		if extra := len(s.Metric) - 8; extra > 0 {
			n += int64(extra) * labelBytes
		}
		for k, v := range s.Metric {
			n += jsonPerLabel + int64(len(k)+len(v))
		}
		if s.Histogram != nil {
			n += int64(len(s.Histogram.Buckets)) * 64
		}
	}
	return n
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
	cacheBytes = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Name:           "promgate_query_cache_bytes",
		Help:           "Estimated memory of the cached query results.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"backend"})
	cacheEntries = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Name:           "promgate_query_cache_entries",
		Help:           "Query results in the cache.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"backend"})
	cacheEvictions = metrics.NewCounterVec(&metrics.CounterOpts{
		Name:           "promgate_query_cache_evictions_total",
		Help:           "Cached query results evicted before their TTL to keep the cache within its memory budget.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"backend"})
	cacheSkipped = metrics.NewCounterVec(&metrics.CounterOpts{
		Name:           "promgate_query_cache_skipped_total",
		Help:           "Query results not cached because they exceed a quarter of the cache's memory budget.",
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
		legacyregistry.MustRegister(queriesTotal, queryDuration, inflight, cacheBytes, cacheEntries, cacheEvictions, cacheSkipped, cacheLifetime, scrapeInterval, probesTotal)
	})
}

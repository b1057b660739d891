package provider

import (
	"errors"
	"sync"
	"time"
	"weak"

	"github.com/prometheus/common/model"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/promgate/promgate/pkg/prom"
)

// The APIs promgate serves, as the api label of the answer metrics.
const (
	ResourceAPI = "metrics.k8s.io"
	CustomAPI   = "custom.metrics.k8s.io"
	ExternalAPI = "external.metrics.k8s.io"
)

// Results of an answer, as the result label of promgate_metric_answers_total.
const (
	AnswerSamples = "samples" // the backend answered with samples
	AnswerEmpty   = "empty"   // the backend answered with no samples
	AnswerError   = "error"   // the query failed
)

var (
	answersTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Name:           "promgate_metric_answers_total",
		Help:           "Backend answers to the queries of metric requests, by API, metric and result: samples, empty (no series matched: no data, or data gone stale) or error.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"api", "metric", "result"})
	sampleAge = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Name:           "promgate_served_sample_age_seconds",
		Help:           "Age of the newest sample of an answer when it was served: the result cache's age plus the backend's delay.",
		Buckets:        []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60, 120, 300, 600, 1800},
		StabilityLevel: metrics.ALPHA,
	}, []string{"api"})
	newestSample = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Name:           "promgate_served_newest_sample_timestamp_seconds",
		Help:           "Timestamp of the newest sample served for the metric, in seconds since the epoch; time() minus it is how stale the freshest value served is.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"api", "metric"})
	backendErrors = metrics.NewCounterVec(&metrics.CounterOpts{
		Name:           "promgate_backend_errors_total",
		Help:           "Metric requests whose query failed at the backend, by backend and failure kind (unreachable, timeout, canceled, bad status, partial response, invalid response, too large, queue full).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"backend", "kind"})

	guardVerdicts = metrics.NewCounterVec(&metrics.CounterOpts{
		Name:           "promgate_window_guard_answers_total",
		Help:           "Answers judged by the canary partial-window guard, by backend and verdict: complete (the checked series' windows are full; new series held back), gap (every checked series' window is partly filled: nothing served), strict (the checks disagree or a checked series is gone: the strict query decides), no canary (no series known for a metric: the strict query is sent).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"backend", "verdict"})
	guardHeldBack = metrics.NewCounterVec(&metrics.CounterOpts{
		Name:           "promgate_window_guard_new_series_total",
		Help:           "Series the canary partial-window guard held back because they have been in a query's answers for less than its window (new pods), per judged answer, by backend.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"backend"})

	registerOnce sync.Once

	// newest is the newest sample time served per api and metric, so that
	// a slower answer finishing late never moves the gauge back.
	newest = struct {
		sync.Mutex
		m map[[2]string]newestOf
	}{m: map[[2]string]newestOf{}}
)

// newestOf is the newest sample time served for an api and metric, and
// the answer it was last read from: requests that share a cached answer
// read its newest sample once, not once each (a shared answer has a
// sample per object of every namespace it reads).
type newestOf struct {
	ts model.Time
	// The last answer read, by identity (weak: an answer the cache let go
	// of is not kept alive here), and its newest sample.
	first weak.Pointer[model.Sample]
	n     int
	last  model.Time
}

// RegisterMetrics registers the answer and freshness self-metrics with the
// server's registry (served on /metrics), once at start
// (server.RegisterMetrics); later calls do nothing. Until then,
// ObserveAnswer records nothing.
func RegisterMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(answersTotal, sampleAge, newestSample, backendErrors, guardVerdicts, guardHeldBack)
	})
}

// ObserveAnswer records the answer to a query serving metric on api at
// now: on success, the age and time of its newest sample; on a backend
// failure (*prom.Error), its backend and kind. A provider calls it once
// per query it sends, with what the Querier returned.
func ObserveAnswer(api, metric string, now time.Time, vec model.Vector, err error) {
	if err != nil {
		answersTotal.WithLabelValues(api, metric, AnswerError).Inc()
		if pe, ok := errors.AsType[*prom.Error](err); ok {
			backendErrors.WithLabelValues(pe.Backend, string(prom.KindOf(pe))).Inc()
		}
		return
	}
	if len(vec) == 0 {
		answersTotal.WithLabelValues(api, metric, AnswerEmpty).Inc()
		return
	}
	answersTotal.WithLabelValues(api, metric, AnswerSamples).Inc()
	key := [2]string{api, metric}
	newest.Lock()
	n := newest.m[key]
	newest.Unlock()
	ts, same := n.last, n.first.Value() == vec[0] && n.n == len(vec)
	if !same {
		ts = vec[0].Timestamp
		for _, s := range vec[1:] {
			ts = max(ts, s.Timestamp)
		}
	}
	sampleAge.WithLabelValues(api).Observe(max(0, now.Sub(ts.Time()).Seconds()))
	if same {
		return // its newest sample was recorded when it was first read
	}
	newest.Lock()
	defer newest.Unlock()
	n = newest.m[key]
	n.first, n.n, n.last = weak.Make(vec[0]), len(vec), ts
	if ts > n.ts {
		n.ts = ts
		newestSample.WithLabelValues(api, metric).Set(float64(ts) / 1000)
	}
	newest.m[key] = n
}

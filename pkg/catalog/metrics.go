package catalog

import (
	"strings"
	"sync"
	"time"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/prom"
)

// Drop reasons as metric label values: the kinds of RuleReport.Dropped's
// reasons, never their text (which names series and regexes).
const (
	// DropFiltered: a seriesFilters entry rejected the series.
	DropFiltered = "filtered"
	// DropNaming: name.matches did not match, or gave an invalid name.
	DropNaming = "naming"
	// DropNoResource: no label of the series maps to a Kubernetes resource.
	DropNoResource = "no_resource"
	// DropOther: a reason of none of the kinds above.
	DropOther = "other"
)

var dropKinds = []string{DropFiltered, DropNaming, DropNoResource, DropOther}

// DropKind returns the kind of a RuleReport.Dropped reason.
func DropKind(reason string) string {
	switch {
	case strings.HasPrefix(reason, reasonFiltered):
		return DropFiltered
	case strings.HasPrefix(reason, reasonNaming):
		return DropNaming
	case reason == reasonNoResource:
		return DropNoResource
	}
	return DropOther
}

var (
	ruleSeries = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Name:           "promgate_discovery_series",
		Help:           "Distinct series shapes the rule's seriesQuery returned in the last discovery: name and label names with the series method, name and relevant label names (those mapped to resources, the namespace label) with the index method; the last good result while it fails.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"rule"})
	ruleDropped = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Name:           "promgate_discovery_series_dropped",
		Help:           "Series the rule dropped in the last discovery, by reason: filtered (seriesFilters), naming (name.matches), no_resource (no label maps to a resource), other. promgate explain names them.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"rule", "reason"})
	ruleMetrics = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Name:           "promgate_discovery_metrics",
		Help:           "Metrics the rule serves after the last discovery: custom metrics by resource and scope, external metrics by name; those a later rule overrides are not counted.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"rule"})
	ruleDuration = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Name:           "promgate_discovery_rule_duration_seconds",
		Help:           "Duration of the rule's seriesQuery in the last discovery (rules with the same seriesQuery share one).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"rule"})
	ruleMethod = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Name:           "promgate_discovery_rule_method",
		Help:           "1 for the method that listed the rule's seriesQuery in the last discovery (index: /api/v1/labels and /api/v1/label/__name__/values; series: /api/v1/series), 0 for the other.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"rule", "method"})
	ruleRequests = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Name:           "promgate_discovery_rule_requests",
		Help:           "Requests the rule's seriesQuery sent to the backend in the last discovery (rules with the same seriesQuery share them).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"rule"})
	ruleFailing = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Name:           "promgate_discovery_rule_failing",
		Help:           "1 if the rule's seriesQuery failed in the last discovery (its last good result is served), otherwise 0.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"rule"})
	ruleLastSuccess = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Name:           "promgate_discovery_rule_last_success_timestamp_seconds",
		Help:           "When the rule's seriesQuery last succeeded, in seconds since the epoch; 0 if never.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"rule"})
	ruleErrors = metrics.NewCounterVec(&metrics.CounterOpts{
		Name:           "promgate_discovery_errors_total",
		Help:           "Failed seriesQuery runs, by rule and backend failure kind.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"rule", "kind"})
	discoveryDuration = metrics.NewHistogram(&metrics.HistogramOpts{
		Name:           "promgate_discovery_duration_seconds",
		Help:           "Duration of a whole discovery (every seriesQuery, then the rules).",
		Buckets:        metrics.ExponentialBuckets(0.01, 2, 14),
		StabilityLevel: metrics.ALPHA,
	})
	discoveryLast = metrics.NewGauge(&metrics.GaugeOpts{
		Name:           "promgate_discovery_last_timestamp_seconds",
		Help:           "When the last discovery finished, in seconds since the epoch.",
		StabilityLevel: metrics.ALPHA,
	})

	registerOnce sync.Once

	// observed holds the rule labels set by the last observe, so that the
	// series of rules a new configuration no longer has are deleted.
	observed struct {
		sync.Mutex
		rules map[string]bool
	}
)

// RegisterMetrics registers the discovery self-metrics with the server's
// registry (served on /metrics). Safe to call more than once; a discovery
// calls it too.
func RegisterMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(ruleSeries, ruleDropped, ruleMetrics, ruleDuration, ruleMethod, ruleRequests, ruleFailing, ruleLastSuccess, ruleErrors, discoveryDuration, discoveryLast)
	})
}

// observe publishes the self-metrics of a finished discovery: per rule,
// what its report says and how long its seriesQuery took.
func observe(snap *Snapshot, results map[seriesKey]queryResult, took time.Duration) {
	RegisterMetrics()
	discoveryDuration.Observe(took.Seconds())
	discoveryLast.Set(float64(snap.Time.UnixNano()) / 1e9)

	served := map[string]int{} // by rule path
	for _, e := range snap.custom {
		served[e.Rule.Path]++
	}
	for _, e := range snap.external {
		served[e.Rule.Path]++
	}
	current := make(map[string]bool, len(snap.Reports))
	for _, rep := range snap.Reports {
		current[rep.Path] = true
		observeRule(rep, results[seriesKey{rep.Backend, rep.SeriesQuery}], served[rep.Path])
	}
	forgetRules(current)
}

// observeRule sets the self-metrics of one rule from its report, the
// result of its seriesQuery and how many metrics it serves.
func observeRule(rep RuleReport, res queryResult, served int) {
	ruleSeries.WithLabelValues(rep.Path).Set(float64(rep.Series))
	byKind := map[string]int{}
	for reason, n := range rep.Dropped {
		byKind[DropKind(reason)] += n
	}
	for _, k := range dropKinds {
		ruleDropped.WithLabelValues(rep.Path, k).Set(float64(byKind[k]))
	}
	ruleMetrics.WithLabelValues(rep.Path).Set(float64(served))
	ruleDuration.WithLabelValues(rep.Path).Set(res.took.Seconds())
	for _, m := range []config.Method{config.MethodIndex, config.MethodSeries} {
		v := 0.0
		if res.method == m {
			v = 1
		}
		ruleMethod.WithLabelValues(rep.Path, string(m)).Set(v)
	}
	ruleRequests.WithLabelValues(rep.Path).Set(float64(res.requests))
	failing := 0.0
	if res.err != nil {
		failing = 1
		ruleErrors.WithLabelValues(rep.Path, string(prom.KindOf(res.err))).Inc()
	}
	ruleFailing.WithLabelValues(rep.Path).Set(failing)
	last := 0.0
	if !rep.LastSuccess.IsZero() {
		last = float64(rep.LastSuccess.UnixNano()) / 1e9
	}
	ruleLastSuccess.WithLabelValues(rep.Path).Set(last)
}

// forgetRules deletes the series of the rules the last observe set that
// are not in current (a reload removed them), and remembers current.
func forgetRules(current map[string]bool) {
	observed.Lock()
	defer observed.Unlock()
	for p := range observed.rules {
		if current[p] {
			continue
		}
		for _, g := range []*metrics.GaugeVec{ruleSeries, ruleMetrics, ruleDuration, ruleRequests, ruleFailing, ruleLastSuccess} {
			g.DeleteLabelValues(p)
		}
		for _, m := range []config.Method{config.MethodIndex, config.MethodSeries} {
			ruleMethod.DeleteLabelValues(p, string(m))
		}
		for _, k := range dropKinds {
			ruleDropped.DeleteLabelValues(p, k)
		}
	}
	observed.rules = current
}

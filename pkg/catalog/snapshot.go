package catalog

import (
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/rules"
)

// CustomKey identifies a custom metric: the resource it describes, whether
// the objects are addressed within a namespace, and its name.
type CustomKey struct {
	Resource   schema.GroupResource
	Namespaced bool
	Metric     string
}

// Entry is what serving a metric needs: the rule and the series name.
// For a metric that several rules or series give, it is the last one.
type Entry struct {
	Rule   *rules.Rule
	Series string
}

// Snapshot is one immutable result of discovery.
type Snapshot struct {
	// Time is when the discovery that produced it finished.
	Time time.Time
	// Reports has one entry per rule, custom rules first, in config order.
	Reports []RuleReport
	// CustomRules and ExternalRules are the rules the snapshot applied
	// (after a reload, the new ones).
	CustomRules, ExternalRules []*rules.Rule

	custom       map[CustomKey]Entry
	external     map[string]Entry
	customList   []provider.CustomMetricInfo
	externalList []provider.ExternalMetricInfo
}

// RuleReport tells what a rule did in the last discovery.
type RuleReport struct {
	Path        string
	SeriesQuery string
	// Backend names the backend the rule reads from.
	Backend string
	// Err is the last failure of the rule's seriesQuery; when set, the
	// rule's series are those of LastSuccess.
	Err         string
	LastSuccess time.Time
	// Method is how the shapes were listed: config.MethodIndex or
	// config.MethodSeries.
	// Requests is how many requests that took.
	Method   config.Method
	Requests int
	// Series is the number of distinct shapes seen: (name, label names)
	// per series with the series method; with the index method, one per
	// name, with the relevant labels (that the rules sharing the
	// seriesQuery map to resources, and the namespace label) any of its
	// series carries.
	// Neither counts series; Kept and Dropped count the same shapes.
	Series int
	Kept   int
	// Dropped counts dropped shapes by reason; Examples holds a few series
	// names per reason (with the index method, only relevant labels are
	// shown).
	Dropped  map[string]int
	Examples map[string][]string
	// Metrics are the metric names the rule produced, sorted.
	Metrics []string
	// Overridden lists the metrics of this rule that a later rule serves
	// instead, sorted by Resource then Metric.
	Overridden []Override
}

// Override says that a metric a rule produced is served by a later rule.
type Override struct {
	// Resource is the custom metric's resource; empty for external metrics.
	Resource   schema.GroupResource
	Namespaced bool
	Metric     string
	// By is the Path of the rule that serves it.
	By string
}

// Custom returns the entry serving a custom metric.
func (s *Snapshot) Custom(k CustomKey) (Entry, bool) {
	e, ok := s.custom[k]
	return e, ok
}

// ExternalEntry returns the entry serving an external metric.
func (s *Snapshot) ExternalEntry(metric string) (Entry, bool) {
	e, ok := s.external[metric]
	return e, ok
}

// CustomMetrics lists the custom metrics, sorted.
func (s *Snapshot) CustomMetrics() []provider.CustomMetricInfo { return s.customList }

// ExternalMetrics lists the external metrics, sorted.
func (s *Snapshot) ExternalMetrics() []provider.ExternalMetricInfo { return s.externalList }

// MetricsFor returns the custom metric names known for a resource, for
// error messages that suggest what exists.
func (s *Snapshot) MetricsFor(gr schema.GroupResource) []string {
	var out []string
	for _, m := range s.customList {
		// customList is sorted by resource, then metric: a metric known
		// both namespaced and cluster-wide is adjacent to itself.
		if m.GroupResource == gr && (len(out) == 0 || out[len(out)-1] != m.Metric) {
			out = append(out, m.Metric)
		}
	}
	return out
}

// list fills the sorted lists of the metrics s serves from its maps:
// custom metrics by resource, then metric, cluster-wide before
// namespaced; external metrics by name.
func (s *Snapshot) list() {
	for k := range s.custom {
		s.customList = append(s.customList, provider.CustomMetricInfo{GroupResource: k.Resource, Namespaced: k.Namespaced, Metric: k.Metric})
	}
	for m := range s.external {
		s.externalList = append(s.externalList, provider.ExternalMetricInfo{Metric: m})
	}
	sort.Slice(s.customList, func(i, j int) bool {
		a, b := s.customList[i], s.customList[j]
		if a.GroupResource.String() != b.GroupResource.String() {
			return a.GroupResource.String() < b.GroupResource.String()
		}
		if a.Metric != b.Metric {
			return a.Metric < b.Metric
		}
		return !a.Namespaced && b.Namespaced
	})
	sort.Slice(s.externalList, func(i, j int) bool { return s.externalList[i].Metric < s.externalList[j].Metric })
}

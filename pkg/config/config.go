// Package config defines promgate's configuration file: a superset of
// kubernetes-sigs/prometheus-adapter's schema (rules, externalRules,
// resourceRules), with strict loading and validation whose errors name the
// rule and the field at fault.
package config

import (
	pmodel "github.com/prometheus/common/model"
)

// Config is the whole configuration file.
type Config struct {
	// Rules map Prometheus series to custom.metrics.k8s.io metrics about
	// Kubernetes objects. Rules sharing a seriesQuery share one discovery call.
	Rules []DiscoveryRule `json:"rules,omitempty" yaml:"rules,omitempty"`
	// ExternalRules map Prometheus series to external.metrics.k8s.io metrics.
	ExternalRules []DiscoveryRule `json:"externalRules,omitempty" yaml:"externalRules,omitempty"`
	// ResourceRules describe how to answer metrics.k8s.io (CPU and memory of
	// pods and nodes, as kubectl top and HPA Resource metrics use them).
	ResourceRules *ResourceRules `json:"resourceRules,omitempty" yaml:"resourceRules,omitempty"`
	// Backends are Prometheus-compatible servers besides the default one
	// (DefaultBackend, configured by the --prometheus-* flags) that rules
	// can read from. A promgate extension of prometheus-adapter's schema.
	Backends []Backend `json:"backends,omitempty" yaml:"backends,omitempty"`

	// loadWarnings are the loader's warnings (see Warnings).
	loadWarnings []Warning
}

// DiscoveryRule describes which series become which metric and how a request
// for that metric turns into PromQL.
type DiscoveryRule struct {
	// SeriesQuery is a Prometheus series selector, sent as match[] to
	// /api/v1/series or, with the index or auto discovery method, to
	// /api/v1/labels and /api/v1/label/__name__/values.
	SeriesQuery string `json:"seriesQuery" yaml:"seriesQuery"`
	// SeriesFilters are extra regular expressions on the series name.
	SeriesFilters []RegexFilter `json:"seriesFilters,omitempty" yaml:"seriesFilters,omitempty"`
	// Resources maps series labels to Kubernetes resources.
	Resources ResourceMapping `json:"resources,omitempty" yaml:"resources,omitempty"`
	// Name turns a series name into the metric name served by the API.
	Name NameMapping `json:"name,omitempty" yaml:"name,omitempty"`
	// MetricsQuery is a Go template (delimiters << >>) that renders the PromQL
	// sent for a request. Empty means sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>).
	MetricsQuery string `json:"metricsQuery,omitempty" yaml:"metricsQuery,omitempty"`
	// LabelValueReplacements are find/replace pairs applied to label values
	// taken from external metric selectors before they reach Prometheus.
	LabelValueReplacements []LabelValueReplacement `json:"labelValueReplacements,omitempty" yaml:"labelValueReplacements,omitempty"`
	// Backend names the backend the rule reads from (default: the one of
	// the --prometheus-* flags). A promgate extension.
	Backend string `json:"backend,omitempty" yaml:"backend,omitempty"`
}

// LabelValueReplacement replaces Find with Replace in label values.
type LabelValueReplacement struct {
	Find    string `json:"find,omitempty" yaml:"find,omitempty"`
	Replace string `json:"replace,omitempty" yaml:"replace,omitempty"`
}

// RegexFilter keeps (Is) or drops (IsNot) series whose name matches a regex.
// Exactly one of the two is set.
type RegexFilter struct {
	Is    string `json:"is,omitempty" yaml:"is,omitempty"`
	IsNot string `json:"isNot,omitempty" yaml:"isNot,omitempty"`
}

// ResourceMapping says which series labels name which Kubernetes resources.
type ResourceMapping struct {
	// Template maps a group-resource to a label name, e.g. "<<.Resource>>"
	// (singular resource) or "kube_<<.Group>>_<<.Resource>>".
	Template string `json:"template,omitempty" yaml:"template,omitempty"`
	// Overrides maps a label name to a group-resource explicitly.
	Overrides map[string]GroupResource `json:"overrides,omitempty" yaml:"overrides,omitempty"`
	// Namespaced, for external rules, says whether the request's namespace
	// becomes a matcher (default true).
	Namespaced *bool `json:"namespaced,omitempty" yaml:"namespaced,omitempty"`
}

// GroupResource names a Kubernetes resource in an API group.
type GroupResource struct {
	Group    string `json:"group,omitempty" yaml:"group,omitempty"`
	Resource string `json:"resource" yaml:"resource"`
}

// NameMapping converts series names to metric names.
type NameMapping struct {
	// Matches is a regular expression on the series name (default ".*").
	Matches string `json:"matches,omitempty" yaml:"matches,omitempty"`
	// As is the metric name, with $1-style references to Matches' groups.
	// Default: $0 without groups, $1 with one group.
	As string `json:"as,omitempty" yaml:"as,omitempty"`
}

// ResourceRules describe the queries behind metrics.k8s.io.
type ResourceRules struct {
	CPU    ResourceRule `json:"cpu" yaml:"cpu"`
	Memory ResourceRule `json:"memory" yaml:"memory"`
	// Swap, when set, adds the swap usage of containers and nodes (kubectl
	// top --show-swap); containers and nodes without swap series simply
	// lack it. A promgate extension.
	Swap ResourceRule `json:"swap,omitempty" yaml:"swap,omitempty"`
	// Window is the window reported with each value; it should equal the
	// range used by rate() in the CPU queries.
	Window pmodel.Duration `json:"window,omitempty" yaml:"window,omitempty"`
	// Backend names the backend the queries go to (default: the one of
	// the --prometheus-* flags). A promgate extension.
	Backend string `json:"backend,omitempty" yaml:"backend,omitempty"`
}

// ResourceRule describes the queries for one resource (cpu or memory).
type ResourceRule struct {
	// ContainerQuery renders the per-container query; it must group by the
	// pod, namespace and container labels.
	ContainerQuery string `json:"containerQuery" yaml:"containerQuery"`
	// NodeQuery renders the per-node query.
	NodeQuery string `json:"nodeQuery" yaml:"nodeQuery"`
	// Resources maps labels to nodes, namespaces and pods.
	Resources ResourceMapping `json:"resources,omitempty" yaml:"resources,omitempty"`
	// ContainerLabel is the label holding the container name.
	ContainerLabel string `json:"containerLabel" yaml:"containerLabel"`
}

// IsNamespaced reports whether an external rule is namespaced (the default).
func (r ResourceMapping) IsNamespaced() bool {
	return r.Namespaced == nil || *r.Namespaced
}

// Package rules compiles configuration rules into the operations discovery
// and the providers need: which series a rule keeps, what metric name a
// series gets, which labels name which Kubernetes resources, and how a
// request becomes PromQL.
package rules

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/promql"
)

// Rule is a compiled discovery rule.
type Rule struct {
	// Path locates the rule in the config, e.g. "rules[2]".
	Path string
	// SeriesQuery is the selector discovery sends as match[]: to
	// /api/v1/series, or to the index endpoints (see package catalog).
	SeriesQuery string
	// Resources associates labels with resources.
	Resources *ResourceMap
	// Query renders the PromQL for a request.
	Query *promql.Template
	// Namespaced, for external rules, adds the request's namespace as a matcher.
	Namespaced bool
	// Backend names the backend the rule reads from: config.DefaultBackend
	// unless the rule names another.
	Backend string
	// Warnings are what could not be checked statically, each prefixed
	// with the field, e.g. "rules[2].metricsQuery: does not parse as PromQL
	// ...". prometheus-adapter loads such rules, so they are not errors.
	Warnings []string

	filters  []filter
	nameRE   *regexp.Regexp
	nameAs   string
	replacer *strings.Replacer
}

type filter struct {
	re       *regexp.Regexp
	positive bool
	desc     string
}

// Compile compiles every custom and external rule of cfg. Errors name the
// rule and field.
func Compile(cfg *config.Config) (custom, external []*Rule, err error) {
	var errs []error
	dialect := func(backend string) string {
		b, _ := cfg.Backend(backend)
		return b.Dialect
	}
	for i, r := range cfg.Rules {
		cr, err := compileRule(fmt.Sprintf("rules[%d]", i), r, dialect(r.Backend))
		errs = append(errs, err)
		custom = append(custom, cr)
	}
	for i, r := range cfg.ExternalRules {
		cr, err := compileRule(fmt.Sprintf("externalRules[%d]", i), r, dialect(r.Backend))
		errs = append(errs, err)
		external = append(external, cr)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, err
	}
	return custom, external, nil
}

// CompileRule compiles one rule found at path, for a backend that speaks
// PromQL.
func CompileRule(path string, r config.DiscoveryRule) (*Rule, error) {
	return compileRule(path, r, config.DialectPromQL)
}

// compileRule compiles r, found at path, for a backend speaking dialect.
// Its error joins every field's, in the order of the fields.
func compileRule(path string, r config.DiscoveryRule, dialect string) (*Rule, error) {
	out := &Rule{Path: path, SeriesQuery: r.SeriesQuery, Namespaced: r.Resources.IsNamespaced(), Backend: r.Backend}
	if out.Backend == "" {
		out.Backend = config.DefaultBackend
	}
	errs := []error{checkSeriesQuery(path, r.SeriesQuery)}
	errs = append(errs, out.compileFilters(path, r.SeriesFilters)...)
	errs = append(errs, out.compileName(path, r.Name))
	rm, err := NewResourceMap(path+".resources", r.Resources)
	errs = append(errs, err)
	out.Resources = rm
	errs = append(errs, out.compileQuery(path, r.MetricsQuery, dialect))
	if len(r.LabelValueReplacements) > 0 {
		var pairs []string
		for _, p := range r.LabelValueReplacements {
			pairs = append(pairs, p.Find, p.Replace)
		}
		out.replacer = strings.NewReplacer(pairs...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// checkSeriesQuery checks that q, the seriesQuery at path, is a selector
// Prometheus accepts as match[].
func checkSeriesQuery(path, q string) error {
	ms, err := promql.ParseSelector(q)
	if err != nil {
		return config.Fieldf(path+".seriesQuery", "invalid series selector %q: %v", q, err)
	}
	if !slices.ContainsFunc(ms, func(m *labels.Matcher) bool { return !m.Matches("") }) {
		// Prometheus refuses such a match[] in /api/v1/series.
		return config.Fieldf(path+".seriesQuery", "series selector %q must have a matcher that does not match the empty string", q)
	}
	return nil
}

// compileFilters adds the rule's seriesFilters to its filters, and
// returns the errors of those that are invalid.
func (r *Rule) compileFilters(path string, filters []config.RegexFilter) []error {
	var errs []error
	for j, f := range filters {
		fp := fmt.Sprintf("%s.seriesFilters[%d]", path, j)
		expr, positive, field := f.Is, true, ".is"
		if f.IsNot != "" {
			expr, positive, field = f.IsNot, false, ".isNot"
		}
		re, err := regexp.Compile(expr)
		if err != nil || (f.Is != "") == (f.IsNot != "") {
			errs = append(errs, config.Fieldf(fp+field, "invalid filter %q", expr))
			continue
		}
		desc := "is " + expr
		if !positive {
			desc = "isNot " + expr
		}
		r.filters = append(r.filters, filter{re: re, positive: positive, desc: "seriesFilters[" + fmt.Sprint(j) + "] " + desc})
	}
	return errs
}

// compileName compiles the rule's name mapping: the regular expression
// (default ".*"), which also filters when set, and what a match becomes
// (default $0 without capture groups, $1 with one).
func (r *Rule) compileName(path string, name config.NameMapping) error {
	matches := name.Matches
	if matches == "" {
		matches = ".*"
	}
	re, err := regexp.Compile(matches)
	if err != nil {
		return config.Fieldf(path+".name.matches", "invalid regular expression %q: %v", matches, err)
	}
	r.nameRE = re
	r.nameAs = name.As
	if name.Matches != "" {
		r.filters = append(r.filters, filter{re: re, positive: true, desc: "name.matches " + matches})
	}
	if r.nameAs == "" {
		switch re.NumSubexp() {
		case 0:
			r.nameAs = "$0"
		case 1:
			r.nameAs = "$1"
		default:
			return config.Fieldf(path+".name.as", "is required when name.matches %q has several capture groups", matches)
		}
	}
	return nil
}

// compileQuery compiles the rule's metricsQuery (default
// promql.DefaultMetricsQuery) for dialect, and keeps what could not be
// checked as the rule's warnings.
func (r *Rule) compileQuery(path, q, dialect string) error {
	if q == "" {
		q = promql.DefaultMetricsQuery
	}
	newTemplate := promql.NewTemplate
	if dialect == config.DialectMetricsQL {
		newTemplate = promql.NewMetricsQLTemplate
	}
	t, warnings, err := newTemplate(q)
	for _, w := range warnings {
		r.Warnings = append(r.Warnings, path+".metricsQuery: "+w)
	}
	r.Query = t
	if err != nil {
		return config.Fieldf(path+".metricsQuery", "%v", err)
	}
	return nil
}

// Keep reports whether a series name passes the rule's filters, and if not,
// which filter dropped it.
func (r *Rule) Keep(series string) (bool, string) {
	for _, f := range r.filters {
		if f.re.MatchString(series) != f.positive {
			return false, f.desc
		}
	}
	return true, ""
}

// MetricName returns the API metric name for a series name.
func (r *Rule) MetricName(series string) (string, error) {
	idx := r.nameRE.FindStringSubmatchIndex(series)
	if idx == nil {
		return "", fmt.Errorf("series %q does not match name.matches %q", series, r.nameRE.String())
	}
	name := string(r.nameRE.ExpandString(nil, r.nameAs, series, idx))
	if name == "" {
		return "", fmt.Errorf("series %q gives an empty metric name", series)
	}
	if strings.ContainsAny(name, "/%?") {
		return "", fmt.Errorf("metric name %q from series %q contains '/', '%%' or '?'", name, series)
	}
	return name, nil
}

// ReplaceValue applies the rule's labelValueReplacements to a label value.
func (r *Rule) ReplaceValue(v string) string {
	if r.replacer == nil {
		return v
	}
	return r.replacer.Replace(v)
}

// Replacer returns ReplaceValue, or nil when the rule has no replacements.
func (r *Rule) Replacer() func(string) string {
	if r.replacer == nil {
		return nil
	}
	return r.ReplaceValue
}

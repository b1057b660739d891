package query

import (
	"context"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/promgate/promgate/pkg/promql"
)

// WithRuleSelector returns a copy of ctx that tells the engine which
// rule's metrics the queries run with it read: selector is the rule's
// seriesQuery, the PromQL series selector of the configuration its series
// are discovered with (such as `{__name__=~"^container_.*",container!="POD"}`
// or `http_requests_total{job="x"}`). It must never hold request input.
//
// With Options.Auto, a metric's scrape interval is learned by a probe
// that selects the metric by its name and the selector's matchers other
// than those on __name__, provided the selector's __name__ matchers match
// the name. Without a selector, with one that does not parse as a series
// selector, or for a metric the selector's name matchers exclude (a metric
// the rule's query joins), the probe selects the metric by its name alone.
// Either way, the query's own matchers, which carry request input, never
// enter a probe. Of identical queries in flight, the first caller's
// selector is used; what is learned is kept per metric name.
func WithRuleSelector(ctx context.Context, selector string) context.Context {
	return context.WithValue(ctx, ruleSelectorKey{}, selector)
}

type ruleSelectorKey struct{}

// ruleSelector returns the selector WithRuleSelector put in ctx, "" if
// none.
func ruleSelector(ctx context.Context) string {
	s, _ := ctx.Value(ruleSelectorKey{}).(string)
	return s
}

// probeSelector returns the selector a probe of metric name reads: the
// name, and the matchers of the rule's selector rule other than those on
// __name__ when rule parses and its __name__ matchers match name, so that
// the probe reads the rule's series of the metric; otherwise the name
// alone. It is built on the syntax tree: the matchers are the parsed
// rule's, printed quoted. The rule is parsed only when a probe starts, at
// most once per metric and Options.ProbeEvery, so no parse is remembered.
func probeSelector(name, rule string) *parser.VectorSelector {
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, model.MetricNameLabel, name)}
	if rule == "" {
		return nameSelector(name, ms)
	}
	rms, err := promql.ParseSelector(rule)
	if err != nil {
		return nameSelector(name, ms)
	}
	var rest []*labels.Matcher
	for _, m := range rms {
		if m.Name != model.MetricNameLabel {
			rest = append(rest, m)
		} else if !m.Matches(name) {
			return nameSelector(name, ms) // not one of the rule's metrics
		}
	}
	return nameSelector(name, append(ms, rest...))
}

// nameSelector returns the vector selector of metric name with matchers
// ms, which hold name's __name__ matcher. The name is the selector's Name
// only when PromQL can print it unquoted; otherwise the printer quotes it
// as the matcher's value.
func nameSelector(name string, ms []*labels.Matcher) *parser.VectorSelector {
	vs := &parser.VectorSelector{LabelMatchers: ms}
	if model.LegacyValidation.IsValidMetricName(name) {
		vs.Name = name
	}
	return vs
}

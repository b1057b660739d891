package external

import (
	"context"

	"k8s.io/apimachinery/pkg/labels"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promgate/promgate/pkg/provider"
)

// Plan is what a request for an external metric would send to Prometheus.
type Plan struct {
	// Rule is the path of the rule serving the metric, e.g.
	// "externalRules[0]"; Series is the series name its query is rendered
	// for.
	Rule   string
	Series string
	// Backend names the backend the query is sent to.
	Backend string
	// Query is the PromQL text sent, after the partial-window guard.
	Query string
	// Shared tells whether the query is the one every request for the
	// metric with a selector of the same shape sends, its samples filtered
	// here.
	Shared bool
	// Ran is set when the request was run; Samples is then the number of
	// values it returns.
	Ran     bool
	Samples int
}

// Plan resolves a request as GetExternalMetric does and returns the query
// it would send, without sending it unless run is set: then it runs the
// request as GetExternalMetric does and counts the values. Errors are the
// API statuses GetExternalMetric returns.
func (p *Provider) Plan(ctx context.Context, namespace string, metricSelector labels.Selector, info cmprovider.ExternalMetricInfo, run bool) (Plan, error) {
	if metricSelector == nil {
		metricSelector = labels.Everything()
	}
	r, err := p.render(namespace, metricSelector, info)
	if err != nil {
		return Plan{}, err
	}
	out := Plan{
		Backend: r.entry.Rule.Backend,
		Rule:    r.entry.Rule.Path,
		Series:  r.entry.Series,
		Query:   provider.CompleteWindows(p.Budget, r.query, p.PartialWindows, r.entry.Rule.Path+".metricsQuery"),
		Shared:  r.filter != nil,
	}
	if !run {
		return out, nil
	}
	list, err := p.GetExternalMetric(ctx, namespace, metricSelector, info)
	if err != nil {
		return out, err
	}
	out.Ran, out.Samples = true, len(list.Items)
	return out, nil
}

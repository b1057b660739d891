package external

import (
	"context"

	"k8s.io/apimachinery/pkg/labels"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promgate/promgate/pkg/provider"
)

// Plan resolves a request as GetExternalMetric does and returns the query
// it would send, without sending it unless run is set: then it runs the
// request as GetExternalMetric does and counts the values. Errors are the
// API statuses GetExternalMetric returns.
func (p *Provider) Plan(ctx context.Context, namespace string, metricSelector labels.Selector, info cmprovider.ExternalMetricInfo, run bool) (provider.Plan, error) {
	if metricSelector == nil {
		metricSelector = labels.Everything()
	}
	r, err := p.render(namespace, metricSelector, info)
	if err != nil {
		return provider.Plan{}, err
	}
	out := p.run.Plan(r.send(info.Metric))
	out.Rule, out.Series, out.Shared = r.entry.Rule.Path, r.entry.Series, r.filter != nil
	switch {
	case out.Shared:
	case r.share != nil:
		out.SharedReason = r.share.String()
	case !p.Batch:
		out.SharedReason = "sent per request, as prometheus-adapter sends it: batching is off"
	default:
		out.SharedReason = "the request selects on no label: its query is the rule's, unfiltered"
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

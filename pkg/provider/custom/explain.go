package custom

import (
	"context"

	"k8s.io/apimachinery/pkg/labels"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promgate/promgate/pkg/provider"
)

// PlanRequest is a custom metrics request to explain: what GetMetricByName
// (Name set) or GetMetricBySelector (Name empty or "*") would receive.
type PlanRequest struct {
	Info      cmprovider.CustomMetricInfo
	Namespace string
	// Name is one object, or empty or "*" for every object Selector
	// matches.
	Name string
	// Selector selects the objects when Name is "*"; nil selects all.
	Selector labels.Selector
	// MetricSelector is the request's metricLabelSelector; nil selects all.
	MetricSelector labels.Selector
}

// Plan resolves req as GetMetricByName or GetMetricBySelector would and
// returns the query they would send, without sending it unless run is set:
// then it runs the query as they do (through the same querier, so through
// the query engine's cache) and counts the values. Errors are the API
// statuses those methods return.
func (p *Provider) Plan(ctx context.Context, req PlanRequest, run bool) (provider.Plan, error) {
	if req.MetricSelector == nil {
		req.MetricSelector = labels.Everything()
	}
	if req.Selector == nil {
		req.Selector = labels.Everything()
	}
	var names []string
	if req.Name != "" && req.Name != "*" {
		if err := provider.ValidObjectName(req.Info.GroupResource, req.Name); err != nil {
			return provider.Plan{}, err
		}
		names = []string{req.Name}
	}
	pl, err := p.resolve(req.Info, req.Namespace, req.MetricSelector)
	if err != nil {
		return provider.Plan{}, err
	}
	if names == nil {
		if names, err = p.objects.Names(ctx, pl.info.GroupResource, req.Namespace, req.Selector); err != nil {
			return provider.Plan{}, provider.StatusError(err)
		}
	}
	r, err := p.render(pl, names)
	if err != nil {
		return provider.Plan{}, err
	}
	objects := len(names)
	out := p.run.Plan(pl.sent(r))
	out.Rule, out.Series, out.Objects = pl.entry.Rule.Path, pl.entry.Series, &objects
	out.Shared = r.share.OK && (p.Batch || len(names) > p.MaxNamesInQuery)
	switch {
	case !r.share.OK:
		out.SharedReason = r.share.String()
	case !out.Shared:
		out.SharedReason = "shareable, but sent per request: batching is off and the request names few objects"
	}
	if !run || len(names) == 0 {
		// GetMetricBySelector sends nothing for no objects.
		return out, nil
	}
	names = sortedUnique(names)
	ans, err := p.query(ctx, pl, names)
	if err != nil {
		return out, err
	}
	n := 0
	for i, name := range names {
		if ans.at(i, name).s != nil {
			n++
		}
	}
	out.Ran, out.Samples = true, n
	return out, nil
}

// Package external implements external.metrics.k8s.io: metrics not tied to
// an object, one value per series matching the request's selector.
package external

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	plabels "github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"
	"k8s.io/metrics/pkg/apis/external_metrics"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/promql"
	"github.com/promgate/promgate/pkg/provider"
	"github.com/promgate/promgate/pkg/quantity"
)

// Catalog gives the current set of known metrics.
type Catalog interface {
	Snapshot() *catalog.Snapshot
}

// Provider serves external.metrics.k8s.io.
type Provider struct {
	catalog Catalog
	querier provider.Querier
	mapper  apimeta.RESTMapper
	// Batch makes requests for a metric that differ only in their label
	// selector and namespace send one query: the rule's query rendered
	// without those matchers, whose samples are then filtered here. With
	// the query engine's coalescing and cache, all HPAs polling one metric
	// cost one Prometheus query per cache period. It applies only where
	// filtering gives the same answer (promql.Filterable: the query keeps
	// each series' labels); other queries are sent as they are.
	Batch bool
	now   func() time.Time
}

var _ cmprovider.ExternalMetricsProvider = (*Provider)(nil)

// New returns a Provider.
func New(c Catalog, q provider.Querier, mapper apimeta.RESTMapper) *Provider {
	return &Provider{catalog: c, querier: q, mapper: mapper, now: time.Now}
}

// ListAllExternalMetrics lists the discovered external metrics.
func (p *Provider) ListAllExternalMetrics() []cmprovider.ExternalMetricInfo {
	return p.catalog.Snapshot().ExternalMetrics()
}

// GetExternalMetric returns one value per series of the metric that
// matches metricSelector (and the namespace, for namespaced rules).
func (p *Provider) GetExternalMetric(ctx context.Context, namespace string, metricSelector labels.Selector, info cmprovider.ExternalMetricInfo) (*external_metrics.ExternalMetricValueList, error) {
	snap := p.catalog.Snapshot()
	entries := snap.External(info.Metric)
	if len(entries) == 0 {
		return nil, notFound(snap, info.Metric)
	}
	list := &external_metrics.ExternalMetricValueList{}
	for _, e := range entries {
		ms, err := promql.MatchersForSelector(metricSelector, e.Rule.Replacer())
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("labelSelector: %v", err))
		}
		if e.Rule.Namespaced && namespace != "" {
			ms = append(ms, promql.Equal(e.Rule.Resources.NamespaceLabel(p.mapper), namespace))
		}
		q, expr, err := render(e, ms)
		if err != nil {
			return nil, apierrors.NewInternalError(fmt.Errorf("%s.metricsQuery: %w", e.Rule.Path, err))
		}
		var filter []*plabels.Matcher
		if p.Batch && len(ms) > 0 {
			if bq, bexpr, err := render(e, nil); err == nil && promql.Filterable(bexpr, expr, ms) {
				if filter, err = promql.Compiled(ms); err == nil {
					q, expr = bq, bexpr
				}
			}
		}
		klog.V(4).InfoS("external metric query", "metric", info.Metric, "query", q, "filtered", len(filter) > 0)
		vec, err := p.querier.Query(ctx, q, p.now())
		if err != nil {
			return nil, provider.StatusError(err)
		}
		window := provider.WindowSeconds(expr)
		for _, s := range vec {
			if filter != nil && !promql.MatchAll(filter, func(n string) string { return string(s.Metric[model.LabelName(n)]) }) {
				continue
			}
			f := float64(s.Value)
			if math.IsNaN(f) || math.IsInf(f, 0) {
				klog.V(2).InfoS("skipping non-finite value", "metric", info.Metric, "series", s.Metric.String(), "value", f)
				continue
			}
			v, err := quantity.FromFloat(f)
			if err != nil {
				continue
			}
			lbls := make(map[string]string, len(s.Metric))
			for k, val := range s.Metric {
				if k != model.MetricNameLabel {
					lbls[string(k)] = string(val)
				}
			}
			list.Items = append(list.Items, external_metrics.ExternalMetricValue{
				MetricName:    info.Metric,
				MetricLabels:  lbls,
				Timestamp:     metav1.NewTime(s.Timestamp.Time()),
				WindowSeconds: window,
				Value:         v,
			})
		}
	}
	sort.SliceStable(list.Items, func(i, j int) bool {
		return labels.Set(list.Items[i].MetricLabels).String() < labels.Set(list.Items[j].MetricLabels).String()
	})
	return list, nil
}

// render renders the entry's query with the matchers ms.
func render(e catalog.Entry, ms []*plabels.Matcher) (string, parser.Expr, error) {
	byName := map[string]string{}
	for _, m := range ms {
		byName[m.Name] = m.Value
	}
	return e.Rule.Query.Render(promql.TemplateArgs{
		Series:            e.Series,
		LabelMatchers:     promql.JoinMatchers(ms),
		LabelValuesByName: byName,
		GroupBy:           "",
		GroupBySlice:      []string{},
	})
}

func notFound(snap *catalog.Snapshot, metric string) error {
	msg := fmt.Sprintf("the server could not find the external metric %s", metric)
	known := snap.ExternalMetrics()
	if len(known) > 0 {
		names := make([]string, 0, 10)
		for i, k := range known {
			if i == 10 {
				names = append(names, "...")
				break
			}
			names = append(names, k.Metric)
		}
		msg += "; known external metrics: " + strings.Join(names, ", ")
	} else {
		msg += "; no external metric is known (see `promgate explain`)"
	}
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusNotFound, Reason: metav1.StatusReasonNotFound, Message: msg,
	}}
}

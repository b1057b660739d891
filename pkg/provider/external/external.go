// Package external implements external.metrics.k8s.io: metrics not tied to
// an object, one value per series matching the request's selector.
package external

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	plabels "github.com/prometheus/prometheus/model/labels"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"
	"k8s.io/metrics/pkg/apis/external_metrics"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promgate/promgate/pkg/budget"
	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/promql"
	"github.com/promgate/promgate/pkg/provider"
	"github.com/promgate/promgate/pkg/quantity"
	"github.com/promgate/promgate/pkg/rules"
)

// Catalog gives the current set of known metrics.
type Catalog interface {
	Snapshot() *catalog.Snapshot
}

// Provider serves external.metrics.k8s.io.
type Provider struct {
	catalog Catalog
	run     *provider.Runner
	mapper  apimeta.RESTMapper
	// Batch makes requests for a metric that differ only in their label
	// selector and namespace send one query: the rule's query rendered
	// without those matchers, whose samples are then filtered here. With
	// the query engine's coalescing and cache, all HPAs polling one metric
	// cost one Prometheus query per cache period. It applies only where
	// filtering gives the same answer (promql.Filterable: the query keeps
	// each series' labels); other queries are sent as they are.
	Batch bool
}

var _ cmprovider.ExternalMetricsProvider = (*Provider)(nil)

// New returns a Provider that sends its queries with run (whose Budget also
// keeps the sharing decisions per selector shape).
func New(c Catalog, run *provider.Runner, mapper apimeta.RESTMapper) *Provider {
	return &Provider{catalog: c, run: run, mapper: mapper}
}

// ListAllExternalMetrics lists the discovered external metrics.
func (p *Provider) ListAllExternalMetrics() []cmprovider.ExternalMetricInfo {
	return p.catalog.Snapshot().ExternalMetrics()
}

// GetExternalMetric returns one value per series of the metric that
// matches metricSelector (and the namespace, for namespaced rules).
//
// As in prometheus-adapter, one rule serves a metric: when several rules
// give the same name, the last one does. The query is the rule's template
// rendered with the selector's and the namespace's matchers; with Batch,
// when the template is shareable (promql.Shareable: the query keeps each
// series' labels, decided once per rule and selector shape), it is
// rendered without them and its samples are filtered here, so that all
// HPAs polling one metric send one query.
func (p *Provider) GetExternalMetric(ctx context.Context, namespace string, metricSelector labels.Selector, info cmprovider.ExternalMetricInfo) (*external_metrics.ExternalMetricValueList, error) {
	r, err := p.render(namespace, metricSelector, info)
	if err != nil {
		return nil, err
	}
	run := p.run
	q := r.send(info.Metric)
	ans, err := run.Run(ctx, q, run.Clock())
	if err != nil {
		return nil, err
	}
	vec, window, filter := ans.Vector, ans.Window, r.filter
	list := &external_metrics.ExternalMetricValueList{}
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
	if len(list.Items) == 0 && run.Guarded(q) {
		asked := func(s *model.Sample) bool {
			return filter == nil || promql.MatchAll(filter, func(n string) string { return string(s.Metric[model.LabelName(n)]) })
		}
		if run.Withheld(ctx, q, run.Clock(), asked) || run.Present(ctx, q, q.Query.Expr, run.Clock(), asked) {
			// Every series was left out for a partly filled window (or
			// none is in it: the backend was away for longer than the
			// window): an empty list would read as "no such series".
			return nil, provider.IncompleteWindow("external metric " + info.Metric)
		}
	}
	sort.SliceStable(list.Items, func(i, j int) bool {
		return labels.Set(list.Items[i].MetricLabels).String() < labels.Set(list.Items[j].MetricLabels).String()
	})
	return list, nil
}

// rendered is the query a request sends.
type rendered struct {
	entry catalog.Entry
	query promql.Query
	// filter, when set, selects the samples of the shared query that
	// answer the request.
	filter []*plabels.Matcher
	// share is the decision for the request's selector shape; unset when
	// none was made (batching off, or a request that selects nothing).
	share *promql.Sharing
}

// send is the query as the rule sends it.
func (r rendered) send(metric string) provider.Query {
	return provider.Query{API: provider.ExternalAPI, Metric: metric, Backend: r.entry.Rule.Backend,
		Field: r.entry.Rule.Path + ".metricsQuery", SeriesQuery: r.entry.Rule.SeriesQuery, Query: r.query}
}

// render resolves a request and builds its query (see GetExternalMetric).
func (p *Provider) render(namespace string, metricSelector labels.Selector, info cmprovider.ExternalMetricInfo) (rendered, error) {
	snap := p.catalog.Snapshot()
	e, ok := snap.ExternalEntry(info.Metric)
	if !ok {
		return rendered{}, notFound(snap, info.Metric)
	}
	if err := provider.ValidSelector("labelSelector", metricSelector); err != nil {
		return rendered{}, err
	}
	parts, err := promql.SelectorParts(metricSelector, e.Rule.Replacer())
	if err != nil {
		return rendered{}, apierrors.NewBadRequest(fmt.Sprintf("labelSelector: %v", err))
	}
	if e.Rule.Namespaced && namespace != "" {
		if err := provider.ValidNamespace(namespace); err != nil {
			return rendered{}, err
		}
		parts = append(parts, promql.EqualPart(e.Rule.Resources.NamespaceLabel(p.mapper), namespace))
	}
	req := promql.Request{Series: e.Series, Parts: parts, GroupBy: []string{}}
	var share *promql.Sharing
	if p.Batch && len(parts) > 0 {
		d := p.decide(e, req)
		share = &d.sharing
		if d.sharing.OK {
			if filter, err := promql.Compiled(promql.Matchers(parts)); err == nil {
				return rendered{entry: e, query: d.shared, filter: filter, share: share}, nil
			}
		}
	}
	q, err := e.Rule.Query.Build(req)
	if err != nil {
		return rendered{}, apierrors.NewInternalError(fmt.Errorf("%s.metricsQuery: %w", e.Rule.Path, err))
	}
	return rendered{entry: e, query: q, share: share}, nil
}

// decide returns the decision whether the query shared by every request
// for the entry's metric whose selector has the same shape as req's (the
// rule's query rendered without the selector and the namespace) answers
// req once filtered, with the shared query. It is made once per rule and
// shape (the labels and operators selected on), never per value, and
// remembered within the budget.
func (p *Provider) decide(e catalog.Entry, req promql.Request) *decision {
	key := shapeOf(e, req.Parts)
	if d, ok := p.decision(e, key); ok {
		return d
	}
	d := &decision{rule: e.Rule}
	all := promql.Request{Series: e.Series, GroupBy: []string{}}
	s, err := e.Rule.Query.Sharing(req, all)
	switch {
	case err != nil:
		d.sharing = promql.Sharing{Reason: err.Error()}
	case s.OK:
		if d.shared, err = e.Rule.Query.Build(all); err != nil {
			s = promql.Sharing{Reason: err.Error()}
		}
		d.sharing = s
	default:
		d.sharing = s
	}
	// Selector shapes come from requests: the decisions are kept within
	// the budget, charged for the key and the shared query's text and tree.
	p.run.Budget.Put(budget.Sharing, key, d, int64(len(key))+4*int64(len(d.shared.Text)), time.Time{})
	return d
}

// decision is a remembered sharing decision, with the shared query.
type decision struct {
	rule    *rules.Rule // the rule decided for (an address can be reused)
	sharing promql.Sharing
	shared  promql.Query
}

func (p *Provider) decision(e catalog.Entry, key string) (*decision, bool) {
	v, ok := p.run.Budget.Get(budget.Sharing, key)
	if !ok || v.(*decision).rule != e.Rule {
		return nil, false
	}
	return v.(*decision), true
}

// shapeOf is the key of a sharing decision: the rule, the series and the
// labels and operators selected on (never the values). The rule is named
// by its address and path; a reload makes new rules, and a decision is
// only read for the rule it was made for.
func shapeOf(e catalog.Entry, parts []promql.Part) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%p\x00%s\x00%s\x00", e.Rule, e.Rule.Path, e.Series)
	for _, pt := range parts {
		b.WriteString(pt.Matcher.Name + pt.Matcher.Type.String() + "\x00")
	}
	return b.String()
}

// SharingOf decides whether a template's queries for requests that select
// on a label (and on the namespace, when namespaceLabel is set) may be
// shared by all requests; for check and explain. Requests decide it per
// selector shape (see render); this is the decision for a selector on one
// label.
func SharingOf(tmpl *promql.Template, namespaceLabel string) promql.Sharing {
	parts := []promql.Part{promql.EqualPart("promgate_sample", "value")}
	if namespaceLabel != "" {
		parts = append(parts, promql.EqualPart(namespaceLabel, "promgate-sample"))
	}
	s, err := tmpl.Sharing(promql.Request{Series: "some_metric", Parts: parts, GroupBy: []string{}},
		promql.Request{Series: "some_metric", GroupBy: []string{}})
	if err != nil {
		return promql.Sharing{Reason: err.Error()}
	}
	return s
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
		msg += "; no external metric is known"
	}
	msg += fmt.Sprintf(" (kubectl get --raw '/apis/custom.metrics.k8s.io/v1beta2/explain?metric=%s&external=true')", url.QueryEscape(metric))
	return &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusNotFound, Reason: metav1.StatusReasonNotFound, Message: msg,
	}}
}

// Package custom implements custom.metrics.k8s.io: metrics about
// Kubernetes objects, answered by rendering the serving rule's query with
// escaped matchers for the requested objects.
package custom

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/metrics/pkg/apis/custom_metrics"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/promql"
	"github.com/promgate/promgate/pkg/provider"
	"github.com/promgate/promgate/pkg/wire"
)

// Catalog gives the current set of known metrics.
type Catalog interface {
	Snapshot() *catalog.Snapshot
}

// ObjectLister lists object names from a cache.
type ObjectLister interface {
	// Names returns the sorted names of the objects of gr in namespace
	// (all namespaces if empty) whose labels match sel; within one
	// namespace they have no repeats. The caller does not change them.
	Names(ctx context.Context, gr schema.GroupResource, namespace string, sel labels.Selector) ([]string, error)
}

// Provider serves custom.metrics.k8s.io.
type Provider struct {
	catalog Catalog
	run     *provider.Runner
	objects ObjectLister
	mapper  apimeta.RESTMapper
	// MaxNamesInQuery bounds the names put in one regex alternation; above
	// it the query selects every object of the namespace and the result is
	// filtered here, keeping the query short and shareable.
	MaxNamesInQuery int
	// Batch makes every request for a metric about namespaced objects send
	// the same cluster-wide query (grouped by namespace and object, without
	// object or namespace matchers), filtered here. With the query engine's
	// coalescing and cache, all HPAs polling one metric then cost one
	// Prometheus query per cache period instead of one each.
	Batch bool
	// Demand narrows a shared query to the namespaces requests asked it
	// about recently (nil: the whole cluster), where the rule's query is
	// proven equivalent so narrowed (DemandSharingOf).
	Demand *provider.Demand

	resolved resolutions
}

// resolutionTTL bounds how long what the REST mapper said about a metric's
// resource is reused: a resource that changes (a CRD replaced) is seen
// within it, or at the next discovery.
const resolutionTTL = 30 * time.Second

// resolution is what serving a metric needs from the REST mapper and the
// catalog; it is the same for every request.
type resolution struct {
	norm        cmprovider.CustomMetricInfo
	entry       catalog.Entry
	rl, nsLabel string
	kind        schema.GroupVersionKind
	kindErr     error
	expires     time.Time

	shareOnce sync.Once
	share     promql.Sharing
	demandOK  bool // the shared query may be narrowed to namespaces (DemandSharingOf)
	// demandObjectsOK: and to objects in them (DemandSharingOf with objects).
	demandObjectsOK bool

	// keyOnce, key: demandKey of the plans without a metric selector.
	keyOnce sync.Once
	key     string
}

// resolutions remembers resolutions for one catalog snapshot.
type resolutions struct {
	mu   sync.Mutex
	snap *catalog.Snapshot
	m    map[cmprovider.CustomMetricInfo]*resolution
}

var _ cmprovider.CustomMetricsProvider = (*Provider)(nil)

// New returns a Provider that sends its queries with run (whose Budget also
// keeps the indexes of shared answers).
func New(c Catalog, run *provider.Runner, objects ObjectLister, mapper apimeta.RESTMapper) *Provider {
	return &Provider{catalog: c, run: run, objects: objects, mapper: mapper, MaxNamesInQuery: provider.DefaultMaxNamesInQuery}
}

// ListAllMetrics lists the discovered metrics.
func (p *Provider) ListAllMetrics() []cmprovider.CustomMetricInfo {
	return p.catalog.Snapshot().CustomMetrics()
}

// plan is a resolved request: the rule and labels that serve it.
type plan struct {
	info          cmprovider.CustomMetricInfo
	entry         catalog.Entry
	resourceLabel string
	namespace     string
	nsLabel       string        // set for namespaced objects
	parts         []promql.Part // from the metric label selector
	dkey          string        // demandKey, once asked
	res           *resolution
	// kind (or kindErr) and selector are the same for every value of a
	// request: resolved once, not per object (a RESTMapper lookup scans
	// every resource the cluster serves).
	kind     schema.GroupVersionKind
	kindErr  error
	selector *metav1.LabelSelector // the metric selector echoed in each value
}

func (p *Provider) resolve(info cmprovider.CustomMetricInfo, namespace string, metricSelector labels.Selector) (*plan, error) {
	r, err := p.lookup(info, p.catalog.Snapshot())
	if err != nil {
		return nil, err
	}
	if err := validNamespace(info, namespace); err != nil {
		return nil, err
	}
	if err := provider.ValidSelector("metricLabelSelector", metricSelector); err != nil {
		return nil, err
	}
	parts, err := promql.SelectorParts(metricSelector, nil)
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("metricLabelSelector: %v", err))
	}
	pl := &plan{info: r.norm, entry: r.entry, resourceLabel: r.rl, parts: parts, selector: labelSelector(metricSelector),
		kind: r.kind, kindErr: r.kindErr, res: r}
	if r.norm.Namespaced {
		pl.namespace = namespace
		pl.nsLabel = r.nsLabel
	}
	return pl, nil
}

// lookup resolves a metric through the REST mapper and the catalog
// snapshot, reusing an answer for resolutionTTL while the snapshot is the
// same: each mapper lookup scans every resource the cluster serves, which
// per request costs more than the rest of a cached request's work.
// Failures are not remembered.
func (p *Provider) lookup(info cmprovider.CustomMetricInfo, snap *catalog.Snapshot) (*resolution, error) {
	now := time.Now()
	c := &p.resolved
	c.mu.Lock()
	if c.snap != snap {
		c.snap, c.m = snap, map[cmprovider.CustomMetricInfo]*resolution{}
	}
	if r, ok := c.m[info]; ok && now.Before(r.expires) {
		c.mu.Unlock()
		return r, nil
	}
	c.mu.Unlock()

	norm, _, err := info.Normalized(p.mapper)
	if err != nil {
		return nil, apierrors.NewNotFound(info.GroupResource, fmt.Sprintf("resource %q for metric %q: %v", info.GroupResource, info.Metric, err))
	}
	entry, ok := snap.Custom(catalog.CustomKey{Resource: norm.GroupResource, Namespaced: norm.Namespaced, Metric: norm.Metric})
	if !ok {
		return nil, notFound(snap, norm)
	}
	rl, err := entry.Rule.Resources.LabelForResource(norm.GroupResource, p.mapper)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("%s: %w", entry.Rule.Path, err))
	}
	r := &resolution{norm: norm, entry: entry, rl: rl, expires: now.Add(resolutionTTL)}
	r.kind, r.kindErr = p.mapper.KindFor(norm.GroupResource.WithVersion(""))
	if norm.Namespaced {
		r.nsLabel = entry.Rule.Resources.NamespaceLabel(p.mapper)
	}
	c.mu.Lock()
	if c.snap == snap {
		c.m[info] = r
	}
	c.mu.Unlock()
	return r, nil
}

// validNamespace refuses a namespace that is not a Kubernetes namespace
// name, before any query is built.
func validNamespace(info cmprovider.CustomMetricInfo, namespace string) error {
	if namespace == "" {
		return nil
	}
	return provider.ValidNamespace(namespace)
}

func notFound(snap *catalog.Snapshot, info cmprovider.CustomMetricInfo) error {
	err := cmprovider.NewMetricNotFoundError(info.GroupResource, info.Metric)
	scope := "cluster-scoped"
	if info.Namespaced {
		scope = "namespaced"
	}
	msg := fmt.Sprintf("%s (as %s objects)", err.ErrStatus.Message, scope)
	if known := snap.MetricsFor(info.GroupResource); len(known) > 0 {
		if len(known) > 10 {
			known = append(known[:10:10], "...")
		}
		msg += "; metrics known for " + info.GroupResource.String() + ": " + strings.Join(known, ", ")
	} else {
		msg += "; no metric is known for " + info.GroupResource.String()
	}
	msg += fmt.Sprintf(" (kubectl get --raw '/apis/custom.metrics.k8s.io/v1beta2/explain?metric=%s&resource=%s')", url.QueryEscape(info.Metric), url.QueryEscape(info.GroupResource.String()))
	err.ErrStatus.Message = msg
	return err
}

// sortedUnique returns names if they are sorted without repeats, else a
// sorted copy without repeats.
func sortedUnique(names []string) []string {
	for i := 1; i < len(names); i++ {
		if names[i] <= names[i-1] {
			return slices.Compact(slices.Sorted(slices.Values(names)))
		}
	}
	return names
}

// query renders and runs the plan for the named objects and returns the
// samples of names (sorted, without repeats) in their order: a zero found
// for an object without one. Their values are converted once per shared
// answer (in its index), else once per request.
//
// The query is the one prometheus-adapter would send (the metric selector,
// the namespace, the objects; grouped by the object label) unless the
// rule's template is shareable (promql.Template.Sharing, decided once per
// rule and resource): then, with Batch, every request for the metric sends
// the same cluster-wide query grouped by namespace and object (with
// Demand, narrowed to the namespaces requests asked about, or the
// request's namespace alone until it joins: render), and with more names
// than MaxNamesInQuery the query selects the whole namespace; the result
// is filtered here.
func (p *Provider) query(ctx context.Context, pl *plan, names []string) (answered, error) {
	r, err := p.render(pl, names)
	if err != nil {
		return answered{}, err
	}
	ans, err := p.run.Run(ctx, pl.sent(r), p.run.Clock())
	if err != nil {
		return answered{}, err
	}
	vec := ans.Vector
	if r.share.OK && (len(vec) > len(names) || r.family != "") {
		// A shared answer (one with more objects than asked for, or one
		// narrowed to what requests asked about, which every request of
		// its family reads): index it once (per answer, not per request)
		// and read this request's slice from the index.
		idx := indexOf(p.run.Budget, pl.entry.Rule.Backend, r.query.Text, vec, pl.nsLabel, pl.resourceLabel)
		return answered{window: ans.Window, idx: idx, text: r.query.Text, namespace: pl.namespace, byNamespace: r.filterNamespace}, nil
	}
	out := make([]found, len(names))
	for _, s := range vec {
		if obj, ok := pl.objectOf(s, r.filterNamespace); ok {
			if i, ok := slices.BinarySearch(names, obj); ok {
				// As prometheus-adapter: the last sample for an object wins.
				out[i].s = s
			}
		}
	}
	for i := range out {
		if out[i].s != nil {
			out[i] = foundOf(out[i].s)
		}
	}
	return answered{found: out, window: ans.Window}, nil
}

// answered is what a query answered for a request's objects.
type answered struct {
	found  []found // by object, in the order of the names asked for (idx nil)
	window *int64
	// idx is the shared answer's index the values are read from (nil: the
	// request's own answer), text the query's; namespace and byNamespace
	// are what idx.lookup needs.
	idx         *index
	text        string
	namespace   string
	byNamespace bool
}

// at returns the sample of the i-th object asked for, name.
func (a *answered) at(i int, name string) found {
	if a.idx == nil {
		return a.found[i]
	}
	f, _ := a.idx.lookup(a.namespace, name, a.byNamespace)
	return f
}

// objectOf names the object a sample is about; with filterNamespace, only
// samples of the plan's namespace are about one.
func (pl *plan) objectOf(s *model.Sample, filterNamespace bool) (string, bool) {
	if filterNamespace && string(s.Metric[model.LabelName(pl.nsLabel)]) != pl.namespace {
		return "", false
	}
	return string(s.Metric[model.LabelName(pl.resourceLabel)]), true
}

// query is q as the plan's rule sends it.
func (pl *plan) query(q promql.Query) provider.Query {
	r := pl.entry.Rule
	return provider.Query{API: provider.CustomAPI, Metric: pl.info.Metric, Backend: r.Backend,
		Field: r.Path + ".metricsQuery", SeriesQuery: r.SeriesQuery, Query: q}
}

// sent is r's query as the plan's rule sends it.
func (pl *plan) sent(r rendered) provider.Query {
	q := pl.query(r.query)
	q.Family = r.family
	return q
}

// rendered is the query a plan sends for a set of objects.
type rendered struct {
	query promql.Query
	share promql.Sharing
	// filterNamespace: the query is cluster-wide, its samples are filtered
	// by the plan's namespace here.
	filterNamespace bool
	// family is the query's provider.Query.Family: the demand key of a
	// narrowed shared query and its per-request forms.
	family string
}

// render builds the query for the named objects (see query).
func (p *Provider) render(pl *plan, names []string) (rendered, error) {
	share := pl.res.sharing(pl.entry)
	parts := append([]promql.Part(nil), pl.parts...)
	groupBy := []string{pl.resourceLabel}
	filterNamespace := false
	family := ""
	switch {
	case share.OK && p.Batch:
		var reach provider.Reach
		if pl.nsLabel != "" && pl.res.demandOK && p.Demand != nil {
			var asked []string
			if pl.res.demandObjectsOK && len(names) <= p.MaxNamesInQuery {
				asked = names
			}
			reach = p.Demand.Ask(pl.demandKey(), pl.namespace, asked, time.Now())
		}
		namespaces, objects := reach.Narrowing(pl.namespace, pl.resourceLabel)
		// Rendered once per narrowing (provider.Narrowed); the key and
		// the metric selector are in the scope.
		memo := provider.Narrowed{Budget: p.run.Budget}
		k := provider.NarrowedFor{Owner: pl.res, Namespaces: namespaces, Objects: reach.Objects}
		if r, ok := memo.Get(pl.demandKey(), k); ok {
			return r.(rendered), nil
		}
		if pl.nsLabel != "" {
			// Not joined yet (reach.Alone): the request's namespace alone,
			// all its objects, with the shared query's grouping, so that
			// the partial-window guard's history of its series carries
			// over to the shared query it joins (family). Every request of
			// the namespace waiting to join reads this one query (5,000
			// HPAs starting together sent one per HPA and overloaded
			// Prometheus; now one per namespace and metric).
			if namespaces != nil {
				parts = append(parts, promql.OneOfPart(pl.nsLabel, namespaces))
				family = pl.demandKey()
			}
			groupBy = []string{pl.nsLabel, pl.resourceLabel}
			filterNamespace = true
		}
		parts = append(parts, objects)
		q, err := pl.entry.Rule.Query.Build(promql.Request{Series: pl.entry.Series, Parts: parts, GroupBy: groupBy})
		if err != nil {
			return rendered{}, apierrors.NewInternalError(fmt.Errorf("%s.metricsQuery: %w", pl.entry.Rule.Path, err))
		}
		r := rendered{query: q, share: share, filterNamespace: filterNamespace, family: family}
		memo.Put(pl.demandKey(), k, r, len(r.query.Text)+len(r.family))
		return r, nil
	case share.OK && len(names) > p.MaxNamesInQuery:
		if pl.nsLabel != "" {
			parts = append(parts, promql.EqualPart(pl.nsLabel, pl.namespace))
		}
		parts = append(parts, promql.AnyPart(pl.resourceLabel))
	default:
		parts = pl.requestParts(names)
	}
	q, err := pl.entry.Rule.Query.Build(promql.Request{Series: pl.entry.Series, Parts: parts, GroupBy: groupBy})
	if err != nil {
		return rendered{}, apierrors.NewInternalError(fmt.Errorf("%s.metricsQuery: %w", pl.entry.Rule.Path, err))
	}
	return rendered{query: q, share: share, filterNamespace: filterNamespace, family: family}, nil
}

// requestParts are what prometheus-adapter selects for the named objects:
// the metric selector, the namespace (namespaced objects), the objects.
func (pl *plan) requestParts(names []string) []promql.Part {
	parts := append([]promql.Part(nil), pl.parts...)
	if pl.nsLabel != "" {
		parts = append(parts, promql.EqualPart(pl.nsLabel, pl.namespace))
	}
	return append(parts, promql.OneOfPart(pl.resourceLabel, names))
}

// sharing decides, once per resolution, whether the rule's query may be
// shared by all requests for the metric, and narrowed to namespaces.
func (r *resolution) sharing(e catalog.Entry) promql.Sharing {
	r.shareOnce.Do(func() {
		r.share = SharingOf(e.Rule.Query, e.Series, r.rl, r.nsLabel)
		r.demandOK = r.share.OK && r.nsLabel != "" && DemandSharingOf(e.Rule.Query, e.Series, r.rl, r.nsLabel, false)
		r.demandObjectsOK = r.demandOK && DemandSharingOf(e.Rule.Query, e.Series, r.rl, r.nsLabel, true)
	})
	return r.share
}

// demandKey names the plan's shared query in Demand: its rule, series,
// resource and metric selector.
func (pl *plan) demandKey() string {
	switch {
	case pl.dkey != "":
	case len(pl.parts) == 0:
		pl.res.keyOnce.Do(func() { pl.res.key = pl.demandKeyOf() })
		pl.dkey = pl.res.key
	default:
		pl.dkey = pl.demandKeyOf()
	}
	return pl.dkey
}

func (pl *plan) demandKeyOf() string {
	return pl.entry.Rule.Path + "\x00" + pl.entry.Series + "\x00" + pl.info.GroupResource.String() + "\x00" +
		promql.JoinMatchers(promql.Matchers(pl.parts))
}

// DemandSharingOf decides whether the shared query of a template (see
// SharingOf) may be narrowed to the namespaces requests ask about and,
// with objects, to the objects they ask about in them: the query for one
// request and the query for a set of namespaces (and the union of a set
// of object names), grouped by namespace and object, must be equivalent
// once filtered.
func DemandSharingOf(tmpl *promql.Template, series, resourceLabel, namespaceLabel string, objects bool) bool {
	one := []promql.Part{promql.EqualPart(namespaceLabel, "promgate-sample"), promql.OneOfPart(resourceLabel, []string{"sample-a", "sample-b"})}
	all := promql.AnyPart(resourceLabel)
	if objects {
		all = promql.OneOfPart(resourceLabel, []string{"sample-a", "sample-b", "sample-c"})
	}
	s, err := tmpl.Sharing(
		promql.Request{Series: series, Parts: one, GroupBy: []string{resourceLabel}},
		promql.Request{Series: series, Parts: []promql.Part{
			promql.OneOfPart(namespaceLabel, []string{"promgate-other", "promgate-sample"}), all,
		}, GroupBy: []string{namespaceLabel, resourceLabel}})
	return err == nil && s.OK
}

// SharingOf decides whether a template's queries about the objects named
// by resourceLabel (namespaced by namespaceLabel, empty for cluster-scoped
// objects) may be shared by all requests: rendered for one request (a
// namespace and two objects) and for all objects, grouped by namespace and
// object, the two must be equivalent once filtered.
func SharingOf(tmpl *promql.Template, series, resourceLabel, namespaceLabel string) promql.Sharing {
	var one []promql.Part
	groupAll := []string{resourceLabel}
	if namespaceLabel != "" {
		one = append(one, promql.EqualPart(namespaceLabel, "promgate-sample"))
		groupAll = []string{namespaceLabel, resourceLabel}
	}
	one = append(one, promql.OneOfPart(resourceLabel, []string{"sample-a", "sample-b"}))
	s, err := tmpl.Sharing(
		promql.Request{Series: series, Parts: one, GroupBy: []string{resourceLabel}},
		promql.Request{Series: series, Parts: []promql.Part{promql.AnyPart(resourceLabel)}, GroupBy: groupAll})
	if err != nil {
		return promql.Sharing{Reason: err.Error()}
	}
	return s
}

// sharingOf reports whether requests for a metric share one query (see
// query) and, if not, why.
func (p *Provider) sharingOf(info cmprovider.CustomMetricInfo) (bool, string) {
	r, err := p.lookup(info, p.catalog.Snapshot())
	if err != nil {
		return false, err.Error()
	}
	s := r.sharing(r.entry)
	return s.OK, s.Reason
}

// GetMetricByName returns the metric for one object.
func (p *Provider) GetMetricByName(ctx context.Context, name types.NamespacedName, info cmprovider.CustomMetricInfo, metricSelector labels.Selector) (*custom_metrics.MetricValue, error) {
	if err := provider.ValidObjectName(info.GroupResource, name.Name); err != nil {
		return nil, err
	}
	pl, err := p.resolve(info, name.Namespace, metricSelector)
	if err != nil {
		return nil, err
	}
	ans, err := p.query(ctx, pl, []string{name.Name})
	if err != nil {
		return nil, err
	}
	if got := ans.at(0, name.Name); got.s != nil {
		v, err := p.value(pl, name, got, ans.window)
		if err != nil {
			nf := cmprovider.NewMetricNotFoundForError(pl.info.GroupResource, pl.info.Metric, name.Name)
			nf.ErrStatus.Message += ": " + err.Error()
			return nil, nf
		}
		return &v, nil
	}
	if p.withheld(ctx, pl, []string{name.Name}) {
		return nil, provider.IncompleteWindow(fmt.Sprintf("%s %s/%s", pl.info.Metric, pl.info.GroupResource, name.Name))
	}
	nf := cmprovider.NewMetricNotFoundForError(pl.info.GroupResource, pl.info.Metric, name.Name)
	nf.ErrStatus.Message += ": the query returned no series for it"
	return nil, nf
}

// withheld reports whether a value of one of the named objects (sorted,
// distinct) was left out only because its window is partly covered by
// samples: the query without the guard has it, or (a rate needs two
// samples in its window) the objects' series have a sample in the window,
// or did not end before it (Runner.Present). Asked only when the objects
// are all missing, so it costs a query only then.
func (p *Provider) withheld(ctx context.Context, pl *plan, names []string) bool {
	r, err := p.render(pl, names)
	if err != nil {
		return false
	}
	run := p.run
	q := pl.sent(r)
	asked := func(s *model.Sample) bool {
		obj, ok := pl.objectOf(s, r.filterNamespace)
		if !ok {
			return false
		}
		_, ok = slices.BinarySearch(names, obj)
		return ok
	}
	if run.Withheld(ctx, q, run.Clock(), asked) {
		return true
	}
	if !run.Guarded(q) || len(names) > p.MaxNamesInQuery {
		return false // the presence query would name them all
	}
	one, err := pl.entry.Rule.Query.Build(promql.Request{Series: pl.entry.Series, Parts: pl.requestParts(names), GroupBy: []string{pl.resourceLabel}})
	if err != nil || !one.Checked {
		return false
	}
	// The query names the objects: any series it answers is theirs (its
	// labels may lack the one the rule's query groups by).
	return run.Present(ctx, q, one.Expr, run.Clock(), func(*model.Sample) bool { return true })
}

// GetMetricBySelector returns the metric for every object of a resource
// matching selector, taking the objects from the informer cache.
func (p *Provider) GetMetricBySelector(ctx context.Context, namespace string, selector labels.Selector, info cmprovider.CustomMetricInfo, metricSelector labels.Selector) (*custom_metrics.MetricValueList, error) {
	list, memo, err := p.SharedMetricBySelector(ctx, namespace, selector, info, metricSelector)
	if err != nil || memo == nil {
		return list, err
	}
	// A list other requests read too goes to the library's chain as a copy.
	return &custom_metrics.MetricValueList{Items: slices.Clone(list.Items)}, nil
}

// SharedMetricBySelector is GetMetricBySelector for callers that do not
// change the list: when it was read from a shared answer, the list is the
// one every request for the same namespace, objects and metric gets until
// the answer changes, returned with the memo of its encodings (otherwise
// the memo is nil).
func (p *Provider) SharedMetricBySelector(ctx context.Context, namespace string, selector labels.Selector, info cmprovider.CustomMetricInfo, metricSelector labels.Selector) (*custom_metrics.MetricValueList, *wire.Memo, error) {
	pl, err := p.resolve(info, namespace, metricSelector)
	if err != nil {
		return nil, nil, err
	}
	if selector == nil {
		selector = labels.Everything()
	}
	names, err := p.objects.Names(ctx, pl.info.GroupResource, namespace, selector)
	if err != nil {
		return nil, nil, provider.StatusError(err)
	}
	list := &custom_metrics.MetricValueList{}
	if len(names) == 0 {
		return list, nil, nil
	}
	// Items in name order: query with the names sorted (as Names returns
	// them), rather than sort the (large) values afterwards. Only names
	// from all namespaces may repeat.
	if namespace == "" {
		names = sortedUnique(names)
	}
	ans, err := p.query(ctx, pl, names)
	if err != nil {
		return nil, nil, err
	}
	var key string
	if ans.idx != nil {
		msel := ""
		if metricSelector != nil {
			msel = metricSelector.String()
		}
		key = listKey(pl, selector.String(), msel)
		if l, ok := listOf(p.run.Budget, ans.text, key, ans.idx, names, pl.res, ans.window); ok {
			return l.list, &l.enc, nil
		}
	}
	list.Items = make([]custom_metrics.MetricValue, 0, len(names))
	for i, obj := range names {
		got := ans.at(i, obj)
		if got.s == nil {
			continue
		}
		v, err := p.value(pl, types.NamespacedName{Namespace: namespace, Name: obj}, got, ans.window)
		if err != nil {
			klog.V(2).InfoS("skipping value", "metric", pl.info.Metric, "object", obj, "err", err)
			continue
		}
		list.Items = append(list.Items, v)
	}
	if len(list.Items) == 0 {
		if p.withheld(ctx, pl, names) {
			// Every object was left out for a partly filled window: an
			// empty list would read as "no such series".
			return nil, nil, provider.IncompleteWindow(fmt.Sprintf("%s %s in namespace %q", pl.info.Metric, pl.info.GroupResource, namespace))
		}
		return list, nil, nil
	}
	if ans.idx == nil {
		return list, nil, nil
	}
	l := keepList(p.run.Budget, ans.text, key, ans.idx, names, pl.res, ans.window, list)
	return l.list, &l.enc, nil
}

func (p *Provider) value(pl *plan, name types.NamespacedName, f found, window *int64) (custom_metrics.MetricValue, error) {
	if f.err != nil {
		return custom_metrics.MetricValue{}, f.err
	}
	ref, err := pl.reference(name)
	if err != nil {
		return custom_metrics.MetricValue{}, err
	}
	return custom_metrics.MetricValue{
		DescribedObject: ref,
		Metric:          custom_metrics.MetricIdentifier{Name: pl.info.Metric, Selector: pl.selector},
		Timestamp:       metav1.NewTime(f.s.Timestamp.Time()),
		WindowSeconds:   window,
		Value:           f.q,
	}, nil
}

// labelSelector returns sel as a LabelSelector to echo in the response, or
// nil when it is empty. Unlike metav1.ParseToLabelSelector, which refuses
// "!=", it writes key!=v as key notin (v).
func labelSelector(sel labels.Selector) *metav1.LabelSelector {
	if sel == nil || sel.Empty() {
		return nil
	}
	reqs, _ := sel.Requirements()
	ls := &metav1.LabelSelector{MatchLabels: map[string]string{}, MatchExpressions: []metav1.LabelSelectorRequirement{}}
	for _, r := range reqs {
		var op metav1.LabelSelectorOperator
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals:
			ls.MatchLabels[r.Key()] = r.Values().List()[0]
			continue
		case selection.In:
			op = metav1.LabelSelectorOpIn
		case selection.NotIn, selection.NotEquals:
			op = metav1.LabelSelectorOpNotIn
		case selection.Exists:
			op = metav1.LabelSelectorOpExists
		case selection.DoesNotExist:
			op = metav1.LabelSelectorOpDoesNotExist
		default: // Gt and Lt never get this far: PromQL cannot express them
			return nil
		}
		var values []string
		if r.Values().Len() > 0 {
			values = r.Values().List()
		}
		ls.MatchExpressions = append(ls.MatchExpressions, metav1.LabelSelectorRequirement{Key: r.Key(), Operator: op, Values: values})
	}
	return ls
}

// reference describes the object a value is about. (The library's
// helpers.ReferenceFor writes "/v1" for core objects.)
func (pl *plan) reference(name types.NamespacedName) (custom_metrics.ObjectReference, error) {
	if pl.kindErr != nil {
		return custom_metrics.ObjectReference{}, pl.kindErr
	}
	return custom_metrics.ObjectReference{
		APIVersion: pl.kind.GroupVersion().String(),
		Kind:       pl.kind.Kind,
		Name:       name.Name,
		Namespace:  name.Namespace,
	}, nil
}

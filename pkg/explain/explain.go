// Package explain answers "why is my metric not found?" and "which PromQL
// does this request send?" from a catalog snapshot, the compiled rules and
// the providers' query plans. `promgate explain` (offline, one discovery)
// and the explain endpoint of a running promgate
// (/apis/custom.metrics.k8s.io/v1beta2/explain) share it, so that both
// give the same answer in the same words.
package explain

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	plabels "github.com/prometheus/prometheus/model/labels"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/klog/v2"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/promql"
	"github.com/promgate/promgate/pkg/provider"
	"github.com/promgate/promgate/pkg/provider/custom"
	"github.com/promgate/promgate/pkg/provider/external"
	"github.com/promgate/promgate/pkg/rules"
)

// Path is where a running promgate serves explanations, under the custom
// metrics API so that kube-apiserver's aggregation layer proxies it and
// RBAC decides who may read it (resource "explain" of group
// custom.metrics.k8s.io; see RBAC).
const Path = "/apis/custom.metrics.k8s.io/v1beta2/explain"

// Request is what to explain. Its query parameters (ParseRequest) are its
// JSON names.
type Request struct {
	// Metric is the metric name; without it, the report is the whole
	// discovery (every rule).
	Metric string `json:"metric,omitempty"`
	// Resource is the resource a custom metric describes ("pods",
	// "deployments.apps"); empty with External unset: every resource.
	Resource string `json:"resource,omitempty"`
	// External explains an external metric.
	External bool `json:"external,omitempty"`
	// Namespace is the request's namespace; for resource namespaces it is
	// the namespace the metric is about.
	Namespace string `json:"namespace,omitempty"`
	// Name is one object, or empty or "*" for all of the namespace.
	Name string `json:"name,omitempty"`
	// LabelSelector selects objects (custom) or, as in the external
	// metrics API, the metric's series (external).
	LabelSelector string `json:"labelSelector,omitempty"`
	// MetricLabelSelector selects a custom metric's series.
	MetricLabelSelector string `json:"metricLabelSelector,omitempty"`
	// Run runs the query and reports how many values it gives.
	Run bool `json:"run,omitempty"`
}

// ParseRequest reads a Request from query parameters.
func ParseRequest(v url.Values) (Request, error) {
	r := Request{
		Metric:              v.Get("metric"),
		Resource:            v.Get("resource"),
		Namespace:           v.Get("namespace"),
		Name:                v.Get("name"),
		LabelSelector:       v.Get("labelSelector"),
		MetricLabelSelector: v.Get("metricLabelSelector"),
	}
	for _, b := range []struct {
		name string
		to   *bool
	}{{"external", &r.External}, {"run", &r.Run}} {
		if s := v.Get(b.name); s != "" {
			val, err := strconv.ParseBool(s)
			if err != nil {
				return Request{}, fmt.Errorf("%s=%q: not a boolean", b.name, s)
			}
			*b.to = val
		}
	}
	if r.External && r.Resource != "" {
		return Request{}, fmt.Errorf("external=true and resource=%q: an external metric describes no resource", r.Resource)
	}
	if r.Metric == "" && (r.Resource != "" || r.External || r.Name != "" || r.Run) {
		return Request{}, fmt.Errorf("metric is required with resource, external, name or run")
	}
	return r, nil
}

// Values returns r as query parameters, the inverse of ParseRequest.
func (r Request) Values() url.Values {
	v := url.Values{}
	for _, kv := range [][2]string{
		{"metric", r.Metric}, {"resource", r.Resource}, {"namespace", r.Namespace}, {"name", r.Name},
		{"labelSelector", r.LabelSelector}, {"metricLabelSelector", r.MetricLabelSelector},
	} {
		if kv[1] != "" {
			v.Set(kv[0], kv[1])
		}
	}
	if r.External {
		v.Set("external", "true")
	}
	if r.Run {
		v.Set("run", "true")
	}
	return v
}

// CustomPlanner is the custom metrics provider's query planning.
type CustomPlanner interface {
	Plan(ctx context.Context, req custom.PlanRequest, run bool) (provider.Plan, error)
}

// ExternalPlanner is the external metrics provider's query planning.
type ExternalPlanner interface {
	Plan(ctx context.Context, namespace string, metricSelector labels.Selector, info cmprovider.ExternalMetricInfo, run bool) (provider.Plan, error)
}

// Catalog gives the current catalog snapshot.
type Catalog interface {
	Snapshot() *catalog.Snapshot
}

// Explainer builds Reports. Catalog and Mapper are required; the rest is
// optional.
type Explainer struct {
	Catalog Catalog
	// Custom and External are the rules explained; when nil, those of the
	// catalog's snapshot (a running server's current rules, reloads
	// included).
	Custom, External []*rules.Rule
	Mapper           apimeta.RESTMapper
	// Backends are the backends rules name (rules.Rule.Backend), shown by
	// name and URL. When set, a rule's backend is asked, per rule that does
	// not serve the metric, for the series named like the metric that its
	// seriesQuery matches: within MaxAge (at most MaxProbeSeries series
	// read), then, if there are none, within Lookback (default 24h; one
	// series read, all the report needs to say they are too old).
	Backends map[string]ExplainBackend
	MaxAge   time.Duration
	Lookback time.Duration
	// CustomPlanner and ExternalPlanner give the query a request sends.
	CustomPlanner   CustomPlanner
	ExternalPlanner ExternalPlanner

	// MaxConcurrent bounds the explanations that ask the backends for
	// series at once, in all (default DefaultMaxConcurrent). Another
	// waits for its turn at most QueueWait (default DefaultQueueWait)
	// and its context, then fails with ErrBusy. The query of run=true is
	// not counted: it goes through the serving query engine and its own
	// concurrency limit.
	MaxConcurrent int
	QueueWait     time.Duration
	// MaxProbeSeries bounds the series read per probe (default
	// DefaultMaxProbeSeries); the listing is abandoned there.
	MaxProbeSeries int

	now     func() time.Time
	semOnce sync.Once
	sem     chan struct{}
}

// Defaults of the limits of explain's own backend calls.
const (
	DefaultMaxConcurrent  = 2
	DefaultQueueWait      = 2 * time.Second
	DefaultMaxProbeSeries = 1000
)

// ErrBusy is the error of an explanation refused because MaxConcurrent
// others were asking the backends for series for longer than it could
// wait.
var ErrBusy = errors.New("too many explanations are asking the backends for series")

// acquire waits for one of the MaxConcurrent turns to ask the backends,
// at most QueueWait and while ctx lasts; release gives it back.
func (e *Explainer) acquire(ctx context.Context) (release func(), err error) {
	n := e.MaxConcurrent
	if n <= 0 {
		n = DefaultMaxConcurrent
	}
	e.semOnce.Do(func() { e.sem = make(chan struct{}, n) })
	wait := e.QueueWait
	if wait <= 0 {
		wait = DefaultQueueWait
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case e.sem <- struct{}{}:
		return func() { <-e.sem }, nil
	case <-t.C:
		return nil, fmt.Errorf("%w: %d already are, and none finished within %s; retry shortly", ErrBusy, cap(e.sem), wait)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (e *Explainer) maxProbeSeries() int {
	if e.MaxProbeSeries > 0 {
		return e.MaxProbeSeries
	}
	return DefaultMaxProbeSeries
}

// ExplainBackend is a backend as explain asks it for series and shows it.
type ExplainBackend struct {
	Series catalog.SeriesLister
	// URL is the backend's URL without credentials.
	URL string
}

// backendName describes backend name for a plan: its name and URL.
func (e *Explainer) backendName(name string) string {
	if b, ok := e.Backends[name]; ok && b.URL != "" {
		return fmt.Sprintf("%s (%s)", name, b.URL)
	}
	return name
}

// Report is an explanation.
type Report struct {
	Request Request `json:"request"`
	// Discovery is when the snapshot explained was made.
	Discovery time.Time `json:"discovery"`
	// Served lists what serves the metric, on every resource.
	Served []Serving `json:"served"`
	// Rules lists the rules that serve the metric or could have and why
	// they do not, in config order.
	Rules []RuleFinding `json:"rules"`
	// Plan is the query the request sends, or PlanError why there is none.
	Plan      *Plan  `json:"plan,omitempty"`
	PlanError string `json:"planError,omitempty"`
	// Notes are facts about the report as a whole.
	Notes []string `json:"notes,omitempty"`
	// Reports is the whole discovery, when no metric is asked for.
	Reports []catalog.RuleReport `json:"reports,omitempty"`
}

// Serving is one metric the catalog serves.
type Serving struct {
	Metric string `json:"metric"`
	// API is "custom" or "external".
	API string `json:"api"`
	// Resource and Namespaced, for custom metrics: the catalog key.
	Resource   string `json:"resource,omitempty"`
	Namespaced bool   `json:"namespaced,omitempty"`
	Rule       string `json:"rule"`
	Series     string `json:"series"`
	// Sharing says whether requests share one query, and if not why.
	Sharing string `json:"sharing"`
}

// RuleFinding is what one rule does about the metric.
type RuleFinding struct {
	Rule        string   `json:"rule"`
	Backend     string   `json:"backend,omitempty"`
	SeriesQuery string   `json:"seriesQuery"`
	Serves      bool     `json:"serves"`
	Reasons     []string `json:"reasons,omitempty"`
}

// Plan is the query a request sends.
type Plan = provider.Plan

// maxProbeShapes bounds the probed series shapes reported per rule.
const maxProbeShapes = 3

// target is the catalog key a custom request asks for.
type target struct {
	key     catalog.CustomKey
	hasKey  bool
	nsParam string // the namespace of the request, "" for cluster-scoped
	name    string
}

// Explain builds the whole report for req, the series of every namespace
// included: `promgate explain`'s, whose user has the configuration and
// the backends anyway. The explain endpoint's answers are reports
// Scoped to what the caller may read.
//
// Failures of the backends (probes, the run query) are part of the
// report, not errors: the backend's name and the kind of failure, the
// backend's own text going to the log only. An error is a request that
// cannot be explained (a selector that does not parse), ErrBusy, or the
// end of ctx while waiting for a turn to ask the backends.
func (e *Explainer) Explain(ctx context.Context, req Request) (*Report, error) {
	return e.Scoped(ctx, req, Scope{Wide: true})
}

// Scope is what of a report its reader may see.
type Scope struct {
	// Wide includes what is about every namespace: the series named like
	// the metric the backends have (probes) and the discovery's
	// dropped-series examples. Without it, the backends are not asked,
	// and Withheld, a note, says what was left out and why.
	Wide     bool
	Withheld string
}

// Scoped is Explain limited to scope.
func (e *Explainer) Scoped(ctx context.Context, req Request, scope Scope) (*Report, error) {
	snap := e.Catalog.Snapshot()
	rep := &Report{Request: req, Discovery: snap.Time, Served: []Serving{}, Rules: []RuleFinding{}}
	if req.Metric == "" {
		e.overview(rep, snap, scope)
		return rep, nil
	}
	var objSel, metricSel labels.Selector
	var err error
	if objSel, err = labels.Parse(req.LabelSelector); err != nil {
		return nil, fmt.Errorf("labelSelector: %w", err)
	}
	if metricSel, err = labels.Parse(req.MetricLabelSelector); err != nil {
		return nil, fmt.Errorf("metricLabelSelector: %w", err)
	}
	rep.Served = e.served(snap, req.Metric)

	var tgt target
	if req.Resource != "" {
		tgt, err = e.target(req)
		if err != nil {
			rep.PlanError = err.Error()
		}
	}
	probes := e.prober(ctx, req.Metric, scope.Wide)
	if err := e.findings(ctx, rep, snap, tgt, probes); err != nil {
		return nil, err
	}
	e.notes(rep, scope, probes)
	e.addPlan(ctx, rep, tgt, objSel, metricSel)
	return rep, nil
}

// overview fills rep, a report on no metric in particular, with every
// rule's discovery report and every metric served.
func (e *Explainer) overview(rep *Report, snap *catalog.Snapshot, scope Scope) {
	rep.Reports = make([]catalog.RuleReport, len(snap.Reports))
	for i, rr := range snap.Reports {
		rr.Err = discoveryFailure(rr.Err)
		if !scope.Wide {
			rr.Examples = nil
		}
		rep.Reports[i] = rr
	}
	rep.Served = e.served(snap, "")
	if !scope.Wide {
		rep.Notes = append(rep.Notes, scope.Withheld)
	}
}

// findings adds to rep what each rule that could give its metric did with
// it: the custom rules unless the request is external, the external ones
// unless it names a resource. Its only error is ctx's end while waiting
// for the turn its probes need.
func (e *Explainer) findings(ctx context.Context, rep *Report, snap *catalog.Snapshot, tgt target, probes *prober) error {
	req := rep.Request
	customRules, externalRules := e.Custom, e.External
	if customRules == nil && externalRules == nil {
		customRules, externalRules = snap.CustomRules, snap.ExternalRules
	}
	release := func() {}
	if probes.on {
		// One turn for all of this report's probes, given back before
		// the plan, whose query has the engine's limit.
		var err error
		if release, err = e.acquire(ctx); err != nil {
			return err
		}
	}
	defer release()
	if !req.External {
		for i, r := range customRules {
			if f, ok := e.customFinding(snap, r, reportFor(snap, r.Path, i), req.Metric, tgt, probes); ok {
				rep.Rules = append(rep.Rules, f)
			}
		}
	}
	if req.External || req.Resource == "" {
		for i, r := range externalRules {
			if f, ok := e.externalFinding(snap, r, reportFor(snap, r.Path, len(customRules)+i), req.Metric, probes); ok {
				rep.Rules = append(rep.Rules, f)
			}
		}
	}
	return nil
}

// notes adds to rep why it may say less than the reader expects: what its
// scope withheld, no rule giving the metric, probes that failed.
func (e *Explainer) notes(rep *Report, scope Scope, probes *prober) {
	switch {
	case !scope.Wide:
		rep.Notes = append(rep.Notes, scope.Withheld)
	case len(rep.Rules) == 0:
		what := "no rule's series give this metric"
		if probes.on {
			what += fmt.Sprintf(", and no series named %s within %s matches a rule's seriesQuery", rep.Request.Metric, e.lookback())
		}
		rep.Notes = append(rep.Notes, what+"; a rule that renames series (name.as) shows the series it dropped under the full discovery (omit metric)")
	}
	if probes.err != "" {
		rep.Notes = append(rep.Notes, "asking Prometheus for series named like the metric failed "+probes.err)
	}
}

// addPlan adds to rep the query the request would send, from the
// external or the custom planner, or a note on what the request lacks
// for one.
func (e *Explainer) addPlan(ctx context.Context, rep *Report, tgt target, objSel, metricSel labels.Selector) {
	req := rep.Request
	switch {
	case req.External && e.ExternalPlanner != nil:
		p, err := e.ExternalPlanner.Plan(ctx, req.Namespace, objSel, cmprovider.ExternalMetricInfo{Metric: req.Metric}, req.Run)
		rep.Plan, rep.PlanError = e.plan(p, err)
	case req.Resource != "" && tgt.hasKey && e.CustomPlanner != nil:
		p, err := e.CustomPlanner.Plan(ctx, custom.PlanRequest{
			Info:      cmprovider.CustomMetricInfo{GroupResource: tgt.key.Resource, Namespaced: tgt.nsParam != "", Metric: req.Metric},
			Namespace: tgt.nsParam, Name: tgt.name, Selector: objSel, MetricSelector: metricSel,
		}, req.Run)
		rep.Plan, rep.PlanError = e.plan(p, err)
		if p.Query == "" && err == nil && p.Objects != nil && *p.Objects == 0 {
			rep.PlanError = "no object matches: the request sends no query and returns an empty list"
		}
	case req.Resource == "" && !req.External:
		rep.Notes = append(rep.Notes, "add resource= (or external=true) and namespace=, name= for the query a request sends")
	}
}

// plan is what the report shows of a planner's answer: the plan, when a
// query was built, with its backend named as explain names it, and the
// failure the request would get.
func (e *Explainer) plan(p provider.Plan, err error) (*Plan, string) {
	var out *Plan
	if p.Query != "" {
		p.Backend = e.backendName(p.Backend)
		out = &p
	}
	if err != nil {
		return out, planFailure(err)
	}
	return out, ""
}

// target resolves the request's resource to the catalog key it asks for.
func (e *Explainer) target(req Request) (target, error) {
	gr := schema.ParseGroupResource(req.Resource)
	t := target{nsParam: req.Namespace, name: req.Name}
	if gr.Resource == rules.NamespacesResource.Resource && gr.Group == "" {
		// /namespaces/{ns}/metrics/{metric}: about the namespace itself.
		if t.name == "" || t.name == "*" {
			t.name = req.Namespace
		}
		t.nsParam = ""
	}
	info := cmprovider.CustomMetricInfo{GroupResource: gr, Namespaced: t.nsParam != "", Metric: req.Metric}
	norm, _, err := info.Normalized(e.Mapper)
	if err != nil {
		return t, fmt.Errorf("resource %q: %v", req.Resource, err)
	}
	t.key = catalog.CustomKey{Resource: norm.GroupResource, Namespaced: norm.Namespaced, Metric: req.Metric}
	t.hasKey = true
	return t, nil
}

func reportFor(snap *catalog.Snapshot, path string, i int) *catalog.RuleReport {
	if i < len(snap.Reports) && snap.Reports[i].Path == path {
		return &snap.Reports[i]
	}
	for j := range snap.Reports {
		if snap.Reports[j].Path == path {
			return &snap.Reports[j]
		}
	}
	return nil
}

// served lists the catalog entries of metric, or of every metric if
// metric is empty.
func (e *Explainer) served(snap *catalog.Snapshot, metric string) []Serving {
	out := []Serving{}
	for _, m := range snap.CustomMetrics() {
		if metric != "" && m.Metric != metric {
			continue
		}
		en, _ := snap.Custom(catalog.CustomKey{Resource: m.GroupResource, Namespaced: m.Namespaced, Metric: m.Metric})
		out = append(out, Serving{Metric: m.Metric, API: "custom", Resource: m.GroupResource.String(), Namespaced: m.Namespaced,
			Rule: en.Rule.Path, Series: en.Series, Sharing: CustomSharing(en, m.GroupResource, m.Namespaced, e.Mapper)})
	}
	for _, m := range snap.ExternalMetrics() {
		if metric != "" && m.Metric != metric {
			continue
		}
		if en, ok := snap.ExternalEntry(m.Metric); ok {
			out = append(out, Serving{Metric: m.Metric, API: "external", Rule: en.Rule.Path, Series: en.Series, Sharing: ExternalSharing(en, e.Mapper)})
		}
	}
	return out
}

func scope(namespaced bool) string {
	if namespaced {
		return "namespaced"
	}
	return "cluster-scoped"
}

func keyString(k catalog.CustomKey) string {
	return fmt.Sprintf("%s (%s objects)", k.Resource, scope(k.Namespaced))
}

// customFinding says what rule r does about metric; ok is false when the
// rule has nothing to do with it.
func (e *Explainer) customFinding(snap *catalog.Snapshot, r *rules.Rule, rr *catalog.RuleReport, metric string, tgt target, probes *prober) (RuleFinding, bool) {
	f := RuleFinding{Rule: r.Path, Backend: r.Backend, SeriesQuery: r.SeriesQuery}
	var gives []catalog.CustomKey
	for _, m := range snap.CustomMetrics() {
		k := catalog.CustomKey{Resource: m.GroupResource, Namespaced: m.Namespaced, Metric: m.Metric}
		if en, _ := snap.Custom(k); m.Metric == metric && en.Rule == r {
			gives = append(gives, k)
		}
	}
	if tgt.hasKey {
		f.Serves = slices.Contains(gives, tgt.key)
	} else {
		f.Serves = len(gives) > 0
	}
	if tgt.hasKey && !f.Serves && len(gives) > 0 {
		names := make([]string, len(gives))
		for i, k := range gives {
			names[i] = keyString(k)
		}
		f.Reasons = append(f.Reasons, fmt.Sprintf("discovered on another resource or scope: serves %s for %s, not for %s%s",
			metric, strings.Join(names, ", "), keyString(tgt.key), scopeHint(gives, tgt)))
	}
	if rr != nil {
		for _, o := range rr.Overridden {
			if o.Metric != metric || o.Resource.Resource == "" {
				continue
			}
			k := catalog.CustomKey{Resource: o.Resource, Namespaced: o.Namespaced, Metric: o.Metric}
			if !tgt.hasKey || k == tgt.key {
				f.Reasons = append(f.Reasons, fmt.Sprintf("gives %s for %s, but %s serves it (the last rule naming a metric wins)", metric, keyString(k), o.By))
			}
		}
	}
	var probed []string
	if !f.Serves {
		probed = e.probeReasons(r, metric, probes, func(sh probeShape) string {
			var grs []string
			for _, l := range sh.labels {
				if gr, ok := r.Resources.ResourceForLabel(l, e.Mapper); ok {
					grs = append(grs, gr.String())
				}
			}
			switch {
			case len(grs) == 0:
				return fmt.Sprintf("series %s: no label maps to a Kubernetes resource", sh)
			case tgt.hasKey && !slices.Contains(grs, tgt.key.Resource.String()):
				return fmt.Sprintf("series %s: its labels name %s, not %s", sh, strings.Join(grs, ", "), tgt.key.Resource)
			case len(gives) == 0:
				return fmt.Sprintf("series %s would give %s for %s: it appeared after the discovery of %s", sh, metric, strings.Join(grs, ", "), snap.Time.Format(time.RFC3339))
			}
			return ""
		})
	}
	if rr != nil {
		f.Reasons = append(f.Reasons, ruleReasons(r, rr, metric, f.Serves, probes.found(r), probes.wide)...)
	}
	f.Reasons = dedupe(append(f.Reasons, probed...))
	return f, f.Serves || len(f.Reasons) > 0
}

// scopeHint tells how to ask for a metric discovered in another scope.
func scopeHint(gives []catalog.CustomKey, tgt target) string {
	for _, k := range gives {
		if k.Resource == tgt.key.Resource && k.Namespaced != tgt.key.Namespaced {
			if k.Namespaced {
				return "; ask within a namespace (namespace=)"
			}
			return "; ask without a namespace"
		}
	}
	return ""
}

// externalFinding is customFinding for external rules.
func (e *Explainer) externalFinding(snap *catalog.Snapshot, r *rules.Rule, rr *catalog.RuleReport, metric string, probes *prober) (RuleFinding, bool) {
	f := RuleFinding{Rule: r.Path, Backend: r.Backend, SeriesQuery: r.SeriesQuery}
	if en, ok := snap.ExternalEntry(metric); ok && en.Rule == r {
		f.Serves = true
	}
	if rr != nil {
		for _, o := range rr.Overridden {
			if o.Metric == metric && o.Resource.Resource == "" {
				f.Reasons = append(f.Reasons, fmt.Sprintf("gives external %s, but %s serves it (the last rule naming a metric wins)", metric, o.By))
			}
		}
	}
	var probed []string
	if !f.Serves {
		probed = e.probeReasons(r, metric, probes, func(sh probeShape) string {
			if _, ok := snap.ExternalEntry(metric); !ok {
				return fmt.Sprintf("series %s would give external %s: it appeared after the discovery of %s", sh, metric, snap.Time.Format(time.RFC3339))
			}
			return ""
		})
	}
	if rr != nil {
		f.Reasons = append(f.Reasons, ruleReasons(r, rr, metric, f.Serves, probes.found(r), probes.wide)...)
	}
	f.Reasons = dedupe(append(f.Reasons, probed...))
	return f, f.Serves || len(f.Reasons) > 0
}

// ruleReasons are what the rule's discovery report says about metric: its
// seriesQuery failing, and, with examples, dropped series that would have
// been named metric (from the report's examples), but for series named
// metric itself when probed says Prometheus was asked about them.
func ruleReasons(r *rules.Rule, rr *catalog.RuleReport, metric string, serves, probed, examples bool) []string {
	var out []string
	if rr.Err != "" {
		since := "it never succeeded"
		if !rr.LastSuccess.IsZero() {
			since = "using the series of " + rr.LastSuccess.Format(time.RFC3339)
		}
		out = append(out, fmt.Sprintf("its seriesQuery fails: %s (%s)", discoveryFailure(rr.Err), since))
	}
	if serves || !examples {
		return out
	}
	reasons := make([]string, 0, len(rr.Dropped))
	for reason := range rr.Dropped {
		reasons = append(reasons, reason)
	}
	sort.Strings(reasons)
	for _, reason := range reasons {
		for _, ex := range rr.Examples[reason] {
			name, _, _ := strings.Cut(ex, "{")
			if (name == metric && !probed) || (name != metric && named(r, name) == metric) {
				out = append(out, fmt.Sprintf("series %s dropped: %s", ex, reason))
			}
		}
	}
	return out
}

// named is the metric name the rule gives a series, filters aside; "" if
// none.
func named(r *rules.Rule, series string) string {
	m, err := r.MetricName(series)
	if err != nil {
		return ""
	}
	return m
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	out := s[:0]
	for _, v := range s {
		if v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// probeShape is a probed series: its name and label names.
type probeShape struct {
	name   string
	labels []string
}

func (s probeShape) String() string { return s.name + "{" + strings.Join(s.labels, ",") + "}" }

// probeResult is what Prometheus has for one selector. truncated says
// that recent holds the shapes of the first Explainer.MaxProbeSeries
// series only.
type probeResult struct {
	recent, older []probeShape
	truncated     bool
	err           error
}

// prober asks Prometheus, once per seriesQuery, for the series named like
// the metric: only when on, that is when the report may hold what is
// about every namespace (wide) and there is a backend to ask.
type prober struct {
	ctx      context.Context
	e        *Explainer
	metric   string
	wide, on bool
	done     map[string]*probeResult
	// err is what the report says of the first failure.
	err string
}

func (e *Explainer) prober(ctx context.Context, metric string, wide bool) *prober {
	return &prober{ctx: ctx, e: e, metric: metric, wide: wide, on: wide && e.Backends != nil, done: map[string]*probeResult{}}
}

func (e *Explainer) lookback() time.Duration {
	if e.Lookback > 0 {
		return e.Lookback
	}
	return 24 * time.Hour
}

func (e *Explainer) clock() time.Time {
	if e.now != nil {
		return e.now()
	}
	return time.Now()
}

// probe returns the series seriesQuery matches named p.metric, or nil
// when not on or without a SeriesLister.
func (p *prober) probe(r *rules.Rule) *probeResult {
	if !p.on {
		return nil
	}
	lister := p.e.seriesOf(r.Backend)
	if lister == nil {
		return nil
	}
	seriesQuery := r.SeriesQuery
	if res, ok := p.done[r.Backend+"\x00"+seriesQuery]; ok {
		return res
	}
	res := &probeResult{}
	p.done[r.Backend+"\x00"+seriesQuery] = res
	ms, err := promql.ParseSelector(seriesQuery)
	if err != nil {
		res.err = err
		p.fail(seriesQuery, err.Error())
		return res
	}
	name, err := plabels.NewMatcher(plabels.MatchEqual, model.MetricNameLabel, p.metric)
	if err != nil {
		res.err = err
		p.fail(seriesQuery, err.Error())
		return res
	}
	parts := make([]string, 0, len(ms)+1)
	for _, m := range append(ms, name) {
		parts = append(parts, m.String())
	}
	sel := "{" + strings.Join(parts, ",") + "}"
	now := p.e.clock()
	maxAge := p.e.MaxAge
	if maxAge <= 0 {
		maxAge = 10 * time.Minute
	}
	if res.recent, res.truncated, res.err = p.list(lister, sel, now.Add(-maxAge), now, p.e.maxProbeSeries()); res.err == nil && len(res.recent) == 0 {
		// Whether any series is older than maxAge: the first one tells.
		res.older, _, res.err = p.list(lister, sel, now.Add(-p.e.lookback()), now, 1)
	}
	if res.err != nil {
		klog.ErrorS(res.err, "Explain: asking the backend for series failed", "backend", r.Backend, "seriesQuery", seriesQuery, "kind", prom.KindOf(res.err))
		p.fail(seriesQuery, backendFailure(res.err))
	}
	return res
}

// fail keeps what the report says of the first failure.
func (p *prober) fail(seriesQuery, what string) {
	if p.err == "" {
		p.err = fmt.Sprintf("for seriesQuery %s: %s", seriesQuery, what)
	}
}

// backendFailure is what a caller is told of a backend failure: the
// backend's name, what failed and the kind of failure (prom.Summary). The
// backend's own text, which can name other namespaces' series, goes to
// the log only.
func backendFailure(err error) string {
	if s := prom.Summary(err); s != "" {
		return s
	}
	return fmt.Sprintf("the backend failed: %s", prom.KindOf(err))
}

// planFailure is what a report says of a planner's error: its text, the
// API status the request would get, which names a backend failure by its
// kind only (provider.StatusError); a *prom.Error that is not yet a
// status is told as backendFailure, its text logged.
func planFailure(err error) string {
	if _, ok := errors.AsType[*prom.Error](err); ok {
		klog.ErrorS(err, "Explain: planning a request failed", "kind", prom.KindOf(err))
		return backendFailure(err)
	}
	return err.Error()
}

// discoveryFailure is what a report says of a rule's failed discovery
// (catalog.RuleReport.Err, the text of a *prom.Error): up to the backend's
// name and what failed, without the backend's own text, which the
// discovery logged.
func discoveryFailure(s string) string {
	i := strings.Index(s, "prometheus backend ")
	if i < 0 {
		return s
	}
	j := strings.Index(s[i:], " failed: ")
	if j < 0 {
		return s[:i] + "a prometheus backend failed; its answer is in promgate's log"
	}
	return s[:i+j] + " failed; the backend's answer is in promgate's log"
}

// seriesOf returns the series lister of a backend, or nil.
func (e *Explainer) seriesOf(backend string) catalog.SeriesLister {
	return e.Backends[backend].Series
}

// found reports whether Prometheus was asked about seriesQuery and has
// series named like the metric for it.
func (p *prober) found(r *rules.Rule) bool {
	res := p.done[r.Backend+"\x00"+r.SeriesQuery]
	return res != nil && res.err == nil && len(res.recent)+len(res.older) > 0
}

// list returns the shapes of the first limit series sel matches between
// start and end; truncated is set, and the listing abandoned, when there
// are more.
func (p *prober) list(lister catalog.SeriesLister, sel string, start, end time.Time, limit int) (_ []probeShape, truncated bool, _ error) {
	var out []probeShape
	seen := map[string]bool{}
	ctx, cancel := context.WithCancel(p.ctx)
	defer cancel()
	n := 0
	err := lister.Series(ctx, sel, start, end, func(name string, lbls []prom.Label) {
		if truncated {
			return
		}
		if n == limit {
			truncated = true
			cancel()
			return
		}
		n++
		sh := probeShape{name: name}
		for _, l := range lbls {
			sh.labels = append(sh.labels, l.Name)
		}
		sort.Strings(sh.labels)
		if k := sh.String(); !seen[k] {
			seen[k] = true
			out = append(out, sh)
		}
	})
	if truncated && p.ctx.Err() == nil {
		err = nil // the listing this abandoned
	}
	return out, truncated, err
}

// probeReasons explains, from what Prometheus has now, why the series
// named like the metric do not give it through r; more says what else
// keeps a series that passes the filters and naming from serving.
func (e *Explainer) probeReasons(r *rules.Rule, metric string, p *prober, more func(probeShape) string) []string {
	res := p.probe(r)
	if res == nil || res.err != nil {
		return nil
	}
	if len(res.recent) == 0 && len(res.older) > 0 {
		maxAge := e.MaxAge
		if maxAge <= 0 {
			maxAge = 10 * time.Minute
		}
		return []string{fmt.Sprintf("series %s matched by its seriesQuery have no samples in the last %s (--metrics-max-age), only within %s: too old to be discovered", res.older[0], maxAge, e.lookback())}
	}
	var out []string
	for i, sh := range res.recent {
		if i == maxProbeShapes {
			more := fmt.Sprintf("... and %d more series shapes", len(res.recent)-i)
			if res.truncated {
				more = fmt.Sprintf("... and %d more series shapes among the first %d series (explain reads no more)", len(res.recent)-i, e.maxProbeSeries())
			}
			out = append(out, more)
			break
		}
		if ok, why := r.Keep(sh.name); !ok {
			out = append(out, fmt.Sprintf("series %s: filtered by %s", sh, why))
			continue
		}
		m, err := r.MetricName(sh.name)
		switch {
		case err != nil:
			out = append(out, fmt.Sprintf("series %s: naming: %v", sh, err))
		case m != metric:
			out = append(out, fmt.Sprintf("series %s is named %s by the rule's name.matches/name.as", sh, m))
		default:
			out = append(out, more(sh))
		}
	}
	return out
}

// CustomSharing says whether requests for a custom metric share a query.
func CustomSharing(e catalog.Entry, gr schema.GroupResource, namespaced bool, mapper apimeta.RESTMapper) string {
	rl, err := e.Rule.Resources.LabelForResource(gr, mapper)
	if err != nil {
		return "no label names " + gr.String()
	}
	ns := ""
	if namespaced {
		ns = e.Rule.Resources.NamespaceLabel(mapper)
	}
	return custom.SharingOf(e.Rule.Query, e.Series, rl, ns).String()
}

// ExternalSharing says whether requests for an external metric share a
// query.
func ExternalSharing(e catalog.Entry, mapper apimeta.RESTMapper) string {
	ns := ""
	if e.Rule.Namespaced {
		ns = e.Rule.Resources.NamespaceLabel(mapper)
	}
	s := external.SharingOf(e.Rule.Query, ns)
	if s.OK {
		return s.String()
	}
	return "with a selector on any label, " + s.String()
}

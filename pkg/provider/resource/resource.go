// Package resource implements the data source behind metrics.k8s.io (what
// `kubectl top` and HPA Resource metrics read): the CPU and memory usage of
// pods, per container, and of nodes, answered from Prometheus with the
// queries of the configuration's resourceRules.
//
// The semantics follow metrics-server's: CPU is a rate over the rules'
// window, memory is the working set; a container is reported only with both
// values, a pod only with at least one such container, a node only with
// both values; the pause container is never counted; the timestamp of a pod
// is the earliest of its samples. See docs/resource-metrics.md.
package resource

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/metrics/pkg/apis/metrics"
	metricsapi "sigs.k8s.io/metrics-server/pkg/api"

	"github.com/promgate/promgate/pkg/budget"
	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/promql"
	"github.com/promgate/promgate/pkg/provider"
	"github.com/promgate/promgate/pkg/quantity"
	"github.com/promgate/promgate/pkg/rules"
)

const (
	// DefaultTimeout bounds one GetPodMetrics or GetNodeMetrics call when
	// Options.Timeout is zero.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxNamesInQuery is Options.MaxNamesInQuery when it is zero.
	DefaultMaxNamesInQuery = 100
	// DefaultWindow is the window reported when resourceRules.window is
	// unset and the CPU query has no single range to take it from.
	DefaultWindow = time.Minute
)

// pauseContainer is the name cAdvisor gives the sandbox (pause) container
// under dockershim; containerd and CRI-O report it without a container name.
const pauseContainer = "POD"

var (
	podsResource       = corev1.Resource("pods")
	nodesResource      = corev1.Resource("nodes")
	namespacesResource = corev1.Resource("namespaces")
)

// Options tune a Provider. The zero value gives the defaults.
type Options struct {
	// Timeout bounds each GetPodMetrics and GetNodeMetrics call, both of its
	// queries included: metrics-server's storage calls them without a
	// context. Zero means DefaultTimeout.
	Timeout time.Duration
	// MaxNamesInQuery bounds the names put in one matcher's regular
	// expression alternation. Above it a pod query selects whole namespaces
	// (or every namespace) and a node query every node, and the result is
	// filtered here: `kubectl top pod -A` on 10,000 pods sends a short query
	// rather than a 10,000-name regex. Zero means DefaultMaxNamesInQuery.
	MaxNamesInQuery int
	// Batch makes every pod query select all pods and every node query all
	// nodes, whatever was asked, filtering the result here: all requests
	// (every HPA with a Resource metric, kubectl top) then send the same
	// two queries, which the query engine coalesces and caches.
	Batch bool
	// PartialWindows serves CPU rates computed over windows that samples
	// cover only in part (see provider.CompleteWindows); off by default,
	// as metrics-server reports a pod only once it has two points.
	PartialWindows bool
	// Dialect is the query language of the backend (config.DialectPromQL
	// when empty): with config.DialectMetricsQL, templates that PromQL's
	// parser cannot read are no warning (see promql.NewMetricsQLTemplate).
	Dialect string
	// Budget keeps the guarded queries within the memory budget shared
	// with the query cache; nil keeps nothing.
	Budget *budget.Budget
}

// Provider answers metrics.k8s.io requests from Prometheus. It is safe for
// concurrent use.
type Provider struct {
	cpu, memory *rule
	window      time.Duration
	runner      *provider.Runner
	timeout     time.Duration
	maxNames    int
	batch       bool
	now         func() time.Time
	warnings    throttle
}

var _ metricsapi.MetricsGetter = (*Provider)(nil)

// rule is one compiled resource rule (cpu or memory).
type rule struct {
	path           string // "resourceRules.cpu"
	containerQuery *promql.Template
	nodeQuery      *promql.Template
	namespaceLabel string
	podLabel       string
	containerLabel string
	nodeLabel      string
	// shareContainer and shareNode say whether the queries may be shared
	// by all pods (nodes) and filtered here; otherwise they are sent as
	// prometheus-adapter sends them (pods: one query per namespace).
	shareContainer, shareNode promql.Sharing
	// Warnings are what could not be checked statically.
	Warnings []string
}

// New compiles rules into a Provider that runs its queries through q.
// mapper resolves the resources block's labels to pods, namespaces and
// nodes. Errors name the configuration field at fault, such as
// "resourceRules.cpu.containerQuery".
func New(rr *config.ResourceRules, q provider.Querier, mapper apimeta.RESTMapper, opts Options) (*Provider, error) {
	if rr == nil {
		return nil, config.Fieldf("resourceRules", "is required to serve metrics.k8s.io")
	}
	if q == nil {
		return nil, errors.New("resource metrics: a querier is required")
	}
	if opts.Timeout < 0 {
		return nil, fmt.Errorf("resource metrics: timeout must not be negative, got %v", opts.Timeout)
	}
	if opts.MaxNamesInQuery < 0 {
		return nil, fmt.Errorf("resource metrics: MaxNamesInQuery must not be negative, got %d", opts.MaxNamesInQuery)
	}
	// A rule left out entirely (prometheus-adapter loads such configs) is
	// not served: values then carry only the other resource.
	var cpu, mem *rule
	var cerr, merr error
	if !rr.CPU.IsZero() {
		cpu, cerr = compileRule("resourceRules.cpu", rr.CPU, mapper, opts.Dialect)
	}
	if !rr.Memory.IsZero() {
		mem, merr = compileRule("resourceRules.memory", rr.Memory, mapper, opts.Dialect)
	}
	if err := errors.Join(cerr, merr); err != nil {
		return nil, err
	}
	if cpu == nil && mem == nil {
		return nil, config.Fieldf("resourceRules", "needs a cpu or a memory rule to serve metrics.k8s.io")
	}
	RegisterMetrics()
	p := &Provider{
		cpu:      cpu,
		memory:   mem,
		window:   time.Duration(rr.Window),
		timeout:  opts.Timeout,
		maxNames: opts.MaxNamesInQuery,
		batch:    opts.Batch,
		now:      time.Now,
	}
	p.runner = &provider.Runner{Backends: provider.Single(q), Budget: opts.Budget, PartialWindows: opts.PartialWindows,
		Now: func() time.Time { return p.now() }}
	if p.timeout == 0 {
		p.timeout = DefaultTimeout
	}
	if p.maxNames == 0 {
		p.maxNames = DefaultMaxNamesInQuery
	}
	// The window should be the CPU query's rate range; take it from there
	// when unset, and say so when the two disagree.
	var rng time.Duration
	var ok bool
	if cpu != nil {
		built, err := cpu.containerQuery.Build(cpu.podRequest("default", []string{"p"}))
		if err != nil { // compileRule rendered the same template already
			return nil, config.Fieldf("resourceRules.cpu.containerQuery", "%v", err)
		}
		if built.Expr != nil {
			rng, ok = promql.Window(built.Expr)
		}
	}
	switch {
	case p.window == 0 && ok:
		p.window = rng
	case p.window == 0:
		p.window = DefaultWindow
	case ok && rng != p.window:
		klog.InfoS("resourceRules.window differs from the range of resourceRules.cpu.containerQuery; reporting the configured window",
			"window", p.window, "queryRange", rng)
	}
	return p, nil
}

// Sharing describes, per query field, whether the query is shared by all
// pods (nodes) or sent as prometheus-adapter sends it, and why; for check.
func (p *Provider) Sharing() []string {
	var out []string
	for _, r := range []*rule{p.cpu, p.memory} {
		if r == nil {
			continue
		}
		out = append(out, r.path+".containerQuery: "+r.shareContainer.String(), r.path+".nodeQuery: "+r.shareNode.String())
	}
	return out
}

// Warnings are what could not be checked statically in the rules.
func (p *Provider) Warnings() []string {
	var out []string
	for _, r := range []*rule{p.cpu, p.memory} {
		if r != nil {
			out = append(out, r.Warnings...)
		}
	}
	return out
}

// Window is the window reported with every value.
func (p *Provider) Window() time.Duration { return p.window }

func compileRule(path string, r config.ResourceRule, mapper apimeta.RESTMapper, dialect string) (*rule, error) {
	out := &rule{path: path, containerLabel: r.ContainerLabel}
	var errs []error
	newTemplate := promql.NewTemplate
	if dialect == config.DialectMetricsQL {
		newTemplate = promql.NewMetricsQLTemplate
	}
	compile := func(field, text string) *promql.Template {
		if strings.TrimSpace(text) == "" {
			errs = append(errs, config.Fieldf(path+"."+field, "is required"))
			return nil
		}
		t, warnings, err := newTemplate(text)
		if err != nil {
			errs = append(errs, config.Fieldf(path+"."+field, "%v", err))
		}
		for _, w := range warnings {
			out.Warnings = append(out.Warnings, path+"."+field+": "+w)
		}
		return t
	}
	out.containerQuery = compile("containerQuery", r.ContainerQuery)
	out.nodeQuery = compile("nodeQuery", r.NodeQuery)
	switch {
	case r.ContainerLabel == "":
		errs = append(errs, config.Fieldf(path+".containerLabel", "is required"))
	case !promql.ValidLabelName(r.ContainerLabel):
		errs = append(errs, config.Fieldf(path+".containerLabel", "%q is not a valid Prometheus label name", r.ContainerLabel))
	}
	rm, err := rules.NewResourceMap(path+".resources", r.Resources)
	if err != nil {
		errs = append(errs, err)
	} else {
		label := func(gr fmt.Stringer, l string, err error) string {
			switch {
			case err != nil:
				errs = append(errs, config.Fieldf(path+".resources", "no label names %s: %v", gr, err))
			case !promql.ValidLabelName(l):
				errs = append(errs, config.Fieldf(path+".resources", "label %q for %s is not a valid Prometheus label name", l, gr))
			}
			return l
		}
		l, err := rm.LabelForResource(podsResource, mapper)
		out.podLabel = label(podsResource, l, err)
		l, err = rm.LabelForResource(nodesResource, mapper)
		out.nodeLabel = label(nodesResource, l, err)
		out.namespaceLabel = label(namespacesResource, rm.NamespaceLabel(mapper), nil)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	// Render each query for one request and shared by all now, so that a
	// template that cannot handle one fails at startup, and decide whether
	// each may be shared.
	var err2 error
	out.shareContainer, err2 = out.containerQuery.Sharing(
		out.podRequest("promgate-sample", []string{"sample-a", "sample-b"}),
		promql.Request{Parts: []promql.Part{promql.AnyPart(out.podLabel)}, GroupBy: out.sharedPodGroupBy()})
	if err2 != nil {
		return nil, config.Fieldf(path+".containerQuery", "%v", err2)
	}
	out.shareNode, err2 = out.nodeQuery.Sharing(
		out.nodeRequest([]string{"sample-a", "sample-b"}),
		promql.Request{Parts: []promql.Part{promql.AnyPart(out.nodeLabel)}, GroupBy: []string{out.nodeLabel}})
	if err2 != nil {
		return nil, config.Fieldf(path+".nodeQuery", "%v", err2)
	}
	if !out.shareContainer.OK {
		klog.InfoS("Resource metrics pod query is sent per namespace, as prometheus-adapter does: it cannot be shared by all pods",
			"field", path+".containerQuery", "reason", out.shareContainer.Reason)
	}
	return out, nil
}

// podRequest is what prometheus-adapter renders the container query with
// for pods of one namespace: the namespace and the pods, grouped by pod and
// container.
func (r *rule) podRequest(namespace string, pods []string) promql.Request {
	return promql.Request{
		Parts:   []promql.Part{promql.EqualPart(r.namespaceLabel, namespace), promql.OneOfPart(r.podLabel, pods)},
		GroupBy: []string{r.podLabel, r.containerLabel},
	}
}

// sharedPodGroupBy groups a query over pods of several namespaces.
func (r *rule) sharedPodGroupBy() []string {
	return []string{r.namespaceLabel, r.podLabel, r.containerLabel}
}

// nodeRequest is what prometheus-adapter renders the node query with.
func (r *rule) nodeRequest(nodes []string) promql.Request {
	return promql.Request{Parts: []promql.Part{promql.OneOfPart(r.nodeLabel, nodes)}, GroupBy: []string{r.nodeLabel}}
}

// podKey names a pod; pods are keyed by namespace and name together so that
// same-named pods of different namespaces never mix.
type podKey struct{ namespace, name string }

// GetPodMetrics returns the usage of each given pod that has data, in the
// order given; pods without usable data are left out (the API then answers
// "not found" for a GET and omits them from a LIST). It sends one query per
// resource for all the pods, whatever their namespaces.
func (p *Provider) GetPodMetrics(pods ...*metav1.PartialObjectMetadata) ([]metrics.PodMetrics, error) {
	out := []metrics.PodMetrics{}
	want := make(map[podKey]*metav1.PartialObjectMetadata, len(pods))
	var namespaces, names []string
	for _, pod := range pods {
		if pod == nil {
			continue
		}
		k := podKey{pod.Namespace, pod.Name}
		if _, dup := want[k]; dup {
			continue
		}
		want[k] = pod
		namespaces = append(namespaces, pod.Namespace)
		names = append(names, pod.Name)
	}
	if len(want) == 0 {
		return out, nil
	}
	byNamespace := map[string][]string{}
	for i, ns := range namespaces {
		byNamespace[ns] = append(byNamespace[ns], names[i])
	}
	namespaces, names = distinct(namespaces), distinct(names)

	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	ts := p.now()
	results, err := p.queryBoth(ctx, ts, func(r *rule) ([]job, error) {
		field := r.path + ".containerQuery"
		if r.shareContainer.OK {
			req := promql.Request{Parts: []promql.Part{p.oneOf(r.namespaceLabel, namespaces), p.oneOf(r.podLabel, names)},
				GroupBy: r.sharedPodGroupBy()}
			q, err := r.containerQuery.Build(req)
			return []job{{query: r.query(field, q)}}, err
		}
		// As prometheus-adapter: one query per namespace, whose samples
		// need no namespace label.
		jobs := make([]job, 0, len(byNamespace))
		for _, ns := range namespaces {
			q, err := r.containerQuery.Build(r.podRequest(ns, distinct(byNamespace[ns])))
			if err != nil {
				return nil, err
			}
			jobs = append(jobs, job{query: r.query(field, q), namespace: ns})
		}
		return jobs, nil
	})
	if err != nil {
		return nil, err
	}

	data := make(map[podKey]map[string]*containerData, len(want))
	for i, r := range []*rule{p.cpu, p.memory} {
		if r == nil {
			continue
		}
		unlabeled := 0
		for _, res := range results[i] {
			for _, s := range res.vec {
				ns := res.namespace
				if ns == "" {
					ns = string(s.Metric[model.LabelName(r.namespaceLabel)])
				}
				name := string(s.Metric[model.LabelName(r.podLabel)])
				if ns == "" || name == "" {
					unlabeled++
					continue
				}
				k := podKey{ns, name}
				if _, ok := want[k]; !ok {
					continue // another pod of a namespace-wide query
				}
				c := string(s.Metric[model.LabelName(r.containerLabel)])
				if c == "" || c == pauseContainer {
					continue // the pod cgroup or the pause container, never counted
				}
				cs := data[k]
				if cs == nil {
					cs = map[string]*containerData{}
					data[k] = cs
				}
				cd := cs[c]
				if cd == nil {
					cd = &containerData{}
					cs[c] = cd
				}
				cd.values[i].add(s)
			}
		}
		if unlabeled > 0 {
			p.warnUnlabeled(r.path+".containerQuery", unlabeled, fmt.Sprintf("%s and %s", r.namespaceLabel, r.podLabel),
				"these series cannot be attributed to pods")
		}
	}

	created := metav1.NewTime(ts)
	missing := 0
	for _, pod := range pods {
		if pod == nil {
			continue
		}
		k := podKey{pod.Namespace, pod.Name}
		if want[k] != pod {
			continue // a duplicate in the request
		}
		pm, reason := p.podMetrics(pod, data[k])
		if reason != "" {
			missing++
			klog.V(2).InfoS("No resource metrics for pod", "pod", klog.KRef(pod.Namespace, pod.Name), "reason", reason)
			continue
		}
		pm.CreationTimestamp = created
		out = append(out, pm)
	}
	if missing > 0 {
		missingTotal.WithLabelValues("pod").Add(float64(missing))
	}
	return out, nil
}

// podMetrics builds a pod's metrics from its containers' data, or says why
// it cannot. A container is counted when it has both a CPU and a memory
// value; one with only one of them (a container that started less than two
// samples ago, or stopped within the rate window, or whose value is not
// usable) is skipped, as metrics-server skips a container whose usage it
// cannot compute. A pod with no counted container is left out. See
// docs/resource-metrics.md for why this, rather than leaving out a pod when
// any container lacks a value, is the choice here.
func (p *Provider) podMetrics(pod *metav1.PartialObjectMetadata, cs map[string]*containerData) (metrics.PodMetrics, string) {
	if len(cs) == 0 {
		return metrics.PodMetrics{}, "the queries returned no series for its containers"
	}
	names := make([]string, 0, len(cs))
	for n := range cs {
		names = append(names, n)
	}
	sort.Strings(names)
	pm := metrics.PodMetrics{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, Labels: pod.Labels},
		Window:     metav1.Duration{Duration: p.window},
		Containers: make([]metrics.ContainerMetrics, 0, len(names)),
	}
	var earliest model.Time
	var skipped []string
	for _, n := range names {
		usage, ts, reason := p.usage(&cs[n].values[0], &cs[n].values[1])
		if reason != "" {
			skipped = append(skipped, fmt.Sprintf("container %q: %s", n, reason))
			continue
		}
		pm.Containers = append(pm.Containers, metrics.ContainerMetrics{Name: n, Usage: usage})
		if earliest == 0 || ts < earliest {
			earliest = ts
		}
	}
	if len(pm.Containers) == 0 {
		return metrics.PodMetrics{}, "no container has both values: " + strings.Join(skipped, "; ")
	}
	if len(skipped) > 0 {
		klog.V(2).InfoS("Skipping containers without both resource values", "pod", klog.KRef(pod.Namespace, pod.Name), "containers", skipped)
	}
	pm.Timestamp = metav1.NewTime(earliest.Time())
	return pm, ""
}

// GetNodeMetrics returns the usage of each given node that has both a CPU
// and a memory value, in the order given; nodes without are left out
// (kubectl top node prints <unknown> for them).
func (p *Provider) GetNodeMetrics(nodes ...*corev1.Node) ([]metrics.NodeMetrics, error) {
	out := []metrics.NodeMetrics{}
	want := make(map[string]*corev1.Node, len(nodes))
	var names []string
	for _, n := range nodes {
		if n == nil {
			continue
		}
		if _, dup := want[n.Name]; dup {
			continue
		}
		want[n.Name] = n
		names = append(names, n.Name)
	}
	if len(want) == 0 {
		return out, nil
	}

	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	ts := p.now()
	results, err := p.queryBoth(ctx, ts, func(r *rule) ([]job, error) {
		part := promql.OneOfPart(r.nodeLabel, names)
		if r.shareNode.OK {
			part = p.oneOf(r.nodeLabel, names)
		}
		q, err := r.nodeQuery.Build(promql.Request{Parts: []promql.Part{part}, GroupBy: []string{r.nodeLabel}})
		return []job{{query: r.query(r.path+".nodeQuery", q)}}, err
	})
	if err != nil {
		return nil, err
	}

	data := make(map[string]*containerData, len(want))
	for i, r := range []*rule{p.cpu, p.memory} {
		if r == nil {
			continue
		}
		unlabeled := 0
		for _, res := range results[i] {
			for _, s := range res.vec {
				name := string(s.Metric[model.LabelName(r.nodeLabel)])
				if name == "" {
					unlabeled++
					continue
				}
				if _, ok := want[name]; !ok {
					continue
				}
				d := data[name]
				if d == nil {
					d = &containerData{}
					data[name] = d
				}
				d.values[i].add(s)
			}
		}
		if unlabeled > 0 {
			p.warnUnlabeled(r.path+".nodeQuery", unlabeled, r.nodeLabel,
				"kubectl top node prints <unknown> for nodes whose series lack it; check the scrape config's relabeling and "+r.path+".resources")
		}
	}

	created := metav1.NewTime(ts)
	missing := 0
	for _, n := range nodes {
		if n == nil || want[n.Name] != n {
			continue
		}
		var reason string
		var usage corev1.ResourceList
		var sampleTS model.Time
		if d := data[n.Name]; d == nil {
			reason = fmt.Sprintf("the queries returned no series with %s=%q", p.primary().nodeLabel, n.Name)
		} else {
			usage, sampleTS, reason = p.usage(&d.values[0], &d.values[1])
		}
		if reason != "" {
			missing++
			klog.V(2).InfoS("No resource metrics for node", "node", klog.KRef("", n.Name), "reason", reason)
			continue
		}
		out = append(out, metrics.NodeMetrics{
			ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: n.Labels, CreationTimestamp: created},
			Timestamp:  metav1.NewTime(sampleTS.Time()),
			Window:     metav1.Duration{Duration: p.window},
			Usage:      usage,
		})
	}
	if missing > 0 {
		missingTotal.WithLabelValues("node").Add(float64(missing))
	}
	return out, nil
}

// usage converts a CPU and a memory value into a ResourceList, or says why
// it cannot. It returns the earlier of the two sample timestamps.
func (p *Provider) usage(cpu, mem *value) (corev1.ResourceList, model.Time, string) {
	rl := corev1.ResourceList{}
	for _, x := range []struct {
		v    *value
		name corev1.ResourceName
	}{{cpu, corev1.ResourceCPU}, {mem, corev1.ResourceMemory}} {
		if (x.name == corev1.ResourceCPU && p.cpu == nil) || (x.name == corev1.ResourceMemory && p.memory == nil) {
			continue // not configured
		}
		switch {
		case x.v.bad:
			return nil, 0, fmt.Sprintf("%s value %v is not a finite, non-negative number", x.name, x.v.badValue)
		case x.v.n == 0:
			return nil, 0, fmt.Sprintf("no %s value", x.name)
		}
		v := x.v.sum
		if x.name == corev1.ResourceCPU {
			v = roundCPU(v)
		}
		q, err := quantity.FromFloat(v)
		if err != nil {
			return nil, 0, fmt.Sprintf("%s: %v", x.name, err)
		}
		if x.name == corev1.ResourceMemory {
			q = binarySI(q)
		}
		rl[x.name] = q
	}
	ts := cpu.ts
	if p.cpu == nil || (p.memory != nil && mem.ts < ts) {
		ts = mem.ts
	}
	return rl, ts, ""
}

// primary is the rule whose labels name objects in messages.
func (p *Provider) primary() *rule {
	if p.cpu != nil {
		return p.cpu
	}
	return p.memory
}

// cpuPrecision is the finest CPU step reported, in cores (0.1 millicore).
// A rate computed from scraped counters carries jitter of a few parts in
// 10^5 (scrape timestamps are not exact); kubectl rounds millicores up, so
// unrounded 100.0008m would print as 101m.
const cpuPrecision = 1e-4

// roundCPU rounds cores to cpuPrecision; values too small to round to a
// step are kept, so that a nearly idle container never reads as zero.
func roundCPU(cores float64) float64 {
	r := math.Round(cores/cpuPrecision) * cpuPrecision
	if r == 0 {
		return cores
	}
	return r
}

// binarySI returns q with binary suffixes (20Mi rather than 20971520), as
// metrics-server prints memory. The value is unchanged.
func binarySI(q resource.Quantity) resource.Quantity {
	return *resource.NewDecimalQuantity(*q.AsDec(), resource.BinarySI)
}

// containerData holds a container's (or a node's) CPU and memory values.
type containerData struct {
	values [2]value // cpu, memory
}

// value accumulates the samples for one object and resource. Several
// series for the same object are added up, as `sum by` would, so that a
// query that aggregates less than expected still gives the object's total.
type value struct {
	n        int
	sum      float64
	ts       model.Time // earliest sample
	bad      bool       // some sample was NaN, ±Inf or negative
	badValue float64
}

func (v *value) add(s *model.Sample) {
	f := float64(s.Value)
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
		if !v.bad {
			v.bad, v.badValue = true, f
		}
		return
	}
	v.n++
	v.sum += f
	if v.ts == 0 || s.Timestamp < v.ts {
		v.ts = s.Timestamp
	}
}

// oneOf matches the given values of label, or every value when batching or
// when there are more than MaxNamesInQuery of them (the caller then filters
// the result). Only for queries that may be shared.
func (p *Provider) oneOf(label string, values []string) promql.Part {
	if p.batch || len(values) > p.maxNames {
		return promql.AnyPart(label)
	}
	return promql.OneOfPart(label, values)
}

// job is one query to run; namespace is set when the query selected one
// namespace and its samples belong to it.
type job struct {
	query     provider.Query
	namespace string
}

// query is q of the rule's field, as the provider sends it.
func (r *rule) query(field string, q promql.Query) provider.Query {
	return provider.Query{API: provider.ResourceAPI, Metric: strings.TrimPrefix(r.path, "resourceRules."), Field: field, Query: q}
}

// result is a job's answer.
type result struct {
	namespace string
	vec       model.Vector
}

// queryBoth builds the CPU and memory jobs with build and runs them all
// concurrently. The first failure cancels the others; errors are API
// statuses naming the field whose query failed (and, for backend failures,
// the backend).
func (p *Provider) queryBoth(ctx context.Context, ts time.Time, build func(*rule) ([]job, error)) ([2][]result, error) {
	var out [2][]result
	var mu sync.Mutex
	var first error // the failure that canceled the others
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for i, r := range []*rule{p.cpu, p.memory} {
		if r == nil {
			continue
		}
		jobs, err := build(r)
		if err != nil {
			field := r.path
			if len(jobs) > 0 {
				field = jobs[0].query.Field
			}
			return out, apierrors.NewInternalError(config.Fieldf(field, "%v", err))
		}
		out[i] = make([]result, len(jobs))
		for j, jb := range jobs {
			out[i][j].namespace = jb.namespace
			wg.Add(1)
			go func() {
				defer wg.Done()
				ans, err := p.runner.Run(ctx, jb.query, ts)
				if err != nil {
					mu.Lock()
					if first == nil {
						first = withField(jb.query.Field, err)
					}
					mu.Unlock()
					cancel()
					return
				}
				out[i][j].vec = ans.Vector
			}()
		}
	}
	wg.Wait()
	return out, first
}

// withField converts err into an API status and puts the failing field in
// its message.
func withField(field string, err error) error {
	se := provider.StatusError(err)
	var status *apierrors.StatusError
	if errors.As(se, &status) {
		status.ErrStatus.Message = field + ": " + status.ErrStatus.Message
		return status
	}
	return fmt.Errorf("%s: %w", field, se)
}

// warnUnlabeled reports series that lack the labels naming objects, which
// points at a label mapping or scrape configuration problem. It logs at
// most once a minute per query so that HPA polling does not flood the log.
func (p *Provider) warnUnlabeled(field string, n int, labels, hint string) {
	if !p.warnings.allow(field, p.now()) {
		return
	}
	klog.ErrorS(nil, "Resource metrics query returned series without the labels that name objects; they are ignored",
		"field", field, "series", n, "labels", labels, "hint", hint)
}

// throttle lets an event through at most once a minute per key.
type throttle struct {
	mu   sync.Mutex
	last map[string]time.Time
}

func (t *throttle) allow(key string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.last == nil {
		t.last = map[string]time.Time{}
	}
	if last, ok := t.last[key]; ok && now.Sub(last) < time.Minute {
		return false
	}
	t.last[key] = now
	return true
}

// distinct returns values sorted and de-duplicated.
func distinct(values []string) []string {
	sort.Strings(values)
	out := make([]string, 0, len(values))
	for _, v := range values {
		if len(out) == 0 || v != out[len(out)-1] {
			out = append(out, v)
		}
	}
	return out
}

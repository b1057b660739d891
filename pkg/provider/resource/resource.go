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
	"errors"
	"fmt"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/klog/v2"
	metricsapi "sigs.k8s.io/metrics-server/pkg/api"

	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/promql"
	"github.com/promgate/promgate/pkg/provider"
	"github.com/promgate/promgate/pkg/rules"
)

const (
	// DefaultTimeout bounds one GetPodMetrics or GetNodeMetrics call when
	// Options.Timeout is zero.
	DefaultTimeout = 10 * time.Second
	// DefaultWindow is the window reported when resourceRules.window is
	// unset and the CPU query has no single range to take it from.
	DefaultWindow = time.Minute
)

// pauseContainer is the name cAdvisor gives the sandbox (pause) container
// under dockershim; containerd and CRI-O report it without a container name.
const pauseContainer = "POD"

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
	// rather than a 10,000-name regex. Zero means provider.DefaultMaxNamesInQuery.
	MaxNamesInQuery int
	// Batch makes every pod query select all pods and every node query all
	// nodes, whatever was asked, filtering the result here: all requests
	// (every HPA with a Resource metric, kubectl top) then send the same
	// two queries, which the query engine coalesces and caches.
	Batch bool
	// Demand, with Batch, narrows the shared pod queries to the namespaces
	// and pods that requests asked about lately (see provider.Demand), as
	// the custom metrics' shared queries are: an HPA's Resource metric then
	// costs Prometheus its own pods, not the cluster's (nor those of other
	// clusters sharing the Prometheus). Nil: the whole cluster.
	Demand *provider.Demand
	// Dialect is the query language of the backend (config.DialectPromQL
	// when empty): with config.DialectMetricsQL, templates that PromQL's
	// parser cannot read are no warning (see promql.NewMetricsQLTemplate).
	Dialect string
}

// Provider answers metrics.k8s.io requests from Prometheus. It is safe for
// concurrent use.
type Provider struct {
	cpu, memory *rule
	swap        *rule // optional
	window      time.Duration
	runner      *provider.Runner
	timeout     time.Duration
	maxNames    int
	batch       bool
	demand      *provider.Demand
	// demandKeys name each rule's shared container query in Demand and
	// provider.Narrowed.
	demandKeys map[*rule]string
	backend    string
	warnings   throttle
}

var _ metricsapi.MetricsGetter = (*Provider)(nil)

// New compiles rules into a Provider that sends its queries with run, to
// the backend rr names.
// mapper resolves the resources block's labels to pods, namespaces and
// nodes. Errors name the configuration field at fault, such as
// "resourceRules.cpu.containerQuery".
func New(rr *config.ResourceRules, run *provider.Runner, mapper apimeta.RESTMapper, opts Options) (*Provider, error) {
	if rr == nil {
		return nil, config.Fieldf("resourceRules", "is required to serve metrics.k8s.io")
	}
	if run == nil {
		return nil, errors.New("resource metrics: a runner is required")
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
		cpu, cerr = rules.CompileResourceRule("resourceRules.cpu", rr.CPU, mapper, opts.Dialect)
	}
	if !rr.Memory.IsZero() {
		mem, merr = rules.CompileResourceRule("resourceRules.memory", rr.Memory, mapper, opts.Dialect)
	}
	var swap *rule
	var serr error
	if !rr.Swap.IsZero() {
		swap, serr = rules.CompileResourceRule("resourceRules.swap", rr.Swap, mapper, opts.Dialect)
	}
	if err := errors.Join(cerr, merr, serr); err != nil {
		return nil, err
	}
	if cpu == nil && mem == nil {
		return nil, config.Fieldf("resourceRules", "needs a cpu or a memory rule to serve metrics.k8s.io")
	}
	p := &Provider{
		cpu:      cpu,
		swap:     swap,
		memory:   mem,
		timeout:  opts.Timeout,
		maxNames: opts.MaxNamesInQuery,
		batch:    opts.Batch,
		demand:   opts.Demand,
		runner:   run,
		backend:  rr.Backend,
	}
	if p.backend == "" {
		p.backend = config.DefaultBackend
	}
	p.demandKeys = map[*rule]string{}
	for _, r := range []*rule{cpu, mem, swap} {
		if r != nil {
			p.demandKeys[r] = "resource\x00" + r.Path + ".containerQuery"
		}
	}
	if p.timeout == 0 {
		p.timeout = DefaultTimeout
	}
	if p.maxNames == 0 {
		p.maxNames = provider.DefaultMaxNamesInQuery
	}
	var err error
	if p.window, err = window(time.Duration(rr.Window), cpu); err != nil {
		return nil, err
	}
	return p, nil
}

// window is the window reported with values: the configured one, or, when
// unset, the range of the CPU query's rate (DefaultWindow when it has no
// single range). A configured window that differs from the range is said
// in the log.
func window(configured time.Duration, cpu *rule) (time.Duration, error) {
	var rng time.Duration
	var ok bool
	if cpu != nil {
		built, err := cpu.ContainerQuery.Build(cpu.PodRequest("default", []string{"p"}))
		if err != nil { // compileRule rendered the same template already
			return 0, config.Fieldf("resourceRules.cpu.containerQuery", "%v", err)
		}
		if built.Expr != nil {
			rng, ok = promql.Window(built.Expr)
		}
	}
	switch {
	case configured == 0 && ok:
		return rng, nil
	case configured == 0:
		return DefaultWindow, nil
	case ok && rng != configured:
		klog.InfoS("resourceRules.window differs from the range of resourceRules.cpu.containerQuery; reporting the configured window",
			"window", configured, "queryRange", rng)
	}
	return configured, nil
}

// Sharing describes, per query field, whether the query is shared by all
// pods (nodes) or sent as prometheus-adapter sends it, and why; for check.
func (p *Provider) Sharing() []string {
	var out []string
	for _, r := range p.rules() {
		if r == nil {
			continue
		}
		out = append(out, r.Path+".containerQuery: "+r.ShareContainer.String(), r.Path+".nodeQuery: "+r.ShareNode.String())
	}
	return out
}

// Warnings are what could not be checked statically in the rules.
func (p *Provider) Warnings() []string {
	var out []string
	for _, r := range p.rules() {
		if r != nil {
			out = append(out, r.Warnings...)
		}
	}
	return out
}

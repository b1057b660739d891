// Package fakeprom is a fake Prometheus for promgate's whole-system
// benchmark. It speaks the real HTTP API (/api/v1/query as GET or POST form,
// /api/v1/series streamed) over a synthetic, deterministic series set: N
// namespaces × M pods with their containers, nodes, request counters,
// per-pod application counters and queue gauges. It evaluates just enough
// PromQL to answer promgate's queries correctly (one vector selector,
// optionally under rate/irate/increase, optionally under one aggregation),
// adds a configurable latency to every query, and counts the queries it
// received so that a harness can report Prometheus queries per poll cycle.
//
// Under the path prefix /disco/<N>/ it serves instead a discovery universe of
// N series (broad `*_total` counters with nine labels), streamed without
// ever holding them in memory, for the discovery benchmark.
package fakeprom

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Names shared with the harness, which creates the matching Kubernetes
// objects.
const (
	// AppLabelValues is how many distinct values the pods' app label (and the
	// http_requests_total service label) takes per namespace: pod j has
	// app=app-<j mod AppLabelValues>.
	AppLabelValues = 20
)

// PodName returns the name of pod j of a namespace.
func PodName(j int) string { return "pod-" + strconv.Itoa(j) }

// AppName returns the app label of pod j.
func AppName(j int) string { return "app-" + strconv.Itoa(j%AppLabelValues) }

// NodeName returns the name of node i (kwok's fake nodes of the e2e world).
func NodeName(i int) string { return "kwok-node-" + strconv.Itoa(i) }

// QueueName returns the name of queue q of a namespace.
func QueueName(q int) string { return "q-" + strconv.Itoa(q) }

// QueueMetrics are the gauges published per namespace and queue; promgate's
// default external rule serves every queue_* gauge.
var QueueMetrics = []string{
	"queue_messages_ready",
	"queue_messages_unacked",
	"queue_consumers",
	"queue_oldest_message_age_seconds",
}

// AppMetricName returns the name of per-pod application counter m; the
// default config's generic rule serves it as app_metric_<m>_per_second.
func AppMetricName(m int) string { return "app_metric_" + strconv.Itoa(m) + "_total" }

// NamespaceSpec is one namespace of a Layout and its number of pods.
type NamespaceSpec struct {
	Name string
	Pods int
}

// Layout is the cluster the series describe, namespace by namespace.
type Layout []NamespaceSpec

// ParseLayout parses a comma-separated list of NAME=PODS items where NAME may
// hold one range "[FROM-TO]", e.g. "ns-[0-9]=300,ns-[10-49]=20" (ns-0..ns-9
// with 300 pods each, ns-10..ns-49 with 20). A later item for the same
// namespace replaces the earlier one's pod count.
func ParseLayout(spec string) (Layout, error) {
	var out Layout
	index := map[string]int{}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, count, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("layout item %q: want NAME=PODS", item)
		}
		pods, err := strconv.Atoi(count)
		if err != nil || pods < 0 {
			return nil, fmt.Errorf("layout item %q: pods must be a non-negative integer", item)
		}
		names, err := expandRange(name)
		if err != nil {
			return nil, fmt.Errorf("layout item %q: %w", item, err)
		}
		for _, n := range names {
			if i, dup := index[n]; dup {
				out[i].Pods = pods
				continue
			}
			index[n] = len(out)
			out = append(out, NamespaceSpec{Name: n, Pods: pods})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("layout %q has no namespace", spec)
	}
	return out, nil
}

func expandRange(name string) ([]string, error) {
	open := strings.IndexByte(name, '[')
	if open < 0 {
		if name == "" {
			return nil, fmt.Errorf("empty namespace name")
		}
		return []string{name}, nil
	}
	end := strings.IndexByte(name[open:], ']')
	if end < 0 {
		return nil, fmt.Errorf("unclosed range in %q", name)
	}
	end += open
	lo, hi, ok := strings.Cut(name[open+1:end], "-")
	from, err1 := strconv.Atoi(lo)
	to, err2 := strconv.Atoi(hi)
	if !ok || err1 != nil || err2 != nil || from < 0 || to < from || to-from > 100000 {
		return nil, fmt.Errorf("bad range %q: want [FROM-TO]", name[open:end+1])
	}
	out := make([]string, 0, to-from+1)
	for i := from; i <= to; i++ {
		out = append(out, name[:open]+strconv.Itoa(i)+name[end+1:])
	}
	return out, nil
}

// String renders the layout compactly (one item per namespace).
func (l Layout) String() string {
	parts := make([]string, len(l))
	for i, ns := range l {
		parts[i] = ns.Name + "=" + strconv.Itoa(ns.Pods)
	}
	return strings.Join(parts, ",")
}

// Pods returns the total number of pods.
func (l Layout) Pods() int {
	n := 0
	for _, ns := range l {
		n += ns.Pods
	}
	return n
}

// Options shape a Model beyond its Layout.
type Options struct {
	// Nodes is the number of nodes (kwok-node-0..); pod g (counted across
	// namespaces in layout order) runs on node g mod Nodes. Default 3.
	Nodes int
	// Containers per pod, c-0..; each pod also has the pause container
	// (container="POD") and a pod-level cgroup (no container label), as
	// cAdvisor reports them. Default 1.
	Containers int
	// AppMetrics is the number of app_metric_<m>_total counters per pod.
	// Default 12.
	AppMetrics int
	// Queues per namespace for each of QueueMetrics. Default 20.
	Queues int
}

func (o *Options) defaults() {
	if o.Nodes <= 0 {
		o.Nodes = 3
	}
	if o.Containers <= 0 {
		o.Containers = 1
	}
	if o.AppMetrics < 0 {
		o.AppMetrics = 0
	} else if o.AppMetrics == 0 {
		o.AppMetrics = 12
	}
	if o.Queues <= 0 {
		o.Queues = 20
	}
}

// Label is one label of a series.
type Label struct{ Name, Value string }

// family is a set of series sharing a metric name. each calls fn for every
// series whose namespace passes nsOK (namespace-less series always are
// visited), with its labels sorted by name (without __name__) and its
// value, until fn returns false. The labels slice is reused between calls.
type family interface {
	name() string
	counter() bool
	each(nsOK func(string) bool, fn func(lbls []Label, v float64) bool) bool
}

// Model is an immutable synthetic series set. It is safe for concurrent use.
type Model struct {
	layout   Layout
	opts     Options
	ns       []nsInfo
	nodes    []string
	families []family
	series   int
}

type nsInfo struct {
	name  string
	index int      // position in the layout
	first int      // global index of its pod 0
	pods  []string // pod names
	apps  []string // app label per pod
}

// NewModel builds the series set of layout.
func NewModel(layout Layout, opts Options) *Model {
	opts.defaults()
	m := &Model{layout: layout, opts: opts}
	g := 0
	for i, ns := range layout {
		info := nsInfo{name: ns.Name, index: i, first: g, pods: make([]string, ns.Pods), apps: make([]string, ns.Pods)}
		for j := range ns.Pods {
			info.pods[j] = PodName(j)
			info.apps[j] = AppName(j)
		}
		g += ns.Pods
		m.ns = append(m.ns, info)
	}
	for i := range opts.Nodes {
		m.nodes = append(m.nodes, NodeName(i))
	}
	m.families = append(m.families, &httpFamily{m: m})
	for k := range opts.AppMetrics {
		m.families = append(m.families, &appFamily{m: m, idx: k, metric: AppMetricName(k)})
	}
	m.families = append(m.families,
		&containerFamily{m: m, metric: "container_cpu_usage_seconds_total", cpu: true},
		&containerFamily{m: m, metric: "container_memory_working_set_bytes"})
	for k, q := range QueueMetrics {
		m.families = append(m.families, &queueFamily{m: m, idx: k, metric: q})
	}
	sort.Slice(m.families, func(i, j int) bool { return m.families[i].name() < m.families[j].name() })
	pods := layout.Pods()
	perPod := 2 + opts.AppMetrics + 2*(opts.Containers+2)
	m.series = pods*perPod + 2*opts.Nodes + len(layout)*opts.Queues*len(QueueMetrics)
	return m
}

// Layout returns the model's layout.
func (m *Model) Layout() Layout { return m.layout }

// Options returns the model's options, defaults filled in.
func (m *Model) Options() Options { return m.opts }

// Series returns the number of series in the model.
func (m *Model) Series() int { return m.series }

func (m *Model) familyList() []family { return m.families }

func (m *Model) node(g int) string { return m.nodes[g%len(m.nodes)] }

// Expected values, shared with the tests and the harness's checks.

// PodRPS is the request rate of the pod with global index g:
// rate(http_requests_total) summed over codes.
func PodRPS(g int) float64 { return 10 + float64(g%10) }

// AppRate is rate(app_metric_<k>_total) of the pod with global index g.
func AppRate(k, g int) float64 { return float64(k+1) + float64(g%10)/10 }

// ContainerCPU is the CPU usage, in cores, of each regular container of the
// pod with global index g.
func ContainerCPU(g int) float64 { return 0.1 + float64(g%10)/100 }

// ContainerMemory is the working set, in bytes, of each regular container of
// the pod with global index g.
func ContainerMemory(g int) float64 { return float64((64 + g%8) << 20) }

// Pause container usage.
const (
	pauseCPU    = 0.005
	pauseMemory = 1 << 20
)

// NodeCPU and NodeMemory are the root cgroup's usage of node i.
func NodeCPU(i int) float64 { return 1.5 + float64(i%4)/4 }

// NodeMemory is the root cgroup's working set of node i.
func NodeMemory(i int) float64 { return float64((4096 + i%16) << 20) }

// QueueValue is the value of queue gauge k for queue q in the namespace at
// position n of the layout.
func QueueValue(k, n, q int) float64 { return float64(100*(k+1) + 10*q + n%10) }

// counterAge turns a rate into a counter value: the counters have been
// counting at that rate for this long.
const counterAge = 3600

// httpFamily: http_requests_total{code, namespace, pod, service}, two codes
// per pod; 90% of a pod's requests are 200s, 10% 500s.
type httpFamily struct{ m *Model }

func (f *httpFamily) name() string  { return "http_requests_total" }
func (f *httpFamily) counter() bool { return true }
func (f *httpFamily) each(nsOK func(string) bool, fn func([]Label, float64) bool) bool {
	lbls := make([]Label, 4)
	lbls[0].Name, lbls[1].Name, lbls[2].Name, lbls[3].Name = "code", "namespace", "pod", "service"
	for _, ns := range f.m.ns {
		if !nsOK(ns.name) {
			continue
		}
		lbls[1].Value = ns.name
		for j, pod := range ns.pods {
			lbls[2].Value, lbls[3].Value = pod, ns.apps[j]
			rps := PodRPS(ns.first + j)
			lbls[0].Value = "200"
			if !fn(lbls, rps*0.9) {
				return false
			}
			lbls[0].Value = "500"
			if !fn(lbls, rps*0.1) {
				return false
			}
		}
	}
	return true
}

// appFamily: app_metric_<k>_total{job, namespace, pod}.
type appFamily struct {
	m      *Model
	idx    int
	metric string
}

func (f *appFamily) name() string  { return f.metric }
func (f *appFamily) counter() bool { return true }
func (f *appFamily) each(nsOK func(string) bool, fn func([]Label, float64) bool) bool {
	lbls := []Label{{Name: "job", Value: "app"}, {Name: "namespace"}, {Name: "pod"}}
	for _, ns := range f.m.ns {
		if !nsOK(ns.name) {
			continue
		}
		lbls[1].Value = ns.name
		for j, pod := range ns.pods {
			lbls[2].Value = pod
			if !fn(lbls, AppRate(f.idx, ns.first+j)) {
				return false
			}
		}
	}
	return true
}

// containerFamily: cAdvisor's container_cpu_usage_seconds_total or
// container_memory_working_set_bytes{container, id, namespace, node, pod}
// per container, pause container and pod cgroup, plus each node's root
// cgroup {id="/", node}.
type containerFamily struct {
	m      *Model
	metric string
	cpu    bool
}

func (f *containerFamily) name() string  { return f.metric }
func (f *containerFamily) counter() bool { return f.cpu }
func (f *containerFamily) each(nsOK func(string) bool, fn func([]Label, float64) bool) bool {
	containers := make([]string, f.m.opts.Containers)
	for c := range containers {
		containers[c] = "c-" + strconv.Itoa(c)
	}
	full := make([]Label, 5)
	full[0].Name, full[1].Name, full[2].Name, full[3].Name, full[4].Name = "container", "id", "namespace", "node", "pod"
	podLevel := make([]Label, 4)
	podLevel[0].Name, podLevel[1].Name, podLevel[2].Name, podLevel[3].Name = "id", "namespace", "node", "pod"
	var idBuf []byte
	for _, ns := range f.m.ns {
		if !nsOK(ns.name) {
			continue
		}
		full[2].Value, podLevel[1].Value = ns.name, ns.name
		for j, pod := range ns.pods {
			g := ns.first + j
			node := f.m.node(g)
			cgroup := "/kubepods/burstable/pod-" + ns.name + "-" + pod
			full[3].Value, full[4].Value = node, pod
			var usage, sum float64
			if f.cpu {
				usage = ContainerCPU(g)
			} else {
				usage = ContainerMemory(g)
			}
			for _, c := range containers {
				idBuf = append(append(append(idBuf[:0], cgroup...), '/'), c...)
				full[0].Value, full[1].Value = c, string(idBuf)
				if !fn(full, usage) {
					return false
				}
				sum += usage
			}
			pause := float64(pauseMemory)
			if f.cpu {
				pause = pauseCPU
			}
			full[0].Value, full[1].Value = "POD", cgroup+"/pause"
			if !fn(full, pause) {
				return false
			}
			sum += pause
			podLevel[0].Value, podLevel[2].Value, podLevel[3].Value = cgroup, node, pod
			if !fn(podLevel, sum) {
				return false
			}
		}
	}
	root := []Label{{Name: "id", Value: "/"}, {Name: "node"}}
	for i, node := range f.m.nodes {
		root[1].Value = node
		v := NodeMemory(i)
		if f.cpu {
			v = NodeCPU(i)
		}
		if !fn(root, v) {
			return false
		}
	}
	return true
}

// queueFamily: queue gauges {namespace, queue}.
type queueFamily struct {
	m      *Model
	idx    int
	metric string
}

func (f *queueFamily) name() string  { return f.metric }
func (f *queueFamily) counter() bool { return false }
func (f *queueFamily) each(nsOK func(string) bool, fn func([]Label, float64) bool) bool {
	lbls := []Label{{Name: "namespace"}, {Name: "queue"}}
	queues := make([]string, f.m.opts.Queues)
	for q := range queues {
		queues[q] = QueueName(q)
	}
	for _, ns := range f.m.ns {
		if !nsOK(ns.name) {
			continue
		}
		lbls[0].Value = ns.name
		for q, queue := range queues {
			lbls[1].Value = queue
			if !fn(lbls, QueueValue(f.idx, ns.index, q)) {
				return false
			}
		}
	}
	return true
}

package workload

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metric names, as the kubelet's cAdvisor and typical applications name them.
const (
	MetricHTTPRequests     = "http_requests_total"
	MetricCPUUsage         = "container_cpu_usage_seconds_total"
	MetricMemoryWorkingSet = "container_memory_working_set_bytes"
	MetricMemoryUsage      = "container_memory_usage_bytes"
	MetricMemorySwap       = "container_memory_swap"
	MetricQueueMessages    = "queue_messages_ready"
	// MetricIngressRequests is ingress-nginx's request counter, per
	// Service of the requests.
	MetricIngressRequests = "nginx_ingress_controller_requests"
)

// cadvisorLabels are the labels of every cAdvisor-shaped series, in the order
// of the values Collector passes.
var cadvisorLabels = []string{"container", "id", "image", "name", "namespace", "node", "pod"}

// Help texts; the cAdvisor ones are cAdvisor's.
const (
	helpHTTP       = "Total number of HTTP requests served (synthetic; rate from e2e.promgate.io/rps and error-ratio)."
	helpCPU        = "Cumulative cpu time consumed in seconds."
	helpWorkingSet = "Current working set in bytes."
	helpUsage      = "Current memory usage in bytes, including all memory regardless of when it was accessed"
	helpSwap       = "Container swap usage in bytes."
	helpQueue      = "Messages ready in a queue (synthetic; set through /control/queue)."
	helpIngress    = "The total number of client requests (synthetic, per Service; set through /control/ingress)."
)

var (
	descHTTP       = prometheus.NewDesc(MetricHTTPRequests, helpHTTP, []string{"namespace", "pod", "service", "code"}, nil)
	descCPU        = prometheus.NewDesc(MetricCPUUsage, helpCPU, cadvisorLabels, nil)
	descWorkingSet = prometheus.NewDesc(MetricMemoryWorkingSet, helpWorkingSet, cadvisorLabels, nil)
	descUsage      = prometheus.NewDesc(MetricMemoryUsage, helpUsage, cadvisorLabels, nil)
	descSwap       = prometheus.NewDesc(MetricMemorySwap, helpSwap, cadvisorLabels, nil)
	descQueue      = prometheus.NewDesc(MetricQueueMessages, helpQueue, []string{"namespace", "queue"}, nil)
	descIngress    = prometheus.NewDesc(MetricIngressRequests, helpIngress, []string{"ingress", "namespace", "service", "status"}, nil)
)

// Collector publishes a Model's state as const metrics computed at scrape
// time, so counters are read at the instant of the scrape.
type Collector struct {
	model *Model
}

// NewCollector returns a Collector of m.
func NewCollector(m *Model) *Collector { return &Collector{model: m} }

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHTTP, descCPU, descWorkingSet, descUsage, descSwap, descQueue, descIngress} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.model.Snapshot(Filter{})
	for _, p := range s.Pods {
		ch <- prometheus.MustNewConstMetric(descHTTP, prometheus.CounterValue, p.Requests200, p.Namespace, p.Name, p.App, "200")
		ch <- prometheus.MustNewConstMetric(descHTTP, prometheus.CounterValue, p.Requests500, p.Namespace, p.Name, p.App, "500")
		emitCgroup(ch, p.Cgroup, p.Namespace, p.Node, p.Name)
		for _, cs := range p.Containers {
			emitCgroup(ch, cs, p.Namespace, p.Node, p.Name)
		}
	}
	for _, n := range s.Nodes {
		emitCgroup(ch, n.Cgroup, "", n.Name, "")
	}
	for _, q := range s.Queues {
		ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, q.Value, q.Namespace, q.Queue)
	}
	for _, in := range s.Ingress {
		ch <- prometheus.MustNewConstMetric(descIngress, prometheus.CounterValue, in.Requests, in.Service, in.Namespace, in.Service, "200")
	}
}

// emitCgroup sends the cAdvisor series of one cgroup unless hidden: CPU,
// working set, usage, and swap where the cgroup has it.
func emitCgroup(ch chan<- prometheus.Metric, cs CgroupSnapshot, namespace, node, pod string) {
	if cs.Hidden {
		return
	}
	lv := []string{cs.Container, cs.ID, cs.Image, cs.Name, namespace, node, pod}
	ch <- prometheus.MustNewConstMetric(descCPU, prometheus.CounterValue, cs.CPUSeconds, lv...)
	ch <- prometheus.MustNewConstMetric(descWorkingSet, prometheus.GaugeValue, float64(cs.MemoryWorkingSetBytes), lv...)
	ch <- prometheus.MustNewConstMetric(descUsage, prometheus.GaugeValue, float64(cs.MemoryUsageBytes), lv...)
	if cs.SwapBytes != nil {
		ch <- prometheus.MustNewConstMetric(descSwap, prometheus.GaugeValue, float64(*cs.SwapBytes), lv...)
	}
}

// NewRegistry returns a registry holding only a Collector of m (no Go or
// process metrics, so every series on /metrics is part of the workload).
func NewRegistry(m *Model) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(m))
	return reg
}

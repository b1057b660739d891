package workload

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Gatherer returns a prometheus.Gatherer publishing the same series as a
// registry holding NewCollector(m), built straight into metric families from
// one Snapshot: metrics come in snapshot order (pods by namespace and name,
// then nodes), label pairs are shared between the series of one cgroup, and
// the registry's per-scrape sorting and consistency checks are skipped. It is
// what /metrics serves: with thousands of pods scraped every second that
// matters (see BenchmarkGather). TestGathererMatchesCollector keeps the two
// equivalent.
func Gatherer(m *Model) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		return gather(m.Snapshot(Filter{})), nil
	})
}

// gather converts a snapshot into metric families.
func gather(s Snapshot) []*dto.MetricFamily {
	var (
		counter = dto.MetricType_COUNTER
		gauge   = dto.MetricType_GAUGE
	)
	family := func(name, help string, typ *dto.MetricType, n int) *dto.MetricFamily {
		return &dto.MetricFamily{Name: &name, Help: &help, Type: typ, Metric: make([]*dto.Metric, 0, n)}
	}
	ncg := len(s.Nodes)
	for _, p := range s.Pods {
		ncg += len(p.Containers) + 1
	}
	httpF := family(MetricHTTPRequests, helpHTTP, &counter, 2*len(s.Pods))
	cpuF := family(MetricCPUUsage, helpCPU, &counter, ncg)
	wsF := family(MetricMemoryWorkingSet, helpWorkingSet, &gauge, ncg)
	usageF := family(MetricMemoryUsage, helpUsage, &gauge, ncg)
	swapF := family(MetricMemorySwap, helpSwap, &gauge, 0)
	queueF := family(MetricQueueMessages, helpQueue, &gauge, len(s.Queues))
	ingressF := family(MetricIngressRequests, helpIngress, &counter, len(s.Ingress))

	pairs := labelPairs{}
	cgroup := func(cs CgroupSnapshot, ns, node, pod *dto.LabelPair) {
		if cs.Hidden {
			return
		}
		// Label names in sorted order, as the registry would emit them.
		labels := []*dto.LabelPair{
			pairs.get("container", cs.Container), pairs.get("id", cs.ID),
			pairs.get("image", cs.Image), pairs.get("name", cs.Name),
			ns, node, pod,
		}
		cpuF.Metric = append(cpuF.Metric, &dto.Metric{Label: labels, Counter: &dto.Counter{Value: f64(cs.CPUSeconds)}})
		wsF.Metric = append(wsF.Metric, &dto.Metric{Label: labels, Gauge: &dto.Gauge{Value: f64(float64(cs.MemoryWorkingSetBytes))}})
		usageF.Metric = append(usageF.Metric, &dto.Metric{Label: labels, Gauge: &dto.Gauge{Value: f64(float64(cs.MemoryUsageBytes))}})
		if cs.SwapBytes != nil {
			swapF.Metric = append(swapF.Metric, &dto.Metric{Label: labels, Gauge: &dto.Gauge{Value: f64(float64(*cs.SwapBytes))}})
		}
	}
	code200, code500 := pairs.get("code", "200"), pairs.get("code", "500")
	for _, p := range s.Pods {
		ns, node, pod := pairs.get("namespace", p.Namespace), pairs.get("node", p.Node), pairs.get("pod", p.Name)
		svc := pairs.get("service", p.App)
		httpF.Metric = append(httpF.Metric,
			&dto.Metric{Label: []*dto.LabelPair{code200, ns, pod, svc}, Counter: &dto.Counter{Value: f64(p.Requests200)}},
			&dto.Metric{Label: []*dto.LabelPair{code500, ns, pod, svc}, Counter: &dto.Counter{Value: f64(p.Requests500)}},
		)
		cgroup(p.Cgroup, ns, node, pod)
		for _, c := range p.Containers {
			cgroup(c, ns, node, pod)
		}
	}
	noNS, noPod := pairs.get("namespace", ""), pairs.get("pod", "")
	for _, n := range s.Nodes {
		cgroup(n.Cgroup, noNS, pairs.get("node", n.Name), noPod)
	}
	for _, q := range s.Queues {
		queueF.Metric = append(queueF.Metric, &dto.Metric{
			Label: []*dto.LabelPair{pairs.get("namespace", q.Namespace), pairs.get("queue", q.Queue)},
			Gauge: &dto.Gauge{Value: f64(q.Value)},
		})
	}
	status200 := pairs.get("status", "200")
	for _, in := range s.Ingress {
		svc := pairs.get("service", in.Service)
		ingressF.Metric = append(ingressF.Metric, &dto.Metric{
			Label:   []*dto.LabelPair{pairs.get("ingress", in.Service), pairs.get("namespace", in.Namespace), svc, status200},
			Counter: &dto.Counter{Value: f64(in.Requests)},
		})
	}
	// Families sorted by name; empty ones left out, as a registry does.
	var out []*dto.MetricFamily
	for _, f := range []*dto.MetricFamily{cpuF, swapF, usageF, wsF, httpF, ingressF, queueF} {
		if len(f.Metric) > 0 {
			out = append(out, f)
		}
	}
	return out
}

// labelPairs interns label pairs for one scrape, so series that share a label
// (all of a pod's cgroups, for instance) share one pair.
type labelPairs map[[2]string]*dto.LabelPair

func (l labelPairs) get(name, value string) *dto.LabelPair {
	k := [2]string{name, value}
	if p, ok := l[k]; ok {
		return p
	}
	p := &dto.LabelPair{Name: &name, Value: &value}
	l[k] = p
	return p
}

func f64(v float64) *float64 { return &v }

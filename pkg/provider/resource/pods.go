package resource

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/metrics/pkg/apis/metrics"

	"github.com/promgate/promgate/pkg/promql"
	"github.com/promgate/promgate/pkg/provider"
)

// podKey names a pod; pods are keyed by namespace and name together so that
// same-named pods of different namespaces never mix.
type podKey struct{ namespace, name string }

// podSet is the distinct pods of a request.
type podSet struct {
	want        map[podKey]*metav1.PartialObjectMetadata
	byNamespace map[string][]string
	// namespaces and names are the distinct namespaces and names, sorted.
	namespaces, names []string
}

// podsOf returns the distinct pods among pods (nil entries left out).
func podsOf(pods []*metav1.PartialObjectMetadata) podSet {
	set := podSet{want: make(map[podKey]*metav1.PartialObjectMetadata, len(pods)), byNamespace: map[string][]string{}}
	for _, pod := range pods {
		if pod == nil {
			continue
		}
		k := podKey{pod.Namespace, pod.Name}
		if _, dup := set.want[k]; dup {
			continue
		}
		set.want[k] = pod
		set.byNamespace[pod.Namespace] = append(set.byNamespace[pod.Namespace], pod.Name)
		set.namespaces = append(set.namespaces, pod.Namespace)
		set.names = append(set.names, pod.Name)
	}
	set.namespaces, set.names = distinct(set.namespaces), distinct(set.names)
	return set
}

// GetPodMetrics returns the usage of each given pod that has data, in the
// order given; pods without usable data are left out (the API then answers
// "not found" for a GET and omits them from a LIST). It sends one query per
// resource for all the pods, whatever their namespaces.
func (p *Provider) GetPodMetrics(pods ...*metav1.PartialObjectMetadata) ([]metrics.PodMetrics, error) {
	out := []metrics.PodMetrics{}
	set := podsOf(pods)
	if len(set.want) == 0 {
		return out, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	ts := p.runner.Clock()
	results, err := p.queryAll(ctx, ts, func(r *rule) ([]job, error) { return p.podJobs(r, set) })
	if err != nil {
		return nil, err
	}
	data := p.podData(results, set)

	created := metav1.NewTime(ts)
	missing := 0
	for _, pod := range pods {
		if pod == nil || set.want[podKey{pod.Namespace, pod.Name}] != pod {
			continue // nil, or a duplicate in the request
		}
		pm, reason := p.podMetrics(pod, data[podKey{pod.Namespace, pod.Name}])
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

// podJobs are the container queries of r for the pods: one shared query,
// or, as prometheus-adapter sends them, one per namespace, whose samples
// need no namespace label.
func (p *Provider) podJobs(r *rule, set podSet) ([]job, error) {
	field := r.Path + ".containerQuery"
	if r.ShareContainer.OK {
		q, family, err := p.sharedPodQuery(r, set)
		jq := queryOf(r, field, q)
		jq.Family = family
		return []job{{query: jq}}, err
	}
	jobs := make([]job, 0, len(set.byNamespace))
	for _, ns := range set.namespaces {
		q, err := r.ContainerQuery.Build(r.PodRequest(ns, distinct(set.byNamespace[ns])))
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, job{query: queryOf(r, field, q), namespace: ns})
	}
	return jobs, nil
}

// sharedPodQuery is r's shared container query for set (sharedPodRequest)
// and its family, rendered once per narrowing (provider.Narrowed), as
// custom metrics' shared queries are.
func (p *Provider) sharedPodQuery(r *rule, set podSet) (promql.Query, string, error) {
	req, family, k, memoize := p.sharedPodRequest(r, set)
	memo := provider.Narrowed{Budget: p.runner.Budget}
	key := p.demandKeys[r]
	if memoize {
		if v, ok := memo.Get(key, k); ok {
			return v.(promql.Query), family, nil
		}
	}
	q, err := r.ContainerQuery.Build(req)
	if err == nil && memoize {
		memo.Put(key, k, q, len(q.Text))
	}
	return q, family, err
}

// sharedPodRequest is what r's shared container query reads for set, and
// its provider.Query.Family (empty: none); with memoize, the request is
// the same for every set with the same narrowing k. Without batching, the
// set's namespaces and pods (or all, past MaxNamesInQuery); with batching,
// every pod of the cluster, unless Demand narrows the query:
//   - a request about one namespace (an HPA's, or kubectl top pod -n)
//     reads the query shared by the namespaces and pods requests asked
//     about lately, or, until its own have joined it, its namespace's
//     pods alone (one query for all the namespace's requests waiting),
//     grouped alike so that the partial-window history carries over;
//   - a request about several (kubectl top pod -A) reads those namespaces,
//     up to the Demand's bound on names: a Prometheus shared by several
//     clusters, or holding departed pods, has series of many more.
func (p *Provider) sharedPodRequest(r *rule, set podSet) (req promql.Request, family string, k provider.NarrowedFor, memoize bool) {
	ns, pod := r.NamespaceLabel, r.PodLabel
	if !p.batch {
		return promql.Request{Parts: []promql.Part{p.oneOf(ns, set.namespaces), p.oneOf(pod, set.names)}, GroupBy: r.SharedPodGroupBy()}, "", k, false
	}
	all := promql.Request{Parts: []promql.Part{promql.AnyPart(ns), promql.AnyPart(pod)}, GroupBy: r.SharedPodGroupBy()}
	k.Owner = r
	if p.demand == nil || !r.NarrowNamespaces {
		return all, "", k, true
	}
	if len(set.namespaces) > 1 {
		if len(set.namespaces) > max(p.maxNames, p.demand.MaxObjects) {
			return all, "", k, true
		}
		return r.NarrowedPodRequest(set.namespaces, promql.AnyPart(pod)), "", k, false
	}
	var asked []string
	byPod := r.NarrowPods && len(set.names) <= p.maxNames
	if byPod {
		asked = set.names
	}
	key := p.demandKeys[r]
	reach := p.demand.Ask(key, set.namespaces[0], asked, time.Now())
	// Waiting to join (reach.Alone): the namespace's pods, shared by every
	// request of the namespace waiting (see custom's render).
	if namespaces, pods := reach.Narrowing(set.namespaces[0], pod); namespaces != nil {
		k.Namespaces, k.Objects = namespaces, reach.Objects
		return r.NarrowedPodRequest(namespaces, pods), key, k, true
	}
	return all, "", k, true
}

// podData is the containers' values of the requested pods, from the
// answers. The pod cgroup (no container label) and the pause container
// are never counted.
func (p *Provider) podData(results [resources][]result, set podSet) map[podKey]map[string]*containerData {
	data := make(map[podKey]map[string]*containerData, len(set.want))
	p.gather(results, func(r *rule) unlabeledReport {
		return unlabeledReport{r.Path + ".containerQuery", fmt.Sprintf("%s and %s", r.NamespaceLabel, r.PodLabel),
			"these series cannot be attributed to pods"}
	}, func(r *rule, res result, s *model.Sample) (*containerData, bool) {
		ns := res.namespace
		if ns == "" {
			ns = string(s.Metric[model.LabelName(r.NamespaceLabel)])
		}
		name := string(s.Metric[model.LabelName(r.PodLabel)])
		if ns == "" || name == "" {
			return nil, false
		}
		k := podKey{ns, name}
		if _, ok := set.want[k]; !ok {
			return nil, true // another pod of a namespace-wide query
		}
		c := string(s.Metric[model.LabelName(r.ContainerLabel)])
		if c == "" || c == pauseContainer {
			return nil, true
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
		return cd, true
	})
	return data
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
		usage, ts, reason := p.usage(&cs[n].values)
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

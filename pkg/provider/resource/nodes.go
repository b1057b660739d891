package resource

import (
	"context"
	"fmt"

	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/metrics/pkg/apis/metrics"

	"github.com/promgate/promgate/pkg/promql"
)

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
	ts := p.runner.Clock()
	results, err := p.queryAll(ctx, ts, func(r *rule) ([]job, error) {
		part := promql.OneOfPart(r.NodeLabel, names)
		if r.ShareNode.OK {
			part = p.oneOf(r.NodeLabel, names)
		}
		q, err := r.NodeQuery.Build(promql.Request{Parts: []promql.Part{part}, GroupBy: []string{r.NodeLabel}})
		return []job{{query: queryOf(r, r.Path+".nodeQuery", q)}}, err
	})
	if err != nil {
		return nil, err
	}
	data := p.nodeData(results, want)

	created := metav1.NewTime(ts)
	missing := 0
	for _, n := range nodes {
		if n == nil || want[n.Name] != n {
			continue
		}
		nm, reason := p.nodeMetrics(n, data[n.Name])
		if reason != "" {
			missing++
			klog.V(2).InfoS("No resource metrics for node", "node", klog.KRef("", n.Name), "reason", reason)
			continue
		}
		nm.CreationTimestamp = created
		out = append(out, nm)
	}
	if missing > 0 {
		missingTotal.WithLabelValues("node").Add(float64(missing))
	}
	return out, nil
}

// nodeData is the values of the requested nodes, from the answers.
func (p *Provider) nodeData(results [resources][]result, want map[string]*corev1.Node) map[string]*containerData {
	data := make(map[string]*containerData, len(want))
	p.gather(results, func(r *rule) unlabeledReport {
		return unlabeledReport{r.Path + ".nodeQuery", r.NodeLabel,
			"kubectl top node prints <unknown> for nodes whose series lack it; check the scrape config's relabeling and " + r.Path + ".resources"}
	}, func(r *rule, _ result, s *model.Sample) (*containerData, bool) {
		name := string(s.Metric[model.LabelName(r.NodeLabel)])
		if name == "" {
			return nil, false
		}
		if _, ok := want[name]; !ok {
			return nil, true
		}
		d := data[name]
		if d == nil {
			d = &containerData{}
			data[name] = d
		}
		return d, true
	})
	return data
}

// nodeMetrics builds a node's metrics from its values, or says why it
// cannot.
func (p *Provider) nodeMetrics(n *corev1.Node, d *containerData) (metrics.NodeMetrics, string) {
	if d == nil {
		return metrics.NodeMetrics{}, fmt.Sprintf("the queries returned no series with %s=%q", p.primary().NodeLabel, n.Name)
	}
	usage, ts, reason := p.usage(&d.values)
	if reason != "" {
		return metrics.NodeMetrics{}, reason
	}
	return metrics.NodeMetrics{
		ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: n.Labels},
		Timestamp:  metav1.NewTime(ts.Time()),
		Window:     metav1.Duration{Duration: p.window},
		Usage:      usage,
	}, ""
}

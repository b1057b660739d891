package external

import (
	"context"
	"reflect"
	"sort"
	"strings"
	"testing"

	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promgate/promgate/pkg/internal/promtest"
)

// With Batch, requests that differ only in selector and namespace send the
// rule's query without those matchers and get the same answer as without
// Batch; queries that do not keep each series' labels are sent as they are.
func TestBatch(t *testing.T) {
	// Every queue_depth series Prometheus has.
	var all []promtest.Sample
	for _, s := range []struct{ value, ns, queue, tier string }{
		{"1", "ns1", "a", ""}, {"2", "ns1", "b", "y"}, {"3", "ns1", "b", "x"}, {"4", "ns1", "c", ""}, {"5", "ns2", "a", ""},
	} {
		lbls := []string{"__name__", "queue_depth", "namespace", s.ns, "queue", s.queue}
		if s.tier != "" {
			lbls = append(lbls, "tier", s.tier)
		}
		all = append(all, sample(s.value, lbls...))
	}
	where := func(keep func(map[string]string) bool) []promtest.Sample {
		var out []promtest.Sample
		for _, s := range all {
			if keep(s.Labels) {
				out = append(out, s)
			}
		}
		return out
	}
	tests := []struct {
		name, namespace, metric, selector string
		unbatched                         string
		unbatchedResult                   []promtest.Sample // what Prometheus answers it
		batched                           string            // "" when not batched
		batchedResult                     []promtest.Sample
		want                              []string // the items' labels, in order
	}{
		{
			name: "selector and namespace filtered here", namespace: "ns1", metric: "queue_depth", selector: "queue in (a,b),tier!=x",
			unbatched: `queue_depth{queue=~"a|b",tier!="x",namespace="ns1"}`,
			unbatchedResult: where(func(l map[string]string) bool {
				return l["namespace"] == "ns1" && (l["queue"] == "a" || l["queue"] == "b") && l["tier"] != "x"
			}),
			batched: `queue_depth{}`, batchedResult: all,
			want: []string{"namespace=ns1,queue=a", "namespace=ns1,queue=b,tier=y"},
		},
		{
			name: "no selector, namespace filtered here", namespace: "ns2", metric: "queue_depth",
			unbatched:       `queue_depth{namespace="ns2"}`,
			unbatchedResult: where(func(l map[string]string) bool { return l["namespace"] == "ns2" }),
			batched:         `queue_depth{}`, batchedResult: all,
			want: []string{"namespace=ns2,queue=a"},
		},
		{
			name: "an aggregation by the selected label is shared", namespace: "ns1", metric: "topic_messages_per_second", selector: "topic=plain",
			unbatched:       `sum(rate(topic_messages_total{topic="plain"}[2m])) by (topic)`,
			unbatchedResult: []promtest.Sample{sample("0.5", "topic", "plain")},
			batched:         `sum(rate(topic_messages_total[2m])) by (topic)`,
			batchedResult:   []promtest.Sample{sample("0.5", "topic", "plain"), sample("7", "topic", "other")},
			want:            []string{"topic=plain"},
		},
		{
			name: "an aggregation across the selected labels is not shared", namespace: "ns1", metric: "jobs_waiting",
			unbatched:       `sum(jobs_waiting{kubernetes_namespace="ns1"})`,
			unbatchedResult: []promtest.Sample{sample("12")},
			want:            []string{""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var answers [2][]string
			for i, batch := range []bool{false, true} {
				f := newFixture(t, testConfig)
				f.p.Batch = batch
				wantQuery := tt.unbatched
				f.srv.Vector(tt.unbatched, tt.unbatchedResult...)
				if batch && tt.batched != "" {
					wantQuery = tt.batched
					f.srv.Vector(tt.batched, tt.batchedResult...)
				}
				list, err := f.p.GetExternalMetric(context.Background(), tt.namespace, mustSelector(t, tt.selector), cmprovider.ExternalMetricInfo{Metric: tt.metric})
				if err != nil {
					t.Fatalf("batch=%v: %v", batch, err)
				}
				if q := f.srv.Queries(); !reflect.DeepEqual(q, []string{promtest.Canonical(wantQuery)}) {
					t.Errorf("batch=%v: queries %q, want %q", batch, q, wantQuery)
				}
				for _, it := range list.Items {
					answers[i] = append(answers[i], labelText(it.MetricLabels))
				}
			}
			if !reflect.DeepEqual(answers[0], tt.want) {
				t.Errorf("unbatched items %v, want %v", answers[0], tt.want)
			}
			if !reflect.DeepEqual(answers[1], answers[0]) {
				t.Errorf("batched items %v differ from unbatched %v", answers[1], answers[0])
			}
		})
	}
}

// labelText prints labels as sorted k=v pairs, comma-separated.
func labelText(m map[string]string) string {
	var kv []string
	for k, v := range m {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

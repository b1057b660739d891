package provider_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	corev1 "k8s.io/api/core/v1"

	"github.com/promgate/promgate/pkg/internal/fixture"
	"github.com/promgate/promgate/pkg/internal/kubetest"
	"github.com/promgate/promgate/pkg/provider"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ from what the providers do now")

// goldenRequest is one request to a provider, as an HPA or kubectl sends it.
type goldenRequest struct {
	name string
	do   func(context.Context, *fixture.World) (string, error)
}

func customList(ns string, gr cmprovider.CustomMetricInfo, sel, metricSel string) func(context.Context, *fixture.World) (string, error) {
	return func(ctx context.Context, w *fixture.World) (string, error) {
		list, err := w.Custom.GetMetricBySelector(ctx, ns, mustParse(sel), gr, mustParse(metricSel))
		if err != nil {
			return "", err
		}
		var b strings.Builder
		for _, v := range list.Items {
			fmt.Fprintf(&b, "%s %s/%s = %s (window %s, at %d)\n", v.DescribedObject.Kind, v.DescribedObject.Namespace, v.DescribedObject.Name,
				v.Value.String(), window(v.WindowSeconds), v.Timestamp.Unix())
		}
		return b.String(), nil
	}
}

func customGet(ns, name string, gr cmprovider.CustomMetricInfo) func(context.Context, *fixture.World) (string, error) {
	return func(ctx context.Context, w *fixture.World) (string, error) {
		v, err := w.Custom.GetMetricByName(ctx, types.NamespacedName{Namespace: ns, Name: name}, gr, labels.Everything())
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s %s/%s = %s (window %s, at %d)\n", v.DescribedObject.Kind, v.DescribedObject.Namespace, v.DescribedObject.Name,
			v.Value.String(), window(v.WindowSeconds), v.Timestamp.Unix()), nil
	}
}

func externalGet(ns, metric, sel string) func(context.Context, *fixture.World) (string, error) {
	return func(ctx context.Context, w *fixture.World) (string, error) {
		list, err := w.External.GetExternalMetric(ctx, ns, mustParse(sel), cmprovider.ExternalMetricInfo{Metric: metric})
		if err != nil {
			return "", err
		}
		var b strings.Builder
		for _, v := range list.Items {
			fmt.Fprintf(&b, "%s{%s} = %s (window %s, at %d)\n", v.MetricName, labels.Set(v.MetricLabels), v.Value.String(), window(v.WindowSeconds), v.Timestamp.Unix())
		}
		return b.String(), nil
	}
}

func podMetrics(pods ...string) func(context.Context, *fixture.World) (string, error) {
	return func(_ context.Context, w *fixture.World) (string, error) {
		var in []*metav1.PartialObjectMetadata
		for _, p := range pods {
			ns, name, _ := strings.Cut(p, "/")
			in = append(in, &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})
		}
		ms, err := w.Resource.GetPodMetrics(in...)
		if err != nil {
			return "", err
		}
		var b strings.Builder
		for _, m := range ms {
			fmt.Fprintf(&b, "pod %s/%s (window %s, at %d):", m.Namespace, m.Name, m.Window.Duration, m.Timestamp.Unix())
			for _, c := range m.Containers {
				fmt.Fprintf(&b, " %s cpu=%s memory=%s%s", c.Name, c.Usage.Cpu(), c.Usage.Memory(), swapOf(c.Usage))
			}
			b.WriteString("\n")
		}
		return b.String(), nil
	}
}

func nodeMetrics(nodes ...string) func(context.Context, *fixture.World) (string, error) {
	return func(_ context.Context, w *fixture.World) (string, error) {
		var in []*corev1.Node
		for _, n := range nodes {
			in = append(in, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}})
		}
		ms, err := w.Resource.GetNodeMetrics(in...)
		if err != nil {
			return "", err
		}
		var b strings.Builder
		for _, m := range ms {
			fmt.Fprintf(&b, "node %s (window %s, at %d): cpu=%s memory=%s%s\n", m.Name, m.Window.Duration, m.Timestamp.Unix(), m.Usage.Cpu(), m.Usage.Memory(), swapOf(m.Usage))
		}
		return b.String(), nil
	}
}

func window(w *int64) string {
	if w == nil {
		return "none"
	}
	return fmt.Sprintf("%ds", *w)
}

func mustParse(s string) labels.Selector {
	sel, err := labels.Parse(s)
	if err != nil {
		panic(err)
	}
	return sel
}

func metric(gr string, namespaced bool, name string) cmprovider.CustomMetricInfo {
	r := map[string]cmprovider.CustomMetricInfo{
		"pods":       {GroupResource: kubetest.Pods},
		"services":   {GroupResource: kubetest.Services},
		"namespaces": {GroupResource: kubetest.Namespaces},
	}[gr]
	r.Namespaced, r.Metric = namespaced, name
	return r
}

// goldenRequests cover each API and each shape of request that the shipped
// configuration serves.
var goldenRequests = []goldenRequest{
	{"custom pods of shop with app=web", customList("shop", metric("pods", true, "http_requests_per_second"), "app=web", "")},
	{"custom pods of shop, metricLabelSelector code=200", customList("shop", metric("pods", true, "http_requests_per_second"), "", "code=200")},
	{"custom pod shop/web-0, 5xx", customGet("shop", "web-0", metric("pods", true, "http_requests_5xx_per_second"))},
	{"custom pod shop/web-2, window partly covered", customGet("shop", "web-2", metric("pods", true, "http_requests_per_second"))},
	{"custom service shop/web", customGet("shop", "web", metric("services", true, "http_requests_per_second"))},
	{"custom namespace shop", customGet("", "shop", metric("namespaces", false, "http_requests_per_second"))},
	{"custom pods of team-b, the generic _total rule", customList("team-b", metric("pods", true, "jobs_processed_per_second"), "", "")},
	{"external queue_messages in team-b, queue=orders", externalGet("team-b", "queue_messages", "queue=orders")},
	{"external queue_messages in team-b", externalGet("team-b", "queue_messages", "")},
	{"resource pods shop/web-0, shop/web-1, shop/web-2", podMetrics("shop/web-0", "shop/web-1", "shop/web-2")},
	{"resource nodes n1, n2", nodeMetrics("n1", "n2")},
}

// TestGolden runs goldenRequests against the shipped configuration over
// fixture.Series and compares, per request, the PromQL sent and the answer
// with testdata/golden-*.txt: production's defaults (batching, the guard)
// and prometheus-adapter's way (unbatched, unguarded). A change to what
// promgate sends or answers shows as a diff of these files; go test
// ./pkg/provider -run TestGolden -update rewrites them.
func TestGolden(t *testing.T) {
	for _, mode := range []struct {
		file string
		opts fixture.Options
	}{
		{"golden-defaults.txt", fixture.Options{}},
		{"golden-adapter.txt", fixture.Options{Unbatched: true, Windows: provider.GuardOff}},
	} {
		t.Run(mode.file, func(t *testing.T) {
			w := fixture.New(t, fixture.ShippedConfig(t), fixture.Series, mode.opts)
			var b strings.Builder
			fmt.Fprintf(&b, "# What promgate sends and answers for the shipped configuration (config/promgate.yaml)\n"+
				"# over pkg/internal/fixture's series; written by go test ./pkg/provider -run TestGolden -update.\n")
			for _, r := range goldenRequests {
				w.Engine.Reset()
				out, err := r.do(context.Background(), w)
				fmt.Fprintf(&b, "\n== %s\n", r.name)
				qs := w.Engine.Queries()
				sort.Strings(qs)
				for _, q := range qs {
					fmt.Fprintf(&b, "query: %s\n", q)
				}
				if err != nil {
					fmt.Fprintf(&b, "error: %v\n", err)
				} else if out == "" {
					b.WriteString("(no values)\n")
				} else {
					b.WriteString(out)
				}
			}
			path := filepath.Join("testdata", mode.file)
			if *update {
				if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test ./pkg/provider -run TestGolden -update writes it)", err)
			}
			if got := b.String(); got != string(want) {
				t.Errorf("%s differs from what the providers do now; if the change is meant, rerun with -update and review the diff.\n--- got\n%s", path, got)
			}
		})
	}
}

// swapOf is " swap=X" when usage has swap (resourceRules.swap).
func swapOf(usage corev1.ResourceList) string {
	if q, ok := usage["swap"]; ok {
		return " swap=" + q.String()
	}
	return ""
}

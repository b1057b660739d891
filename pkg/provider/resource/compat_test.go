package resource

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/promgate/promgate/pkg/internal/promtest"
	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/provider"
)

// compatData: the same pod name in two namespaces, cAdvisor-like series
// (one container each, plus the pod cgroup); 15 s scrapes from time 0.
const compatData = `
load 15s
	container_cpu_usage_seconds_total{namespace="ns1",pod="web",container="app"} 0+3x40
	container_cpu_usage_seconds_total{namespace="ns2",pod="web",container="app"} 0+6x40
	container_cpu_usage_seconds_total{namespace="ns1",pod="web",container=""} 0+9x40
	container_memory_working_set_bytes{namespace="ns1",pod="web",container="app"} 1048576+0x40
	container_memory_working_set_bytes{namespace="ns2",pod="web",container="app"} 2097152+0x40
	container_cpu_usage_seconds_total{namespace="ns3",pod="new",container="app"} _x18 0+3x2
	container_memory_working_set_bytes{namespace="ns3",pod="new",container="app"} _x18 1048576+0x2
	container_cpu_usage_seconds_total{namespace="ns3",pod="gap",container="app"} 0+3x14 _x3 54+3x2
	container_memory_working_set_bytes{namespace="ns3",pod="gap",container="app"} 1048576+0x20
`

// adapterRules are written as many prometheus-adapter users write them:
// grouping by pod and container by hand, without the namespace, which
// prometheus-adapter can do because it queries one namespace at a time.
const adapterRules = `
resourceRules:
  cpu:
    containerQuery: 'sum by (pod, container) (rate(container_cpu_usage_seconds_total{container!="",<<.LabelMatchers>>}[1m]))'
    nodeQuery: 'sum by (<<.GroupBy>>) (rate(container_cpu_usage_seconds_total{id="/",<<.LabelMatchers>>}[1m]))'
    resources:
      overrides:
        node: {resource: node}
        namespace: {resource: namespace}
        pod: {resource: pod}
    containerLabel: container
  memory:
    containerQuery: 'sum by (pod, container) (container_memory_working_set_bytes{container!="",<<.LabelMatchers>>})'
    nodeQuery: 'sum by (<<.GroupBy>>) (container_memory_working_set_bytes{id="/",<<.LabelMatchers>>})'
    resources:
      overrides:
        node: {resource: node}
        namespace: {resource: namespace}
        pod: {resource: pod}
    containerLabel: container
  window: 1m
`

func engineProvider(t *testing.T, rules string, opts Options, partial bool) (*Provider, *promtest.Engine) {
	t.Helper()
	e := promtest.NewEngine(t, compatData)
	client, err := prom.New(prom.Options{URL: e.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	run := &provider.Runner{Backends: provider.Single(client), Now: func() time.Time { return time.Unix(300, 0) }}
	if partial {
		run.Windows = provider.GuardOff
	}
	p, err := New(parseRules(t, rules), run, testMapper(), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p, e
}

// TestHandWrittenGroupBy: a containerQuery grouping by (pod, container)
// gives each namespace's pods their own values, with batching on and off,
// because such a query is sent per namespace.
func TestHandWrittenGroupBy(t *testing.T) {
	for _, batch := range []bool{false, true} {
		p, e := engineProvider(t, adapterRules, Options{Batch: batch}, false)
		got, err := p.GetPodMetrics(pod("ns1", "web"), pod("ns2", "web"))
		if err != nil {
			t.Fatalf("batch=%v: %v", batch, err)
		}
		want := []string{
			"ns1/web @300.000 1m0s app{cpu=200m,memory=1Mi}",
			"ns2/web @300.000 1m0s app{cpu=400m,memory=2Mi}",
		}
		equalLines(t, "pods", podLines(got), want)
		if n := len(e.Queries()); n != 4 {
			t.Errorf("batch=%v: %d queries, want 4 (one per namespace and resource): %q", batch, n, e.Queries())
		}
		for _, q := range e.Queries() {
			if !strings.Contains(q, `namespace="ns`) {
				t.Errorf("batch=%v: query %s does not select one namespace", batch, q)
			}
		}
	}
}

// TestDefaultRulesShared: the default rules group by <<.GroupBy>>, so all
// pods share one query per resource when batching.
func TestDefaultRulesShared(t *testing.T) {
	p, e := engineProvider(t, testRules, Options{Batch: true}, false)
	got, err := p.GetPodMetrics(pod("ns1", "web"), pod("ns2", "web"))
	if err != nil {
		t.Fatal(err)
	}
	equalLines(t, "pods", podLines(got), []string{
		"ns1/web @300.000 1m0s app{cpu=200m,memory=1Mi}",
		"ns2/web @300.000 1m0s app{cpu=400m,memory=2Mi}",
	})
	if n := len(e.Queries()); n != 2 {
		t.Errorf("%d queries, want 2: %q", n, e.Queries())
	}
}

// TestCPUOnly: resourceRules with only cpu load (as in prometheus-adapter)
// and serve CPU.
func TestCPUOnly(t *testing.T) {
	rules := adapterRules[:strings.Index(adapterRules, "  memory:")] + "  window: 1m\n"
	p, _ := engineProvider(t, rules, Options{}, false)
	got, err := p.GetPodMetrics(pod("ns1", "web"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(got[0].Containers) != 1 {
		t.Fatalf("got %+v", got)
	}
	u := got[0].Containers[0].Usage
	if _, ok := u["memory"]; ok || u.Cpu().String() != "200m" {
		t.Errorf("usage %v, want cpu 200m only", u)
	}
}

// TestPartlyFilledWindows: a pod whose CPU window samples cover only in
// part (a new pod, a scrape gap) is left out, as metrics-server leaves out
// a pod it has not seen twice, unless PartialWindows is set; its rate
// would read low.
func TestPartlyFilledWindows(t *testing.T) {
	for _, partial := range []bool{false, true} {
		p, e := engineProvider(t, testRules, Options{Batch: true}, partial)
		got, err := p.GetPodMetrics(pod("ns1", "web"), pod("ns3", "new"), pod("ns3", "gap"))
		if err != nil {
			t.Fatalf("partial=%v: %v", partial, err)
		}
		var names []string
		for _, m := range got {
			names = append(names, m.Namespace+"/"+m.Name)
		}
		want := "ns1/web"
		if partial {
			want = "ns1/web ns3/gap ns3/new"
		}
		sort.Strings(names)
		if s := strings.Join(names, " "); s != want {
			t.Errorf("partial=%v: pods %q, want %q (queries %q)", partial, s, want, e.Queries())
		}
	}
}

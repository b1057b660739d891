package resource

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/promgate/promgate/pkg/provider"
)

// With Batch, every pod request sends the same two queries over all pods
// (and every node request the same two over all nodes) and keeps only what
// was asked.
func TestBatch(t *testing.T) {
	cpu := []series{ctr("a", "p1", "app", "0.25"), ctr("a", "p2", "app", "0.5"), ctr("b", "p1", "app", "1"), node("n1", "2"), node("n2", "3")}
	mem := []series{ctr("a", "p1", "app", "1048576"), ctr("a", "p2", "app", "2097152"), ctr("b", "p1", "app", "4194304"), node("n1", "8388608"), node("n2", "16777216")}
	f := &fakeProm{respond: byMetric(cpu, mem)}
	p, _ := newTestProvider(t, testRules, Options{Batch: true}, f)

	for _, req := range []struct {
		pods []string // ns/name
		want []string
	}{
		{[]string{"a/p2"}, []string{"a/p2 @1700000000.000 1m0s app{cpu=500m,memory=2Mi}"}},
		{[]string{"b/p1", "a/p1"}, []string{"b/p1 @1700000000.000 1m0s app{cpu=1,memory=4Mi}", "a/p1 @1700000000.000 1m0s app{cpu=250m,memory=1Mi}"}},
	} {
		var objs []*metav1.PartialObjectMetadata
		for _, s := range req.pods {
			a := splitPod(s)
			objs = append(objs, pod(a.ns, a.name))
		}
		got, err := p.GetPodMetrics(objs...)
		if err != nil {
			t.Fatal(err)
		}
		equalLines(t, "pods", podLines(got), req.want)
	}
	nodes, err := p.GetNodeMetrics(nodeObj("n2"))
	if err != nil {
		t.Fatal(err)
	}
	equalLines(t, "nodes", nodeLines(nodes), []string{"n2 @1700000000.000 1m0s cpu=3 memory=16Mi"})

	all := `namespace!="",pod!=""`
	want := append(append(queries(podCPU, podMem, all), queries(podCPU, podMem, all)...), queries(nodeCPU, nodeMem, `node!=""`)...)
	got := f.sent()
	if len(got) != len(want) {
		t.Fatalf("queries:\n%v\nwant:\n%v", got, want)
	}
	seen := map[string]int{}
	for _, q := range got {
		seen[q]++
	}
	for _, q := range want {
		if seen[q] == 0 {
			t.Errorf("query %s not sent; sent %v", q, got)
		}
	}
	if len(seen) != 4 {
		t.Errorf("%d distinct queries, want 4 (every request the same): %v", len(seen), got)
	}
}

type podArg struct{ ns, name string }

func splitPod(s string) *podArg {
	for i := range s {
		if s[i] == '/' {
			return &podArg{s[:i], s[i+1:]}
		}
	}
	return &podArg{"", s}
}

// With Batch and Demand, the shared pod queries read the namespaces and
// pods requests asked about lately: a request whose pods have not joined
// reads its own; a request about several namespaces (kubectl top pod -A)
// reads those namespaces' pods. Whatever a query reads, each request gets
// its own pods' values.
func TestBatchDemand(t *testing.T) {
	cpu := []series{ctr("a", "p1", "app", "0.25"), ctr("a", "p2", "app", "0.5"), ctr("b", "q1", "app", "1"), ctr("c", "r1", "app", "2")}
	mem := []series{ctr("a", "p1", "app", "1048576"), ctr("a", "p2", "app", "2097152"), ctr("b", "q1", "app", "4194304"), ctr("c", "r1", "app", "8388608")}
	for _, tc := range []struct {
		name   string
		demand *provider.Demand
		reqs   [][]string // ns/name per request
		want   []string   // the matchers each request's queries read
	}{{
		name:   "the first joins at once, the next waits for the batch",
		demand: &provider.Demand{MaxObjects: 10, JoinEvery: time.Hour},
		reqs:   [][]string{{"a/p1", "a/p2"}, {"b/q1"}, {"a/p1"}},
		want:   []string{`namespace="a",pod=~"p1|p2"`, `namespace="b",pod!=""`, `namespace="a",pod=~"p1|p2"`},
	}, {
		name:   "joined",
		demand: &provider.Demand{MaxObjects: 10, JoinEvery: time.Nanosecond},
		reqs:   [][]string{{"a/p1"}, {"b/q1"}, {"a/p1"}},
		want:   []string{`namespace="a",pod="p1"`, `namespace=~"a|b",pod=~"p1|q1"`, `namespace=~"a|b",pod=~"p1|q1"`},
	}, {
		name:   "namespaces only",
		demand: &provider.Demand{JoinEvery: time.Nanosecond},
		reqs:   [][]string{{"a/p1"}, {"b/q1"}},
		want:   []string{`namespace="a",pod!=""`, `namespace=~"a|b",pod!=""`},
	}, {
		name:   "more namespaces than a shared query reads: the cluster",
		demand: &provider.Demand{MaxNamespaces: 1, JoinEvery: time.Nanosecond},
		reqs:   [][]string{{"a/p1"}, {"b/q1"}},
		want:   []string{`namespace="a",pod!=""`, `namespace!="",pod!=""`},
	}, {
		name:   "several namespaces in one request",
		demand: &provider.Demand{MaxObjects: 10, JoinEvery: time.Nanosecond},
		reqs:   [][]string{{"c/r1", "a/p1", "b/q1"}},
		want:   []string{`namespace=~"a|b|c",pod!=""`},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeProm{respond: byMetric(cpu, mem)}
			p, _ := newTestProvider(t, testRules, Options{Batch: true, Demand: tc.demand}, f)
			for i, req := range tc.reqs {
				var objs []*metav1.PartialObjectMetadata
				var want []string
				for _, s := range req {
					a := splitPod(s)
					objs = append(objs, pod(a.ns, a.name))
					want = append(want, a.ns+"/"+a.name)
				}
				f.mu.Lock()
				f.queries = nil
				f.mu.Unlock()
				got, err := p.GetPodMetrics(objs...)
				if err != nil {
					t.Fatal(err)
				}
				var names []string
				for _, pm := range got {
					names = append(names, pm.Namespace+"/"+pm.Name)
				}
				if strings.Join(names, " ") != strings.Join(want, " ") {
					t.Errorf("request %d: pods %v, want %v", i, names, want)
				}
				sent := f.sent()
				if wantQ := queries(podCPU, podMem, tc.want[i]); strings.Join(sent, "\n") != strings.Join(wantQ, "\n") {
					t.Errorf("request %d sent:\n%s\nwant:\n%s", i, strings.Join(sent, "\n"), strings.Join(wantQ, "\n"))
				}
			}
		})
	}
}

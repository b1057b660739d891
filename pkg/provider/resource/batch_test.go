package resource

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

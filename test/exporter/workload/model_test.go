package workload

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPodCgroupsAndValues(t *testing.T) {
	clk := newFakeClock()
	m := NewModel(clk.Now)
	p := testPod("shop", "web-1", "web", map[string]string{
		AnnotationRPS:              "4",
		AnnotationErrorRatio:       "0.25",
		AnnotationCPU:              "250m",
		AnnotationCPU + ".sidecar": "50m",
		AnnotationMemory:           "128Mi",
	}, "app", "sidecar")
	m.UpsertPod(p)
	clk.Advance(10 * time.Second)
	ps := findPod(t, m.Snapshot(Filter{}), "shop", "web-1")

	if ps.Node != "node-1" || ps.App != "web" || ps.UID != string(p.UID) {
		t.Errorf("identity = %s/%s/%s", ps.Node, ps.App, ps.UID)
	}
	approx(t, "requests200", ps.Requests200, 30) // 4 * 0.75 * 10
	approx(t, "requests500", ps.Requests500, 10) // 4 * 0.25 * 10

	podCgroup := "/kubepods/burstable/pod" + string(p.UID)
	const mi = 1 << 20
	tests := []struct {
		container  string
		image      string
		cores      float64
		workingSet int64
	}{
		{"app", "example.com/app:1", 0.25, 128 * mi},
		{"sidecar", "example.com/sidecar:1", 0.05, 128 * mi},
		{PauseContainer, PauseImage, 0.005, 1 * mi},
	}
	if len(ps.Containers) != len(tests) {
		t.Fatalf("containers = %+v, want %d", ps.Containers, len(tests))
	}
	for i, tc := range tests {
		t.Run(tc.container, func(t *testing.T) {
			c := ps.Containers[i]
			if c.Container != tc.container || c.Image != tc.image {
				t.Errorf("container %d = %q image %q, want %q image %q", i, c.Container, c.Image, tc.container, tc.image)
			}
			id := ContainerID(p.UID, tc.container)
			if c.Name != id || c.ID != podCgroup+"/"+id || len(id) != 64 {
				t.Errorf("name %q id %q, want name %q id %q", c.Name, c.ID, id, podCgroup+"/"+id)
			}
			approx(t, "cores", c.CPUCores, tc.cores)
			approx(t, "cpu seconds", c.CPUSeconds, tc.cores*10)
			if c.MemoryWorkingSetBytes != tc.workingSet || c.MemoryUsageBytes != tc.workingSet+InactiveFileBytes {
				t.Errorf("memory ws %d usage %d, want %d and %d", c.MemoryWorkingSetBytes, c.MemoryUsageBytes, tc.workingSet, tc.workingSet+InactiveFileBytes)
			}
		})
	}
	// The pod-level cgroup is the sum of the containers and the pause one.
	pc := ps.Cgroup
	if pc.Container != "" || pc.ID != podCgroup || pc.Name != "" || pc.Image != "" {
		t.Errorf("pod cgroup labels = %+v", pc)
	}
	approx(t, "pod cores", pc.CPUCores, 0.305)
	approx(t, "pod cpu seconds", pc.CPUSeconds, 3.05)
	if want := int64(257 * mi); pc.MemoryWorkingSetBytes != want {
		t.Errorf("pod working set = %d, want %d", pc.MemoryWorkingSetBytes, want)
	}
	if want := int64(257*mi + 3*InactiveFileBytes); pc.MemoryUsageBytes != want {
		t.Errorf("pod usage = %d, want %d", pc.MemoryUsageBytes, want)
	}
}

func TestPodCgroupQoS(t *testing.T) {
	for qos, want := range map[corev1.PodQOSClass]string{
		corev1.PodQOSGuaranteed: "/kubepods/podU",
		corev1.PodQOSBurstable:  "/kubepods/burstable/podU",
		corev1.PodQOSBestEffort: "/kubepods/besteffort/podU",
		"":                      "/kubepods/burstable/podU",
	} {
		if got := PodCgroup(qos, "U"); got != want {
			t.Errorf("PodCgroup(%q) = %q, want %q", qos, got, want)
		}
	}
}

func TestEligibility(t *testing.T) {
	now := metav1.NewTime(t0)
	tests := []struct {
		name   string
		mutate func(*corev1.Pod)
		want   bool
	}{
		{"running", func(*corev1.Pod) {}, true},
		{"pending", func(p *corev1.Pod) { p.Status.Phase = corev1.PodPending }, false},
		{"succeeded", func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }, false},
		{"terminating", func(p *corev1.Pod) { p.DeletionTimestamp = &now }, false},
		{"unscheduled", func(p *corev1.Pod) { p.Spec.NodeName = "" }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewModel(newFakeClock().Now)
			p := testPod("ns", "p", "a", nil, "c")
			tc.mutate(p)
			m.UpsertPod(p)
			if got := len(m.Snapshot(Filter{}).Pods) == 1; got != tc.want {
				t.Errorf("published = %v, want %v", got, tc.want)
			}
			// A running pod that turns ineligible is dropped.
			m2 := NewModel(newFakeClock().Now)
			m2.UpsertPod(testPod("ns", "p", "a", nil, "c"))
			m2.UpsertPod(p)
			if got := len(m2.Snapshot(Filter{}).Pods) == 1; got != tc.want {
				t.Errorf("after transition published = %v, want %v", got, tc.want)
			}
		})
	}
	m := NewModel(newFakeClock().Now)
	p := testPod("ns", "p", "a", nil, "c")
	m.UpsertPod(p)
	m.DeletePod(p.UID)
	if n := len(m.Snapshot(Filter{}).Pods); n != 0 {
		t.Errorf("after delete %d pods", n)
	}
}

// TestOverridesKeepCountersContinuous changes rates at run time and checks the
// counters accumulate piecewise, for current and future pods.
func TestOverridesKeepCountersContinuous(t *testing.T) {
	clk := newFakeClock()
	m := NewModel(clk.Now)
	web := AppKey{Namespace: "shop", App: "web"}
	m.UpsertPod(testPod("shop", "web-1", "web", map[string]string{AnnotationRPS: "2"}, "app"))
	m.UpsertPod(testPod("shop", "api-1", "api", nil, "app"))
	m.UpsertPod(testPod("other", "web-1", "web", nil, "app"))

	clk.Advance(10 * time.Second) // web-1: 20 ok
	if n := m.SetHTTP(web, HTTPOverride{RPS: ptr(10.0), ErrorRatio: ptr(0.1)}); n != 1 {
		t.Errorf("SetHTTP matched %d pods, want 1", n)
	}
	clk.Advance(10 * time.Second) // web-1: +90 ok, +10 failed
	if n := m.SetHTTP(web, HTTPOverride{ErrorRatio: ptr(0.5)}); n != 1 {
		t.Errorf("SetHTTP matched %d pods, want 1", n)
	}
	m.UpsertPod(testPod("shop", "web-2", "web", map[string]string{AnnotationRPS: "2"}, "app"))
	clk.Advance(10 * time.Second) // web-1 and web-2: +50 ok, +50 failed (rps 10 kept)
	if n := m.SetCPU(web, "", 500); n != 2 {
		t.Errorf("SetCPU matched %d pods, want 2", n)
	}
	clk.Advance(10 * time.Second) // web-1: cpu 40s at 100m, then 10s at 500m
	if n := m.ClearHTTP(web); n != 2 {
		t.Errorf("ClearHTTP matched %d pods, want 2", n)
	}
	clk.Advance(10 * time.Second) // back to annotation: rps 2, ratio 0

	s := m.Snapshot(Filter{})
	w1 := findPod(t, s, "shop", "web-1")
	approx(t, "web-1 ok", w1.Requests200, 20+90+50+50+20)
	approx(t, "web-1 failed", w1.Requests500, 10+50+50)
	approx(t, "web-1 app cpu seconds", findContainer(t, w1, "app").CPUSeconds, 30*0.1+20*0.5)
	approx(t, "web-1 pause cpu seconds", findContainer(t, w1, PauseContainer).CPUSeconds, 50*0.005)
	w2 := findPod(t, s, "shop", "web-2")
	approx(t, "web-2 ok", w2.Requests200, 50+50+20)
	approx(t, "web-2 failed", w2.Requests500, 50+50)
	if w2.RPS != 2 || w2.ErrorRatio != 0 {
		t.Errorf("web-2 rps %v ratio %v after clear, want 2 and 0", w2.RPS, w2.ErrorRatio)
	}
	// Other apps and namespaces are untouched: default rps 1 for 50 s.
	approx(t, "api-1 ok", findPod(t, s, "shop", "api-1").Requests200, 50)
	approx(t, "other/web-1 ok", findPod(t, s, "other", "web-1").Requests200, 50)
	approx(t, "other/web-1 cpu", findContainer(t, findPod(t, s, "other", "web-1"), "app").CPUSeconds, 5)
}

func TestMemoryOverrideAndHidden(t *testing.T) {
	clk := newFakeClock()
	m := NewModel(clk.Now)
	key := AppKey{Namespace: "ns", App: "a"}
	m.UpsertPod(testPod("ns", "p", "a", map[string]string{AnnotationMemory: "100Mi"}, "main", "side"))

	m.SetMemory(key, "side", 1<<30)
	p := findPod(t, m.Snapshot(Filter{}), "ns", "p")
	if got := findContainer(t, p, "main").MemoryWorkingSetBytes; got != 100<<20 {
		t.Errorf("main = %d", got)
	}
	if got := findContainer(t, p, "side").MemoryWorkingSetBytes; got != 1<<30 {
		t.Errorf("side = %d", got)
	}
	m.ClearMemory(key, "")
	if got := findContainer(t, findPod(t, m.Snapshot(Filter{}), "ns", "p"), "side").MemoryWorkingSetBytes; got != 100<<20 {
		t.Errorf("side after clear = %d", got)
	}

	m.SetHidden(key, "side", true)
	p = findPod(t, m.Snapshot(Filter{}), "ns", "p")
	if !findContainer(t, p, "side").Hidden || findContainer(t, p, "main").Hidden || p.Cgroup.Hidden {
		t.Errorf("hiding side: %+v", p)
	}
	m.SetHidden(key, "", true)
	p = findPod(t, m.Snapshot(Filter{}), "ns", "p")
	if !p.Hidden || !p.Cgroup.Hidden || !findContainer(t, p, "main").Hidden || !findContainer(t, p, PauseContainer).Hidden {
		t.Errorf("hiding pod: %+v", p)
	}
	m.Reset()
	p = findPod(t, m.Snapshot(Filter{}), "ns", "p")
	if p.Hidden || findContainer(t, p, "side").Hidden {
		t.Errorf("after reset still hidden: %+v", p)
	}
}

func TestNodes(t *testing.T) {
	clk := newFakeClock()
	m := NewModel(clk.Now)
	m.UpsertNode(testNode("n1", nil))
	m.UpsertNode(testNode("n2", map[string]string{AnnotationCPU: "3", AnnotationMemory: "8Gi"}))
	m.UpsertNode(testNode("n3", map[string]string{AnnotationCPU: "lots"}))
	clk.Advance(10 * time.Second)
	if !m.SetNode("n1", NodeOverride{MilliCPU: ptr(int64(250))}) {
		t.Error("n1 unknown")
	}
	if m.SetNode("later", NodeOverride{Memory: ptr(int64(1 << 30))}) {
		t.Error("node 'later' known before it exists")
	}
	m.UpsertNode(testNode("later", nil))
	clk.Advance(10 * time.Second)

	s := m.Snapshot(Filter{})
	tests := []struct {
		node       string
		cpuSeconds float64
		workingSet int64
		errs       int
	}{
		{"later", 10 * 1.5, 1 << 30, 0},
		{"n1", 10*1.5 + 10*0.25, 3 << 30, 0},
		{"n2", 20 * 3, 8 << 30, 0},
		{"n3", 20 * 1.5, 3 << 30, 1},
	}
	if len(s.Nodes) != len(tests) {
		t.Fatalf("nodes = %+v", s.Nodes)
	}
	for i, tc := range tests {
		n := s.Nodes[i]
		if n.Name != tc.node {
			t.Fatalf("node %d = %q, want %q", i, n.Name, tc.node)
		}
		if n.Cgroup.ID != "/" || n.Cgroup.Container != "" {
			t.Errorf("%s root cgroup labels %+v", tc.node, n.Cgroup)
		}
		approx(t, tc.node+" cpu seconds", n.Cgroup.CPUSeconds, tc.cpuSeconds)
		if n.Cgroup.MemoryWorkingSetBytes != tc.workingSet || n.Cgroup.MemoryUsageBytes != tc.workingSet+InactiveFileBytes {
			t.Errorf("%s memory %d/%d, want %d", tc.node, n.Cgroup.MemoryWorkingSetBytes, n.Cgroup.MemoryUsageBytes, tc.workingSet)
		}
		if len(n.Errors) != tc.errs {
			t.Errorf("%s errors %q, want %d", tc.node, n.Errors, tc.errs)
		}
	}
	m.DeleteNode("n3")
	if len(m.Snapshot(Filter{}).Nodes) != 3 {
		t.Error("n3 not deleted")
	}
}

func TestQueuesAndFilter(t *testing.T) {
	m := NewModel(newFakeClock().Now)
	m.SetQueue(QueueKey{"a", "jobs"}, 12)
	m.SetQueue(QueueKey{"b", "jobs"}, 3)
	m.SetQueue(QueueKey{"a", "jobs"}, 30)
	m.UpsertPod(testPod("a", "p1", "x", nil, "c"))
	m.UpsertPod(testPod("b", "p2", "x", nil, "c"))
	m.SetHTTP(AppKey{"b", "x"}, HTTPOverride{RPS: ptr(2.0)})

	s := m.Snapshot(Filter{Namespace: "a"})
	if len(s.Pods) != 1 || s.Pods[0].Name != "p1" {
		t.Errorf("filtered pods = %+v", s.Pods)
	}
	if len(s.Queues) != 1 || s.Queues[0] != (QueueSnapshot{"a", "jobs", 30}) {
		t.Errorf("filtered queues = %+v", s.Queues)
	}
	if len(s.Overrides) != 0 {
		t.Errorf("filtered overrides = %+v", s.Overrides)
	}
	if !m.DeleteQueue(QueueKey{"a", "jobs"}) || m.DeleteQueue(QueueKey{"a", "jobs"}) {
		t.Error("DeleteQueue existed results wrong")
	}
	if s := m.Snapshot(Filter{}); len(s.Queues) != 1 || len(s.Overrides) != 1 || *s.Overrides[0].HTTP.RPS != 2 {
		t.Errorf("unfiltered = %+v", s)
	}
}

package workload

import (
	"math"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// t0 is the fake clock's start.
var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// fakeClock is a Clock that moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testPod returns a Running, Burstable pod on node-1 with the given app label,
// annotations and container names.
func testPod(ns, name, app string, ann map[string]string, containers ...string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:   ns,
			Name:        name,
			UID:         types.UID("uid-" + ns + "-" + name),
			Labels:      map[string]string{},
			Annotations: ann,
		},
		Spec: corev1.PodSpec{NodeName: "node-1"},
		Status: corev1.PodStatus{
			Phase:    corev1.PodRunning,
			QOSClass: corev1.PodQOSBurstable,
		},
	}
	if app != "" {
		p.Labels[AppLabel] = app
	}
	for _, c := range containers {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c, Image: "example.com/" + c + ":1"})
	}
	return p
}

func testNode(name string, ann map[string]string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: ann}}
}

// approx fails unless got is within 1e-9 (relative, or absolute near 0) of want.
func approx(t *testing.T, what string, got, want float64) {
	t.Helper()
	if d := math.Abs(got - want); d > 1e-9*math.Max(1, math.Abs(want)) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// findPod returns the snapshot of namespace/name or fails.
func findPod(t *testing.T, s Snapshot, ns, name string) PodSnapshot {
	t.Helper()
	for _, p := range s.Pods {
		if p.Namespace == ns && p.Name == name {
			return p
		}
	}
	t.Fatalf("pod %s/%s not in snapshot", ns, name)
	return PodSnapshot{}
}

// findContainer returns one container of a pod snapshot or fails.
func findContainer(t *testing.T, p PodSnapshot, name string) CgroupSnapshot {
	t.Helper()
	for _, c := range p.Containers {
		if c.Container == name {
			return c
		}
	}
	t.Fatalf("container %q not in pod %s/%s", name, p.Namespace, p.Name)
	return CgroupSnapshot{}
}

func ptr[T any](v T) *T { return &v }

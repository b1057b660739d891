package workload

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

// eventually polls cond until it holds or 10 s pass.
func eventually(t *testing.T, what string, cond func(Snapshot) bool, m *Model) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if cond(m.Snapshot(Filter{})) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; state %+v", what, m.Snapshot(Filter{}))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pod := testPod("shop", "web-1", "web", map[string]string{AnnotationRPS: "2"}, "app")
	cs := fake.NewClientset(pod, testNode("node-1", nil))
	m := NewModel(nil)
	if err := Watch(ctx, cs, m); err != nil {
		t.Fatal(err)
	}
	if s := m.Snapshot(Filter{}); len(s.Pods) != 1 || len(s.Nodes) != 1 || s.Pods[0].RPS != 2 {
		t.Fatalf("after sync: %+v", s)
	}

	pods := cs.CoreV1().Pods("shop")
	pod.Annotations[AnnotationRPS] = "5"
	if _, err := pods.Update(ctx, pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "rps 5", func(s Snapshot) bool { return len(s.Pods) == 1 && s.Pods[0].RPS == 5 }, m)

	pending := testPod("shop", "web-2", "web", nil, "app")
	pending.Status.Phase = corev1.PodPending
	if _, err := pods.Create(ctx, pending, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pending.Status.Phase = corev1.PodRunning
	if _, err := pods.UpdateStatus(ctx, pending, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web-2 running", func(s Snapshot) bool { return len(s.Pods) == 2 }, m)

	if err := pods.Delete(ctx, "web-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.CoreV1().Nodes().Delete(ctx, "node-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web-1 and node-1 gone", func(s Snapshot) bool {
		return len(s.Pods) == 1 && s.Pods[0].Name == "web-2" && len(s.Nodes) == 0
	}, m)
}

func TestWatchCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := Watch(ctx, fake.NewClientset(), NewModel(nil)); err == nil {
		t.Error("Watch with a canceled context returned nil")
	}
}

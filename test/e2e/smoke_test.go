//go:build e2e

package e2e

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestSmoke checks that the world itself works: fake nodes are Ready, kwok runs pods,
// Prometheus answers queries, and (when registered) promgate's APIs are discoverable.
func TestSmoke(t *testing.T) {
	t.Run("nodes are Ready", func(t *testing.T) {
		want, _ := strconv.Atoi(world.Env["E2E_NODES"])
		nodes, err := Clientset(t).CoreV1().Nodes().List(context.Background(), metav1.ListOptions{LabelSelector: "type=kwok"})
		if err != nil {
			t.Fatal(err)
		}
		if len(nodes.Items) != want {
			t.Fatalf("%d kwok nodes, want %d", len(nodes.Items), want)
		}
		for _, n := range nodes.Items {
			ready := false
			for _, c := range n.Status.Conditions {
				if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
					ready = true
				}
			}
			if !ready {
				t.Errorf("node %s is not Ready: %+v", n.Name, n.Status.Conditions)
			}
			if cpu := n.Status.Allocatable.Cpu().String(); cpu != "4" {
				t.Errorf("node %s: allocatable cpu %s, want 4", n.Name, cpu)
			}
		}
	})

	t.Run("kwok pods become Running", func(t *testing.T) {
		ns := CreateNamespace(t, "smoke")
		Apply(t, KwokDeployment{Namespace: ns, Name: "web", Replicas: 3}.YAML())
		start := time.Now()
		pods := WaitForPodsRunning(t, ns, "app=web", 3, 60*time.Second)
		t.Logf("3 pods Running and Ready in %v", time.Since(start).Round(time.Millisecond))

		for _, name := range pods {
			var pod corev1.Pod
			GetJSON(t, &pod, "pod", "-n", ns, name)
			if !strings.HasPrefix(pod.Spec.NodeName, "kwok-node-") || pod.Status.PodIP == "" {
				t.Errorf("pod %s: node %q, IP %q; want a kwok node and an IP", name, pod.Spec.NodeName, pod.Status.PodIP)
			}
		}
		out := MustKubectl(t, "rollout", "status", "deployment/web", "-n", ns, "--timeout=30s")
		if !strings.Contains(out, "successfully rolled out") {
			t.Errorf("rollout status: %s", out)
		}
	})

	t.Run("Prometheus answers queries", func(t *testing.T) {
		v := PromQuery(t, "vector(42)")
		if len(v) != 1 || v[0].Value != 42 {
			t.Fatalf("vector(42) = %+v", v)
		}
		if !world.Exporter {
			t.Log("no synthetic exporter in this world; skipping the scrape check")
			return
		}
		v = PromQuery(t, `up{job="promgate-test-exporter"}`)
		if len(v) != 1 || v[0].Value != 1 {
			t.Fatalf(`up{job="promgate-test-exporter"} = %+v, want one sample = 1`, v)
		}
	})

	t.Run("promgate APIs are discoverable", func(t *testing.T) {
		RequirePromgate(t)
		for _, gv := range []string{
			"custom.metrics.k8s.io/v1beta1",
			"custom.metrics.k8s.io/v1beta2",
			"external.metrics.k8s.io/v1beta1",
			"metrics.k8s.io/v1beta1",
		} {
			var list metav1.APIResourceList
			GetRaw(t, "/apis/"+gv, &list)
			if list.GroupVersion != gv {
				t.Errorf("GET /apis/%s: groupVersion %q", gv, list.GroupVersion)
			}
		}
	})
}

//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// hpaYAML renders an autoscaling/v2 HPA on deployment name with one metric
// (given as the YAML of one .spec.metrics item, indented 2 spaces).
func hpaYAML(ns, name string, minR, maxR int, metric string) string {
	return fmt.Sprintf(`apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: %[2]s
  namespace: %[1]s
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: %[2]s
  minReplicas: %[3]d
  maxReplicas: %[4]d
  behavior:
    scaleUp:
      stabilizationWindowSeconds: 0
    scaleDown:
      stabilizationWindowSeconds: 0
  metrics:
%[5]s`, ns, name, minR, maxR, metric)
}

// queueMetricYAML is an HPA's External metric on queue_messages_ready of
// queue jobs, with an AverageValue target (one item of .spec.metrics).
func queueMetricYAML(averageValue any) string {
	return fmt.Sprintf(`  - type: External
    external:
      metric:
        name: queue_messages_ready
        selector:
          matchLabels:
            queue: jobs
      target:
        type: AverageValue
        averageValue: "%v"
`, averageValue)
}

// waitReplicas waits until the deployment's spec.replicas, as set by the HPA,
// equals want, logging the HPA's status on failure.
func waitReplicas(t *testing.T, ns, name string, want int32, timeout time.Duration) {
	t.Helper()
	cs := Clientset(t)
	var last int32
	err := Poll(timeout, func() (bool, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		last = *d.Spec.Replicas
		return last == want, nil
	})
	if err != nil {
		hpa := Kubectl("get", "hpa", name, "-n", ns, "-o", "yaml")
		t.Fatalf("deployment %s/%s: %d replicas after %v, want %d\nHPA:\n%s", ns, name, last, timeout, want, hpa.Stdout)
	}
	t.Logf("deployment %s/%s reached %d replicas", ns, name, want)
}

// TestHPA drives real HorizontalPodAutoscalers (kube-controller-manager's
// controller, 5 s sync) with promgate's metrics: raising the load scales up,
// lowering it scales back down.
func TestHPA(t *testing.T) {
	t.Parallel() // independent of the others; TestDropIn and TestFault, which change shared state, run alone first
	RequirePromgate(t)
	RequireExporter(t)

	t.Run("Pods metric AverageValue", func(t *testing.T) {
		t.Parallel()
		ns := CreateNamespace(t, "hpa-pods")
		Apply(t, KwokDeployment{Namespace: ns, Name: "web", Replicas: 1, PodAnnotations: map[string]string{"e2e.promgate.io/rps": "2"}}.YAML())
		Apply(t, hpaYAML(ns, "web", 1, 4, `  - type: Pods
    pods:
      metric:
        name: http_requests_per_second
      target:
        type: AverageValue
        averageValue: "10"
`))
		WaitForPodsRunning(t, ns, "app=web", 1, 90*time.Second)
		time.Sleep(10 * time.Second)
		waitReplicas(t, ns, "web", 1, 30*time.Second)
		// Each pod now serves 30 req/s, three times the target: the HPA
		// scales up to its maximum (new pods get the same rate).
		exporterControl(t, "/control/http", map[string]string{"namespace": ns, "app": "web", "rps": "30"})
		waitReplicas(t, ns, "web", 4, 3*time.Minute)
		exporterControl(t, "/control/http", map[string]string{"namespace": ns, "app": "web", "rps": "1"})
		waitReplicas(t, ns, "web", 1, 3*time.Minute)
	})

	t.Run("External metric AverageValue", func(t *testing.T) {
		t.Parallel()
		ns := CreateNamespace(t, "hpa-ext")
		exporterControl(t, "/control/queue", map[string]string{"namespace": ns, "queue": "jobs", "value": "5"})
		Apply(t, KwokDeployment{Namespace: ns, Name: "worker", Replicas: 1}.YAML())
		Apply(t, hpaYAML(ns, "worker", 1, 5, queueMetricYAML(10)))
		WaitForPodsRunning(t, ns, "app=worker", 1, 90*time.Second)
		// 50 messages at 10 per replica: 5 replicas.
		exporterControl(t, "/control/queue", map[string]string{"namespace": ns, "queue": "jobs", "value": "50"})
		waitReplicas(t, ns, "worker", 5, 3*time.Minute)
		exporterControl(t, "/control/queue", map[string]string{"namespace": ns, "queue": "jobs", "value": "3"})
		waitReplicas(t, ns, "worker", 1, 3*time.Minute)
	})

	t.Run("Object metric on a Service", func(t *testing.T) {
		t.Parallel()
		ns := CreateNamespace(t, "hpa-obj")
		Apply(t, KwokDeployment{Namespace: ns, Name: "front", Replicas: 1, PodAnnotations: map[string]string{"e2e.promgate.io/rps": "5"}}.YAML())
		Apply(t, serviceYAML(ns, "front"))
		Apply(t, hpaYAML(ns, "front", 1, 3, `  - type: Object
    object:
      describedObject:
        apiVersion: v1
        kind: Service
        name: front
      metric:
        name: http_requests_per_second
      target:
        type: Value
        value: "20"
`))
		WaitForPodsRunning(t, ns, "app=front", 1, 90*time.Second)
		exporterControl(t, "/control/http", map[string]string{"namespace": ns, "app": "front", "rps": "50"})
		waitReplicas(t, ns, "front", 3, 3*time.Minute)
		exporterControl(t, "/control/http", map[string]string{"namespace": ns, "app": "front", "rps": "1"})
		waitReplicas(t, ns, "front", 1, 3*time.Minute)
	})
}

// TestHPAScaleToZero drives an HPA with minReplicas 0 (HPAScaleToZero,
// beta and on by default in Kubernetes 1.37) on an External metric, a
// queue's length: an empty queue scales the workload to zero, messages
// scale it up from zero, and an empty queue back to zero. promgate answers
// the queue's value whether or not the workload has pods.
func TestHPAScaleToZero(t *testing.T) {
	t.Parallel() // independent of the others; TestDropIn and TestFault, which change shared state, run alone first
	RequirePromgate(t)
	RequireExporter(t)
	ns := CreateNamespace(t, "zero")
	exporterControl(t, "/control/queue", map[string]string{"namespace": ns, "queue": "jobs", "value": "0"})
	Apply(t, KwokDeployment{Namespace: ns, Name: "worker", Replicas: 1}.YAML())
	Apply(t, hpaYAML(ns, "worker", 0, 5, queueMetricYAML(10)))
	waitReplicas(t, ns, "worker", 0, 3*time.Minute)
	// At zero replicas the queue is still read: 30 messages, 10 per replica.
	exporterControl(t, "/control/queue", map[string]string{"namespace": ns, "queue": "jobs", "value": "30"})
	waitReplicas(t, ns, "worker", 3, 3*time.Minute)
	WaitForPodsRunning(t, ns, "app=worker", 3, 90*time.Second)
	exporterControl(t, "/control/queue", map[string]string{"namespace": ns, "queue": "jobs", "value": "0"})
	waitReplicas(t, ns, "worker", 0, 3*time.Minute)
}

// TestHPAScaleToZeroObject scales a Deployment from zero and back on an
// Object metric about its Service: the requests ingress-nginx counts for it
// (nginx_ingress_controller_requests), which exist while the Service has no
// pods. A metric that goes missing at N replicas is an error the HPA keeps
// its replicas on, never a zero it scales down to.
func TestHPAScaleToZeroObject(t *testing.T) {
	t.Parallel() // independent of the others; TestDropIn and TestFault, which change shared state, run alone first
	RequirePromgate(t)
	RequireExporter(t)
	ns := CreateNamespace(t, "zero-obj")
	ingress := func(rps string) {
		exporterControl(t, "/control/ingress", map[string]string{"namespace": ns, "service": "api", "rps": rps})
	}
	ingress("0")
	Apply(t, KwokDeployment{Namespace: ns, Name: "api", Replicas: 1}.YAML())
	Apply(t, fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: api, namespace: %s}
spec:
  selector: {app: api}
  ports: [{port: 80}]
`, ns))
	Apply(t, hpaYAML(ns, "api", 0, 5, `  - type: Object
    object:
      describedObject: {apiVersion: v1, kind: Service, name: api}
      metric: {name: ingress_requests_per_second}
      target: {type: AverageValue, averageValue: "10"}
`))
	waitReplicas(t, ns, "api", 0, 3*time.Minute)
	// At zero replicas the Service's rate is still read: 25 req/s, 10 per replica.
	ingress("25")
	waitReplicas(t, ns, "api", 3, 3*time.Minute)
	WaitForPodsRunning(t, ns, "app=api", 3, 90*time.Second)

	// The series goes away (the ingress controller is not scraped): the
	// metric is an error, and the HPA keeps its 3 replicas.
	req, err := http.NewRequest(http.MethodDelete, world.ExporterURL+"/control/ingress?namespace="+ns+"&service=api", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	path := "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + ns + "/services/api/ingress_requests_per_second"
	if err := Poll(3*time.Minute, func() (bool, error) { return !Kubectl("get", "--raw", path).OK(), nil }); err != nil {
		t.Fatalf("the metric of a Service whose series are gone is still answered: %v", err)
	}
	cs := Clientset(t)
	for end := time.Now().Add(45 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Second) {
		d, err := cs.AppsV1().Deployments(ns).Get(context.Background(), "api", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if *d.Spec.Replicas != 3 {
			t.Fatalf("with its metric failing, the HPA set %d replicas, want 3 kept", *d.Spec.Replicas)
		}
	}
	// Back, at 0 req/s: to zero.
	ingress("0")
	waitReplicas(t, ns, "api", 0, 4*time.Minute)
}

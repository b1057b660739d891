//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Values only namespace B has: a leak shows as one of them (or B's name) in A's answers.
const (
	isoRPSA, isoRPSB     = 3.0, 17.0 // per pod; 2 pods each, so services and namespaces 6 and 34
	isoQueueA, isoQueueB = 11.0, 99.0
	isoSecretQueueB      = 77.0 // a queue only B has
	isoCPUB              = "700m"
)

// TestIsolation: a ServiceAccount with metrics rights only in namespace A reads A's values and
// nothing of namespace B by any path, name or selector, through kube-apiserver and directly
// against promgate; one without rights reads nothing.
func TestIsolation(t *testing.T) {
	t.Parallel() // independent of the others; TestDropIn and TestFault, which change shared state, run alone first
	RequirePromgate(t)
	RequireExporter(t)
	a := CreateNamespace(t, "tenant-a")
	b := CreateNamespace(t, "tenant-b")
	web := map[string]string{"app": "web"} // the same labels in both namespaces
	Apply(t, KwokDeployment{Namespace: a, Name: "web-a", Replicas: 2, Labels: web,
		PodAnnotations: map[string]string{"e2e.promgate.io/rps": fmt.Sprint(isoRPSA)}}.YAML())
	Apply(t, KwokDeployment{Namespace: b, Name: "web-b", Replicas: 2, Labels: web,
		PodAnnotations: map[string]string{"e2e.promgate.io/rps": fmt.Sprint(isoRPSB), "e2e.promgate.io/cpu": isoCPUB}}.YAML())
	Apply(t, serviceYAML(a, "web"))
	Apply(t, serviceYAML(b, "web"))
	exporterControl(t, "/control/queue", map[string]string{"namespace": a, "queue": "jobs", "value": fmt.Sprint(isoQueueA)})
	exporterControl(t, "/control/queue", map[string]string{"namespace": b, "queue": "jobs", "value": fmt.Sprint(isoQueueB)})
	exporterControl(t, "/control/queue", map[string]string{"namespace": b, "queue": "secret", "value": fmt.Sprint(isoSecretQueueB)})
	t.Cleanup(func() {
		for _, q := range []struct{ ns, q string }{{a, "jobs"}, {b, "jobs"}, {b, "secret"}} {
			req, _ := http.NewRequest(http.MethodDelete, world.ExporterURL+"/control/queue?namespace="+q.ns+"&queue="+q.q, nil)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	})
	ApplyWithCleanup(t, `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: e2e-isolation-metrics-reader
rules:
- apiGroups: [custom.metrics.k8s.io, external.metrics.k8s.io]
  resources: ["*"]
  verbs: [get, list]
- apiGroups: [metrics.k8s.io]
  resources: [pods]
  verbs: [get, list]
`)
	Apply(t, fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata: {name: reader, namespace: %[1]s}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: nobody, namespace: %[1]s}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: metrics-reader, namespace: %[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: e2e-isolation-metrics-reader}
subjects:
- {kind: ServiceAccount, name: reader, namespace: %[1]s}
`, a))
	podsA := WaitForPodsRunning(t, a, "app=web", 2, 90*time.Second)
	podsB := WaitForPodsRunning(t, b, "app=web", 2, 90*time.Second)
	token := func(sa string) string {
		return strings.TrimSpace(MustKubectl(t, "create", "token", sa, "-n", a, "--duration=1h"))
	}
	readerTok, nobodyTok := token("reader"), token("nobody")
	promgateCA := world.Env["E2E_PROMGATE_CA"]
	const promgateName = "promgate.promgate.svc" // the SAN of promgate's serving certificate
	clients := []struct {
		name   string
		reader apiGetter
		nobody apiGetter
	}{
		{"through kube-apiserver",
			tokenGetter(t, world.APIServerURL, world.Env["E2E_PKI_DIR"]+"/ca.crt", "", readerTok),
			tokenGetter(t, world.APIServerURL, world.Env["E2E_PKI_DIR"]+"/ca.crt", "", nobodyTok)},
		{"directly to promgate",
			tokenGetter(t, world.PromgateURL, promgateCA, promgateName, readerTok),
			tokenGetter(t, world.PromgateURL, promgateCA, promgateName, nobodyTok)},
	}

	cm2, cm1 := "/apis/custom.metrics.k8s.io/v1beta2", "/apis/custom.metrics.k8s.io/v1beta1"
	em, mm := "/apis/external.metrics.k8s.io/v1beta1", "/apis/metrics.k8s.io/v1beta1"
	rps := "http_requests_per_second"
	q := url.QueryEscape

	// Positive controls: admin sees both namespaces' values (rates need a full window), the
	// reader sees A's by every client.
	admin := adminGetter(t)
	waitAnswer := func(g apiGetter, path string, want map[string]float64) {
		t.Helper()
		var last apiAnswer
		err := Poll(150*time.Second, func() (bool, error) {
			last = g.get(context.Background(), path, nil)
			got, err := answerValues(last)
			if err != nil || len(got) != len(want) {
				return false, err
			}
			for k, v := range want {
				if g, ok := got[k]; !ok || math.Abs(g-v) > v*rateTolerance {
					return false, nil
				}
			}
			return true, nil
		})
		if err != nil {
			t.Fatalf("GET %s: want %v: %v; last answer %s", path, want, err, last)
		}
	}
	each := func(names []string, v float64) map[string]float64 {
		m := map[string]float64{}
		for _, n := range names {
			m[n] = v
		}
		return m
	}
	waitAnswer(admin, cm2+"/namespaces/"+b+"/pods/*/"+rps, each(podsB, isoRPSB))
	waitAnswer(admin, em+"/namespaces/"+b+"/queue_messages_ready", map[string]float64{"jobs": isoQueueB, "secret": isoSecretQueueB})
	waitAnswer(admin, mm+"/namespaces/"+b+"/pods", each(podsB, 0.7))
	for _, c := range clients {
		waitAnswer(c.reader, cm2+"/namespaces/"+a+"/pods/*/"+rps, each(podsA, isoRPSA))
		waitAnswer(c.reader, cm1+"/namespaces/"+a+"/services/web/"+rps, map[string]float64{"web": 2 * isoRPSA})
		waitAnswer(c.reader, em+"/namespaces/"+a+"/queue_messages_ready", map[string]float64{"jobs": isoQueueA})
		waitAnswer(c.reader, mm+"/namespaces/"+a+"/pods", each(podsA, 0.1))
	}

	// Everything a reader of A might try to reach B with.
	attempts := []string{
		cm2 + "/namespaces/" + b + "/pods/*/" + rps,
		cm1 + "/namespaces/" + b + "/pods/*/" + rps,
		cm2 + "/namespaces/" + b + "/pods/" + podsB[0] + "/" + rps,
		cm2 + "/namespaces/" + b + "/services/web/" + rps,
		cm2 + "/namespaces/" + b + "/metrics/" + rps,
		cm2 + "/namespaces/*/metrics/" + rps,
		cm2 + "/pods/*/" + rps,
		cm2 + "/services/*/" + rps,
		cm2 + "/namespaces/" + a + "/pods/" + podsB[0] + "/" + rps,
		cm2 + "/namespaces/" + a + "/pods/*/" + rps + "?labelSelector=" + q("namespace="+b),
		cm2 + "/namespaces/" + a + "/pods/*/" + rps + "?metricLabelSelector=" + q("namespace="+b),
		cm2 + "/namespaces/" + a + "/pods/*/" + rps + "?metricLabelSelector=" + q("namespace in ("+a+","+b+")"),
		cm2 + "/namespaces/" + a + "/services/web/" + rps + "?metricLabelSelector=" + q("namespace="+b),
		cm2 + "/namespaces/" + a + "/metrics/" + rps + "?metricLabelSelector=" + q("namespace!="+a),
		cm2 + "/namespaces/" + a + "/../" + b + "/pods/*/" + rps,
		cm2 + "/namespaces/" + a + "/pods/..%2F..%2F" + b + "%2Fpods%2F%2A/" + rps,
		cm2 + "/namespaces/" + a + "%2F..%2F" + b + "/pods/*/" + rps,
		cm2 + "/namespaces/" + a + "/pods/%2E%2E/" + rps,
		cm2 + "/namespaces/" + a + "/pods/" + podsA[0] + "%2F..%2F..%2F" + b + "/" + rps,
		em + "/namespaces/" + b + "/queue_messages_ready",
		em + "/namespaces/" + b + "/queue_messages_ready?labelSelector=" + q("queue=jobs"),
		em + "/namespaces/" + a + "/queue_messages_ready?labelSelector=" + q("namespace="+b),
		em + "/namespaces/" + a + "/queue_messages_ready?labelSelector=" + q("namespace in ("+a+","+b+")"),
		em + "/namespaces/" + a + "/queue_messages_ready?labelSelector=" + q("namespace!="+a),
		em + "/namespaces/" + a + "/queue_messages_ready?labelSelector=" + q("queue=secret"),
		em + "/namespaces/" + a + "/queue_messages_ready?labelSelector=" + q("!namespace"),
		em + "/namespaces/*/queue_messages_ready",
		em + "/namespaces/" + a + "%2F..%2F" + b + "/queue_messages_ready",
		em + "/namespaces/" + a + "/../" + b + "/queue_messages_ready",
		em + "/namespaces/" + a + "/queue_messages_ready%2F..%2F..%2F" + b + "%2Fqueue_messages_ready",
		mm + "/namespaces/" + b + "/pods",
		mm + "/namespaces/" + b + "/pods/" + podsB[0],
		mm + "/namespaces/" + a + "/pods/" + podsB[0],
		mm + "/pods",
		mm + "/namespaces/" + a + "/pods?labelSelector=" + q("app=web") + "&fieldSelector=" + q("metadata.namespace="+b),
	}
	leak := leakDetector{ns: b, pods: podsB, values: []float64{isoRPSB, 2 * isoRPSB, isoQueueB, isoSecretQueueB, 0.7}}
	spoof := http.Header{"X-Remote-User": {"system:admin"}, "X-Remote-Group": {"system:masters"}}
	for _, c := range clients {
		t.Run("reader of A "+c.name, func(t *testing.T) {
			for _, path := range attempts {
				leak.check(t, path, c.reader.get(context.Background(), path, nil))
			}
		})
		t.Run("reader of A "+c.name+" with spoofed front-proxy headers", func(t *testing.T) {
			for _, path := range attempts[:6] {
				leak.check(t, path, c.reader.get(context.Background(), path, spoof))
			}
		})
		t.Run("no RBAC "+c.name, func(t *testing.T) {
			for _, path := range []string{
				cm2 + "/namespaces/" + a + "/pods/*/" + rps,
				cm1 + "/namespaces/" + a + "/services/web/" + rps,
				em + "/namespaces/" + a + "/queue_messages_ready",
				mm + "/namespaces/" + a + "/pods",
			} {
				if ans := c.nobody.get(context.Background(), path, nil); ans.Code != http.StatusForbidden {
					t.Errorf("GET %s without RBAC: %s, want 403", path, ans)
				}
			}
		})
	}
	t.Run("front-proxy headers without the front-proxy certificate", func(t *testing.T) {
		anon := tokenGetter(t, world.PromgateURL, promgateCA, promgateName, "")
		for _, path := range attempts[:2] {
			if ans := anon.get(context.Background(), path, spoof); ans.Code != http.StatusUnauthorized && ans.Code != http.StatusForbidden {
				t.Errorf("GET %s with only X-Remote-User/Group headers: %s, want 401 or 403", path, ans)
			}
		}
	})
	t.Run("impersonating a user without RBAC", func(t *testing.T) {
		r := Kubectl("get", "--raw", cm2+"/namespaces/"+a+"/pods/*/"+rps, "--as=e2e-isolation-nobody")
		if r.OK() || !strings.Contains(r.Stderr, "Forbidden") {
			t.Errorf("want Forbidden, got %s", r)
		}
	})
}

// answerValues reads the object (or queue) -> value pairs of a 200 answer of any of the three
// APIs; it fails on any other answer.
func answerValues(a apiAnswer) (map[string]float64, error) {
	if a.Err != nil || a.Code != http.StatusOK {
		return nil, fmt.Errorf("%s", a)
	}
	var l struct {
		Items []struct {
			DescribedObject struct{ Name string } `json:"describedObject"`
			MetricLabels    map[string]string     `json:"metricLabels"`
			Value           string                `json:"value"`
			Metadata        struct{ Name string } `json:"metadata"`
			Containers      []struct {
				Usage map[string]string `json:"usage"`
			} `json:"containers"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(a.Body), &l); err != nil {
		return nil, fmt.Errorf("decoding %s: %v", truncate(a.Body, 300), err)
	}
	out := map[string]float64{}
	for _, it := range l.Items {
		switch {
		case it.Metadata.Name != "": // PodMetrics
			for _, c := range it.Containers {
				qty, err := resource.ParseQuantity(c.Usage["cpu"])
				if err != nil {
					return nil, err
				}
				out[it.Metadata.Name] += qty.AsApproximateFloat64()
			}
		default:
			name := it.DescribedObject.Name
			if name == "" {
				name = it.MetricLabels["queue"]
			}
			qty, err := resource.ParseQuantity(it.Value)
			if err != nil {
				return nil, err
			}
			out[name] = qty.AsApproximateFloat64()
		}
	}
	return out, nil
}

// leakDetector fails a test when an answer carries anything of namespace ns: its name, one of
// its pods, or a value only it has.
type leakDetector struct {
	ns     string
	pods   []string
	values []float64
}

// check accepts a refusal (400, 403, 404) or a 200 without anything of the other namespace.
func (d leakDetector) check(t *testing.T, path string, a apiAnswer) {
	t.Helper()
	switch {
	case a.Err != nil:
		t.Errorf("GET %s: %v", path, a.Err)
		return
	case a.Code == http.StatusForbidden || a.Code == http.StatusNotFound || a.Code == http.StatusBadRequest:
		t.Logf("GET %s: HTTP %d %s", path, a.Code, a.Reason)
		return
	case a.Code != http.StatusOK:
		t.Errorf("GET %s: %s (want a refusal or an answer without namespace %s)", path, a, d.ns)
		return
	}
	// Where an answer names objects: not the echoed metric selector, which holds what was asked.
	var named struct {
		Items []struct {
			DescribedObject struct{ Namespace, Name string } `json:"describedObject"`
			Metadata        struct{ Namespace, Name string } `json:"metadata"`
			MetricLabels    map[string]string                `json:"metricLabels"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(a.Body), &named); err != nil {
		t.Errorf("GET %s: decoding: %v", path, err)
		return
	}
	for _, it := range named.Items {
		fields := []string{it.DescribedObject.Namespace, it.DescribedObject.Name, it.Metadata.Namespace, it.Metadata.Name}
		for _, v := range it.MetricLabels {
			fields = append(fields, v)
		}
		for _, f := range fields {
			for _, s := range append([]string{d.ns}, d.pods...) {
				if f == s {
					t.Errorf("LEAK: GET %s answers with %q of the other namespace: %s", path, s, truncate(a.Body, 600))
					return
				}
			}
		}
	}
	values, err := answerValues(a)
	if err != nil {
		t.Errorf("GET %s: %v", path, err)
		return
	}
	for name, v := range values {
		for _, bv := range d.values {
			if math.Abs(v-bv) <= bv*rateTolerance {
				t.Errorf("LEAK: GET %s: %s = %v, a value only namespace %s has: %s", path, name, v, d.ns, truncate(a.Body, 600))
			}
		}
	}
	t.Logf("GET %s: HTTP 200 with %v", path, values)
}

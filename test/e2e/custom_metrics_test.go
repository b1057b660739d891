//go:build e2e

package e2e

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// rateTolerance is how far a served rate may be from the exporter's exact
// rate: rate() over a full [1m] window of a counter scraped every second is
// exact up to the scrape jitter.
const rateTolerance = 0.03

// metricValueList is the part of custom.metrics.k8s.io's MetricValueList
// the tests read.
type metricValueList struct {
	Kind  string `json:"kind"`
	Items []struct {
		DescribedObject struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Namespace  string `json:"namespace"`
			Name       string `json:"name"`
		} `json:"describedObject"`
		Metric struct {
			Name string `json:"name"`
		} `json:"metric"`
		MetricName    string            `json:"metricName"` // v1beta1
		MetricLabels  map[string]string `json:"metricLabels"`
		Timestamp     time.Time         `json:"timestamp"`
		WindowSeconds *int64            `json:"windowSeconds"`
		Window        *int64            `json:"window"`
		Value         string            `json:"value"`
	} `json:"items"`
}

// exporterControl posts a control request to the synthetic exporter.
func exporterControl(t testing.TB, path string, params map[string]string) {
	t.Helper()
	q := url.Values{}
	for k, v := range params {
		q.Set(k, v)
	}
	resp, err := http.Post(world.ExporterURL+path+"?"+q.Encode(), "text/plain", nil)
	if err != nil {
		t.Fatalf("exporter %s: %v", path, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("exporter %s?%s: %s", path, q.Encode(), resp.Status)
	}
}

// rawList GETs a metrics API path; it returns the list, or the error output.
func rawList(path string) (metricValueList, error) {
	var l metricValueList
	r := Kubectl("get", "--raw", path)
	if !r.OK() {
		return l, fmt.Errorf("%s", strings.TrimSpace(r.Stderr))
	}
	if err := decodeJSON(r.Stdout, &l); err != nil {
		return l, err
	}
	return l, nil
}

func near(got, want float64) bool {
	if want == 0 {
		return math.Abs(got) < 1e-3
	}
	return math.Abs(got-want)/math.Abs(want) <= rateTolerance
}

// waitValues polls path until every expected object has its value, within
// tolerance, and no other object is listed.
func waitValues(t *testing.T, path string, want map[string]float64) metricValueList {
	t.Helper()
	var last metricValueList
	var lastErr error
	err := Poll(150*time.Second, func() (bool, error) {
		l, err := rawList(path)
		last, lastErr = l, err
		if err != nil {
			return false, nil
		}
		if len(l.Items) != len(want) {
			return false, nil
		}
		for _, it := range l.Items {
			name := it.DescribedObject.Name
			if name == "" { // external metrics: identified by their queue label
				name = it.MetricLabels["queue"]
			}
			w, ok := want[name]
			if !ok || !near(parseQuantity(t, it.Value), w) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("%s: want %v within %.0f%%; last answer %+v (error %v)", path, want, rateTolerance*100, last.Items, lastErr)
	}
	return last
}

func TestCustomAndExternalMetrics(t *testing.T) {
	t.Parallel() // independent of the others; TestDropIn and TestFault, which change shared state, run alone first
	RequirePromgate(t)
	RequireExporter(t)
	ns := CreateNamespace(t, "shop")
	Apply(t, KwokDeployment{Namespace: ns, Name: "web", Replicas: 3, PodAnnotations: map[string]string{
		"e2e.promgate.io/rps": "10", "e2e.promgate.io/error-ratio": "0.2",
	}}.YAML())
	Apply(t, KwokDeployment{Namespace: ns, Name: "api", Replicas: 2, PodAnnotations: map[string]string{
		"e2e.promgate.io/rps": "4",
	}}.YAML())
	Apply(t, serviceYAML(ns, "web"))
	web := WaitForPodsRunning(t, ns, "app=web", 3, 90*time.Second)
	api := WaitForPodsRunning(t, ns, "app=api", 2, 90*time.Second)

	all := map[string]float64{}
	webOnly := map[string]float64{}
	for _, p := range web {
		all[p], webOnly[p] = 10, 10
	}
	for _, p := range api {
		all[p] = 4
	}

	t.Run("discovery lists the metrics", func(t *testing.T) {
		for _, v := range []string{"v1beta1", "v1beta2"} {
			want := []string{"pods/http_requests_per_second", "pods/http_requests_5xx_per_second",
				"services/http_requests_per_second", "namespaces/http_requests_per_second"}
			WaitFor(t, 90*time.Second, "custom.metrics.k8s.io/"+v+" discovery", func() (bool, error) {
				names := apiResourceNames(t, "/apis/custom.metrics.k8s.io/"+v)
				for _, w := range want {
					if !names[w] {
						return false, nil
					}
				}
				return true, nil
			})
		}
	})

	t.Run("pods wildcard without and with labelSelector", func(t *testing.T) {
		base := "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + ns + "/pods/*/http_requests_per_second"
		l := waitValues(t, base, all)
		for _, it := range l.Items {
			if it.DescribedObject.Kind != "Pod" || it.DescribedObject.Namespace != ns || it.Metric.Name != "http_requests_per_second" {
				t.Errorf("item %+v: want a Pod in %s and metric http_requests_per_second", it.DescribedObject, ns)
			}
			if it.WindowSeconds == nil || *it.WindowSeconds != 60 {
				t.Errorf("windowSeconds = %v, want 60 (the rule's [1m])", it.WindowSeconds)
			}
			if age := time.Since(it.Timestamp); age < 0 || age > 30*time.Second {
				t.Errorf("timestamp %v is not the sample's recent time (age %v)", it.Timestamp, age)
			}
		}
		waitValues(t, base+"?labelSelector="+url.QueryEscape("app=web"), webOnly)
		waitValues(t, "/apis/custom.metrics.k8s.io/v1beta1/namespaces/"+ns+"/pods/*/http_requests_per_second?labelSelector="+url.QueryEscape("app=web"), webOnly)
	})

	t.Run("5xx per pod", func(t *testing.T) {
		want := map[string]float64{}
		for _, p := range web {
			want[p] = 2
		}
		waitValues(t, "/apis/custom.metrics.k8s.io/v1beta2/namespaces/"+ns+"/pods/*/http_requests_5xx_per_second?labelSelector=app%3Dweb", want)
	})

	t.Run("single pod", func(t *testing.T) {
		waitValues(t, "/apis/custom.metrics.k8s.io/v1beta2/namespaces/"+ns+"/pods/"+web[0]+"/http_requests_per_second", map[string]float64{web[0]: 10})
	})

	t.Run("service object", func(t *testing.T) {
		l := waitValues(t, "/apis/custom.metrics.k8s.io/v1beta2/namespaces/"+ns+"/services/web/http_requests_per_second", map[string]float64{"web": 30})
		if o := l.Items[0].DescribedObject; o.Kind != "Service" || o.APIVersion != "v1" {
			t.Errorf("described object %+v, want kind Service, apiVersion v1", o)
		}
	})

	t.Run("namespace metric", func(t *testing.T) {
		l := waitValues(t, "/apis/custom.metrics.k8s.io/v1beta2/namespaces/"+ns+"/metrics/http_requests_per_second", map[string]float64{ns: 38})
		if k := l.Items[0].DescribedObject.Kind; k != "Namespace" {
			t.Errorf("kind %q, want Namespace", k)
		}
	})

	t.Run("rate changes at run time", func(t *testing.T) {
		exporterControl(t, "/control/http", map[string]string{"namespace": ns, "app": "api", "rps": "7"})
		want := map[string]float64{}
		for _, p := range api {
			want[p] = 7
		}
		waitValues(t, "/apis/custom.metrics.k8s.io/v1beta2/namespaces/"+ns+"/pods/*/http_requests_per_second?labelSelector=app%3Dapi", want)
	})

	t.Run("external metric with labelSelector", func(t *testing.T) {
		exporterControl(t, "/control/queue", map[string]string{"namespace": ns, "queue": "orders", "value": "42"})
		exporterControl(t, "/control/queue", map[string]string{"namespace": ns, "queue": "refunds", "value": "5"})
		WaitFor(t, 90*time.Second, "external metric discovery", func() (bool, error) {
			return apiResourceNames(t, "/apis/external.metrics.k8s.io/v1beta1")["queue_messages_ready"], nil
		})
		path := "/apis/external.metrics.k8s.io/v1beta1/namespaces/" + ns + "/queue_messages_ready"
		waitValues(t, path+"?labelSelector="+url.QueryEscape("queue=orders"), map[string]float64{"orders": 42})
		waitValues(t, path+"?labelSelector="+url.QueryEscape("queue in (orders,refunds)"), map[string]float64{"orders": 42, "refunds": 5})
		// Another namespace sees none of this namespace's queues.
		l, err := rawList("/apis/external.metrics.k8s.io/v1beta1/namespaces/default/queue_messages_ready")
		if err != nil || len(l.Items) != 0 {
			t.Errorf("namespace default: %+v, %v; want an empty list", l.Items, err)
		}
	})

	t.Run("unknown metric is a 404 naming it", func(t *testing.T) {
		r := Kubectl("get", "--raw", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/"+ns+"/pods/*/no_such_metric")
		if r.OK() || !strings.Contains(r.Stderr, "NotFound") || !strings.Contains(r.Stderr, "no_such_metric") || !strings.Contains(r.Stderr, "pods") {
			t.Errorf("want NotFound naming no_such_metric and pods, got %s", r)
		}
	})

	t.Run("bad selector is a 400", func(t *testing.T) {
		r := Kubectl("get", "--raw", "/apis/external.metrics.k8s.io/v1beta1/namespaces/"+ns+"/queue_messages_ready?labelSelector="+url.QueryEscape("queue>3"))
		if r.OK() || !strings.Contains(r.Stderr, "BadRequest") {
			t.Errorf("want BadRequest, got %s", r)
		}
	})

	t.Run("user without RBAC is forbidden", func(t *testing.T) {
		r := Kubectl("get", "--raw", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/"+ns+"/pods/*/http_requests_per_second", "--as=e2e-nobody")
		if r.OK() || !strings.Contains(r.Stderr, "Forbidden") {
			t.Errorf("want Forbidden for a user without RBAC, got %s", r)
		}
	})
}

func serviceYAML(ns, name string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: %[2]s
  namespace: %[1]s
spec:
  selector:
    app: %[2]s
  ports:
  - port: 80
`, ns, name)
}

// apiResourceNames returns the resource names a group-version's discovery lists.
func apiResourceNames(t testing.TB, path string) map[string]bool {
	var rl struct {
		Resources []struct {
			Name string `json:"name"`
		} `json:"resources"`
	}
	r := Kubectl("get", "--raw", path)
	out := map[string]bool{}
	if !r.OK() {
		return out
	}
	if err := decodeJSON(r.Stdout, &rl); err != nil {
		return out
	}
	for _, res := range rl.Resources {
		out[res.Name] = true
	}
	return out
}

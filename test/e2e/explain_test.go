//go:build e2e

package e2e

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// explainPath is where promgate explains, through the aggregation layer.
const explainPath = "/apis/custom.metrics.k8s.io/v1beta2/explain"

// TestExplain asks the running promgate, through kube-apiserver, which rule
// serves a metric and which PromQL a request sends; for a metric no rule
// gives; and as users with and without the promgate-explain ClusterRole
// (deploy/base/rbac-explain.yaml) and the read of the metric explained.
func TestExplain(t *testing.T) {
	t.Parallel() // independent of the others; TestDropIn and TestFault, which change shared state, run alone first
	RequirePromgate(t)
	RequireExporter(t)
	ns := CreateNamespace(t, "explain")
	Apply(t, KwokDeployment{Namespace: ns, Name: "web", Replicas: 2, PodAnnotations: map[string]string{
		"e2e.promgate.io/rps": "5",
	}}.YAML())
	WaitForPodsRunning(t, ns, "app=web", 2, 90*time.Second)

	known := explainPath + "?" + url.Values{"metric": {"http_requests_per_second"}, "resource": {"pods"}, "namespace": {ns}, "run": {"true"}}.Encode()
	t.Run("known metric: the rule, the query and its values", func(t *testing.T) {
		var last Result
		WaitFor(t, 2*time.Minute, "explain to run the query for both pods", func() (bool, error) {
			last = Kubectl("get", "--raw", known)
			return last.OK() && strings.Contains(last.Stdout, "ran: 2 values"), nil
		})
		for _, want := range []string{"    serves it\n", "query (sent to default (http://", "http_requests_total", "for 2 objects"} {
			if !strings.Contains(last.Stdout, want) {
				t.Errorf("explain lacks %q:\n%s", want, last.Stdout)
			}
		}
		var rep struct {
			Plan *struct {
				Rule, Query string
				Samples     int
			}
			Rules []struct {
				Rule   string
				Serves bool
			}
		}
		GetRaw(t, known+"&format=json", &rep)
		if rep.Plan == nil || rep.Plan.Query == "" || rep.Plan.Samples != 2 || len(rep.Rules) == 0 {
			t.Errorf("JSON report %+v: want a plan with 2 samples and the serving rule", rep)
		}
	})

	t.Run("unknown metric: no rule serves it, and the 404 says where to look", func(t *testing.T) {
		out := MustKubectl(t, "get", "--raw", explainPath+"?metric=no_such_metric&resource=pods&namespace="+ns)
		if !strings.Contains(out, "nowhere: no rule serves a metric of that name") || !strings.Contains(out, "request: the server could not find the metric no_such_metric") {
			t.Errorf("explain of an unknown metric:\n%s", out)
		}
		r := Kubectl("get", "--raw", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/"+ns+"/pods/*/no_such_metric")
		if r.OK() || !strings.Contains(r.Stderr, "kubectl get --raw '"+explainPath+"?metric=no_such_metric&resource=pods'") {
			t.Errorf("want a 404 naming the explain URL, got %s", r)
		}
	})

	t.Run("promgate explain --server", func(t *testing.T) {
		bin := os.Getenv("PROMGATE_BIN")
		if bin == "" {
			bin = filepath.Join(world.Root, "bin", "promgate")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, bin, "explain", "--server", "--kubeconfig", world.Kubeconfig,
			"--metric", "http_requests_per_second", "--resource", "pods", "--namespace", ns).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "    serves it\n") {
			t.Errorf("promgate explain --server: %v\n%s", err, out)
		}
	})

	t.Run("RBAC: promgate-explain and the read of the metric explained", func(t *testing.T) {
		r := Kubectl("get", "--raw", known, "--as=e2e-explain-nobody")
		if r.OK() || !strings.Contains(r.Stderr, "Forbidden") {
			t.Errorf("want Forbidden for a user without promgate-explain, got %s", r)
		}
		ApplyWithCleanup(t, `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: e2e-explain-reader
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: promgate-explain
subjects:
  - apiGroup: rbac.authorization.k8s.io
    kind: User
    name: e2e-explain-reader
`)
		// promgate-explain alone: explain asks kube-apiserver whether the
		// caller may read the metric explained, there, and it may not.
		forbidden := `User "e2e-explain-reader" cannot get resource "pods/http_requests_per_second" in API group "custom.metrics.k8s.io" in the namespace "` + ns + `"`
		var last Result
		WaitFor(t, 30*time.Second, "the binding to take effect", func() (bool, error) {
			last = Kubectl("get", "--raw", known, "--as=e2e-explain-reader")
			return !last.OK() && strings.Contains(last.Stderr, forbidden), nil
		})
		// The role grants explain, not the metrics themselves.
		r = Kubectl("get", "--raw", "/apis/custom.metrics.k8s.io/v1beta2/namespaces/"+ns+"/pods/*/http_requests_per_second", "--as=e2e-explain-reader")
		if r.OK() || !strings.Contains(r.Stderr, "Forbidden") {
			t.Errorf("want Forbidden on the metric itself for e2e-explain-reader, got %s", r)
		}

		// With the read of the metric in ns: explain of ns, without the
		// series of every namespace; not of another namespace.
		ApplyWithCleanup(t, `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: e2e-explain-metric-reader
  namespace: `+ns+`
rules:
  - apiGroups: [custom.metrics.k8s.io]
    resources: [pods/http_requests_per_second]
    verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: e2e-explain-metric-reader
  namespace: `+ns+`
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: e2e-explain-metric-reader
subjects:
  - apiGroup: rbac.authorization.k8s.io
    kind: User
    name: e2e-explain-reader
`)
		WaitFor(t, 30*time.Second, "the role binding to take effect", func() (bool, error) {
			last = Kubectl("get", "--raw", known, "--as=e2e-explain-reader")
			return last.OK(), nil
		})
		for _, want := range []string{"serves it", "ran: 2 values", "left out: they are about every namespace"} {
			if !strings.Contains(last.Stdout, want) {
				t.Errorf("explain as e2e-explain-reader lacks %q:\n%s", want, last.Stdout)
			}
		}
		other := explainPath + "?" + url.Values{"metric": {"http_requests_per_second"}, "resource": {"pods"}, "namespace": {"kube-system"}, "run": {"true"}}.Encode()
		r = Kubectl("get", "--raw", other, "--as=e2e-explain-reader")
		if r.OK() || !strings.Contains(r.Stderr, `in the namespace "kube-system"`) || strings.Contains(r.Stdout+r.Stderr, "values") {
			t.Errorf("want Forbidden for another namespace, got %s", r)
		}
		cluster := explainPath + "?" + url.Values{"metric": {"http_requests_per_second"}, "resource": {"pods"}}.Encode()
		r = Kubectl("get", "--raw", cluster, "--as=e2e-explain-reader")
		if r.OK() || !strings.Contains(r.Stderr, "at the cluster scope") {
			t.Errorf("want Forbidden without a namespace (every namespace), got %s", r)
		}
	})
}

package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	corev1listers "k8s.io/client-go/listers/core/v1"
	restclient "k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/component-base/compatibility"
	"k8s.io/klog/v2"
	"k8s.io/metrics/pkg/apis/metrics"
	metricsclient "k8s.io/metrics/pkg/client/clientset/versioned"
	metricsapi "sigs.k8s.io/metrics-server/pkg/api"
	generatedopenapi "sigs.k8s.io/metrics-server/pkg/api/generated/openapi"
)

// The tests run every request through two real API servers: one with
// metrics-server's own storage (metricsapi.Install), one with this
// package's, installed the way cmd/promgate does (metricsapi.Build and
// InstallAPIGroup). Where the getter and listers work the answers must be
// the same bytes; where they fail, ours must serve their status.

func TestMain(m *testing.M) {
	// Both storages log every failure the tests provoke.
	fs := flag.NewFlagSet("klog", flag.PanicOnError)
	klog.InitFlags(fs)
	_ = fs.Set("logtostderr", "false")
	_ = fs.Set("stderrthreshold", "FATAL")
	klog.SetOutput(io.Discard)
	os.Exit(m.Run())
}

// newServer returns the handler of a generic API server set up by install.
func newServer(t *testing.T, install func(*genericapiserver.GenericAPIServer) error) http.Handler {
	t.Helper()
	cfg := genericapiserver.NewConfig(metricsapi.Codecs)
	cfg.ExternalAddress = "127.0.0.1:443"
	cfg.LoopbackClientConfig = &restclient.Config{}
	cfg.EffectiveVersion = compatibility.NewEffectiveVersionFromString("1.37", "", "")
	cfg.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(generatedopenapi.GetOpenAPIDefinitions,
		openapinamer.NewDefinitionNamer(metricsapi.Scheme))
	s, err := cfg.Complete(nil).New("metrics-test", genericapiserver.NewEmptyDelegate())
	if err != nil {
		t.Fatalf("creating the API server: %v", err)
	}
	if err := install(s); err != nil {
		t.Fatalf("installing metrics.k8s.io: %v", err)
	}
	return s.Handler
}

// servers are metrics-server's storage ("theirs") and ours over the same
// getter and listers.
func servers(t *testing.T, m metricsapi.MetricsGetter, pods cache.GenericLister, nodes corev1listers.NodeLister) (theirs, ours http.Handler) {
	theirs = newServer(t, func(s *genericapiserver.GenericAPIServer) error {
		return metricsapi.Install(m, pods, nodes, s, nil)
	})
	ours = newServer(t, func(s *genericapiserver.GenericAPIServer) error {
		info := metricsapi.Build(Pods(m, pods), Nodes(m, nodes))
		return s.InstallAPIGroup(&info)
	})
	return theirs, ours
}

type response struct {
	code        int
	contentType string
	body        []byte
}

// tableAccept asks for a Table, as kubectl get does.
const tableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io"

func do(t *testing.T, h http.Handler, path, accept string) response {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, path, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return response{code: rec.Code, contentType: rec.Header().Get("Content-Type"), body: rec.Body.Bytes()}
}

// status decodes a Status answer.
func status(t *testing.T, r response) metav1.Status {
	t.Helper()
	var s metav1.Status
	if err := json.Unmarshal(r.body, &s); err != nil || s.Kind != "Status" {
		t.Fatalf("answer is not a Status (%v): %s", err, r.body)
	}
	return s
}

var (
	ts     = metav1.NewTime(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	window = metav1.Duration{Duration: time.Minute}
)

func podMeta(ns, name string, lbls map[string]string) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls},
	}
}

func nodeObj(name string, lbls map[string]string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls}}
}

func podLister(t *testing.T, pods ...*metav1.PartialObjectMetadata) cache.GenericLister {
	t.Helper()
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, p := range pods {
		if err := idx.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	return cache.NewGenericLister(idx, corev1.Resource("pods"))
}

func nodeLister(t *testing.T, nodes ...*corev1.Node) corev1listers.NodeLister {
	t.Helper()
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, n := range nodes {
		if err := idx.Add(n); err != nil {
			t.Fatal(err)
		}
	}
	return corev1listers.NewNodeLister(idx)
}

func usage(cpu, mem string) corev1.ResourceList {
	return corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)}
}

// fixedGetter answers from fixed metrics, keyed "namespace/name" for pods
// and by name for nodes, in reverse order of the request (so that sorting
// is the storage's job). A key without metrics is left out, as a real
// getter leaves out an object without data.
type fixedGetter struct {
	pods  map[string][]metrics.ContainerMetrics
	nodes map[string]corev1.ResourceList
}

func (g fixedGetter) GetPodMetrics(pods ...*metav1.PartialObjectMetadata) ([]metrics.PodMetrics, error) {
	out := []metrics.PodMetrics{}
	for i := len(pods) - 1; i >= 0; i-- {
		p := pods[i]
		cs, ok := g.pods[p.Namespace+"/"+p.Name]
		if !ok {
			continue
		}
		out = append(out, metrics.PodMetrics{
			ObjectMeta: metav1.ObjectMeta{Namespace: p.Namespace, Name: p.Name, Labels: p.Labels, CreationTimestamp: ts},
			Timestamp:  ts, Window: window, Containers: cs,
		})
	}
	return out, nil
}

func (g fixedGetter) GetNodeMetrics(nodes ...*corev1.Node) ([]metrics.NodeMetrics, error) {
	out := []metrics.NodeMetrics{}
	for i := len(nodes) - 1; i >= 0; i-- {
		n := nodes[i]
		u, ok := g.nodes[n.Name]
		if !ok {
			continue
		}
		out = append(out, metrics.NodeMetrics{
			ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: n.Labels, CreationTimestamp: ts},
			Timestamp:  ts, Window: window, Usage: u,
		})
	}
	return out, nil
}

// world is a small cluster: pods in two namespaces (one without metrics, one
// whose first container has only CPU), nodes (one without metrics).
func world(t *testing.T) (fixedGetter, cache.GenericLister, corev1listers.NodeLister) {
	g := fixedGetter{
		pods: map[string][]metrics.ContainerMetrics{
			"default/web":   {{Name: "app", Usage: usage("250m", "64Mi")}, {Name: "sidecar", Usage: usage("10m", "8Mi")}},
			"default/db":    {{Name: "db", Usage: usage("1", "1Gi")}},
			"kube-system/x": {{Name: "cpu-only", Usage: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("5m")}}, {Name: "c", Usage: usage("1m", "1Mi")}},
		},
		nodes: map[string]corev1.ResourceList{
			"n2": usage("2", "4Gi"),
			"n1": usage("1500m", "3Gi"),
		},
	}
	pods := podLister(t,
		podMeta("default", "web", map[string]string{"app": "web"}),
		podMeta("default", "db", map[string]string{"app": "db"}),
		podMeta("default", "pending", map[string]string{"app": "web"}),
		podMeta("kube-system", "x", nil),
	)
	nodes := nodeLister(t,
		nodeObj("n1", map[string]string{"zone": "a"}),
		nodeObj("n2", map[string]string{"zone": "b"}),
		nodeObj("n3", map[string]string{"zone": "a"}),
	)
	return g, pods, nodes
}

const base = "/apis/metrics.k8s.io/v1beta1"

// requests are what kubectl top, kubectl get and the HPA controller send,
// and some they should not.
var requests = []struct {
	name, path, accept string
	wantCode           int
}{
	{"discovery", base, "", http.StatusOK},
	{"pods of a namespace", base + "/namespaces/default/pods", "", http.StatusOK},
	{"pods of every namespace", base + "/pods", "", http.StatusOK},
	{"pods by label", base + "/namespaces/default/pods?labelSelector=app%3Dweb", "", http.StatusOK},
	{"pods by set label", base + "/pods?labelSelector=app+in+(web,db)", "", http.StatusOK},
	{"pods by name field", base + "/namespaces/default/pods?fieldSelector=metadata.name%3Dweb", "", http.StatusOK},
	{"pods by namespace field", base + "/pods?fieldSelector=metadata.namespace%21%3Ddefault", "", http.StatusOK},
	{"pods by unknown field", base + "/pods?fieldSelector=spec.nodeName%3Dn1", "", http.StatusBadRequest},
	{"pods of an empty namespace", base + "/namespaces/empty/pods", "", http.StatusOK},
	{"bad label selector", base + "/namespaces/default/pods?labelSelector=%3D%3D%3D", "", http.StatusBadRequest},
	{"one pod", base + "/namespaces/default/pods/web", "", http.StatusOK},
	{"pod without metrics", base + "/namespaces/default/pods/pending", "", http.StatusNotFound},
	{"no such pod", base + "/namespaces/default/pods/nope", "", http.StatusNotFound},
	{"pod of another namespace", base + "/namespaces/kube-system/pods/web", "", http.StatusNotFound},
	{"pods table", base + "/namespaces/default/pods", tableAccept, http.StatusOK},
	{"pods table, every namespace", base + "/pods", tableAccept, http.StatusOK},
	{"pod table", base + "/namespaces/default/pods/web", tableAccept, http.StatusOK},
	{"empty pods table", base + "/namespaces/empty/pods", tableAccept, http.StatusOK},
	{"nodes", base + "/nodes", "", http.StatusOK},
	{"nodes by label", base + "/nodes?labelSelector=zone%3Da", "", http.StatusOK},
	{"nodes by name field", base + "/nodes?fieldSelector=metadata.name%3Dn2", "", http.StatusOK},
	{"nodes by unknown field", base + "/nodes?fieldSelector=spec.unschedulable%3Dtrue", "", http.StatusBadRequest},
	{"one node", base + "/nodes/n1", "", http.StatusOK},
	{"node without metrics", base + "/nodes/n3", "", http.StatusNotFound},
	{"no such node", base + "/nodes/nope", "", http.StatusNotFound},
	{"nodes table", base + "/nodes", tableAccept, http.StatusOK},
	{"node table", base + "/nodes/n2", tableAccept, http.StatusOK},
	{"namespaced nodes", base + "/namespaces/default/nodes", "", http.StatusNotFound},
}

func TestSameAnswersAsMetricsServer(t *testing.T) {
	g, pods, nodes := world(t)
	theirs, ours := servers(t, g, pods, nodes)
	for _, r := range requests {
		t.Run(r.name, func(t *testing.T) {
			want := do(t, theirs, r.path, r.accept)
			got := do(t, ours, r.path, r.accept)
			if want.code != r.wantCode {
				t.Fatalf("metrics-server's storage: %d, test expects %d: %s", want.code, r.wantCode, want.body)
			}
			if got.code != want.code || got.contentType != want.contentType {
				t.Errorf("got %d %s, metrics-server's storage %d %s", got.code, got.contentType, want.code, want.contentType)
			}
			if !bytes.Equal(got.body, want.body) {
				t.Errorf("body differs from metrics-server's storage\n got: %s\nwant: %s", got.body, want.body)
			}
		})
	}
}

// TestAnswers pins some of what the comparison above accepts, so that a
// change both storages share (a metrics-server upgrade) is noticed.
func TestAnswers(t *testing.T) {
	g, pods, nodes := world(t)
	_, ours := servers(t, g, pods, nodes)
	tests := []struct {
		path, accept string
		want         []string // in this order in the body
	}{
		{base + "/pods", "", []string{`"name":"db","namespace":"default"`, `"name":"web","namespace":"default"`, `"name":"x","namespace":"kube-system"`}},
		{base + "/namespaces/default/pods?labelSelector=app%3Dweb", "", []string{`"items":[{"metadata":{"name":"web"`}},
		{base + "/nodes", "", []string{`"name":"n1"`, `"name":"n2"`}},
		{base + "/nodes?fieldSelector=metadata.name%3Dn2", "", []string{`"items":[{"metadata":{"name":"n2"`}},
		{base + "/namespaces/default/pods", tableAccept,
			[]string{`"name":"cpu"`, `"name":"memory"`, `"name":"Window"`, `"cells":["db","1","1Gi","1m0s"]`, `"cells":["web","260m","72Mi","1m0s"]`}},
		// The first row's resources are the columns; a row without one shows 0.
		{base + "/namespaces/kube-system/pods", tableAccept, []string{`"cells":["x","6m","1Mi","1m0s"]`}},
		{base + "/nodes/n1", tableAccept, []string{`"cells":["n1","1500m","3Gi","1m0s"]`}},
		{base + "/namespaces/default/pods/pending", "", []string{`podmetrics.metrics.k8s.io \"default/pending\" not found`, `"reason":"NotFound"`}},
		{base + "/nodes/n3", "", []string{`nodemetrics.metrics.k8s.io \"n3\" not found`}},
		{base + "/nodes/nope", "", []string{`node \"nope\" not found`}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			body := string(do(t, ours, tt.path, tt.accept).body)
			rest := body
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("body lacks %s (after the previous expectation): %s", w, body)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

// fakeProm speaks Prometheus' /api/v1/query: code 200 answers every CPU query
// with cpu and every memory query with mem (the provider picks the series
// it asked for); any other code is an error answer.
func fakeProm(t *testing.T, code int, cpu, mem []map[string]string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if code != http.StatusOK {
			w.WriteHeader(code)
			fmt.Fprint(w, `{"status":"error","errorType":"unavailable","error":"tsdb is shutting down"}`)
			return
		}
		if r.URL.Path != "/api/v1/query" {
			http.NotFound(w, r)
			return
		}
		series := mem
		if strings.Contains(r.FormValue("query"), "cpu") {
			series = cpu
		}
		type sample struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		res := []sample{}
		for _, s := range series {
			m := map[string]string{}
			for k, v := range s {
				if k != "value" {
					m[k] = v
				}
			}
			res = append(res, sample{Metric: m, Value: [2]any{float64(ts.Unix()), s["value"]}})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": map[string]any{"resultType": "vector", "result": res}})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestSameAnswersWithTheProvider(t *testing.T) {
	cpu := []map[string]string{
		{"namespace": "default", "pod": "web", "container": "app", "value": "0.25"},
		{"namespace": "default", "pod": "db", "container": "db", "value": "1"},
		{"node": "n1", "value": "1.5"},
	}
	mem := []map[string]string{
		{"namespace": "default", "pod": "web", "container": "app", "value": "67108864"},
		{"namespace": "default", "pod": "db", "container": "db", "value": "1073741824"},
		{"node": "n1", "value": "3221225472"},
	}
	prom := fakeProm(t, http.StatusOK, cpu, mem)
	_, pods, nodes := world(t)
	theirs, ours := servers(t, pinCreation{newProvider(t, prom.URL)}, pods, nodes)
	for _, path := range []string{
		base + "/namespaces/default/pods", base + "/pods?labelSelector=app%3Dweb", base + "/namespaces/default/pods/db",
		base + "/namespaces/default/pods/pending", base + "/nodes", base + "/nodes/n1", base + "/nodes/n2",
	} {
		t.Run(path, func(t *testing.T) {
			want, got := do(t, theirs, path, ""), do(t, ours, path, "")
			if got.code != want.code || !bytes.Equal(got.body, want.body) {
				t.Errorf("got %d %s\nmetrics-server's storage: %d %s", got.code, got.body, want.code, want.body)
			}
			if path == base+"/nodes" && !strings.Contains(string(got.body), `"usage":{"cpu":"1500m","memory":"3Gi"}`) {
				t.Errorf("node list lacks n1's usage: %s", got.body)
			}
		})
	}
}

// pinCreation sets the creation time the provider stamps with the time of
// the call, so that two servers' answers compare byte for byte.
type pinCreation struct{ metricsapi.MetricsGetter }

func (p pinCreation) GetPodMetrics(pods ...*metav1.PartialObjectMetadata) ([]metrics.PodMetrics, error) {
	ms, err := p.MetricsGetter.GetPodMetrics(pods...)
	for i := range ms {
		ms[i].CreationTimestamp = ts
	}
	return ms, err
}

func (p pinCreation) GetNodeMetrics(nodes ...*corev1.Node) ([]metrics.NodeMetrics, error) {
	ms, err := p.MetricsGetter.GetNodeMetrics(nodes...)
	for i := range ms {
		ms[i].CreationTimestamp = ts
	}
	return ms, err
}

func TestBackendFailureIs503(t *testing.T) {
	prom := fakeProm(t, http.StatusServiceUnavailable, nil, nil)
	_, pods, nodes := world(t)
	theirs, ours := servers(t, newProvider(t, prom.URL), pods, nodes)
	for _, tt := range []struct{ path, accept, field string }{
		{base + "/namespaces/default/pods", "", "resourceRules."},
		{base + "/pods?labelSelector=app%3Dweb", "", "resourceRules."},
		{base + "/namespaces/default/pods/web", "", "resourceRules."},
		{base + "/namespaces/default/pods", tableAccept, "resourceRules."},
		{base + "/nodes", "", "nodeQuery"},
		{base + "/nodes/n1", "", "nodeQuery"},
		{base + "/nodes", tableAccept, "nodeQuery"},
	} {
		t.Run(tt.path+" "+tt.accept, func(t *testing.T) {
			if r := do(t, theirs, tt.path, tt.accept); r.code != http.StatusInternalServerError {
				t.Errorf("metrics-server's storage answered %d, the test expects its 500: %s", r.code, r.body)
			}
			r := do(t, ours, tt.path, tt.accept)
			s := status(t, r)
			if r.code != http.StatusServiceUnavailable || s.Code != http.StatusServiceUnavailable || s.Reason != metav1.StatusReasonServiceUnavailable {
				t.Errorf("got %d (status %d %s), want 503 ServiceUnavailable: %s", r.code, s.Code, s.Reason, r.body)
			}
			for _, want := range []string{prom.URL, tt.field} {
				if !strings.Contains(s.Message, want) {
					t.Errorf("message %q does not name %q", s.Message, want)
				}
			}
			if strings.Contains(s.Message, "tsdb is shutting down") {
				t.Errorf("message %q carries the backend's own text", s.Message)
			}
		})
	}
}

// TestClientSees503 checks what kubectl top and the HPA controller see: the
// metrics clientset reports a backend failure as ServiceUnavailable.
func TestClientSees503(t *testing.T) {
	prom := fakeProm(t, http.StatusServiceUnavailable, nil, nil)
	_, pods, nodes := world(t)
	_, ours := servers(t, newProvider(t, prom.URL), pods, nodes)
	srv := httptest.NewServer(ours)
	t.Cleanup(srv.Close)
	client, err := metricsclient.NewForConfig(&restclient.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.MetricsV1beta1().PodMetricses("default").List(t.Context(), metav1.ListOptions{LabelSelector: "app=web"})
	if !apierrors.IsServiceUnavailable(err) || !strings.Contains(err.Error(), prom.URL) {
		t.Errorf("pod metrics list: %v, want ServiceUnavailable naming %s", err, prom.URL)
	}
	_, err = client.MetricsV1beta1().NodeMetricses().Get(t.Context(), "n1", metav1.GetOptions{})
	if !apierrors.IsServiceUnavailable(err) || !strings.Contains(err.Error(), prom.URL) {
		t.Errorf("node metrics get: %v, want ServiceUnavailable naming %s", err, prom.URL)
	}
}

// failingGetter fails every call with err.
type failingGetter struct{ err error }

func (g failingGetter) GetPodMetrics(...*metav1.PartialObjectMetadata) ([]metrics.PodMetrics, error) {
	return nil, g.err
}

func (g failingGetter) GetNodeMetrics(...*corev1.Node) ([]metrics.NodeMetrics, error) {
	return nil, g.err
}

// failingPods is a pod lister that fails, as promgate's lazy metadata
// lister does before its informer syncs or without RBAC.
type failingPods struct{ err error }

func (l failingPods) List(labels.Selector) ([]runtime.Object, error)  { return nil, l.err }
func (l failingPods) Get(string) (runtime.Object, error)              { return nil, l.err }
func (l failingPods) ByNamespace(string) cache.GenericNamespaceLister { return l }

// failingNodes is a node lister that fails.
type failingNodes struct{ err error }

func (l failingNodes) List(labels.Selector) ([]*corev1.Node, error) { return nil, l.err }
func (l failingNodes) Get(string) (*corev1.Node, error)             { return nil, l.err }

func TestFailures(t *testing.T) {
	unavailable := apierrors.NewServiceUnavailable("resourceRules.cpu.containerQuery: prometheus backend http://prom:9090: query failed: unavailable")
	forbidden := apierrors.NewServiceUnavailable("promgate may not list and watch pods")
	g, pods, nodes := world(t)
	tests := []struct {
		name      string
		getter    metricsapi.MetricsGetter
		pods      cache.GenericLister
		nodes     corev1listers.NodeLister
		paths     []string
		wantCode  int    // ours; metrics-server's is always 500
		wantInMsg string // ours
	}{{
		name:   "getter 503",
		getter: failingGetter{unavailable}, pods: pods, nodes: nodes,
		paths:    []string{base + "/namespaces/default/pods", base + "/namespaces/default/pods/web", base + "/nodes", base + "/nodes/n1"},
		wantCode: http.StatusServiceUnavailable, wantInMsg: "prometheus backend http://prom:9090",
	}, {
		name:   "getter 503 wrapped",
		getter: failingGetter{fmt.Errorf("resource provider: %w", unavailable)}, pods: pods, nodes: nodes,
		paths:    []string{base + "/pods", base + "/nodes/n2"},
		wantCode: http.StatusServiceUnavailable, wantInMsg: "resourceRules.cpu.containerQuery",
	}, {
		name:   "getter deadline",
		getter: failingGetter{fmt.Errorf("querying: %w", context.DeadlineExceeded)}, pods: pods, nodes: nodes,
		paths:    []string{base + "/pods", base + "/nodes/n1"},
		wantCode: http.StatusServiceUnavailable, wantInMsg: "timed out",
	}, {
		name:   "getter plain error",
		getter: failingGetter{errors.New("bug")}, pods: pods, nodes: nodes,
		paths:    []string{base + "/pods", base + "/nodes/n1"},
		wantCode: http.StatusInternalServerError, wantInMsg: "bug",
	}, {
		name:   "lister 503",
		getter: g, pods: failingPods{forbidden}, nodes: failingNodes{forbidden},
		paths:    []string{base + "/namespaces/default/pods", base + "/namespaces/default/pods/web", base + "/nodes", base + "/nodes/n1"},
		wantCode: http.StatusServiceUnavailable, wantInMsg: "may not list and watch",
	}, {
		name:   "lister cache sync timeout",
		getter: g, pods: failingPods{fmt.Errorf("waiting for the pods cache to sync: %w", context.DeadlineExceeded)},
		nodes:    failingNodes{fmt.Errorf("waiting for the nodes cache to sync: %w", context.DeadlineExceeded)},
		paths:    []string{base + "/pods", base + "/namespaces/default/pods/web", base + "/nodes", base + "/nodes/n1"},
		wantCode: http.StatusServiceUnavailable, wantInMsg: "cache to sync",
	}}
	for _, tt := range tests {
		theirs, ours := servers(t, tt.getter, tt.pods, tt.nodes)
		for _, path := range tt.paths {
			t.Run(tt.name+" "+path, func(t *testing.T) {
				if r := do(t, theirs, path, ""); r.code != http.StatusInternalServerError {
					t.Errorf("metrics-server's storage answered %d, the test expects its 500: %s", r.code, r.body)
				}
				r := do(t, ours, path, "")
				s := status(t, r)
				if r.code != tt.wantCode || s.Code != int32(tt.wantCode) {
					t.Errorf("got %d (status %d), want %d: %s", r.code, s.Code, tt.wantCode, r.body)
				}
				if !strings.Contains(s.Message, tt.wantInMsg) {
					t.Errorf("message %q lacks %q", s.Message, tt.wantInMsg)
				}
			})
		}
	}
}

// TestNodeSelector checks the storage's own selector (metrics-server's
// --node-selector) restricts LIST, combined with the request's.
func TestNodeSelector(t *testing.T) {
	g, pods, nodes := world(t)
	req, err := labels.NewRequirement("zone", "=", []string{"a"})
	if err != nil {
		t.Fatal(err)
	}
	theirs := newServer(t, func(s *genericapiserver.GenericAPIServer) error {
		return metricsapi.Install(g, pods, nodes, s, []labels.Requirement{*req})
	})
	ours := newServer(t, func(s *genericapiserver.GenericAPIServer) error {
		info := metricsapi.Build(Pods(g, pods), Nodes(g, nodes, *req))
		return s.InstallAPIGroup(&info)
	})
	for _, path := range []string{base + "/nodes", base + "/nodes?labelSelector=zone%3Db", base + "/nodes/n2"} {
		want, got := do(t, theirs, path, ""), do(t, ours, path, "")
		if got.code != want.code || !bytes.Equal(got.body, want.body) {
			t.Errorf("%s: got %d %s\nmetrics-server's storage: %d %s", path, got.code, got.body, want.code, want.body)
		}
	}
	if body := string(do(t, ours, base+"/nodes", "").body); !strings.Contains(body, `"n1"`) || strings.Contains(body, `"n2"`) {
		t.Errorf("node list with selector zone=a: %s", body)
	}
}

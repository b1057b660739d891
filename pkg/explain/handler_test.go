package explain

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/emicklei/go-restful/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/authentication/user"
	genericapifilters "k8s.io/apiserver/pkg/endpoints/filters"
	"k8s.io/apiserver/pkg/endpoints/request"
	genericapiserver "k8s.io/apiserver/pkg/server"
)

// metricsWebService is a WebService with the routes custom-metrics-apiserver
// installs for a version of a metrics API (pkg/apiserver/installer): each
// answers with its name.
func metricsWebService(root string, routes ...string) *restful.WebService {
	ws := new(restful.WebService)
	ws.Path(root)
	for _, r := range append(routes, "/") {
		ws.Route(ws.GET(r).To(func(_ *restful.Request, resp *restful.Response) {
			_, _ = io.WriteString(resp, "metrics route "+r)
		}))
	}
	return ws
}

// server is a GenericAPIServer's handler as promgate builds it: the
// director over go-restful (the metrics APIs) and the NonGoRestfulMux,
// behind the filter that classifies requests for authorization, with what
// it classified recorded. The user is the request's testUserHeader, as
// the authentication filter would have found it.
type server struct {
	*httptest.Server
	mu    sync.Mutex
	infos map[string]*request.RequestInfo
}

// testUserHeader names the user of a request to a test server.
const testUserHeader = "X-Test-User"

func newServer(t *testing.T, e *Explainer, a Authorizer) *server {
	t.Helper()
	s := &server{infos: map[string]*request.RequestInfo{}}
	record := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			info, _ := request.RequestInfoFrom(r.Context())
			s.mu.Lock()
			s.infos[r.URL.RequestURI()] = info
			s.mu.Unlock()
			if name := r.Header.Get(testUserHeader); name != "" {
				r = r.WithContext(request.WithUser(r.Context(), &user.DefaultInfo{Name: name}))
			}
			h.ServeHTTP(w, r)
		})
	}
	resolver := genericapiserver.NewRequestInfoResolver(&genericapiserver.Config{LegacyAPIGroupPrefixes: sets.NewString(genericapiserver.DefaultLegacyAPIPrefix)})
	codecs := serializer.NewCodecFactory(runtime.NewScheme())
	h := genericapiserver.NewAPIServerHandler("test", codecs, func(api http.Handler) http.Handler {
		return genericapifilters.WithRequestInfo(record(api), resolver)
	}, nil)
	cm := []string{"{resource}/{name}/{subresource}", "namespaces/{namespace}/{resource}/{name}/{subresource}", "namespaces/{namespace}/metrics/{name}"}
	h.GoRestfulContainer.Add(metricsWebService("/apis/custom.metrics.k8s.io/v1beta1", cm...))
	h.GoRestfulContainer.Add(metricsWebService("/apis/custom.metrics.k8s.io/v1beta2", cm...))
	h.GoRestfulContainer.Add(metricsWebService("/apis/external.metrics.k8s.io/v1beta1", "namespaces/{namespace}/{resource}"))
	// What the NonGoRestfulMux would serve at the same path: never reached.
	h.NonGoRestfulMux.Handle(Path, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "NonGoRestfulMux")
	}))
	paths, err := Install(h.GoRestfulContainer, Handler(e, a))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/apis/custom.metrics.k8s.io/v1beta1/explain", Path}; strings.Join(paths, " ") != strings.Join(want, " ") {
		t.Errorf("Install serves %v, want %v", paths, want)
	}
	s.Server = httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

// get is getAs by an administrator.
func (s *server) get(t *testing.T, uri string, accept string) (int, string, string) {
	t.Helper()
	resp, body := s.getAs(t, "admin", uri, accept)
	return resp.StatusCode, resp.Header.Get("Content-Type"), body
}

// getAs sends a GET of uri as user ("" for none).
func (s *server) getAs(t *testing.T, user, uri string, accept string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+uri, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if user != "" {
		req.Header.Set(testUserHeader, user)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestHandlerRoute checks that the explain route is reached through the
// director (not shadowed, shadowing none of the metrics routes) and that
// the request is classified as resource "explain" of custom.metrics.k8s.io,
// verb list, cluster-wide: what RBAC rules grant (rbac-explain.yaml).
func TestHandlerRoute(t *testing.T) {
	f := newFixture(t)
	s := newServer(t, f.e, allowAll())

	uri := Path + "?metric=requests_per_second&resource=pods&namespace=ns1&name=web-0"
	// kubectl get --raw sends this Accept header.
	code, ct, body := s.get(t, uri, "application/json, */*")
	if code != http.StatusOK || ct != "text/plain; charset=utf-8" || !strings.Contains(body, "rules[0]  seriesQuery: {job=\"app\"}\n    serves it\n") {
		t.Errorf("GET %s: %d %s\n%s", uri, code, ct, body)
	}
	s.mu.Lock()
	info := s.infos[uri]
	s.mu.Unlock()
	want := request.RequestInfo{IsResourceRequest: true, Path: Path, Verb: "list", APIPrefix: "apis", APIGroup: Group, APIVersion: "v1beta2",
		Resource: "explain", Parts: []string{"explain"}}
	if info == nil || info.IsResourceRequest != want.IsResourceRequest || info.Verb != want.Verb || info.APIGroup != want.APIGroup ||
		info.APIVersion != want.APIVersion || info.Resource != want.Resource || info.Subresource != "" || info.Namespace != "" || info.Name != "" {
		t.Errorf("request info %+v\nwant %+v", info, want)
	}

	for _, tt := range []struct {
		uri, accept string
		code        int
		ct, body    string
	}{
		{uri: "/apis/custom.metrics.k8s.io/v1beta1/explain?metric=nope&external=true", code: http.StatusOK, ct: "text/plain; charset=utf-8",
			body: "metric nope, external"},
		{uri: Path + "?metric=queue_depth&external=true&format=json", accept: "application/json", code: http.StatusOK, ct: "application/json",
			body: `"query": "sum by (queue) (queue_depth)"`},
		{uri: Path + "?metric=m&run=maybe", code: http.StatusBadRequest, ct: "application/json", body: `"message":"run=\"maybe\": not a boolean"`},
		{uri: Path + "?metric=m&resource=pods&labelSelector=a%3D%3D%3D", code: http.StatusBadRequest, ct: "application/json", body: `"message":"labelSelector:`},
		{uri: Path + "?format=yaml", code: http.StatusBadRequest, ct: "application/json", body: `"reason":"BadRequest"`},
		// The metrics APIs' own routes are still theirs.
		{uri: "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns1/pods/*/requests_per_second", code: http.StatusOK,
			body: "metrics route namespaces/{namespace}/{resource}/{name}/{subresource}"},
		{uri: "/apis/custom.metrics.k8s.io/v1beta2/nodes/n1/load", code: http.StatusOK, body: "metrics route {resource}/{name}/{subresource}"},
		{uri: "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns1/metrics/m", code: http.StatusOK, body: "metrics route namespaces/{namespace}/metrics/{name}"},
		{uri: "/apis/custom.metrics.k8s.io/v1beta2", code: http.StatusOK, body: "metrics route /"},
		{uri: "/apis/external.metrics.k8s.io/v1beta1/explain", code: http.StatusNotFound},
	} {
		code, ct, body := s.get(t, tt.uri, tt.accept)
		if code != tt.code || (tt.ct != "" && ct != tt.ct) || !strings.Contains(body, tt.body) {
			t.Errorf("GET %s: %d %s %q\nwant %d %s containing %q", tt.uri, code, ct, body, tt.code, tt.ct, tt.body)
		}
	}

	var st metav1.Status
	_, _, body = s.get(t, Path+"?metric=m&run=maybe", "")
	if err := json.Unmarshal([]byte(body), &st); err != nil || st.Kind != "Status" || st.Code != http.StatusBadRequest {
		t.Errorf("400 is not a Status: %v %+v", err, st)
	}
	var rep Report
	_, _, body = s.get(t, Path+"?metric=requests_per_second&resource=pods&namespace=ns1&name=web-0&format=json", "")
	if err := json.Unmarshal([]byte(body), &rep); err != nil || rep.Plan == nil || rep.Plan.Rule != "rules[0]" || len(rep.Served) != 2 {
		t.Errorf("JSON report: %v %+v", err, rep)
	}
}

package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/request"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/util/compatibility"
	restclient "k8s.io/client-go/rest"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/metrics/pkg/apis/custom_metrics"
	cmapiserver "sigs.k8s.io/custom-metrics-apiserver/pkg/apiserver"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promgate/promgate/pkg/wire"
)

// pathOf reports which path served a provider call: the library's chain
// stamps every request with its arrival time; the hot path does not. It
// shares its lists as the custom provider does (SharedMetricBySelector):
// the same list and encodings memo for the same request.
type pathOf struct {
	fixedProvider
	mu     sync.Mutex
	hot    int
	shared map[string]sharedList
}

type sharedList struct {
	list *custom_metrics.MetricValueList
	memo *wire.Memo
}

func (p *pathOf) SharedMetricBySelector(ctx context.Context, ns string, sel labels.Selector, info cmprovider.CustomMetricInfo, msel labels.Selector) (*custom_metrics.MetricValueList, *wire.Memo, error) {
	p.note(ctx)
	k := fmt.Sprint(ns, sel, info, msel)
	p.mu.Lock()
	defer p.mu.Unlock()
	if l, ok := p.shared[k]; ok {
		return l.list, l.memo, nil
	}
	list, err := p.fixedProvider.GetMetricBySelector(ctx, ns, sel, info, msel)
	if err != nil {
		return nil, nil, err
	}
	if p.shared == nil {
		p.shared = map[string]sharedList{}
	}
	p.shared[k] = sharedList{list, &wire.Memo{}}
	return list, p.shared[k].memo, nil
}

func (p *pathOf) note(ctx context.Context) {
	if _, ok := request.ReceivedTimestampFrom(ctx); !ok {
		p.mu.Lock()
		p.hot++
		p.mu.Unlock()
	}
}

func (p *pathOf) served() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.hot
	p.hot = 0
	return n
}

func (p *pathOf) GetMetricByName(ctx context.Context, name types.NamespacedName, info cmprovider.CustomMetricInfo, sel labels.Selector) (*custom_metrics.MetricValue, error) {
	p.note(ctx)
	return p.fixedProvider.GetMetricByName(ctx, name, info, sel)
}

func (p *pathOf) GetMetricBySelector(ctx context.Context, ns string, sel labels.Selector, info cmprovider.CustomMetricInfo, msel labels.Selector) (*custom_metrics.MetricValueList, error) {
	p.note(ctx)
	return p.fixedProvider.GetMetricBySelector(ctx, ns, sel, info, msel)
}

// recordingAuthorizer allows everything but the user "denied" and the
// metric "secret", and records what it was asked.
type recordingAuthorizer struct {
	mu    sync.Mutex
	asked []string
}

func (a *recordingAuthorizer) Authorize(_ context.Context, at authorizer.Attributes) (authorizer.Decision, string, error) {
	a.mu.Lock()
	a.asked = append(a.asked, fmt.Sprintf("user=%s groups=%v verb=%s ns=%s group=%s version=%s resource=%s sub=%s name=%s path=%s resourceRequest=%v",
		at.GetUser().GetName(), at.GetUser().GetGroups(), at.GetVerb(), at.GetNamespace(), at.GetAPIGroup(), at.GetAPIVersion(),
		at.GetResource(), at.GetSubresource(), at.GetName(), at.GetPath(), at.IsResourceRequest()))
	a.mu.Unlock()
	if at.GetUser().GetName() == "denied" || at.GetSubresource() == "secret" {
		return authorizer.DecisionNoOpinion, "not allowed here", nil
	}
	return authorizer.DecisionAllow, "", nil
}

func (a *recordingAuthorizer) take() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.asked
	a.asked = nil
	return out
}

// headerUser authenticates the user named by X-Test-User.
var headerUser = authenticator.RequestFunc(func(req *http.Request) (*authenticator.Response, bool, error) {
	name := req.Header.Get("X-Test-User")
	if name == "" {
		return nil, false, nil
	}
	groups := []string{user.AllAuthenticated}
	if name == user.Anonymous {
		groups = []string{user.AllUnauthenticated}
	}
	return &authenticator.Response{User: &user.DefaultInfo{Name: name, Groups: groups}}, true, nil
})

// servers builds promgate's API server with the library's full handler
// chain, with and without the hot path in front, on the same provider,
// authenticator and authorizer.
func servers(t *testing.T, p *pathOf, authz authorizer.Authorizer) (library, hot http.Handler) {
	t.Helper()
	build := func(withHot bool) http.Handler {
		cfg := genericapiserver.NewConfig(cmapiserver.Codecs)
		cfg.EffectiveVersion = compatibility.DefaultBuildEffectiveVersion()
		cfg.LoopbackClientConfig = &restclient.Config{}
		cfg.ExternalAddress = "127.0.0.1:443"
		cfg.Authentication.Authenticator = headerUser
		cfg.Authorization.Authorizer = authz
		if withHot {
			installHotPath(cfg, p)
		}
		gs, err := cfg.Complete(nil).New("promgate", genericapiserver.NewEmptyDelegate())
		if err != nil {
			t.Fatal(err)
		}
		if err := installCustomMetrics(gs, p); err != nil {
			t.Fatal(err)
		}
		if err := installExternalMetrics(gs, p); err != nil {
			t.Fatal(err)
		}
		return gs.Handler
	}
	return build(false), build(true)
}

// requestCounts is apiserver_request_total, per label set.
func requestCounts(t *testing.T) map[string]float64 {
	t.Helper()
	mfs, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "apiserver_request_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			sort.Strings(ls)
			out[strings.Join(ls, ",")] = m.GetCounter().GetValue()
		}
	}
	return out
}

// counted is what a request added to apiserver_request_total.
func counted(before, after map[string]float64) []string {
	var out []string
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out = append(out, fmt.Sprintf("%s +%v", k, d))
		}
	}
	sort.Strings(out)
	return out
}

// TestHotPathAsLibrary serves each request through the library's handler
// chain alone and through the hot path in front of it, and compares what
// the client gets (status, content type, cache control, audit ID, body),
// what the authorizer was asked and what apiserver_request_total counted;
// and whether the hot path answered the request itself: the requests HPAs
// send, and their errors, yes; everything else (and every refusal) no.
func TestHotPathAsLibrary(t *testing.T) {
	p := &pathOf{}
	authz := &recordingAuthorizer{}
	library, hot := servers(t, p, authorizer.AuthorizerFunc(authz.Authorize))
	const json, proto = "application/json", "application/vnd.kubernetes.protobuf"
	const cm = "/apis/custom.metrics.k8s.io/"
	for _, c := range []struct {
		method, path, accept, user string
		headers                    map[string]string
		hot                        bool
	}{
		{"GET", cm + "v1beta2/namespaces/ns/pods/*/m?labelSelector=app%3Dx&metricLabelSelector=k%3Dv", json, "hpa", nil, true},
		{"GET", cm + "v1beta1/namespaces/ns/pods/*/m?labelSelector=app%3Dx&metricLabelSelector=k%3Dv", json, "hpa", nil, true},
		{"GET", cm + "v1beta2/namespaces/ns/pods/*/m?labelSelector=app+in+(a,b),tier!%3Dc", proto + ", */*", "hpa", nil, true},
		{"GET", cm + "v1beta1/namespaces/ns/pods/*/m", proto, "hpa", map[string]string{"Audit-ID": "a-1"}, true},
		{"GET", cm + "v1beta2/namespaces/ns/pods/p1/m", json, "hpa", nil, true},
		{"GET", cm + "v1beta1/namespaces/ns/deployments.apps/web/m", json, "hpa", nil, true},
		{"GET", cm + "v1beta2/namespaces/ns/pods/*/missing", json, "hpa", nil, true},
		{"GET", cm + "v1beta2/namespaces/ns/pods/p1/missing", proto, "hpa", nil, true},
		{"GET", cm + "v1beta2/namespaces/ns/pods/*/down", json, "hpa", nil, true},
		{"GET", cm + "v1beta2/namespaces/ns/pods/*/m", "application/yaml", "hpa", nil, true},
		{"GET", cm + "v1beta2/namespaces/ns/pods/*/m", "application/json;as=Table;v=v1;g=meta.k8s.io", "hpa", nil, true},
		{"GET", cm + "v1beta2/namespaces/ns/pods/*/m", "", "hpa", nil, true},
		{"GET", cm + "v1beta2/namespaces/ns/pods/*/m", "text/html, */*;q=0.1", "hpa", nil, true},
		// what takes the library's chain
		{"GET", cm + "v1beta2/namespaces/ns/pods/*/m", "text/plain", "hpa", nil, false},
		{"GET", cm + "v1beta2/namespaces/ns/pods/*/m?labelSelector=%3D%3D%3D", json, "hpa", nil, false},
		{"GET", cm + "v1beta2/namespaces/ns/pods/*/m?metricLabelSelector=%3D%3D%3D", json, "hpa", nil, false},
		{"GET", cm + "v1beta2/namespaces/ns/pods/*/m?labelSelector=a%3Db&labelSelector=c%3Dd", json, "hpa", nil, false},
		{"GET", cm + "v1beta2/namespaces/ns/pods/*/m?pretty=true", json, "hpa", nil, false},
		{"GET", cm + "v1beta2/namespaces/ns/pods/*/m?fieldSelector=metadata.name%3Dp2", json, "hpa", nil, false},
		{"GET", cm + "v1beta2/namespaces/ns/pods/*/m?timeout=1s", json, "hpa", nil, false},
		{"GET", cm + "v1beta2/namespaces/ns/pods/*/m", json, "denied", nil, false},
		{"GET", cm + "v1beta2/namespaces/ns/pods/*/secret", json, "hpa", nil, false},
		{"GET", cm + "v1beta2/namespaces/ns/pods/*/m", json, "", nil, false},
		{"GET", cm + "v1beta2/namespaces/ns/pods/*/m", json, user.Anonymous, nil, false},
		{"GET", cm + "v1beta2/namespaces/ns/pods/*/m", json, "hpa", map[string]string{"Impersonate-User": "someone"}, false},
		{"GET", cm + "v1beta2/namespaces/ns/pods/*/m", json, "denied", map[string]string{"Impersonate-User": "hpa"}, false},
		{"GET", cm + "v1beta2/namespaces/ns/metrics/m", json, "hpa", nil, false},
		{"GET", cm + "v1beta2/nodes/*/m", json, "hpa", nil, false},
		{"GET", cm + "v1beta2/namespaces/ns/pods/*/m/", json, "hpa", nil, false},
		{"GET", cm + "v1beta2/namespaces/ns/pods//m", json, "hpa", nil, false},
		{"GET", cm + "v1beta2/namespaces/ns/pods/../m", json, "hpa", nil, false},
		{"GET", cm + "v1/namespaces/ns/pods/*/m", json, "hpa", nil, false},
		{"POST", cm + "v1beta2/namespaces/ns/pods/*/m", json, "hpa", nil, false},
		{"GET", cm + "v1beta2", json, "hpa", nil, false},
		{"GET", "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/queue", json, "hpa", nil, false},
	} {
		t.Run(c.method+" "+c.path+" "+c.accept+" "+c.user, func(t *testing.T) {
			type answer struct {
				code                      int
				ctype, cache, audit, body string
				asked, counted            []string
			}
			get := func(h http.Handler) answer {
				req := httptest.NewRequest(c.method, c.path, nil)
				req.Header.Set("Accept", c.accept)
				if c.user != "" {
					req.Header.Set("X-Test-User", c.user)
				}
				for k, v := range c.headers {
					req.Header.Set(k, v)
				}
				before := requestCounts(t)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				b, _ := io.ReadAll(rec.Result().Body)
				audit := rec.Header().Get("Audit-Id")
				if c.headers["Audit-ID"] == "" && audit != "" {
					audit = "(generated)"
				}
				return answer{rec.Code, rec.Header().Get("Content-Type"), rec.Header().Get("Cache-Control"), audit, string(b),
					authz.take(), counted(before, requestCounts(t))}
			}
			want := get(library)
			if n := p.served(); n != 0 {
				t.Fatalf("the library's chain looked like the hot path to the test (%d)", n)
			}
			got := get(hot)
			if served := p.served() > 0; served != c.hot {
				t.Errorf("hot path answered: %v, want %v", served, c.hot)
			}
			if c.hot {
				// Again: a shared list's encoding is written from its memo.
				if again := get(hot); again.body != got.body || again.ctype != got.ctype || again.code != got.code {
					t.Errorf("hot path, the same request again:\n%+v\nthe first time:\n%+v", again, got)
				}
				p.served()
			}
			if c.hot && fmt.Sprint(got.asked) != fmt.Sprint(want.asked) {
				t.Errorf("authorizer asked\n%v\nwant (the library's chain)\n%v", got.asked, want.asked)
			}
			if !c.hot && len(want.asked) > 0 && !strings.HasSuffix(fmt.Sprint(got.asked), strings.TrimPrefix(fmt.Sprint(want.asked), "[")) {
				t.Errorf("authorizer asked\n%v\nwant the library's questions last\n%v", got.asked, want.asked)
			}
			got.asked, want.asked = nil, nil
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("hot path:\n%+v\nlibrary:\n%+v", got, want)
			}
			if c.hot && want.code == http.StatusOK && !strings.Contains(want.body, "m") {
				t.Errorf("no answer: %s", want.body)
			}
		})
	}
	// The hot path does not observe each value's age as the library's
	// handler does (hotpath.serveCustom): promgate does not register that
	// metric, so the library's observations were lost too.
	mfs, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "metrics_apiserver_metric_freshness_seconds" {
			t.Error("metrics_apiserver_metric_freshness_seconds is registered: the hot path must observe it as the library's handler does")
		}
	}
	memoized := 0
	for _, l := range p.shared {
		if l.memo.Bytes() > 0 {
			memoized++
		}
	}
	if memoized != 3 {
		t.Errorf("%d shared lists were written from a memo, want the hot lists' 3 (by namespace and selectors)", memoized)
	}
}

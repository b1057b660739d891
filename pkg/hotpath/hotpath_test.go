package hotpath

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/metrics/pkg/apis/custom_metrics"
	cmapiserver "sigs.k8s.io/custom-metrics-apiserver/pkg/apiserver"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"
)

// blocking answers every request with an empty list once release is
// closed, counting the calls.
type blocking struct {
	calls   atomic.Int32
	release chan struct{}
}

func (b *blocking) GetMetricByName(ctx context.Context, _ types.NamespacedName, _ cmprovider.CustomMetricInfo, _ labels.Selector) (*custom_metrics.MetricValue, error) {
	b.calls.Add(1)
	<-b.release
	return &custom_metrics.MetricValue{}, nil
}

func (b *blocking) GetMetricBySelector(ctx context.Context, _ string, _ labels.Selector, _ cmprovider.CustomMetricInfo, _ labels.Selector) (*custom_metrics.MetricValueList, error) {
	b.calls.Add(1)
	<-b.release
	return &custom_metrics.MetricValueList{}, nil
}

func testConfig(next http.Handler, cm CustomMetrics, maxInFlight int) Config {
	return Config{
		Next: next,
		Authenticator: authenticator.RequestFunc(func(*http.Request) (*authenticator.Response, bool, error) {
			return &authenticator.Response{User: &user.DefaultInfo{Name: "hpa", Groups: []string{user.AllAuthenticated}}}, true, nil
		}),
		Authorizer: authorizer.AuthorizerFunc(func(context.Context, authorizer.Attributes) (authorizer.Decision, string, error) {
			return authorizer.DecisionAllow, "", nil
		}),
		Resolver:    genericapiserver.NewRequestInfoResolver(&genericapiserver.Config{LegacyAPIGroupPrefixes: sets.NewString("/api")}),
		MaxInFlight: maxInFlight,
		Custom:      cm,
		Serializer:  cmapiserver.Codecs,
	}
}

// Where the server's configuration asks for what the library's chain does
// and the hot path does not, every request takes the chain.
func TestNewNeeds(t *testing.T) {
	next := http.NotFoundHandler()
	for _, c := range []struct {
		needs Needs
		max   int
		why   string
	}{
		{Needs{}, 10, ""},
		{Needs{Audit: true}, 10, "an audit policy is configured"},
		{Needs{CORS: true}, 10, "CORS is configured"},
		{Needs{HSTS: true}, 10, "HSTS directives are configured"},
		{Needs{PriorityAndFairness: true}, 10, "API priority and fairness is enabled"},
		{Needs{}, 0, "the server has no authentication, authorization or in-flight limit to apply"},
	} {
		h, why := New(testConfig(next, &blocking{}, c.max), c.needs)
		if why != c.why {
			t.Errorf("%+v, max %d: reason %q, want %q", c.needs, c.max, why, c.why)
		}
		if _, hot := h.(*Handler); hot != (c.why == "") {
			t.Errorf("%+v, max %d: hot path %v", c.needs, c.max, hot)
		}
	}
}

// With MaxInFlight requests on the hot path, the next takes the chain.
func TestInFlightBound(t *testing.T) {
	var chain atomic.Int32
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { chain.Add(1) })
	b := &blocking{release: make(chan struct{})}
	h, why := New(testConfig(next, b, 2), Needs{})
	if why != "" {
		t.Fatal(why)
	}
	const path = "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/pods/*/m"
	done := make(chan int, 2)
	for range 2 {
		go func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			done <- rec.Code
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); b.calls.Load() < 2; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests reached the provider, want 2", b.calls.Load())
		}
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
	if chain.Load() != 1 {
		t.Errorf("the third request took the chain %d times, want 1", chain.Load())
	}
	close(b.release)
	for range 2 {
		if code := <-done; code != http.StatusOK {
			t.Errorf("hot request: %d", code)
		}
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
	if chain.Load() != 1 || b.calls.Load() != 3 {
		t.Errorf("after the first two ended: chain %d, provider %d; want 1 and 3", chain.Load(), b.calls.Load())
	}
}

package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	genericapifilters "k8s.io/apiserver/pkg/endpoints/filters"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/util/compatibility"
	restclient "k8s.io/client-go/rest"
	"k8s.io/metrics/pkg/apis/custom_metrics"
	"k8s.io/metrics/pkg/apis/external_metrics"
	cmapiserver "sigs.k8s.io/custom-metrics-apiserver/pkg/apiserver"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"
)

// fixedProvider answers every custom and external metric request with a
// list built from the request, and "missing" with the library's not-found
// error.
type fixedProvider struct{}

func (fixedProvider) value(ref types.NamespacedName, info cmprovider.CustomMetricInfo, sel labels.Selector) custom_metrics.MetricValue {
	w := int64(60)
	return custom_metrics.MetricValue{
		DescribedObject: custom_metrics.ObjectReference{Kind: "Pod", Namespace: ref.Namespace, Name: ref.Name, APIVersion: "/v1"},
		Metric: custom_metrics.MetricIdentifier{Name: info.Metric, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{
			"sel": sel.String(), "resource": info.GroupResource.String(), "namespaced": fmt.Sprint(info.Namespaced)}}},
		Timestamp: metav1.NewTime(time.Unix(1_765_000_000, 0)), WindowSeconds: &w,
		Value: *resource.NewMilliQuantity(1500, resource.DecimalSI),
	}
}

func (p fixedProvider) GetMetricByName(_ context.Context, name types.NamespacedName, info cmprovider.CustomMetricInfo, sel labels.Selector) (*custom_metrics.MetricValue, error) {
	if info.Metric == "missing" {
		return nil, cmprovider.NewMetricNotFoundForError(info.GroupResource, info.Metric, name.Name)
	}
	v := p.value(name, info, sel)
	return &v, nil
}

func (p fixedProvider) GetMetricBySelector(_ context.Context, ns string, sel labels.Selector, info cmprovider.CustomMetricInfo, msel labels.Selector) (*custom_metrics.MetricValueList, error) {
	if info.Metric == "missing" {
		return nil, cmprovider.NewMetricNotFoundError(info.GroupResource, info.Metric)
	}
	if info.Metric == "down" {
		return nil, apierrors.NewServiceUnavailable("backend default: timeout")
	}
	l := &custom_metrics.MetricValueList{}
	for _, n := range []string{"a", "b<&>", "c"} {
		l.Items = append(l.Items, p.value(types.NamespacedName{Namespace: ns, Name: n + sel.String()}, info, msel))
	}
	return l, nil
}

func (fixedProvider) ListAllMetrics() []cmprovider.CustomMetricInfo {
	return []cmprovider.CustomMetricInfo{
		{GroupResource: schema.GroupResource{Resource: "pods"}, Namespaced: true, Metric: "m"},
		{GroupResource: schema.GroupResource{Resource: "namespaces"}, Metric: "m"},
		{GroupResource: schema.GroupResource{Resource: "nodes"}, Metric: "m"},
	}
}

func (fixedProvider) GetExternalMetric(_ context.Context, ns string, sel labels.Selector, info cmprovider.ExternalMetricInfo) (*external_metrics.ExternalMetricValueList, error) {
	if info.Metric == "missing" {
		return nil, cmprovider.NewMetricNotFoundError(schema.GroupResource{}, info.Metric)
	}
	return &external_metrics.ExternalMetricValueList{Items: []external_metrics.ExternalMetricValue{{
		MetricName: info.Metric, MetricLabels: map[string]string{"namespace": ns, "sel": sel.String()},
		Timestamp: metav1.NewTime(time.Unix(1_765_000_000, 0)), Value: *resource.NewQuantity(42, resource.DecimalSI),
	}}}, nil
}

func (fixedProvider) ListAllExternalMetrics() []cmprovider.ExternalMetricInfo {
	return []cmprovider.ExternalMetricInfo{{Metric: "queue"}}
}

// testServerConfig is a generic API server's configuration without
// authentication or authorization, for serving handlers in process.
func testServerConfig(t *testing.T) genericapiserver.CompletedConfig {
	t.Helper()
	cfg := genericapiserver.NewConfig(cmapiserver.Codecs)
	cfg.EffectiveVersion = compatibility.DefaultBuildEffectiveVersion()
	cfg.LoopbackClientConfig = &restclient.Config{}
	cfg.ExternalAddress = "127.0.0.1:443"
	return cfg.Complete(nil)
}

// TestMetricsAPIsAsLibrary serves the same requests through the
// library's installation of the custom and external metrics APIs and
// through promgate's (installCustomMetrics, installExternalMetrics), and
// compares status, content type and body.
func TestMetricsAPIsAsLibrary(t *testing.T) {
	libServer, err := (&cmapiserver.CompletedConfig{CompletedConfig: testServerConfig(t)}).New("library", fixedProvider{}, fixedProvider{})
	if err != nil {
		t.Fatal(err)
	}
	ours, err := testServerConfig(t).New("promgate", genericapiserver.NewEmptyDelegate())
	if err != nil {
		t.Fatal(err)
	}
	if err := installCustomMetrics(ours, fixedProvider{}); err != nil {
		t.Fatal(err)
	}
	if err := installExternalMetrics(ours, fixedProvider{}); err != nil {
		t.Fatal(err)
	}
	serve := func(gs *genericapiserver.GenericAPIServer) http.Handler {
		return genericapifilters.WithRequestInfo(gs.Handler.Director, genericapiserver.NewRequestInfoResolver(&genericapiserver.Config{
			LegacyAPIGroupPrefixes: sets.NewString("/api"),
		}))
	}
	const json, proto = "application/json", "application/vnd.kubernetes.protobuf"
	for _, c := range []struct{ path, accept string }{
		{"/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/pods/*/m?labelSelector=app%3Dx&metricLabelSelector=k%3Dv", json},
		{"/apis/custom.metrics.k8s.io/v1beta1/namespaces/ns/pods/*/m?labelSelector=app%3Dx&metricLabelSelector=k%3Dv", json},
		{"/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/pods/p1/m", json},
		{"/apis/custom.metrics.k8s.io/v1beta1/namespaces/ns/pods/p1/m", json},
		{"/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/metrics/m", json},
		{"/apis/custom.metrics.k8s.io/v1beta2/nodes/*/m", json},
		{"/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/pods/*/missing", json},
		{"/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/pods/*/down", json},
		{"/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/pods/*/m?labelSelector=%3D%3D%3D", json},
		{"/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/pods/*/m", proto},
		{"/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/pods/*/m", "application/json;as=Table;v=v1;g=meta.k8s.io"},
		{"/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/pods/*/m?pretty=true", json},
		{"/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/pods/*/m", "application/yaml"},
		{"/apis/custom.metrics.k8s.io/v1beta2", json},
		{"/apis/custom.metrics.k8s.io/v1beta1", json},
		{"/apis/custom.metrics.k8s.io", json},
		{"/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/queue?labelSelector=a%3Db", json},
		{"/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/queue", proto},
		{"/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/missing", json},
		{"/apis/external.metrics.k8s.io/v1beta1", json},
		{"/apis/external.metrics.k8s.io", json},
		{"/apis", json},
	} {
		t.Run(c.path+" "+c.accept, func(t *testing.T) {
			get := func(h http.Handler) (int, string, string) {
				req := httptest.NewRequest(http.MethodGet, c.path, nil)
				req.Header.Set("Accept", c.accept)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				b, _ := io.ReadAll(rec.Result().Body)
				return rec.Code, rec.Header().Get("Content-Type"), string(b)
			}
			wc, wt, wb := get(serve(libServer.GenericAPIServer))
			gc, gt, gb := get(serve(ours))
			if wc != gc || wt != gt || wb != gb {
				t.Fatalf("library: %d %s\n%s\npromgate: %d %s\n%s", wc, wt, wb, gc, gt, gb)
			}
			if wc == http.StatusNotFound && c.path != "/apis/custom.metrics.k8s.io/v1beta2/namespaces/ns/pods/*/missing" &&
				c.path != "/apis/external.metrics.k8s.io/v1beta1/namespaces/ns/missing" {
				t.Fatalf("404 from both: the request reached no handler:\n%s", wb)
			}
		})
	}
}

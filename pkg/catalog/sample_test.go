package catalog_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	cmprovider "sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/internal/kubetest"
	"github.com/promgate/promgate/pkg/internal/promtest"
	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/provider"
	"github.com/promgate/promgate/pkg/provider/custom"
	"github.com/promgate/promgate/pkg/provider/external"
	"github.com/promgate/promgate/pkg/rules"
)

const (
	cadvisorQuery = `{__name__=~"^container_.*",container!="POD",namespace!="",pod!=""}`
	appQuery      = `{namespace!="",__name__!~"^container_.*"}`
	queueQuery    = `{__name__=~"^.*_queue_(length|size)$",namespace!=""}`
)

func lbls(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// TestPrometheusAdapterSample loads a configuration written the way
// prometheus-adapter documents it, discovers against a fake Prometheus and
// checks the metrics served and the PromQL each request sends.
func TestPrometheusAdapterSample(t *testing.T) {
	cfg, err := config.Load("../config/testdata/prometheus-adapter-sample.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Rules) != 5 || len(cfg.ExternalRules) != 1 || cfg.ResourceRules == nil || time.Duration(cfg.ResourceRules.Window) != 3*time.Minute {
		t.Fatalf("config = %+v", cfg)
	}
	customRules, externalRules, err := rules.Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}

	srv := promtest.New(t)
	cadvisor := func(name string, extra ...string) map[string]string {
		return lbls(append([]string{"__name__", name, "namespace", "ns1", "pod", "a", "container", "app", "id", "/kubepods/x", "image", "app:1", "instance", "n1"}, extra...)...)
	}
	srv.Series(cadvisorQuery,
		cadvisor("container_cpu_usage_seconds_total"),
		cadvisor("container_cpu_cfs_throttled_seconds_total"),
		cadvisor("container_network_receive_bytes_total", "interface", "eth0"),
		cadvisor("container_fs_reads_total", "device", "/dev/sda"),
		cadvisor("container_memory_working_set_bytes"),
		cadvisor("container_spec_cpu_shares"),
	)
	srv.Series(appQuery,
		lbls("__name__", "http_requests_total", "namespace", "ns1", "pod", "a", "service", "web", "job", "web", "instance", "10.0.0.1:8080"),
		lbls("__name__", "process_cpu_seconds_total", "namespace", "ns1", "pod", "a", "job", "web"),
		lbls("__name__", "kube_deployment_status_replicas", "namespace", "ns1", "deployment", "web", "job", "kube-state-metrics"),
		lbls("__name__", "nginx_ingress_connections", "namespace", "ns1", "ingress", "web", "pod", "nginx-0"),
		lbls("__name__", "app_inflight_requests", "namespace", "ns1", "pod", "a", "service", "web", "node", "n1"),
		lbls("__name__", "build_info", "namespace", "ns1", "version", "1.2.3"),
	)
	srv.Series(queueQuery,
		lbls("__name__", "rabbitmq_queue_length", "namespace", "ns1", "queue", "orders"),
		lbls("__name__", "worker_queue_size", "namespace", "ns2", "queue", "jobs"),
	)
	client, err := prom.New(prom.Options{URL: srv.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	mapper := kubetest.Mapper()
	d := catalog.New(customRules, externalRules, catalog.Single(client), mapper, 10*time.Minute)
	snap := d.Refresh(context.Background())
	for _, r := range snap.Reports {
		if r.Err != "" {
			t.Errorf("%s: %s", r.Path, r.Err)
		}
	}

	var got []string
	for _, m := range snap.CustomMetrics() {
		got = append(got, m.String())
	}
	want := []string{
		"deployments.apps/kube_deployment_status_replicas(namespaced)",
		"ingresses.networking.k8s.io/nginx_ingress_connections(namespaced)",
		"namespaces/app_inflight_requests",
		"namespaces/build_info",
		"namespaces/cpu_cfs_throttled_per_second",
		"namespaces/cpu_usage_per_second",
		"namespaces/fs_reads_per_second",
		"namespaces/http_requests_per_second",
		"namespaces/kube_deployment_status_replicas",
		"namespaces/memory_working_set_bytes",
		"namespaces/network_receive_bytes_per_second",
		"namespaces/nginx_ingress_connections",
		"namespaces/spec_cpu_shares",
		"nodes/app_inflight_requests",
		"pods/app_inflight_requests(namespaced)",
		"pods/cpu_cfs_throttled_per_second(namespaced)",
		"pods/cpu_usage_per_second(namespaced)",
		"pods/fs_reads_per_second(namespaced)",
		"pods/http_requests_per_second(namespaced)",
		"pods/memory_working_set_bytes(namespaced)",
		"pods/network_receive_bytes_per_second(namespaced)",
		"pods/nginx_ingress_connections(namespaced)",
		"pods/spec_cpu_shares(namespaced)",
		"services/app_inflight_requests(namespaced)",
		"services/http_requests_per_second(namespaced)",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("custom metrics:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := snap.ExternalMetrics(); !reflect.DeepEqual(got, []cmprovider.ExternalMetricInfo{{Metric: "rabbitmq_queue_length"}, {Metric: "worker_queue_size"}}) {
		t.Errorf("external metrics = %v", got)
	}
	// Why process_cpu_seconds_total is not served by the counter rule.
	if got := snap.Reports[4].Dropped; got["filtered by seriesFilters[0] isNot .*_seconds_total$"] != 1 {
		t.Errorf("rules[4] dropped = %v", got)
	}

	objects := &kubetest.Objects{}
	objects.Add(
		kubetest.Object{Resource: kubetest.Pods, Namespace: "ns1", Name: "a", Labels: lbls("app", "web")},
		kubetest.Object{Resource: kubetest.Pods, Namespace: "ns1", Name: "b", Labels: lbls("app", "web")},
		kubetest.Object{Resource: kubetest.Pods, Namespace: "ns1", Name: "nginx-0", Labels: lbls("app", "nginx")},
		kubetest.Object{Resource: kubetest.Nodes, Name: "n1"},
	)
	run := &provider.Runner{Backends: provider.Single(client), Windows: provider.GuardOff} // the fixtures are keyed by query text
	cp := custom.New(d, run, objects, mapper)
	ep := external.New(d, run, mapper)

	requests := []struct {
		gr       schema.GroupResource
		ns, name string // name "*": every object matching selector
		selector string
		metric   string
		query    string
		resLabel string
	}{
		{kubetest.Pods, "ns1", "*", "app=web", "cpu_usage_per_second",
			`sum(rate(container_cpu_usage_seconds_total{namespace="ns1",pod=~"a|b",container!="POD"}[5m])) by (pod)`, "pod"},
		{kubetest.Pods, "ns1", "a", "", "network_receive_bytes_per_second",
			`sum(rate(container_network_receive_bytes_total{namespace="ns1",pod="a",container!="POD"}[5m])) by (pod)`, "pod"},
		{kubetest.Pods, "ns1", "a", "", "memory_working_set_bytes",
			`sum(container_memory_working_set_bytes{namespace="ns1",pod="a",container!="POD"}) by (pod)`, "pod"},
		{kubetest.Namespaces, "", "ns1", "", "memory_working_set_bytes",
			`sum(container_memory_working_set_bytes{namespace="ns1",container!="POD"}) by (namespace)`, "namespace"},
		{kubetest.Pods, "ns1", "*", "app=web", "http_requests_per_second",
			`sum(rate(http_requests_total{namespace="ns1",pod=~"a|b"}[2m])) by (pod)`, "pod"},
		{kubetest.Services, "ns1", "web", "", "http_requests_per_second",
			`sum(rate(http_requests_total{namespace="ns1",service="web"}[2m])) by (service)`, "service"},
		{kubetest.Deployments, "ns1", "web", "", "kube_deployment_status_replicas",
			`sum(kube_deployment_status_replicas{namespace="ns1",deployment="web"}) by (deployment)`, "deployment"},
		{kubetest.Ingresses, "ns1", "web", "", "nginx_ingress_connections",
			`sum(nginx_ingress_connections{namespace="ns1",ingress="web"}) by (ingress)`, "ingress"},
		{kubetest.Nodes, "", "*", "", "app_inflight_requests",
			`sum(app_inflight_requests{node="n1"}) by (node)`, "node"},
	}
	for _, r := range requests {
		t.Run(fmt.Sprintf("%s %s/%s %s", r.gr, r.ns, r.name, r.metric), func(t *testing.T) {
			srv.Reset()
			obj := r.name
			if obj == "*" {
				obj = "a"
				if r.gr == kubetest.Nodes {
					obj = "n1"
				}
			}
			srv.Vector(r.query, promtest.Sample{Labels: lbls(r.resLabel, obj), Value: "4", Time: 1700000000})
			info := cmprovider.CustomMetricInfo{GroupResource: r.gr, Namespaced: r.ns != "", Metric: r.metric}
			var n int
			if r.name == "*" {
				sel, err := labels.Parse(r.selector)
				if err != nil {
					t.Fatal(err)
				}
				list, err := cp.GetMetricBySelector(context.Background(), r.ns, sel, info, labels.Everything())
				if err != nil {
					t.Fatalf("GetMetricBySelector: %v", err)
				}
				n = len(list.Items)
			} else {
				if _, err := cp.GetMetricByName(context.Background(), types.NamespacedName{Namespace: r.ns, Name: r.name}, info, labels.Everything()); err != nil {
					t.Fatalf("GetMetricByName: %v", err)
				}
				n = 1
			}
			if got := srv.Queries(); !reflect.DeepEqual(got, []string{promtest.Canonical(r.query)}) {
				t.Errorf("queries:\n%q\nwant:\n%q", got, r.query)
			}
			if n != 1 {
				t.Errorf("%d values, want 1", n)
			}
		})
	}

	t.Run("external rabbitmq_queue_length", func(t *testing.T) {
		srv.Reset()
		q := `max(rabbitmq_queue_length{queue="orders",namespace="ns1"}) by (queue)`
		srv.Vector(q, promtest.Sample{Labels: lbls("queue", "orders"), Value: "17", Time: 1700000000})
		sel, _ := labels.Parse("queue=orders")
		list, err := ep.GetExternalMetric(context.Background(), "ns1", sel, cmprovider.ExternalMetricInfo{Metric: "rabbitmq_queue_length"})
		if err != nil {
			t.Fatal(err)
		}
		if got := srv.Queries(); !reflect.DeepEqual(got, []string{promtest.Canonical(q)}) {
			t.Errorf("queries = %q, want %q", got, q)
		}
		if len(list.Items) != 1 || list.Items[0].Value.String() != "17" || !reflect.DeepEqual(list.Items[0].MetricLabels, lbls("queue", "orders")) {
			t.Errorf("items = %+v", list.Items)
		}
	})
}

package catalog

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/promgate/promgate/pkg/internal/kubetest"
)

func TestDropReasons(t *testing.T) {
	srv, d := setup(t, `
rules:
- seriesQuery: '{__name__=~".+"}'
  seriesFilters: [{is: "^x_"}]
  resources: {template: "<<.Resource>>"}
  name: {matches: "^x_(.*)$", as: "${1}"}
`)
	var series []map[string]string
	for i := 0; i < 5; i++ {
		series = append(series, map[string]string{"__name__": fmt.Sprintf("y_%d", i), "pod": "p", "namespace": "n"})
		series = append(series, map[string]string{"__name__": fmt.Sprintf("x_nolabel_%d", i), "instance": "i", "job": "j"})
	}
	series = append(series,
		map[string]string{"__name__": "x_", "pod": "p"},          // empty metric name
		map[string]string{"__name__": "x_a/b", "pod": "p"},       // slash in name
		map[string]string{"__name__": "x_ok", "pod": "p"},        // no namespace: still namespaced, as in prometheus-adapter
		map[string]string{"__name__": "x_ok2", "namespace": "n"}, // namespace only
	)
	srv.Series(`{__name__=~".+"}`, series...)
	rep := d.Refresh(context.Background()).Reports[0]
	wantDropped := map[string]int{
		"filtered by seriesFilters[0] is ^x_":                                    5,
		"no label maps to a Kubernetes resource":                                 5,
		`naming: series "x_" gives an empty metric name`:                         1,
		`naming: metric name "a/b" from series "x_a/b" contains '/', '%' or '?'`: 1,
	}
	if !reflect.DeepEqual(rep.Dropped, wantDropped) {
		t.Errorf("Dropped = %v\nwant %v", rep.Dropped, wantDropped)
	}
	wantExamples := map[string][]string{
		"filtered by seriesFilters[0] is ^x_":                                    {"y_0", "y_1", "y_2"}, // at most 3
		"no label maps to a Kubernetes resource":                                 {"x_nolabel_0{instance,job}", "x_nolabel_1{instance,job}", "x_nolabel_2{instance,job}"},
		`naming: series "x_" gives an empty metric name`:                         {"x_"},
		`naming: metric name "a/b" from series "x_a/b" contains '/', '%' or '?'`: {"x_a/b"},
	}
	if !reflect.DeepEqual(rep.Examples, wantExamples) {
		t.Errorf("Examples = %v\nwant %v", rep.Examples, wantExamples)
	}
	if rep.Series != 14 || rep.Kept != 2 || !reflect.DeepEqual(rep.Metrics, []string{"ok", "ok2"}) {
		t.Errorf("report = %+v", rep)
	}
	if got := metricList(d.Snapshot()); !reflect.DeepEqual(got, []string{"namespaces cluster ok2", "pods namespaced ok"}) {
		t.Errorf("metrics = %q", got)
	}
}

func TestNamespaced(t *testing.T) {
	for gr, want := range map[schema.GroupResource]bool{
		kubetest.Pods:                   true,
		kubetest.Services:               true,
		kubetest.Deployments:            true,
		kubetest.Ingresses:              true,
		kubetest.Namespaces:             false,
		kubetest.Nodes:                  false,
		{Resource: "persistentvolumes"}: false,
		{Group: "storage.k8s.io", Resource: "storageclasses"}: true, // as prometheus-adapter lists it
		{Group: "example.com", Resource: "widgets"}:           true,
	} {
		if got := Namespaced(gr); got != want {
			t.Errorf("Namespaced(%v) = %v", gr, got)
		}
	}
}

package catalog

import (
	"reflect"
	"testing"

	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"

	"github.com/promgate/promgate/pkg/internal/kubetest"
)

func TestMetricsForListsEachNameOnce(t *testing.T) {
	snap := &Snapshot{customList: []provider.CustomMetricInfo{
		{GroupResource: kubetest.Pods, Namespaced: false, Metric: "a"},
		{GroupResource: kubetest.Pods, Namespaced: true, Metric: "a"},
		{GroupResource: kubetest.Pods, Namespaced: true, Metric: "b"},
		{GroupResource: kubetest.Services, Namespaced: true, Metric: "c"},
	}}
	if got := snap.MetricsFor(kubetest.Pods); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Errorf("MetricsFor(pods) = %q, want [a b]", got)
	}
}

//go:build e2e

package e2e

import (
	"net/url"
	"testing"
	"time"
)

const widgetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.e2e.promgate.io
spec:
  group: e2e.promgate.io
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
`

// widgetReader lets promgate list Widgets, the way docs/security.md says to
// describe a CRD: one ClusterRole aggregated into promgate-metadata-reader.
const widgetReader = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: promgate-metadata-reader:e2e-widgets
  labels:
    rbac.promgate.io/aggregate-to-metadata-reader: "true"
rules:
- apiGroups: [e2e.promgate.io]
  resources: [widgets]
  verbs: [get, list, watch]
`

// TestCRDCreatedAfterStart creates a CRD while promgate runs and reads a
// metric about one of its objects, without restarting promgate. The e2e
// Prometheus records widget_requests_total{widget=<service>}; the default
// config's generic rule maps the widget label through <<.Resource>> once the
// REST mapper knows the new resource.
func TestCRDCreatedAfterStart(t *testing.T) {
	t.Parallel() // independent of the others; TestDropIn and TestFault, which change shared state, run alone first
	RequirePromgate(t)
	RequireExporter(t)
	ns := CreateNamespace(t, "crd")
	Apply(t, KwokDeployment{Namespace: ns, Name: "gadget", Replicas: 2, PodAnnotations: map[string]string{"e2e.promgate.io/rps": "6"}}.YAML())
	WaitForPodsRunning(t, ns, "app=gadget", 2, 90*time.Second)

	ApplyWithCleanup(t, widgetCRD)
	ApplyWithCleanup(t, widgetReader)
	WaitFor(t, 60*time.Second, "Widget CRD established", func() (bool, error) {
		return Kubectl("get", "widgets.e2e.promgate.io", "-A").OK(), nil
	})
	Apply(t, `apiVersion: e2e.promgate.io/v1
kind: Widget
metadata:
  name: gadget
  namespace: `+ns+"\n")

	WaitFor(t, 90*time.Second, "widgets metric in discovery", func() (bool, error) {
		return apiResourceNames(t, "/apis/custom.metrics.k8s.io/v1beta2")["widgets.e2e.promgate.io/widget_requests_per_second"], nil
	})
	base := "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + ns + "/widgets.e2e.promgate.io/"
	l := waitValues(t, base+"gadget/widget_requests_per_second", map[string]float64{"gadget": 12})
	if o := l.Items[0].DescribedObject; o.Kind != "Widget" || o.APIVersion != "e2e.promgate.io/v1" {
		t.Errorf("described object %+v, want kind Widget, apiVersion e2e.promgate.io/v1", o)
	}
	waitValues(t, base+"*/widget_requests_per_second?labelSelector="+url.QueryEscape(""), map[string]float64{"gadget": 12})
}

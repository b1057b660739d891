package rules

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/internal/kubetest"
)

func mustResourceMap(t *testing.T, m config.ResourceMapping) *ResourceMap {
	t.Helper()
	rm, err := NewResourceMap("rules[0].resources", m)
	if err != nil {
		t.Fatalf("NewResourceMap: %v", err)
	}
	return rm
}

var none = schema.GroupResource{}

// adapterLabels are the labels of TestResourceForLabelAsAdapter.
var adapterLabels = []string{"pod", "pods", "namespace", "node", "service", "deployment", "ingress", "job", "instance", "container",
	"kube_apps_deployment", "kube__pod", "kube__namespace", "kube_networking_k8s_io_ingress", "kube_apps_pod", "kube_pod", "kube_apps_",
	"xkube_apps_deployment", "kube_apps_deployment_x", "deployment.apps", "deployment_apps", "ingress_networking_k8s_io", "apps_deployment",
	"apps_pod", "_pod", "k8s_pod_name", "k8s_namespace_name", "k8s__name", "exported_pod", "exported_namespace", "exported_", "pod_pod",
	"service_service", "pods_pods", "podss", "appsdeployment"}

// TestResourceForLabelAsAdapter checks that a template reads labels as
// prometheus-adapter's ResourceConverter does: the expected resources are
// what its ResourcesForSeries returned for a series with each label alone,
// with kubetest.Mapper's resources; every other label of adapterLabels names
// none. The template is a regular expression with non-greedy, non-empty
// groups for <<.Group>> and <<.Resource>>, and the group is never turned back
// from underscores into dots.
func TestResourceForLabelAsAdapter(t *testing.T) {
	mapper := kubetest.Mapper()
	tests := []struct {
		template string
		want     map[string]schema.GroupResource
	}{
		{"<<.Resource>>", map[string]schema.GroupResource{
			"pod": kubetest.Pods, "pods": kubetest.Pods, "namespace": kubetest.Namespaces, "node": kubetest.Nodes,
			"service": kubetest.Services, "deployment": kubetest.Deployments, "ingress": kubetest.Ingresses,
		}},
		// Not kube__pod (the group may not be empty), nor
		// kube_networking_k8s_io_ingress (group "networking").
		{"kube_<<.Group>>_<<.Resource>>", map[string]schema.GroupResource{"kube_apps_deployment": kubetest.Deployments}},
		{"<<.Group>>_<<.Resource>>", map[string]schema.GroupResource{"apps_deployment": kubetest.Deployments}},
		{"<<.Resource>>_<<.Group>>", map[string]schema.GroupResource{"deployment_apps": kubetest.Deployments}},
		// "." matches any character: resource "d", group "ployment.apps".
		{"<<.Resource>>.<<.Group>>", nil},
		{"k8s_<<.Resource>>_name", map[string]schema.GroupResource{"k8s_pod_name": kubetest.Pods, "k8s_namespace_name": kubetest.Namespaces}},
		{"exported_<<.Resource>>", map[string]schema.GroupResource{"exported_pod": kubetest.Pods, "exported_namespace": kubetest.Namespaces}},
		// The last <<.Resource>> is the resource.
		{"<<.Resource>>_<<.Resource>>", map[string]schema.GroupResource{
			"kube_pod": kubetest.Pods, "apps_deployment": kubetest.Deployments, "apps_pod": kubetest.Pods, "exported_pod": kubetest.Pods,
			"exported_namespace": kubetest.Namespaces, "pod_pod": kubetest.Pods, "service_service": kubetest.Services, "pods_pods": kubetest.Pods,
		}},
		{"<<.Resource>>s", map[string]schema.GroupResource{"pods": kubetest.Pods, "podss": kubetest.Pods}},
		{"<<.Group>><<.Resource>>", nil},
	}
	for _, tt := range tests {
		t.Run(tt.template, func(t *testing.T) {
			rm := mustResourceMap(t, config.ResourceMapping{Template: tt.template})
			for _, label := range adapterLabels {
				want, wantOK := tt.want[label]
				got, ok := rm.ResourceForLabel(label, mapper)
				if ok != wantOK || got != want {
					t.Errorf("ResourceForLabel(%q) = %v, %v; want %v, %v", label, got, ok, want, wantOK)
				}
			}
		})
	}
}

func TestResourceForLabel(t *testing.T) {
	mapper := kubetest.Mapper()
	tests := []struct {
		name    string
		mapping config.ResourceMapping
		labels  map[string]schema.GroupResource // label -> resource (none: not a resource)
	}{
		{
			name: "overrides only",
			mapping: config.ResourceMapping{Overrides: map[string]config.GroupResource{
				"kubernetes_namespace": {Resource: "namespace"},
				"kubernetes_pod_name":  {Resource: "pod"},
				"deploy":               {Group: "apps", Resource: "deployments"},
				"thing":                {Group: "example.com", Resource: "things"}, // unknown to the cluster
			}},
			labels: map[string]schema.GroupResource{
				"kubernetes_namespace": kubetest.Namespaces,
				"kubernetes_pod_name":  kubetest.Pods,
				"deploy":               kubetest.Deployments,
				"thing":                none,
				"pod":                  none,
				"namespace":            none,
			},
		},
		{
			name: "overrides win over the template",
			mapping: config.ResourceMapping{
				Template:  "<<.Resource>>",
				Overrides: map[string]config.GroupResource{"service": {Resource: "pod"}, "exported_namespace": {Resource: "namespaces"}},
			},
			labels: map[string]schema.GroupResource{
				"service":            kubetest.Pods,
				"exported_namespace": kubetest.Namespaces,
				"namespace":          kubetest.Namespaces,
				"node":               kubetest.Nodes,
			},
		},
		{
			name: "an override gives the core-group label a group template cannot read",
			mapping: config.ResourceMapping{
				Template:  "kube_<<.Group>>_<<.Resource>>",
				Overrides: map[string]config.GroupResource{"kube__namespace": {Resource: "namespace"}},
			},
			labels: map[string]schema.GroupResource{
				"kube__namespace":      kubetest.Namespaces,
				"kube_apps_deployment": kubetest.Deployments,
				"kube__pod":            none,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rm := mustResourceMap(t, tt.mapping)
			for label, want := range tt.labels {
				got, ok := rm.ResourceForLabel(label, mapper)
				if ok != (want != none) || got != want {
					t.Errorf("ResourceForLabel(%q) = %v, %v; want %v", label, got, ok, want)
				}
			}
		})
	}
}

func TestNewResourceMapErrors(t *testing.T) {
	for _, tt := range []struct{ template, want string }{
		{"<<.Resource", `rules[0].resources.template: template: resource:1: unclosed action`},
		{"<<.Group>>", `rules[0].resources.template: "<<.Group>>" must use <<.Resource>>`},
		{"kube_pod", `rules[0].resources.template: "kube_pod" must use <<.Resource>>`},
		{"<<.Kind>>", "rules[0].resources.template: template: resource:1:2: executing \"resource\" at <.Kind>: can't evaluate field Kind in type schema.GroupResource"},
		{`<<if false>>x<<end>>`, `rules[0].resources.template: "<<if false>>x<<end>>" renders an empty label`},
		{"(<<.Resource>>", "rules[0].resources.template: \"(<<.Resource>>\" does not make a regular expression matching labels: error parsing regexp: missing closing ): `^((?P<resource>.+?)$`"},
	} {
		_, err := NewResourceMap("rules[0].resources", config.ResourceMapping{Template: tt.template})
		if err == nil || err.Error() != tt.want {
			t.Errorf("NewResourceMap(%q) error:\n%v\nwant:\n%s", tt.template, err, tt.want)
		}
	}
}

func TestResourceForLabelWithoutMapper(t *testing.T) {
	rm := mustResourceMap(t, config.ResourceMapping{
		Template:  "<<.Resource>>",
		Overrides: map[string]config.GroupResource{"ns": {Resource: "namespaces"}},
	})
	for label, want := range map[string]schema.GroupResource{
		"ns":  {Resource: "namespaces"},
		"pod": {Resource: "pod"}, // taken as it is
	} {
		if got, ok := rm.ResourceForLabel(label, nil); !ok || got != want {
			t.Errorf("ResourceForLabel(%q, nil) = %v, %v; want %v", label, got, ok, want)
		}
	}
}

func TestLabelForResource(t *testing.T) {
	mapper := kubetest.Mapper()
	all := []schema.GroupResource{kubetest.Pods, kubetest.Services, kubetest.Namespaces, kubetest.Nodes, kubetest.Deployments, kubetest.Ingresses}
	tests := []struct {
		name    string
		mapping config.ResourceMapping
		want    []string // per resource of all; "!" prefix: error containing the rest
	}{
		{
			name:    "resource template",
			mapping: config.ResourceMapping{Template: "<<.Resource>>"},
			want:    []string{"pod", "service", "namespace", "node", "deployment", "ingress"},
		},
		{
			name:    "group and resource template",
			mapping: config.ResourceMapping{Template: "kube_<<.Group>>_<<.Resource>>"},
			want:    []string{"kube__pod", "kube__service", "kube__namespace", "kube__node", "kube_apps_deployment", "kube_networking_k8s_io_ingress"},
		},
		{
			name: "overrides, template for the rest",
			mapping: config.ResourceMapping{
				Template: "<<.Resource>>",
				Overrides: map[string]config.GroupResource{
					"exported_pod": {Resource: "pod"},
					"k8s_node":     {Resource: "nodes"},
					"deploy":       {Group: "apps", Resource: "deployment"},
				},
			},
			want: []string{"exported_pod", "service", "namespace", "k8s_node", "deploy", "ingress"},
		},
		{
			name: "overrides only",
			mapping: config.ResourceMapping{Overrides: map[string]config.GroupResource{
				"namespace": {Resource: "namespace"},
				"pod":       {Resource: "pod"},
			}},
			want: []string{"pod", "!no label is mapped to resource services (no override and no template)", "namespace",
				"!no label is mapped to resource nodes", "!no label is mapped to resource deployments.apps", "!no label is mapped to resource ingresses.networking.k8s.io"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rm := mustResourceMap(t, tt.mapping)
			for i, gr := range all {
				got, err := rm.LabelForResource(gr, mapper)
				if want, isErr := strings.CutPrefix(tt.want[i], "!"); isErr {
					if err == nil || !strings.Contains(err.Error(), want) {
						t.Errorf("LabelForResource(%v) = %q, %v; want error %q", gr, got, err, want)
					}
					continue
				}
				if err != nil || got != tt.want[i] {
					t.Errorf("LabelForResource(%v) = %q, %v; want %q", gr, got, err, tt.want[i])
					continue
				}
				// Every label given for a resource maps back to it, except
				// those a group template gives for the core group (kube__pod)
				// or for dotted groups, which prometheus-adapter does not
				// read back either.
				back, ok := rm.ResourceForLabel(got, mapper)
				if wantBack := !strings.Contains(got, "__") && !strings.Contains(got, "k8s_io"); ok != wantBack || (ok && back != gr) {
					t.Errorf("ResourceForLabel(LabelForResource(%v) = %q) = %v, %v", gr, got, back, ok)
				}
			}
		})
	}
}

func TestLabelForResourceErrors(t *testing.T) {
	mapper := kubetest.Mapper()
	rm := mustResourceMap(t, config.ResourceMapping{Template: "<<.Resource>>"})
	_, err := rm.LabelForResource(schema.GroupResource{Group: "example.com", Resource: "widgets"}, mapper)
	if err == nil || !strings.HasPrefix(err.Error(), "resource widgets.example.com: ") {
		t.Errorf("unknown resource: %v", err)
	}
	rm = mustResourceMap(t, config.ResourceMapping{Template: `<<if ne .Resource "pod">><<.Resource>><<end>>`})
	_, err = rm.LabelForResource(kubetest.Pods, mapper)
	if err == nil || err.Error() != "resource template gave an empty label for pods" {
		t.Errorf("empty label: %v", err)
	}
}

// Two labels overriding to one resource: the label that sorts first always
// wins, whatever the map's iteration order.
func TestOverridesDeterministic(t *testing.T) {
	mapper := kubetest.Mapper()
	mapping := config.ResourceMapping{
		Template: "<<.Resource>>",
		Overrides: map[string]config.GroupResource{
			"pod_name":           {Resource: "pod"},
			"kubernetes_pod":     {Resource: "pods"},
			"exported_pod":       {Resource: "pod"},
			"zz_pod":             {Resource: "pod"},
			"namespace":          {Resource: "namespace"},
			"exported_namespace": {Resource: "namespace"},
			"k_node":             {Resource: "node"},
			"a_node":             {Resource: "nodes"},
		},
	}
	for i := 0; i < 200; i++ {
		rm := mustResourceMap(t, mapping)
		for gr, want := range map[schema.GroupResource]string{
			kubetest.Pods:       "exported_pod",
			kubetest.Namespaces: "exported_namespace",
			kubetest.Nodes:      "a_node",
			kubetest.Services:   "service",
		} {
			if got, err := rm.LabelForResource(gr, mapper); err != nil || got != want {
				t.Fatalf("run %d: LabelForResource(%v) = %q, %v; want %q", i, gr, got, err, want)
			}
		}
		if got := rm.NamespaceLabel(mapper); got != "exported_namespace" {
			t.Fatalf("run %d: NamespaceLabel = %q", i, got)
		}
	}
}

func TestNamespaceLabel(t *testing.T) {
	mapper := kubetest.Mapper()
	tests := []struct {
		mapping config.ResourceMapping
		want    string
	}{
		{config.ResourceMapping{}, "namespace"},
		{config.ResourceMapping{Template: "<<.Resource>>"}, "namespace"},
		{config.ResourceMapping{Template: "kube_<<.Group>>_<<.Resource>>"}, "kube__namespace"},
		{config.ResourceMapping{Overrides: map[string]config.GroupResource{"pod": {Resource: "pod"}}}, "namespace"},
		{config.ResourceMapping{Overrides: map[string]config.GroupResource{"kubernetes_namespace": {Resource: "namespace"}}}, "kubernetes_namespace"},
	}
	for _, tt := range tests {
		if got := mustResourceMap(t, tt.mapping).NamespaceLabel(mapper); got != tt.want {
			t.Errorf("NamespaceLabel(%+v) = %q, want %q", tt.mapping, got, tt.want)
		}
	}
}

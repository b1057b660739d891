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

func TestResourceForLabel(t *testing.T) {
	mapper := kubetest.Mapper()
	tests := []struct {
		name    string
		mapping config.ResourceMapping
		labels  map[string]schema.GroupResource // label -> resource (none: not a resource)
	}{
		{
			name:    "resource template",
			mapping: config.ResourceMapping{Template: "<<.Resource>>"},
			labels: map[string]schema.GroupResource{
				"pod":        kubetest.Pods,
				"pods":       kubetest.Pods, // the mapper knows plurals too
				"service":    kubetest.Services,
				"namespace":  kubetest.Namespaces,
				"node":       kubetest.Nodes,
				"deployment": kubetest.Deployments, // any group
				"ingress":    kubetest.Ingresses,
				"container":  none,
				"instance":   none,
				"job":        none,
				"":           none,
			},
		},
		{
			name:    "group and resource template",
			mapping: config.ResourceMapping{Template: "kube_<<.Group>>_<<.Resource>>"},
			labels: map[string]schema.GroupResource{
				"kube_apps_deployment":           kubetest.Deployments,
				"kube_networking_k8s_io_ingress": kubetest.Ingresses,
				"kube__pod":                      kubetest.Pods, // core group
				"kube__namespace":                kubetest.Namespaces,
				"kube_apps_pod":                  none, // pods are not in apps
				"kube_pod":                       none,
				"kube_apps_":                     none,
				"pod":                            none,
				"deployment":                     none,
				"kube_networking_k8s_io_":        none,
				"xkube_apps_deployment":          none,
			},
		},
		{
			name:    "resource before group",
			mapping: config.ResourceMapping{Template: "<<.Resource>>.<<.Group>>"},
			labels: map[string]schema.GroupResource{
				"deployment.apps":           kubetest.Deployments,
				"ingress.networking_k8s_io": kubetest.Ingresses,
				"deployment":                none,
			},
		},
		{
			name:    "template with prefix and suffix",
			mapping: config.ResourceMapping{Template: "k8s_<<.Resource>>_name"},
			labels: map[string]schema.GroupResource{
				"k8s_pod_name":       kubetest.Pods,
				"k8s_namespace_name": kubetest.Namespaces,
				"k8s__name":          none,
				"k8s_name":           none,
				"pod":                none,
			},
		},
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
				// Every label given for a resource maps back to it.
				if back, ok := rm.ResourceForLabel(got, mapper); !ok || back != gr {
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

// Package kubetest holds Kubernetes fakes for tests: a RESTMapper with the
// usual resources and an in-memory object lister.
package kubetest

import (
	"context"
	"sort"
	"sync"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Resources the Mapper knows.
var (
	Pods        = schema.GroupResource{Resource: "pods"}
	Services    = schema.GroupResource{Resource: "services"}
	Namespaces  = schema.GroupResource{Resource: "namespaces"}
	Nodes       = schema.GroupResource{Resource: "nodes"}
	Deployments = schema.GroupResource{Group: "apps", Resource: "deployments"}
	Ingresses   = schema.GroupResource{Group: "networking.k8s.io", Resource: "ingresses"}
)

// Mapper returns a RESTMapper knowing pods, services, namespaces, nodes,
// deployments.apps and ingresses.networking.k8s.io, with their real scopes.
func Mapper() *apimeta.DefaultRESTMapper {
	core := schema.GroupVersion{Version: "v1"}
	apps := schema.GroupVersion{Group: "apps", Version: "v1"}
	networking := schema.GroupVersion{Group: "networking.k8s.io", Version: "v1"}
	m := apimeta.NewDefaultRESTMapper([]schema.GroupVersion{core, apps, networking})
	m.Add(core.WithKind("Pod"), apimeta.RESTScopeNamespace)
	m.Add(core.WithKind("Service"), apimeta.RESTScopeNamespace)
	m.Add(core.WithKind("Namespace"), apimeta.RESTScopeRoot)
	m.Add(core.WithKind("Node"), apimeta.RESTScopeRoot)
	m.Add(apps.WithKind("Deployment"), apimeta.RESTScopeNamespace)
	m.Add(networking.WithKind("Ingress"), apimeta.RESTScopeNamespace)
	return m
}

// Object is a stored object.
type Object struct {
	Resource  schema.GroupResource
	Namespace string
	Name      string
	Labels    map[string]string
}

// Objects is an in-memory object lister (custom.ObjectLister).
type Objects struct {
	mu    sync.Mutex
	items []Object
	// Err, if set, is returned by Names.
	Err error
}

// Add stores objects.
func (o *Objects) Add(objs ...Object) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.items = append(o.items, objs...)
}

// Names returns the sorted names of the objects of gr in namespace (all
// namespaces if empty) whose labels match sel.
func (o *Objects) Names(_ context.Context, gr schema.GroupResource, namespace string, sel labels.Selector) ([]string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.Err != nil {
		return nil, o.Err
	}
	if sel == nil {
		sel = labels.Everything()
	}
	var out []string
	for _, obj := range o.items {
		if obj.Resource == gr && (namespace == "" || obj.Namespace == namespace) && sel.Matches(labels.Set(obj.Labels)) {
			out = append(out, obj.Name)
		}
	}
	sort.Strings(out)
	return out, nil
}

package objects

import (
	"context"
	"reflect"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	metadatafake "k8s.io/client-go/metadata/fake"

	"github.com/promgate/promgate/pkg/internal/kubetest"
)

func pod(ns, name string, lbls map[string]string) runtime.Object {
	return &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls},
	}
}

func TestNames(t *testing.T) {
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	client := metadatafake.NewSimpleMetadataClient(scheme,
		pod("a", "web-1", map[string]string{"app": "web"}),
		pod("a", "web-2", map[string]string{"app": "web"}),
		pod("a", "db-1", map[string]string{"app": "db"}),
		pod("b", "web-1", map[string]string{"app": "web"}),
	)
	stop := make(chan struct{})
	defer close(stop)
	c := New(client, kubetest.Mapper(), stop)
	pods := schema.GroupResource{Resource: "pods"}

	tests := []struct {
		name, ns, sel string
		want          []string
	}{
		{"namespace, everything", "a", "", []string{"db-1", "web-1", "web-2"}},
		{"namespace and selector", "a", "app=web", []string{"web-1", "web-2"}},
		{"other namespace", "b", "app=web", []string{"web-1"}},
		{"all namespaces", "", "app=db", []string{"db-1"}},
		{"no match", "a", "app=cache", []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, err := labels.Parse(tt.sel)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got, err := c.Names(ctx, pods, tt.ns, sel)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Names(%q, %q) = %v, want %v", tt.ns, tt.sel, got, tt.want)
			}
		})
	}

	t.Run("lazy lister", func(t *testing.T) {
		l := c.GenericLister(pods, 10*time.Second)
		objs, err := l.ByNamespace("a").List(labels.SelectorFromSet(labels.Set{"app": "db"}))
		if err != nil || len(objs) != 1 {
			t.Fatalf("List = %v, %v; want one pod", objs, err)
		}
		if _, err := l.ByNamespace("b").Get("web-1"); err != nil {
			t.Errorf("Get(b/web-1): %v", err)
		}
	})

	t.Run("unknown resource", func(t *testing.T) {
		if _, err := c.Names(context.Background(), schema.GroupResource{Resource: "gizmos"}, "a", labels.Everything()); err == nil {
			t.Error("want an error for a resource the cluster does not know")
		}
	})

}

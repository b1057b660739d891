package objects

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	metadatafake "k8s.io/client-go/metadata/fake"
	clienttesting "k8s.io/client-go/testing"

	"github.com/promgate/promgate/pkg/internal/kubetest"
)

func pod(ns, name string, lbls map[string]string) runtime.Object {
	return &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: lbls},
	}
}

// fakeClient is a fake metadata client holding objs.
func fakeClient(t *testing.T, objs ...runtime.Object) *metadatafake.FakeMetadataClient {
	t.Helper()
	scheme := metadatafake.NewTestScheme()
	if err := metav1.AddMetaToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return metadatafake.NewSimpleMetadataClient(scheme, objs...)
}

func TestNames(t *testing.T) {
	client := fakeClient(t,
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

// TestListRefused checks that a resource promgate may not list fails every
// request at once with a 503 naming the permission, rather than waiting for a
// sync that cannot happen, and that granting the permission later is picked
// up without a restart.
func TestListRefused(t *testing.T) {
	deploy := &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "web"},
	}
	client := fakeClient(t, deploy)
	var allowed atomic.Bool
	refuse := func(action clienttesting.Action) (bool, runtime.Object, error) {
		if allowed.Load() {
			return false, nil, nil
		}
		return true, nil, apierrors.NewForbidden(kubetest.Deployments, "",
			errors.New(`User "system:serviceaccount:promgate:promgate" cannot list resource "deployments" in API group "apps" at the cluster scope`))
	}
	client.PrependReactor("list", "deployments", refuse)
	client.PrependWatchReactor("deployments", func(action clienttesting.Action) (bool, watch.Interface, error) {
		if allowed.Load() {
			return false, nil, nil
		}
		return true, nil, apierrors.NewForbidden(kubetest.Deployments, "", errors.New("cannot watch"))
	})
	stop := make(chan struct{})
	defer close(stop)
	c := New(client, kubetest.Mapper(), stop)

	// The request's own deadline is far away: the error must not wait for it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	_, err := c.Names(ctx, kubetest.Deployments, "a", labels.Everything())
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("refused list took %v to fail", took)
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Code != http.StatusServiceUnavailable {
		t.Fatalf("Names = %v, want a 503 status error", err)
	}
	for _, want := range []string{"deployments.apps", "forbidden", "get, list and watch"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}

	// Another resource is not affected.
	if _, err := c.Names(ctx, kubetest.Pods, "a", labels.Everything()); err != nil {
		t.Errorf("pods: %v", err)
	}

	// Granted later: the retrying informer syncs.
	allowed.Store(true)
	for {
		names, err := c.Names(ctx, kubetest.Deployments, "a", labels.Everything())
		if err == nil {
			if !reflect.DeepEqual(names, []string{"web"}) {
				t.Errorf("Names after grant = %v, want [web]", names)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("still failing after the grant: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestResourceGone: an informer whose resource is gone (a CRD deleted)
// stops instead of re-listing for ever; a request then gets a 404, and a
// later request starts a new informer.
func TestResourceGone(t *testing.T) {
	client := fakeClient(t)
	var lists atomic.Int32
	client.PrependReactor("list", "deployments", func(action clienttesting.Action) (bool, runtime.Object, error) {
		lists.Add(1)
		return true, nil, apierrors.NewNotFound(kubetest.Deployments, "")
	})
	stop := make(chan struct{})
	defer close(stop)
	c := New(client, kubetest.Mapper(), stop)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := c.Names(ctx, kubetest.Deployments, "a", labels.Everything())
	if !apierrors.IsNotFound(err) {
		t.Fatalf("Names = %v, want a 404", err)
	}
	time.Sleep(3 * time.Second) // a retrying reflector would list again within its backoff
	if n := lists.Load(); n != 1 {
		t.Errorf("%d LISTs of a resource that is gone, want 1", n)
	}
	c.mu.Lock()
	_, kept := c.informers[schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}]
	c.mu.Unlock()
	if kept {
		t.Error("the informer of a resource that is gone is kept")
	}
	if _, err := c.Names(ctx, kubetest.Deployments, "a", labels.Everything()); !apierrors.IsNotFound(err) {
		t.Errorf("second Names = %v, want a 404 from a new informer", err)
	}
	if n := lists.Load(); n != 2 {
		t.Errorf("%d LISTs after a second request, want 2", n)
	}
}

// countingMapper counts ResourceFor calls.
type countingMapper struct {
	apimeta.RESTMapper
	calls atomic.Int32
}

func (m *countingMapper) ResourceFor(r schema.GroupVersionResource) (schema.GroupVersionResource, error) {
	m.calls.Add(1)
	return m.RESTMapper.ResourceFor(r)
}

// TestResolveRemembered: the mapper is asked about a resource once per
// resolveTTL, not once per request, and unknown resources are not
// remembered (requests cannot grow the memo).
func TestResolveRemembered(t *testing.T) {
	m := &countingMapper{RESTMapper: kubetest.Mapper()}
	c := New(metadatafake.NewSimpleMetadataClient(metadatafake.NewTestScheme()), m, nil)
	pods := schema.GroupResource{Resource: "pods"}
	for range 3 {
		if gvr, err := c.resourceFor(pods); err != nil || gvr.Version != "v1" {
			t.Fatalf("resourceFor(pods) = %v, %v", gvr, err)
		}
	}
	if n := m.calls.Load(); n != 1 {
		t.Errorf("mapper asked %d times, want 1", n)
	}
	c.resolved[pods] = resolution{gvr: c.resolved[pods].gvr, at: time.Now().Add(-resolveTTL)}
	if _, err := c.resourceFor(pods); err != nil || m.calls.Load() != 2 {
		t.Errorf("after resolveTTL: err %v, mapper asked %d times, want 2", err, m.calls.Load())
	}
	for range 3 {
		if _, err := c.resourceFor(schema.GroupResource{Resource: "gizmos"}); err == nil {
			t.Fatal("gizmos resolved")
		}
	}
	if len(c.resolved) != 1 {
		t.Errorf("memo holds %d resources, want 1 (pods)", len(c.resolved))
	}
}

// Names lists once per namespace, selector and change: an object added,
// deleted or relabelled changes what it returns; the memory of lists is
// bounded whatever selectors requests bring.
func TestNamesFollowChanges(t *testing.T) {
	client := fakeClient(t,
		pod("a", "web-1", map[string]string{"app": "web"}),
		pod("a", "web-2", map[string]string{"app": "web"}),
		pod("a", "db-1", map[string]string{"app": "db"}),
	)
	stop := make(chan struct{})
	defer close(stop)
	c := New(client, kubetest.Mapper(), stop)
	pods := schema.GroupResource{Resource: "pods"}
	web := labels.SelectorFromSet(labels.Set{"app": "web"})
	ctx := context.Background()
	eventually := func(ns string, want ...string) {
		t.Helper()
		var got []string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			var err error
			if got, err = c.Names(ctx, pods, ns, web); err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, ",") == strings.Join(want, ",") {
				return
			}
		}
		t.Fatalf("Names(%q, app=web) = %v, want %v", ns, got, want)
	}
	eventually("a", "web-1", "web-2")
	eventually("", "web-1", "web-2")
	podsOf := client.Resource(schema.GroupVersionResource{Version: "v1", Resource: "pods"}).Namespace("a")
	if _, err := podsOf.Patch(ctx, "db-1", types.MergePatchType, []byte(`{"metadata":{"labels":{"app":"web"}}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually("a", "db-1", "web-1", "web-2")
	eventually("", "db-1", "web-1", "web-2")
	if err := podsOf.Delete(ctx, "web-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually("a", "db-1", "web-2")
	eventually("", "db-1", "web-2")

	for i := range 50_000 {
		if _, err := c.Names(ctx, pods, "a", labels.SelectorFromSet(labels.Set{"app": fmt.Sprintf("web-%d", i)})); err != nil {
			t.Fatal(err)
		}
		c.mu.Lock()
		over := c.namesBytes > maxNamesBytes
		c.mu.Unlock()
		if over {
			t.Fatalf("after %d selectors the memorized lists hold %d bytes, over %d", i+1, c.namesBytes, maxNamesBytes)
		}
	}
	eventually("a", "db-1", "web-2")
}

package workload

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// Watch feeds m from Pod and Node informers on cs until ctx is done: one LIST
// and then WATCH events, never a request per scrape. It returns once both
// caches have synced, or with ctx's error if ctx ends first.
func Watch(ctx context.Context, cs kubernetes.Interface, m *Model) error {
	factory := informers.NewSharedInformerFactory(cs, 0)

	pods := factory.Core().V1().Pods().Informer()
	nodes := factory.Core().V1().Nodes().Informer()
	for _, inf := range []cache.SharedIndexInformer{pods, nodes} {
		if err := inf.SetTransform(stripManagedFields); err != nil {
			return fmt.Errorf("set informer transform: %w", err)
		}
	}
	podReg, err := pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { upsertPod(m, obj) },
		UpdateFunc: func(_, obj any) { upsertPod(m, obj) },
		DeleteFunc: func(obj any) {
			if p, ok := unwrapDeleted(obj).(*corev1.Pod); ok {
				m.DeletePod(p.UID)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("add pod handler: %w", err)
	}
	nodeReg, err := nodes.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { upsertNode(m, obj) },
		UpdateFunc: func(_, obj any) { upsertNode(m, obj) },
		DeleteFunc: func(obj any) {
			if n, ok := unwrapDeleted(obj).(*corev1.Node); ok {
				m.DeleteNode(n.Name)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("add node handler: %w", err)
	}

	factory.Start(ctx.Done())
	go func() {
		<-ctx.Done()
		factory.Shutdown()
	}()
	// The handlers' own HasSynced: true once they have seen every object of
	// the initial LIST, not just once the cache holds them.
	if !cache.WaitForCacheSync(ctx.Done(), podReg.HasSynced, nodeReg.HasSynced) {
		if err := ctx.Err(); err != nil {
			return err
		}
		return fmt.Errorf("pod and node informers did not sync")
	}
	// Synced, but if ctx ended meanwhile the informers are stopping.
	return ctx.Err()
}

func upsertPod(m *Model, obj any) {
	if p, ok := obj.(*corev1.Pod); ok {
		m.UpsertPod(p)
	}
}

func upsertNode(m *Model, obj any) {
	if n, ok := obj.(*corev1.Node); ok {
		m.UpsertNode(n)
	}
}

// unwrapDeleted returns the object inside a DeletedFinalStateUnknown.
func unwrapDeleted(obj any) any {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return d.Obj
	}
	return obj
}

// stripManagedFields drops managedFields from cached objects: the exporter
// never reads them and they are most of a pod's size.
func stripManagedFields(obj any) (any, error) {
	if a, err := meta.Accessor(obj); err == nil {
		a.SetManagedFields(nil)
	}
	return obj, nil
}

// Package objects answers "which objects of this resource exist" from
// shared metadata informers, started lazily per resource, so that a request
// for a metric over many objects never LISTs against kube-apiserver.
//
// An informer whose LIST is refused (promgate's service account lacks
// list/watch on the resource) keeps retrying in the background, so that a
// permission granted later takes effect without a restart; meanwhile every
// request for that resource fails at once with a 503 naming the missing
// permission instead of waiting for a sync that cannot happen.
package objects

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// Cache holds one metadata informer per resource that has been asked about.
type Cache struct {
	client metadata.Interface
	mapper apimeta.RESTMapper
	stop   <-chan struct{}

	mu        sync.Mutex
	informers map[schema.GroupVersionResource]*entry
	// names remembers the sorted names Names returned, per resource,
	// namespace and selector, with the generation of the namespace's
	// objects they were listed at; bounded by maxNamesBytes.
	names      map[namesKey]namesVal
	namesBytes int
	// resolved remembers what the mapper said of a resource for
	// resolveTTL: a mapper lookup scans every resource the cluster
	// serves, and every request asks. Only resources the mapper knows
	// are kept, so the map is bounded by the cluster's resources.
	resolved map[schema.GroupResource]resolution
}

type resolution struct {
	gvr schema.GroupVersionResource
	at  time.Time
}

// resolveTTL bounds how long a resource's version is taken from memory
// rather than from the mapper (which itself refreshes periodically).
const resolveTTL = 30 * time.Second

// resourceFor is c.mapper.ResourceFor(gr), remembered for resolveTTL.
func (c *Cache) resourceFor(gr schema.GroupResource) (schema.GroupVersionResource, error) {
	now := time.Now()
	c.mu.Lock()
	r, ok := c.resolved[gr]
	c.mu.Unlock()
	if ok && now.Sub(r.at) < resolveTTL {
		return r.gvr, nil
	}
	gvr, err := c.mapper.ResourceFor(gr.WithVersion(""))
	if err != nil {
		return gvr, err
	}
	c.mu.Lock()
	if c.resolved == nil {
		c.resolved = map[schema.GroupResource]resolution{}
	}
	c.resolved[gr] = resolution{gvr: gvr, at: now}
	c.mu.Unlock()
	return gvr, nil
}

type entry struct {
	informer cache.SharedIndexInformer
	synced   chan struct{}
	stop     func() // stops this informer alone

	// gens counts, per namespace (and "" for all), the changes to which
	// objects exist or to their labels, as the informer delivers them:
	// a name list memorized at one generation is still the list.
	gensMu sync.Mutex
	gens   map[string]uint64

	mu sync.Mutex
	// err is the informer's last LIST/WATCH error; errc is closed (and
	// replaced) whenever err changes.
	err  error
	errc chan struct{}
}

func (e *entry) setErr(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.err = err
	close(e.errc)
	e.errc = make(chan struct{})
}

// lastErr returns a channel closed when the error next changes, and the
// error.
func (e *entry) lastErr() (<-chan struct{}, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.errc, e.err
}

// New returns a Cache whose informers run until stop is closed.
func New(client metadata.Interface, mapper apimeta.RESTMapper, stop <-chan struct{}) *Cache {
	return &Cache{client: client, mapper: mapper, stop: stop, informers: map[schema.GroupVersionResource]*entry{}}
}

// Names returns the sorted names of the objects of gr in namespace (all
// namespaces if empty) whose labels match sel. The slice may be shared
// with other callers: it must not be changed.
//
// The names are listed and sorted once per namespace, selector and
// change: HPAs ask for the same pods every poll, and listing and sorting
// them was a tenth of a request's CPU.
func (c *Cache) Names(ctx context.Context, gr schema.GroupResource, namespace string, sel labels.Selector) ([]string, error) {
	lister, e, err := c.lister(ctx, gr)
	if err != nil {
		return nil, err
	}
	if sel == nil {
		sel = labels.Everything()
	}
	key := namesKey{e: e, namespace: namespace, selector: sel.String()}
	gen := e.generation(namespace) // before listing: a change after it bumps it
	c.mu.Lock()
	v, ok := c.names[key]
	c.mu.Unlock()
	if ok && v.gen == gen {
		return v.names, nil
	}
	objs, err := listOf(lister, namespace, sel)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(objs))
	for i, o := range objs {
		names[i] = o.Name
	}
	sort.Strings(names)
	c.remember(key, namesVal{gen: gen, names: names})
	return names, nil
}

// namesKey names one memorized name list.
type namesKey struct {
	e                   *entry
	namespace, selector string
}

// namesVal is a memorized name list and the generation it was listed at.
type namesVal struct {
	gen   uint64
	names []string
}

// maxNamesBytes bounds the memorized name lists: selectors come from
// requests. Past it the memory starts afresh.
const maxNamesBytes = 4 << 20

// remember keeps v under key within maxNamesBytes.
func (c *Cache) remember(key namesKey, v namesVal) {
	size := namesSize(key, v)
	if size > maxNamesBytes/4 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.names[key]; ok {
		c.namesBytes -= namesSize(key, old)
	}
	if c.names == nil || c.namesBytes+size > maxNamesBytes {
		c.names, c.namesBytes = map[namesKey]namesVal{}, 0
	}
	c.names[key] = v
	c.namesBytes += size
}

// namesSize is what key and v are counted as (a name's bytes and a
// string header each, and the key).
func namesSize(key namesKey, v namesVal) int {
	size := len(key.namespace) + len(key.selector) + 64
	for _, n := range v.names {
		size += len(n) + 16
	}
	return size
}

// generation is the count of changes delivered for namespace's objects
// (every namespace's for "").
func (e *entry) generation(namespace string) uint64 {
	e.gensMu.Lock()
	defer e.gensMu.Unlock()
	return e.gens[namespace]
}

// changed counts a change to an object of namespace, for it and for all.
func (e *entry) changed(namespace string) {
	e.gensMu.Lock()
	defer e.gensMu.Unlock()
	if e.gens == nil {
		e.gens = map[string]uint64{}
	}
	e.gens[namespace]++
	if namespace != "" {
		e.gens[""]++
	}
}

// watchChanges counts, in e, the changes Names' lists depend on: objects
// added or deleted, labels changed. The informer delivers them after
// updating its store.
func (e *entry) watchChanges() {
	namespaceOf := func(obj any) string {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
			return m.Namespace
		}
		return ""
	}
	_, _ = e.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { e.changed(namespaceOf(obj)) },
		UpdateFunc: func(old, obj any) {
			o, ok1 := old.(*metav1.PartialObjectMetadata)
			n, ok2 := obj.(*metav1.PartialObjectMetadata)
			if !ok1 || !ok2 || o.Name != n.Name || !maps.Equal(o.Labels, n.Labels) {
				e.changed(namespaceOf(obj))
			}
		},
		DeleteFunc: func(obj any) { e.changed(namespaceOf(obj)) },
	})
}

// List returns the metadata of the objects of gr in namespace (all if
// empty) whose labels match sel.
func (c *Cache) List(ctx context.Context, gr schema.GroupResource, namespace string, sel labels.Selector) ([]*metav1.PartialObjectMetadata, error) {
	lister, err := c.Lister(ctx, gr)
	if err != nil {
		return nil, err
	}
	if sel == nil {
		sel = labels.Everything()
	}
	return listOf(lister, namespace, sel)
}

// listOf lists the objects of lister in namespace (all if empty) whose
// labels match sel.
func listOf(lister cache.GenericLister, namespace string, sel labels.Selector) ([]*metav1.PartialObjectMetadata, error) {
	var objs []runtime.Object
	var err error
	if namespace == "" {
		objs, err = lister.List(sel)
	} else {
		objs, err = lister.ByNamespace(namespace).List(sel)
	}
	if err != nil {
		return nil, err
	}
	out := make([]*metav1.PartialObjectMetadata, 0, len(objs))
	for _, o := range objs {
		if m, ok := o.(*metav1.PartialObjectMetadata); ok {
			out = append(out, m)
		}
	}
	return out, nil
}

// Lister returns a synced lister for gr, starting its informer on first use.
// While kube-apiserver refuses to let promgate list gr (403 or 401), it
// returns a 503 status error that names the missing permission.
func (c *Cache) Lister(ctx context.Context, gr schema.GroupResource) (cache.GenericLister, error) {
	l, _, err := c.lister(ctx, gr)
	return l, err
}

// lister is Lister, with the informer's entry.
func (c *Cache) lister(ctx context.Context, gr schema.GroupResource) (cache.GenericLister, *entry, error) {
	gvr, err := c.resourceFor(gr)
	if err != nil {
		return nil, nil, fmt.Errorf("resource %s is not known to the cluster: %w", gr, err)
	}
	e := c.entry(gvr)
	for {
		select {
		case <-e.synced:
			return cache.NewGenericLister(e.informer.GetIndexer(), gvr.GroupResource()), e, nil
		default:
		}
		changed, last := e.lastErr()
		if apierrors.IsNotFound(last) {
			return nil, nil, apierrors.NewNotFound(gvr.GroupResource(), "")
		}
		if apierrors.IsForbidden(last) || apierrors.IsUnauthorized(last) {
			return nil, nil, apierrors.NewServiceUnavailable(fmt.Sprintf(
				"promgate may not list and watch %s, so it cannot tell which objects exist: %v "+
					"(grant its service account get, list and watch on %s; see docs/security.md)",
				gvr.GroupResource(), last, gvr.GroupResource()))
		}
		select {
		case <-e.synced:
		case <-changed:
		case <-ctx.Done():
			if last != nil {
				return nil, nil, fmt.Errorf("waiting for the %s cache to sync: %w (last error: %v)", gr, ctx.Err(), last)
			}
			return nil, nil, fmt.Errorf("waiting for the %s cache to sync: %w", gr, ctx.Err())
		}
	}
}

func (c *Cache) entry(gvr schema.GroupVersionResource) *entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.informers[gvr]; ok {
		return e
	}
	inf := metadatainformer.NewFilteredMetadataInformer(c.client, gvr, metav1.NamespaceAll, 0,
		cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}, nil).Informer()
	_ = inf.SetTransform(stripManagedFields)
	stop := make(chan struct{})
	var once sync.Once
	e := &entry{informer: inf, synced: make(chan struct{}), errc: make(chan struct{}), stop: func() { once.Do(func() { close(stop) }) }}
	_ = inf.SetWatchErrorHandlerWithContext(func(ctx context.Context, r *cache.Reflector, err error) {
		e.setErr(err)
		if apierrors.IsNotFound(err) {
			// The resource is gone (a CRD deleted): stop listing it, rather
			// than retrying for ever; a later request starts a new informer
			// if it is back.
			klog.InfoS("resource no longer served; stopping its metadata informer", "resource", gvr.String())
			c.forget(gvr, e)
			return
		}
		cache.DefaultWatchErrorHandler(ctx, r, err)
	})
	e.watchChanges()
	c.informers[gvr] = e
	klog.V(2).InfoS("starting metadata informer", "resource", gvr.String())
	go func() {
		select {
		case <-c.stop:
			e.stop()
		case <-stop:
		}
	}()
	go inf.Run(stop)
	go func() {
		start := time.Now()
		if cache.WaitForCacheSync(stop, inf.HasSynced) {
			klog.V(2).InfoS("metadata informer synced", "resource", gvr.String(), "duration", time.Since(start))
			close(e.synced)
		}
	}()
	return e
}

// forget stops e and drops it, if it is still gvr's informer.
func (c *Cache) forget(gvr schema.GroupVersionResource, e *entry) {
	e.stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.informers[gvr] == e {
		delete(c.informers, gvr)
	}
}

// stripManagedFields keeps only what promgate reads from each object.
func stripManagedFields(obj interface{}) (interface{}, error) {
	if m, ok := obj.(*metav1.PartialObjectMetadata); ok {
		m.ManagedFields = nil
		m.Annotations = nil
		m.OwnerReferences = nil
	}
	return obj, nil
}

// GenericLister returns a lister for gr that starts and waits for its
// informer on first use (up to timeout), for APIs that want a lister before
// the server runs.
func (c *Cache) GenericLister(gr schema.GroupResource, timeout time.Duration) cache.GenericLister {
	return &lazyLister{c: c, gr: gr, timeout: timeout}
}

type lazyLister struct {
	c       *Cache
	gr      schema.GroupResource
	timeout time.Duration
}

var _ cache.GenericLister = (*lazyLister)(nil)

func (l *lazyLister) lister() (cache.GenericLister, error) {
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	return l.c.Lister(ctx, l.gr)
}

func (l *lazyLister) List(sel labels.Selector) ([]runtime.Object, error) {
	gl, err := l.lister()
	if err != nil {
		return nil, err
	}
	return gl.List(sel)
}

func (l *lazyLister) Get(name string) (runtime.Object, error) {
	gl, err := l.lister()
	if err != nil {
		return nil, err
	}
	return gl.Get(name)
}

func (l *lazyLister) ByNamespace(namespace string) cache.GenericNamespaceLister {
	return &lazyNamespaceLister{l: l, namespace: namespace}
}

type lazyNamespaceLister struct {
	l         *lazyLister
	namespace string
}

func (n *lazyNamespaceLister) List(sel labels.Selector) ([]runtime.Object, error) {
	gl, err := n.l.lister()
	if err != nil {
		return nil, err
	}
	return gl.ByNamespace(n.namespace).List(sel)
}

func (n *lazyNamespaceLister) Get(name string) (runtime.Object, error) {
	gl, err := n.l.lister()
	if err != nil {
		return nil, err
	}
	return gl.ByNamespace(n.namespace).Get(name)
}

package storage

// This file mirrors the shape of metrics-server v0.9.0's pkg/api/pod.go
// (Copyright 2018 The Kubernetes Authors, Apache License 2.0); only its
// error handling differs. See the package documentation.

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/metrics/pkg/apis/metrics"
	metricsapi "sigs.k8s.io/metrics-server/pkg/api"
)

// podMetrics is the storage of PodMetrics (metrics.k8s.io podmetrics,
// served as "pods"): one per pod the lister knows and the getter has
// metrics for.
type podMetrics struct {
	metrics metricsapi.PodMetricsGetter
	pods    cache.GenericLister
}

var (
	_ rest.KindProvider         = &podMetrics{}
	_ rest.Storage              = &podMetrics{}
	_ rest.Getter               = &podMetrics{}
	_ rest.Lister               = &podMetrics{}
	_ rest.TableConvertor       = &podMetrics{}
	_ rest.Scoper               = &podMetrics{}
	_ rest.SingularNameProvider = &podMetrics{}
)

// Pods returns the storage of PodMetrics for metricsapi.Build: the pods
// come from pods (a lister of *metav1.PartialObjectMetadata, such as a
// metadata informer's), their metrics from m. It implements rest.Getter,
// rest.Lister, rest.Scoper (namespaced), rest.TableConvertor and
// rest.SingularNameProvider. Errors are API statuses, unwrapped: a 503 from
// m reaches the client as a 503.
func Pods(m metricsapi.PodMetricsGetter, pods cache.GenericLister) rest.Storage {
	return &podMetrics{metrics: m, pods: pods}
}

// New implements rest.Storage.
func (s *podMetrics) New() runtime.Object { return &metrics.PodMetrics{} }

// Destroy implements rest.Storage.
func (s *podMetrics) Destroy() {}

// Kind implements rest.KindProvider.
func (s *podMetrics) Kind() string { return "PodMetrics" }

// NewList implements rest.Lister.
func (s *podMetrics) NewList() runtime.Object { return &metrics.PodMetricsList{} }

// NamespaceScoped implements rest.Scoper.
func (s *podMetrics) NamespaceScoped() bool { return true }

// GetSingularName implements rest.SingularNameProvider. It is empty, as
// metrics-server's, so that discovery is the same.
func (s *podMetrics) GetSingularName() string { return "" }

// List implements rest.Lister: the metrics of the request namespace's pods
// (every namespace's when it has none) that match the label selector and
// the field selector (on metadata.name and metadata.namespace), sorted by
// namespace and name. Pods without metrics are left out.
func (s *podMetrics) List(ctx context.Context, options *metainternalversion.ListOptions) (runtime.Object, error) {
	namespace := genericapirequest.NamespaceValue(ctx)
	pods, err := s.list(namespace, options)
	if err != nil {
		return &metrics.PodMetricsList{}, err
	}
	ms, err := s.getMetrics(pods...)
	if err != nil {
		return &metrics.PodMetricsList{}, apiStatus(err, "Failed reading pods metrics", "namespace", klog.KRef("", namespace))
	}
	return &metrics.PodMetricsList{Items: ms}, nil
}

func (s *podMetrics) list(namespace string, options *metainternalversion.ListOptions) ([]runtime.Object, error) {
	selector := labels.Everything()
	if options != nil && options.LabelSelector != nil {
		selector = options.LabelSelector
	}
	pods, err := s.pods.ByNamespace(namespace).List(selector)
	if err != nil {
		return nil, apiStatus(fmt.Errorf("listing pods: %w", err), "Failed listing pods",
			"labelSelector", selector, "namespace", klog.KRef("", namespace))
	}
	if options != nil && options.FieldSelector != nil {
		pods = filterPods(pods, options.FieldSelector)
	}
	return pods, nil
}

// Get implements rest.Getter: the metrics of the named pod of the request
// namespace, or NotFound when there is no such pod or it has no metrics.
func (s *podMetrics) Get(ctx context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	namespace := genericapirequest.NamespaceValue(ctx)
	pod, err := s.pods.ByNamespace(namespace).Get(name)
	switch {
	case apierrors.IsNotFound(err):
		return &metrics.PodMetrics{}, err
	case err != nil:
		return &metrics.PodMetrics{}, apiStatus(fmt.Errorf("getting pod: %w", err), "Failed getting pod", "pod", klog.KRef(namespace, name))
	case pod == nil:
		return &metrics.PodMetrics{}, apierrors.NewNotFound(corev1.Resource("pods"), namespace+"/"+name)
	}
	ms, err := s.getMetrics(pod)
	if err != nil {
		return nil, apiStatus(err, "Failed reading pod metrics", "pod", klog.KRef(namespace, name))
	}
	if len(ms) == 0 {
		return nil, apierrors.NewNotFound(metrics.Resource("podmetrics"), namespace+"/"+name)
	}
	return &ms[0], nil
}

// ConvertToTable implements rest.TableConvertor: a row per pod with its
// containers' usage summed, as `kubectl get podmetrics` shows.
func (s *podMetrics) ConvertToTable(_ context.Context, object runtime.Object, _ runtime.Object) (*metav1.Table, error) {
	var table metav1.Table
	switch t := object.(type) {
	case *metrics.PodMetrics:
		table.ResourceVersion = t.ResourceVersion
		addPodsToTable(&table, []metrics.PodMetrics{*t})
	case *metrics.PodMetricsList:
		table.ResourceVersion = t.ResourceVersion
		table.Continue = t.Continue
		addPodsToTable(&table, t.Items)
	}
	return &table, nil
}

func addPodsToTable(table *metav1.Table, pods []metrics.PodMetrics) {
	fillTable(table, len(pods), func(i int) (string, corev1.ResourceList, metav1.Duration, runtime.Object) {
		usage := corev1.ResourceList{}
		for _, c := range pods[i].Containers {
			for r, q := range c.Usage {
				sum := usage[r]
				sum.Add(q)
				usage[r] = sum
			}
		}
		return pods[i].Name, usage, pods[i].Window, &pods[i]
	})
}

// getMetrics asks the getter for the pods' metrics and sorts them by
// namespace and name.
func (s *podMetrics) getMetrics(pods ...runtime.Object) ([]metrics.PodMetrics, error) {
	objs := make([]*metav1.PartialObjectMetadata, 0, len(pods))
	for _, pod := range pods {
		p, ok := pod.(*metav1.PartialObjectMetadata)
		if !ok {
			return nil, fmt.Errorf("pod lister returned %T, want *v1.PartialObjectMetadata", pod)
		}
		objs = append(objs, p)
	}
	ms, err := s.metrics.GetPodMetrics(objs...)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ms, func(a, b metrics.PodMetrics) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return ms, nil
}

// filterPods keeps the pods whose metadata.name and metadata.namespace
// match selector.
func filterPods(pods []runtime.Object, selector fields.Selector) []runtime.Object {
	out := make([]runtime.Object, 0, len(pods))
	for _, pod := range pods {
		p, ok := pod.(*metav1.PartialObjectMetadata)
		if !ok { // kept for getMetrics to report
			out = append(out, pod)
			continue
		}
		if selector.Matches(generic.AddObjectMetaFieldsSet(fields.Set{}, &p.ObjectMeta, true)) {
			out = append(out, pod)
		}
	}
	return out
}

package storage

// This file mirrors the shape of metrics-server v0.9.0's pkg/api/node.go
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
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/registry/rest"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/klog/v2"
	"k8s.io/metrics/pkg/apis/metrics"
	metricsapi "sigs.k8s.io/metrics-server/pkg/api"
)

// nodeMetrics is the storage of NodeMetrics (metrics.k8s.io nodemetrics,
// served as "nodes"): one per node the lister knows and the getter has
// metrics for.
type nodeMetrics struct {
	metrics  metricsapi.NodeMetricsGetter
	nodes    corev1listers.NodeLister
	selector []labels.Requirement
}

var (
	_ rest.KindProvider         = &nodeMetrics{}
	_ rest.Storage              = &nodeMetrics{}
	_ rest.Getter               = &nodeMetrics{}
	_ rest.Lister               = &nodeMetrics{}
	_ rest.TableConvertor       = &nodeMetrics{}
	_ rest.Scoper               = &nodeMetrics{}
	_ rest.SingularNameProvider = &nodeMetrics{}
)

// Nodes returns the storage of NodeMetrics for metricsapi.Build: the nodes
// come from nodes, restricted by a LIST to those matching every
// requirement in selector (metrics-server's --node-selector), their metrics
// from m. It implements rest.Getter, rest.Lister, rest.Scoper (cluster
// scoped), rest.TableConvertor and rest.SingularNameProvider. Errors are API
// statuses, unwrapped: a 503 from m reaches the client as a 503.
func Nodes(m metricsapi.NodeMetricsGetter, nodes corev1listers.NodeLister, selector ...labels.Requirement) rest.Storage {
	return &nodeMetrics{metrics: m, nodes: nodes, selector: selector}
}

// New implements rest.Storage.
func (s *nodeMetrics) New() runtime.Object { return &metrics.NodeMetrics{} }

// Destroy implements rest.Storage.
func (s *nodeMetrics) Destroy() {}

// Kind implements rest.KindProvider.
func (s *nodeMetrics) Kind() string { return "NodeMetrics" }

// NewList implements rest.Lister.
func (s *nodeMetrics) NewList() runtime.Object { return &metrics.NodeMetricsList{} }

// NamespaceScoped implements rest.Scoper.
func (s *nodeMetrics) NamespaceScoped() bool { return false }

// GetSingularName implements rest.SingularNameProvider. It is empty, as
// metrics-server's, so that discovery is the same.
func (s *nodeMetrics) GetSingularName() string { return "" }

// List implements rest.Lister: the metrics of the nodes that match the
// label selector (and the storage's selector) and the field selector (on
// metadata.name), sorted by name. Nodes without metrics are left out.
func (s *nodeMetrics) List(_ context.Context, options *metainternalversion.ListOptions) (runtime.Object, error) {
	nodes, err := s.list(options)
	if err != nil {
		return &metrics.NodeMetricsList{}, err
	}
	ms, err := s.getMetrics(nodes...)
	if err != nil {
		return &metrics.NodeMetricsList{}, apiStatus(err, "Failed reading nodes metrics")
	}
	return &metrics.NodeMetricsList{Items: ms}, nil
}

func (s *nodeMetrics) list(options *metainternalversion.ListOptions) ([]*corev1.Node, error) {
	selector := labels.Everything()
	if options != nil && options.LabelSelector != nil {
		selector = options.LabelSelector
	}
	if s.selector != nil {
		selector = selector.Add(s.selector...)
	}
	nodes, err := s.nodes.List(selector)
	if err != nil {
		return nil, apiStatus(fmt.Errorf("listing nodes: %w", err), "Failed listing nodes", "labelSelector", selector)
	}
	if options != nil && options.FieldSelector != nil {
		nodes = filterNodes(nodes, options.FieldSelector)
	}
	return nodes, nil
}

// Get implements rest.Getter: the metrics of the named node, or NotFound
// when there is no such node or it has no metrics. As metrics-server's, it
// does not apply the storage's selector.
func (s *nodeMetrics) Get(_ context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	node, err := s.nodes.Get(name)
	switch {
	case apierrors.IsNotFound(err):
		return nil, err
	case err != nil:
		return nil, apiStatus(fmt.Errorf("getting node: %w", err), "Failed getting node", "node", klog.KRef("", name))
	case node == nil:
		return nil, apierrors.NewNotFound(metrics.Resource("nodemetrics"), name)
	}
	ms, err := s.getMetrics(node)
	if err != nil {
		return nil, apiStatus(err, "Failed reading node metrics", "node", klog.KRef("", name))
	}
	if len(ms) == 0 {
		return nil, apierrors.NewNotFound(metrics.Resource("nodemetrics"), name)
	}
	return &ms[0], nil
}

// ConvertToTable implements rest.TableConvertor: a row per node, as
// `kubectl get nodemetrics` shows.
func (s *nodeMetrics) ConvertToTable(_ context.Context, object runtime.Object, _ runtime.Object) (*metav1.Table, error) {
	var table metav1.Table
	switch t := object.(type) {
	case *metrics.NodeMetrics:
		table.ResourceVersion = t.ResourceVersion
		addNodesToTable(&table, []metrics.NodeMetrics{*t})
	case *metrics.NodeMetricsList:
		table.ResourceVersion = t.ResourceVersion
		table.Continue = t.Continue
		addNodesToTable(&table, t.Items)
	}
	return &table, nil
}

func addNodesToTable(table *metav1.Table, nodes []metrics.NodeMetrics) {
	fillTable(table, len(nodes), func(i int) (string, corev1.ResourceList, metav1.Duration, runtime.Object) {
		return nodes[i].Name, nodes[i].Usage, nodes[i].Window, &nodes[i]
	})
}

// getMetrics asks the getter for the nodes' metrics and sorts them by name,
// the order the Kubernetes API lists nodes in.
func (s *nodeMetrics) getMetrics(nodes ...*corev1.Node) ([]metrics.NodeMetrics, error) {
	ms, err := s.metrics.GetNodeMetrics(nodes...)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ms, func(a, b metrics.NodeMetrics) int { return cmp.Compare(a.Name, b.Name) })
	return ms, nil
}

// filterNodes keeps the nodes whose metadata.name matches selector.
func filterNodes(nodes []*corev1.Node, selector fields.Selector) []*corev1.Node {
	out := make([]*corev1.Node, 0, len(nodes))
	for _, n := range nodes {
		if selector.Matches(generic.AddObjectMetaFieldsSet(fields.Set{}, &n.ObjectMeta, false)) {
			out = append(out, n)
		}
	}
	return out
}

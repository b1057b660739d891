// Package storage is the REST storage of metrics.k8s.io (v1beta1 and v1): PodMetrics
// and NodeMetrics, read from a metrics-server MetricsGetter (promgate's
// resource provider) and installed with metrics-server's api.Build:
//
//	info := metricsapi.Build(storage.Pods(getter, pods), storage.Nodes(getter, nodes))
//	err := server.InstallAPIGroup(&info)
//
// It answers what sigs.k8s.io/metrics-server/pkg/api's storage answers
// (same objects, order, selectors, tables and not-found errors), with one
// difference: failures are returned as the API status the getter or lister
// gave, unwrapped. metrics-server wraps them (fmt.Errorf("...: %w", err)),
// and k8s.io/apiserver recognises a status only by a type assertion on the
// error itself (responsewriters.ErrorToAPIStatus), so there a Prometheus
// outage the provider reports as 503 Service Unavailable reaches clients as
// 500 Internal Server Error.
//
// The shape of pod.go, node.go and fillTable mirrors metrics-server v0.9.0's
// pkg/api/pod.go, node.go, filter.go and table.go (Copyright The Kubernetes
// Authors, Apache License 2.0).
package storage

import (
	"errors"
	"net/http"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/klog/v2"

	"github.com/promgate/promgate/pkg/provider"
)

// apiStatus returns err as the API status a client should see, itself and
// not wrapped, so that k8s.io/apiserver serves its code: a status found in
// err's chain as it is, any other error converted by provider.StatusError
// (503 for backend failures and timeouts, 500 otherwise). Unexpected
// failures (500) are logged with keysAndValues; the provider logs its
// backend failures itself.
func apiStatus(err error, msg string, keysAndValues ...any) error {
	converted := provider.StatusError(err)
	var status apierrors.APIStatus
	if !errors.As(converted, &status) { // provider.StatusError always gives a status
		status = apierrors.NewInternalError(converted)
	}
	s := status.Status()
	if s.Code == http.StatusInternalServerError {
		klog.ErrorS(err, msg, keysAndValues...)
	} else {
		klog.V(2).InfoS(msg, append(keysAndValues, "err", err)...)
	}
	if se, ok := status.(error); ok {
		return se
	}
	return &apierrors.StatusError{ErrStatus: s}
}

// fillTable adds n rows to table, row(i) giving the i-th row's name, usage,
// window and object, as metrics-server's table.go does: the columns are the
// name, the resources of the first row with usage (sorted) and the window,
// and a row without one of those resources shows it as 0.
func fillTable(table *metav1.Table, n int, row func(i int) (string, corev1.ResourceList, metav1.Duration, runtime.Object)) {
	var resources []string
	for i := range n {
		name, usage, window, obj := row(i)
		if resources == nil {
			for r := range usage {
				resources = append(resources, string(r))
			}
			slices.Sort(resources)
			table.ColumnDefinitions = make([]metav1.TableColumnDefinition, 0, len(resources)+2)
			table.ColumnDefinitions = append(table.ColumnDefinitions,
				metav1.TableColumnDefinition{Name: "Name", Type: "string", Format: "name", Description: "Name of the resource"})
			for _, r := range resources {
				table.ColumnDefinitions = append(table.ColumnDefinitions,
					metav1.TableColumnDefinition{Name: r, Type: "string", Format: "quantity"})
			}
			table.ColumnDefinitions = append(table.ColumnDefinitions,
				metav1.TableColumnDefinition{Name: "Window", Type: "string", Format: "duration"})
		}
		cells := make([]any, 0, len(resources)+2)
		cells = append(cells, name)
		for _, r := range resources {
			q := usage[corev1.ResourceName(r)]
			cells = append(cells, q.String())
		}
		cells = append(cells, window.Duration.String())
		table.Rows = append(table.Rows, metav1.TableRow{Cells: cells, Object: runtime.RawExtension{Object: obj}})
	}
}

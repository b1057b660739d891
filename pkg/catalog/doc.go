// Package catalog discovers which metrics exist: per distinct seriesQuery it
// lists the shapes of the series (metric name and label names), applies the
// rules (filters, naming, label-to-resource association) and publishes an
// immutable Snapshot that replaces the previous one atomically. It
// remembers, per rule, how many shapes it kept and dropped and why, for
// `promgate explain`.
//
// Shapes come from one of two methods (config.Method, per backend). The
// series method streams /api/v1/series and keeps each series' name and
// label names: a relist costs O(series). The index method asks Prometheus' index
// (/api/v1/labels and /api/v1/label/__name__/values with match[]) for the
// metric names and, per name, the relevant labels (those a rule of the
// seriesQuery maps to a resource, and the namespace label) that its series
// carry: a few requests per seriesQuery, one per relevant label, whatever
// the number of series. Both give the same Snapshot (see
// docs/discovery.md for the differences in reports and time range). The
// series method is the default; auto uses the index and falls back to the
// series for a backend that does not answer it.
//
// The metrics it lists are those prometheus-adapter lists for the same rules
// and series: when several rules, or several series of one rule, give the
// same metric, the last one wins (rules in config order, series in the order
// Prometheus returned them), and a custom metric is namespaced unless it is
// about namespaces, nodes or persistentvolumes.
//
// The files follow the work:
//
//   - discovery.go: the Discoverer, its relist loop (Run, Refresh) and
//     the last good result kept per seriesQuery when listing fails or
//     turns empty;
//   - list.go: listing one seriesQuery's shapes with the backend's
//     method, and the fallback from the index to the series;
//   - index.go: the index plan;
//   - apply.go: applying the rules to the shapes: naming, resource
//     mapping, what is kept and dropped and why, which rule serves a
//     metric several give;
//   - snapshot.go: the immutable Snapshot, its reports and lookups;
//   - metrics.go: the self-metrics of each discovery.
package catalog

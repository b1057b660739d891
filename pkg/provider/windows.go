package provider

import (
	"sync"

	"k8s.io/klog/v2"

	"github.com/promgate/promgate/pkg/promql"
)

// unguarded remembers the queries already reported as not guardable, so
// that HPA polling logs each once.
var unguarded sync.Map

// maxUnguardedReports bounds that memory.
const maxUnguardedReports = 1024

var unguardedCount int
var unguardedMu sync.Mutex

// CompleteWindows returns the text to send for q: unless partial windows
// are allowed, q rewritten so that the backend leaves out every series
// whose range windows samples cover only in part (promql.
// RequireCompleteWindows; see docs/partial-windows.md). A rate over such a
// window (after an outage, a Prometheus restart, for a new pod) reads low
// and would scale a workload down; left out, the HPA treats the object
// conservatively. A query of a shape that cannot be guarded, or one in
// another dialect, is sent as it is, and said once in the log.
func CompleteWindows(q promql.Query, allowPartial bool, field string) string {
	if allowPartial || !q.Checked {
		return q.Text
	}
	g, ok := promql.RequireCompleteWindows(q.Expr)
	if ok {
		return g.String()
	}
	unguardedMu.Lock()
	report := unguardedCount < maxUnguardedReports
	if report {
		if _, seen := unguarded.LoadOrStore(field, true); seen {
			report = false
		} else {
			unguardedCount++
		}
	}
	unguardedMu.Unlock()
	if report {
		klog.InfoS("Query shape cannot be guarded against partly filled windows; values are served as the backend computes them", "field", field, "query", q.Text)
	}
	return q.Text
}

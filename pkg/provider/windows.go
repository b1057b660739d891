package provider

import (
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"

	"github.com/promgate/promgate/pkg/budget"
	"github.com/promgate/promgate/pkg/promql"
)

// guardResult is a remembered rewrite (budget.Guarded): the rewrite costs
// more than the rest of a shared request's work, and the texts repeat (a
// shared query is the same for every request). Per-request texts come from
// requests, so they are kept within the memory budget, never beside it.
type guardResult struct {
	text string // what to send: the rewrite, or the query itself
}

// maxUnguarded bounds the fields a Runner remembers having logged: they
// come from the configuration, but reloads can name new ones for ever.
const maxUnguarded = 1024

// guard returns the text to send for q: unless partial windows are
// allowed, q rewritten so that the backend leaves out every series whose
// range windows samples cover only in part (promql.RequireCompleteWindows;
// see docs/partial-windows.md). A rate over such a window (after an
// outage, a Prometheus restart, for a new pod) reads low and would scale a
// workload down; left out, the HPA treats the object conservatively. A
// query of a shape that cannot be guarded, or one in another dialect, is
// sent as it is, and said once per field (the rule's query) in the log.
// Rewrites are remembered in the Runner's Budget.
func (r *Runner) guard(q promql.Query, field string) string {
	if r.PartialWindows || !q.Checked {
		return q.Text
	}
	if v, ok := r.Budget.Get(budget.Guarded, q.Text); ok {
		return v.(*guardResult).text
	}
	g, ok := promql.RequireCompleteWindows(q.Expr)
	res := &guardResult{text: q.Text}
	if ok {
		res.text = g.String()
	} else {
		r.logUnguarded(field, q.Text)
	}
	size := int64(len(res.text))
	if res.text == q.Text {
		size = 0 // the same string as the key
	}
	r.Budget.Put(budget.Guarded, q.Text, res, size+32, time.Time{})
	return res.text
}

// logUnguarded says once per field that its query cannot be guarded.
func (r *Runner) logUnguarded(field, text string) {
	r.mu.Lock()
	seen := r.unguarded[field]
	if !seen {
		if r.unguarded == nil || len(r.unguarded) >= maxUnguarded {
			r.unguarded = map[string]bool{}
		}
		r.unguarded[field] = true
	}
	r.mu.Unlock()
	if !seen {
		klog.InfoS("Query shape cannot be guarded against partly filled windows; values are served as the backend computes them", "field", field, "query", text)
	}
}

// IncompleteWindow is the 503 for a value left out because its window is
// only partly covered by samples: the value exists but is not served yet.
func IncompleteWindow(what string) error {
	return apierrors.NewServiceUnavailable(what + ": the window of its query is only partly covered by samples (after a backend outage or restart, a scrape gap, or for a new object); it is served once the window is full (docs/partial-windows.md)")
}

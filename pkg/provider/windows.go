package provider

import (
	"sync"
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

// unguarded remembers the fields whose query shape cannot be guarded, so
// that each is logged once, however many request texts it renders.
var unguarded = struct {
	sync.Mutex
	m map[string]bool
}{m: map[string]bool{}}

// maxUnguarded bounds the fields remembered: they come from the
// configuration, but reloads can name new ones for ever.
const maxUnguarded = 1024

// CompleteWindows returns the text to send for q: unless partial windows
// are allowed, q rewritten so that the backend leaves out every series
// whose range windows samples cover only in part (promql.
// RequireCompleteWindows; see docs/partial-windows.md). A rate over such a
// window (after an outage, a Prometheus restart, for a new pod) reads low
// and would scale a workload down; left out, the HPA treats the object
// conservatively. A query of a shape that cannot be guarded, or one in
// another dialect, is sent as it is, and said once per field (the rule's
// query) in the log. Rewrites are remembered in b (nil: not remembered).
func CompleteWindows(b *budget.Budget, q promql.Query, allowPartial bool, field string) string {
	if allowPartial || !q.Checked {
		return q.Text
	}
	if v, ok := b.Get(budget.Guarded, q.Text); ok {
		return v.(*guardResult).text
	}
	g, ok := promql.RequireCompleteWindows(q.Expr)
	r := &guardResult{text: q.Text}
	if ok {
		r.text = g.String()
	} else {
		logUnguarded(field, q.Text)
	}
	size := int64(len(r.text))
	if r.text == q.Text {
		size = 0 // the same string as the key
	}
	b.Put(budget.Guarded, q.Text, r, size+32, time.Time{})
	return r.text
}

// logUnguarded says once per field that its query cannot be guarded.
func logUnguarded(field, text string) {
	unguarded.Lock()
	seen := unguarded.m[field]
	if !seen {
		if len(unguarded.m) >= maxUnguarded {
			unguarded.m = map[string]bool{}
		}
		unguarded.m[field] = true
	}
	unguarded.Unlock()
	if !seen {
		klog.InfoS("Query shape cannot be guarded against partly filled windows; values are served as the backend computes them", "field", field, "query", text)
	}
}

// IncompleteWindow is the 503 for a value left out because its window is
// only partly covered by samples: the value exists but is not served yet.
func IncompleteWindow(what string) error {
	return apierrors.NewServiceUnavailable(what + ": the window of its query is only partly covered by samples (after a backend outage or restart, a scrape gap, or for a new object); it is served once the window is full (docs/partial-windows.md)")
}

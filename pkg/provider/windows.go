package provider

import (
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"

	"github.com/promgate/promgate/pkg/promql"
)

// guarded remembers rewritten queries by their text: the rewrite costs
// more than the rest of a shared request's work, and the texts repeat (a
// shared query is the same for every request). Bounded, since per-request
// texts come from requests.
var guarded = struct {
	sync.Mutex
	m map[string]guardResult
}{m: map[string]guardResult{}}

type guardResult struct {
	text string
	ok   bool
}

// maxGuarded bounds the remembered rewrites; when full, the memory starts
// over.
const maxGuarded = 4096

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
	guarded.Lock()
	r, known := guarded.m[q.Text]
	guarded.Unlock()
	if !known {
		g, ok := promql.RequireCompleteWindows(q.Expr)
		r = guardResult{text: q.Text, ok: ok}
		if ok {
			r.text = g.String()
		} else {
			klog.InfoS("Query shape cannot be guarded against partly filled windows; values are served as the backend computes them", "field", field, "query", q.Text)
		}
		guarded.Lock()
		if len(guarded.m) >= maxGuarded {
			guarded.m = map[string]guardResult{}
		}
		guarded.m[q.Text] = r
		guarded.Unlock()
	}
	return r.text
}

// IncompleteWindow is the 503 for a value left out because its window is
// only partly covered by samples: the value exists but is not served yet.
func IncompleteWindow(what string) error {
	return apierrors.NewServiceUnavailable(what + ": the window of its query is only partly covered by samples (after a backend outage or restart, a scrape gap, or for a new object); it is served once the window is full (docs/partial-windows.md)")
}

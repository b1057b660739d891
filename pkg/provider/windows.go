package provider

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/model"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"

	"github.com/promgate/promgate/pkg/budget"
	"github.com/promgate/promgate/pkg/promql"
)

// WindowGuard is how a Runner keeps values computed over partly filled
// windows out of answers (docs/partial-windows.md). A rate over such a
// window (after an outage, a Prometheus restart, for a new pod) reads low
// and would scale a workload down; left out, the HPA treats the object
// conservatively.
type WindowGuard int

const (
	// GuardStrict sends every query rewritten so that the backend checks
	// the windows of every series it reads (promql.RequireCompleteWindows):
	// exact, but on a real Prometheus 60 to 80 times the query's cost.
	GuardStrict WindowGuard = iota
	// GuardCanary sends the query with the windows of one or two series
	// per metric checked beside it (promql.WithChecks), which sees a gap
	// the backend's samples have in common (an outage, a freeze, a
	// restart), and leaves out the series that have been in the query's
	// answers for less than its longest window (new pods). When a check
	// fails or no series can be checked, the query is sent as with
	// GuardStrict.
	GuardCanary
	// GuardOff sends queries as they are.
	GuardOff
)

// WindowGuards are the guards by name, for flags.
var WindowGuards = map[string]WindowGuard{"strict": GuardStrict, "canary": GuardCanary, "off": GuardOff}

func (g WindowGuard) String() string {
	for n, v := range WindowGuards {
		if v == g {
			return n
		}
	}
	return strconv.Itoa(int(g))
}

// Canaries is a querier that knows, per metric, series whose windows stand
// for the metric's samples (query.Engine's): CanariesNow learns them
// first, within ctx, when none are known; rule is the rule's series
// selector (Query.SeriesQuery).
type Canaries interface {
	CanariesNow(ctx context.Context, metric, rule string) []model.Metric
	CanaryGone(metric string)
}

// guardResult is what the guard made of a query text (budget.Guarded):
// parsing and rewriting cost more than the rest of a shared request's
// work, and the texts repeat (a shared query is the same for every
// request). Per-request texts come from requests, so they are kept within
// the memory budget, never beside it.
type guardResult struct {
	text string // strict: the rewrite, or the query itself

	// Canary mode; reads is nil when the query cannot be checked so.
	reads    []promql.Read
	lookback time.Duration // the longest window
	shortest time.Duration // the shortest window
	seed     string        // the query's series that are not new (promql.Established)
	checked  atomic.Pointer[checkedText]
}

// checkedText is a query with its checks, for one set of canaries.
type checkedText struct {
	canaries [][]model.Metric // per read, as the querier gave them
	text     string
}

// maxUnguarded bounds the fields a Runner remembers having logged: they
// come from the configuration, but reloads can name new ones for ever.
const maxUnguarded = 1024

// guardOf returns what the guard makes of q; see WindowGuard. A query of a
// shape that cannot be guarded, or one in another dialect, is sent as it
// is, and said once per field (the rule's query) in the log.
func (r *Runner) guardOf(q promql.Query, field string) *guardResult {
	if v, ok := r.Budget.Get(budget.Guarded, q.Text); ok {
		return v.(*guardResult)
	}
	res := &guardResult{text: q.Text}
	g, ok := promql.RequireCompleteWindows(q.Expr)
	if ok {
		res.text = g.String()
	} else {
		r.logUnguarded(field, q.Text)
	}
	size := int64(len(res.text))
	if res.text == q.Text {
		size = 0 // the same string as the key
	}
	if ok && res.text != q.Text {
		if reads, err := promql.Reads(q.Expr); err == nil && len(reads) > 0 {
			if seed, err := promql.Established(q.Expr); err == nil {
				res.reads, res.seed = reads, seed.String()
				res.lookback, res.shortest = promql.Lookback(reads), reads[0].Range
				for _, rd := range reads {
					res.shortest = min(res.shortest, rd.Range)
				}
				// The checked text, built later: the query and five short
				// selectors per read and canary, well within this.
				size += int64(len(res.seed) + 4*len(res.text)*len(reads))
			}
		}
	}
	r.Budget.Put(budget.Guarded, q.Text, res, size+32, time.Time{})
	return res
}

// checks returns q's text with the checks of the canaries c knows for
// g's reads, and the canaries per read, or false when some read's metric
// has none.
func (g *guardResult) checks(ctx context.Context, q Query, c Canaries) (string, [][]model.Metric, bool) {
	cs := make([][]model.Metric, len(g.reads))
	for i, rd := range g.reads {
		if cs[i] = c.CanariesNow(ctx, rd.Metric, q.SeriesQuery); len(cs[i]) == 0 {
			return "", nil, false
		}
	}
	if ct := g.checked.Load(); ct != nil && sameCanaries(ct.canaries, cs) {
		return ct.text, cs, true
	}
	var checks []promql.Check
	for i, rd := range g.reads {
		for j, m := range cs[i] {
			checks = append(checks, promql.Check{ID: checkID(i, j), Read: rd, Series: m})
		}
	}
	e, err := promql.WithChecks(q.Query.Expr, checks)
	if err != nil {
		return "", nil, false
	}
	ct := &checkedText{canaries: cs, text: e.String()}
	g.checked.Store(ct)
	return ct.text, cs, true
}

func checkID(read, canary int) string { return strconv.Itoa(read) + "." + strconv.Itoa(canary) }

// sameCanaries reports whether a and b hold the same canaries: the
// querier gives the same slice until it learns new ones.
func sameCanaries(a, b [][]model.Metric) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i]) != len(b[i]) || len(a[i]) > 0 && &a[i][0] != &b[i][0] {
			return false
		}
	}
	return true
}

// verdict is what the checks of one answer say.
type verdict int

const (
	// windowsFull: every read's checked series is complete; the answer's
	// series are left out only while they are new.
	windowsFull verdict = iota
	// windowsUnknown: a check failed for one series and not for another,
	// or no checked series is left: the strict query decides.
	windowsUnknown
	// windowsGap: two or more checked series of a read, and all of them,
	// are incomplete: the backend's samples have a gap in the window, and
	// no value of the answer is served.
	windowsGap
)

func (v verdict) String() string {
	switch v {
	case windowsGap:
		return "gap"
	case windowsUnknown:
		return "strict"
	}
	return "complete"
}

// judge splits an answer into the query's series and the checks' verdict,
// telling c of checked series that are gone; cs are the canaries checked,
// per read.
func judge(vec model.Vector, g *guardResult, cs [][]model.Metric, c Canaries) (model.Vector, verdict) {
	covs := make([][]promql.Coverage, len(g.reads))
	for i := range covs {
		covs[i] = make([]promql.Coverage, len(cs[i]))
	}
	data := make(model.Vector, 0, len(vec))
	var now float64
	for _, s := range vec {
		now = float64(s.Timestamp) / 1000
		v, ok := s.Metric[promql.CheckLabel]
		if !ok {
			data = append(data, s)
			continue
		}
		id, part, ok := promql.SplitCheckLabel(string(v))
		if !ok {
			continue
		}
		var i, j int
		if _, err := fmt.Sscanf(id, "%d.%d", &i, &j); err != nil || i < 0 || i >= len(covs) || j < 0 || j >= len(covs[i]) {
			continue
		}
		covs[i][j].Set(part, float64(s.Value))
	}
	v := windowsFull
	for i, rd := range g.reads {
		complete, incomplete := 0, 0
		for j := range covs[i] {
			switch cov := &covs[i][j]; {
			case !cov.Present():
				c.CanaryGone(rd.Metric) // learn others soon
			case cov.Complete(now, rd.Range, rd.Offset):
				complete++
			default:
				incomplete++
			}
		}
		switch {
		case complete+incomplete == 0:
			v = max(v, windowsUnknown)
		case incomplete >= 2 && complete == 0:
			v = windowsGap
			// Learn the canaries again soon: in an outage they are the
			// same and the gap stays; but a backend that keeps answering
			// for a deleted pod's series until its staleness interval ends
			// (VictoriaMetrics) leaves canaries that no longer grow, which
			// would hold every value back until the next scheduled probe.
			c.CanaryGone(rd.Metric)
		case incomplete > 0:
			v = max(v, windowsUnknown)
		}
	}
	return data, v
}

// history is what the guard remembers of a query's answers
// (budget.Windows): when each of its series was first seen, so that a
// series is served once it has been in the answers for the query's longest
// window, and the last answer judged, which every request reading the
// same cached answer shares.
type history struct {
	mu    sync.Mutex
	seen  time.Time // evaluation time of the last answer whose series first holds
	first map[model.Fingerprint]time.Time

	// The last answer judged: its evaluation time and length, the verdict
	// and the series served.
	judged  time.Time
	n       int
	verdict verdict
	out     model.Vector
	logged  bool // a verdict was logged (at -v=2, when it changes)
	// empty: the last answer judged had no series of the query (a
	// namespace without them), so it had no use for a seed.
	empty bool

	// established is the evaluation time of the last strict answer whose
	// series were taken to be old (establish).
	established time.Time
}

// establish takes the series of strict, the strict query's answer for q,
// to be old in q's history: the strict query served them, so each of their
// windows starts after their first sample. Without it a series served
// while the checks disagreed would be held back again once they agree, as
// new. Once per strict answer.
func (r *Runner) establish(q Query, g *guardResult, strict model.Vector) {
	v, ok := r.Budget.GetIn(budget.Windows, q.Backend, q.Query.Text)
	if !ok || len(strict) == 0 {
		return
	}
	h := v.(*history)
	at := strict[0].Timestamp.Time()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.first == nil || at.Equal(h.established) {
		return
	}
	h.established = at
	old := at.Add(-g.lookback)
	for _, s := range strict {
		fp := s.Metric.Fingerprint()
		if f, ok := h.first[fp]; ok && old.Before(f) {
			h.first[fp] = old
		}
	}
}

// same reports whether vec is the answer h judged last; h.mu is held.
func (h *history) same(vec model.Vector) bool {
	return !h.judged.IsZero() && len(vec) == h.n && len(vec) > 0 && vec[0].Timestamp.Time().Equal(h.judged)
}

// stale reports whether h cannot vouch for series at ts: it has seen no
// answer, or none within the query's shortest window (a series may have
// gone and come back unseen); h.mu is held.
func (h *history) stale(ts time.Time, g *guardResult) bool {
	return h.first == nil || ts.Sub(h.seen) > g.shortest
}

// update judges data, the answer's series evaluated at ts: the series
// first seen at least lookback ago are served. With seed (the query's
// series whose windows have a sample at or before their start), a series
// in both is taken to be that old. With inherited, the first-seen times
// come from there (the family's other texts) rather than from h; h.mu is
// held.
func (h *history) update(ts time.Time, data, seed model.Vector, lookback time.Duration, stale bool, inherited map[model.Fingerprint]time.Time) model.Vector {
	known := h.first
	if inherited != nil {
		known = inherited
	}
	var old map[model.Fingerprint]bool
	if stale {
		old = make(map[model.Fingerprint]bool, len(seed))
		for _, s := range seed {
			old[s.Metric.Fingerprint()] = true
		}
	}
	first := make(map[model.Fingerprint]time.Time, len(data))
	out := make(model.Vector, 0, len(data))
	for _, s := range data {
		fp := s.Metric.Fingerprint()
		f, ok := known[fp]
		switch {
		case stale && old[fp]:
			f = ts.Add(-lookback)
		case stale || !ok:
			f = ts
		}
		first[fp] = f
		if ts.Sub(f) >= lookback {
			out = append(out, s)
		}
	}
	h.first, h.seen = first, ts
	return out
}

// size is what h counts in the budget.
func (h *history) size() int64 { return int64(len(h.first))*48 + int64(len(h.out))*8 + 128 }

// canary runs q with its checks (GuardCanary) and returns the series to
// serve; done is false when the strict query must decide instead.
func (r *Runner) canary(ctx context.Context, querier Querier, c Canaries, q Query, g *guardResult, ts time.Time) (vec model.Vector, done bool, err error) {
	text, cs, ok := g.checks(ctx, q, c)
	if !ok {
		guardVerdicts.WithLabelValues(q.Backend, "no canary").Inc()
		return nil, false, nil
	}
	h := r.history(q)
	h.mu.Lock()
	cold := h.stale(ts, g) && !h.empty
	h.mu.Unlock()
	// A text without history that no other text of its family can lend
	// one (after a start, or the budget let it go) is judged with its
	// seed: ask for it beside the query rather than after it, so that the
	// first request waits for the longer of the two, not their sum (at
	// 30,000 pods, seconds each). It is wasted only when another answer
	// of the text is judged meanwhile, or the answer has no series (after
	// an empty one, it is not sent beside).
	var early chan seedAnswer
	if cold && !r.families.lends(q.Family, h) {
		early = make(chan seedAnswer, 1)
		go func() {
			vec, err := querier.Query(ctx, g.seed, ts)
			early <- seedAnswer{vec, err}
		}()
	}
	ans, err := querier.Query(ctx, text, ts)
	if err != nil {
		return nil, true, err
	}
	h.mu.Lock()
	if h.same(ans) {
		defer h.mu.Unlock()
		return h.result(q)
	}
	h.mu.Unlock()

	data, v := judge(ans, g, cs, c)
	at := ts
	if len(ans) > 0 {
		at = ans[0].Timestamp.Time()
	}
	h.mu.Lock()
	stale := h.stale(at, g)
	h.mu.Unlock()
	// inherited, when not nil, is the history data is judged against in
	// place of h's own: that of the family's other texts.
	var inherited map[model.Fingerprint]time.Time
	if stale && q.Family != "" {
		// A new text of a family (a shared query a namespace joined): its
		// series' history is what the family's other texts saw. Only when
		// they did not see every series of the answer is the backend asked
		// which are new.
		if first, ok := r.families.inherited(q.Family, h, at, g, data); ok {
			inherited, stale = first, false
		}
		r.families.note(q.Family, h)
	}
	var seed model.Vector
	if stale && len(data) > 0 {
		// Whatever the verdict, the series seen now are remembered.
		if early != nil {
			a := <-early
			seed, err = a.vec, a.err
		} else {
			seed, err = querier.Query(ctx, g.seed, ts)
		}
		if err != nil {
			return nil, true, err
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.same(ans) {
		if inherited != nil && !h.stale(at, g) {
			inherited = nil // another answer was judged meanwhile: h knows
		}
		var out model.Vector
		if len(data) > 0 || !stale {
			out = h.update(at, data, seed, g.lookback, stale, inherited)
		}
		if !h.logged || v != h.verdict {
			klog.V(2).InfoS("Partial-window guard", "api", q.API, "metric", q.Metric, "backend", q.Backend,
				"verdict", v.String(), "series", len(data), "heldBack", len(data)-len(out))
		}
		h.judged, h.n, h.verdict, h.out, h.logged, h.empty = at, len(ans), v, out, true, len(data) == 0
		r.Budget.PutIn(budget.Windows, q.Backend, q.Query.Text, h, h.size(), time.Time{})
		guardVerdicts.WithLabelValues(q.Backend, v.String()).Inc()
		if v == windowsFull && len(data) > len(out) {
			guardHeldBack.WithLabelValues(q.Backend).Add(float64(len(data) - len(out)))
		}
	}
	return h.result(q)
}

// seedAnswer is the answer of a query's seed (promql.Established).
type seedAnswer struct {
	vec model.Vector
	err error
}

// result is the series of the last answer judged, an error saying the
// backend's samples have a gap, or not done when the strict query
// decides; h.mu is held.
func (h *history) result(q Query) (model.Vector, bool, error) {
	switch h.verdict {
	case windowsGap:
		return nil, true, apierrors.NewServiceUnavailable(fmt.Sprintf("%s: backend %q has a gap in its samples of the query's metrics within the query's window (an outage, a freeze or a restart); values are served once the window is full again (docs/partial-windows.md)", q.Metric, q.Backend))
	case windowsUnknown:
		return nil, false, nil
	}
	return h.out, true, nil
}

// history returns the history of q's answers (budget.Windows, by backend
// and text), new if the budget holds none.
func (r *Runner) history(q Query) *history {
	if v, ok := r.Budget.GetIn(budget.Windows, q.Backend, q.Query.Text); ok {
		return v.(*history)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := r.Budget.GetIn(budget.Windows, q.Backend, q.Query.Text); ok {
		return v.(*history)
	}
	h := &history{}
	r.Budget.PutIn(budget.Windows, q.Backend, q.Query.Text, h, h.size(), time.Time{})
	return h
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

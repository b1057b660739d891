package provider

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"
	"k8s.io/klog/v2"

	"github.com/promgate/promgate/pkg/budget"
	"github.com/promgate/promgate/pkg/promql"
	"github.com/promgate/promgate/pkg/query"
)

// Query is one query a request sends, with what the Runner needs to send
// it, observe its answer and name it in logs and errors.
type Query struct {
	// API and Metric are what the answer is observed as (ObserveAnswer).
	API, Metric string
	// Backend is the backend the rule reads from (its backend field).
	Backend string
	// Field is the configuration field of the query's template, e.g.
	// "rules[2].metricsQuery".
	Field string
	// SeriesQuery is the rule's seriesQuery, from which the query engine
	// builds its scrape-interval probe (query.WithRuleSelector); empty
	// for none.
	SeriesQuery string
	// Query is the rendered query, before the partial-window guard.
	Query promql.Query
	// Family, when not empty, names the queries whose answers hold the
	// same series with the same labels (a rule's shared query narrowed to
	// different namespaces or objects, and their per-namespace forms): a
	// new text of a family starts its partial-window history from what the
	// family's recent texts saw, instead of asking the backend which of its
	// series are new.
	Family string
}

// Answer is the answer to a Query.
type Answer struct {
	Vector model.Vector
	// Window is the range of the query's range selectors (WindowSeconds):
	// the windowSeconds of values computed from the answer.
	Window *int64
}

// Runner is the one path from a rendered query to samples, for every API:
// it routes a query to its rule's backend, guards it against partly filled
// windows (CompleteWindows), runs it, observes the answer (ObserveAnswer)
// and turns a failure into the API status a client should see
// (StatusError). Providers build requests and convert samples; they send
// nothing themselves.
type Runner struct {
	// Backends gives the querier of each backend.
	Backends Backends
	// Budget keeps the guarded texts and the guard's histories; nil keeps
	// none.
	Budget *budget.Budget
	// Windows is the partial-window guard; the zero value is GuardStrict.
	Windows WindowGuard
	// Now is the clock; nil is time.Now.
	Now func() time.Time

	mu        sync.Mutex
	unguarded map[string]bool // fields whose query shape was said to be unguardable
	families  families        // recent histories per Query.Family
}

// Clock is the time queries are evaluated at: Now, or time.Now.
func (r *Runner) Clock() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

// Text is the strict form of q: q rewritten so that the backend leaves out
// every series whose windows samples cover only in part, or q's text when
// partial windows are served or q's shape cannot be guarded.
func (r *Runner) Text(q Query) string {
	if r.Windows == GuardOff || !q.Query.Checked {
		return q.Query.Text
	}
	return r.guardOf(q.Query, q.Field).text
}

// send sends q to querier as the guard has it (WindowGuard).
func (r *Runner) send(ctx context.Context, querier Querier, q Query, ts time.Time) (model.Vector, error) {
	if r.Windows == GuardOff || !q.Query.Checked {
		return querier.Query(ctx, q.Query.Text, ts)
	}
	g := r.guardOf(q.Query, q.Field)
	if c, ok := querier.(Canaries); ok && r.Windows == GuardCanary && g.reads != nil {
		if vec, done, err := r.canary(ctx, querier, c, q, g, ts); done {
			return vec, err
		}
		strict, err := querier.Query(ctx, g.text, ts)
		if err == nil {
			r.establish(q, g, strict)
		}
		return strict, err
	}
	return querier.Query(ctx, g.text, ts)
}

// Run sends q, evaluated at ts, and observes its answer. Errors are API
// statuses: a 503 naming the backend and the kind of failure, or naming a
// backend this server does not have. When ctx was canceled (the caller
// gave up, or a sibling query failed), the error is returned as it is.
func (r *Runner) Run(ctx context.Context, q Query, ts time.Time) (Answer, error) {
	querier, err := Route(r.Backends, q.Backend)
	if err != nil {
		return Answer{}, err
	}
	if v := klog.V(4); v.Enabled() { // the arguments cost allocations on every request otherwise
		v.InfoS("Metrics query", "api", q.API, "metric", q.Metric, "field", q.Field, "backend", q.Backend, "query", q.Query.Text)
	}
	vec, err := r.send(r.context(ctx, q), querier, q, ts)
	ObserveAnswer(q.API, q.Metric, r.Clock(), vec, err)
	if err != nil {
		if errors.Is(ctx.Err(), context.Canceled) {
			return Answer{}, err
		}
		return Answer{}, StatusError(err)
	}
	return Answer{Vector: vec, Window: WindowSeconds(q.Query.Expr)}, nil
}

// Plan is the start of explain's Plan for q: its backend, the rule's
// query, what the guard does to it and, when the guard changed it, the
// text sent.
func (r *Runner) Plan(q Query) Plan {
	p := Plan{Backend: q.Backend, Query: q.Query.Text, Guard: r.Guard(q)}
	if sent := r.sent(q); sent != q.Query.Text {
		p.Sent = sent
	}
	return p
}

// sent is the text a request for q sends now: with GuardCanary and the
// canaries known, q with its checks; otherwise the strict form (Text).
func (r *Runner) sent(q Query) string {
	if r.Windows != GuardCanary || !q.Query.Checked {
		return r.Text(q)
	}
	g := r.guardOf(q.Query, q.Field)
	if querier, err := Route(r.Backends, q.Backend); err == nil && g.reads != nil {
		if c, ok := querier.(Canaries); ok {
			// A context done already: the canaries known, none learned.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if text, _, ok := g.checks(ctx, q, c); ok {
				return text
			}
		}
	}
	return g.text
}

// Guard says, for people, what the partial-window guard does to q: which
// range reads of the rule's query it checks (the query sent is the rule's
// with the guard around it), or why q is sent as it is.
func (r *Runner) Guard(q Query) string {
	switch {
	case r.Windows == GuardOff:
		return "off: partial windows are served (--partial-window-guard=off)"
	case !q.Query.Checked:
		return "off: the query is not parsed as PromQL (another dialect), so it is sent as rendered"
	}
	reads, err := promql.GuardedReads(q.Query.Expr)
	switch {
	case err != nil:
		return "none: the query's shape cannot be guarded (" + err.Error() + "); values are served as the backend computes them"
	case len(reads) == 0:
		return "none needed: the query reads no window that a partly filled one biases"
	}
	what := "series are left out while samples cover the window of " + strings.Join(reads, ", ") + " only in part"
	if r.Windows == GuardCanary {
		if g := r.guardOf(q.Query, q.Field); g.reads != nil {
			return what + ": checked on one or two series per metric sent beside the query, and series are served once they have been in its answers for " +
				g.lookback.String() + "; when a check fails, every series is checked in the query (docs/partial-windows.md)"
		}
		return what + ": every series is checked in the query, as no series can stand for the metric (docs/partial-windows.md)"
	}
	return what + ": every series is checked in the query (docs/partial-windows.md)"
}

// Guarded reports whether what is sent for q is q guarded: partial windows
// are not served, q was checked, and the guard applies to its shape. Only
// then can an answer lack a value because its window is partly covered.
func (r *Runner) Guarded(q Query) bool {
	return r.Windows != GuardOff && q.Query.Checked && r.Text(q) != q.Query.Text
}

// Unguarded sends q's text as it is, without the guard and unobserved: for
// the questions asked about an answer that lacks a value (Withheld).
func (r *Runner) Unguarded(ctx context.Context, q Query, ts time.Time) (model.Vector, error) {
	querier, err := Route(r.Backends, q.Backend)
	if err != nil {
		return nil, err
	}
	return querier.Query(r.context(ctx, q), q.Query.Text, ts)
}

// Withheld reports whether the guard left out a sample that keep accepts:
// q without the guard has one, so a value exists but its window is only
// partly covered by samples. Asked only when a requested value is missing,
// so it costs a query only then.
func (r *Runner) Withheld(ctx context.Context, q Query, ts time.Time, keep func(*model.Sample) bool) bool {
	return r.Guarded(q) && r.answers(ctx, q, ts, keep)
}

// answers reports whether q, sent unguarded, answers a sample that keep
// accepts; an error is no.
func (r *Runner) answers(ctx context.Context, q Query, ts time.Time, keep func(*model.Sample) bool) bool {
	vec, err := r.Unguarded(ctx, q, ts)
	if err != nil {
		return false
	}
	return slices.ContainsFunc(vec, keep)
}

// Present reports whether a series that q's value would come from exists
// although the answer has no value of it: the series of expr's first range
// selector (promql.Presence) that keep accepts, with a sample in the
// window or not ended before it. expr is q's query or one narrowed to the
// objects asked for. Asked only when a requested value is missing and not
// Withheld, when q is Guarded (the guard is what leaves a series with too
// few samples out); it costs a query only then.
func (r *Runner) Present(ctx context.Context, q Query, expr parser.Expr, ts time.Time, keep func(*model.Sample) bool) bool {
	if !r.Guarded(q) {
		return false
	}
	pres, ok := promql.Presence(expr)
	if !ok {
		return false
	}
	p := q
	p.Query = promql.Query{Text: pres}
	return r.answers(ctx, p, ts, keep)
}

func (r *Runner) context(ctx context.Context, q Query) context.Context {
	if q.SeriesQuery == "" {
		return ctx
	}
	return query.WithRuleSelector(ctx, q.SeriesQuery)
}

// Single is Backends with one querier that answers for every backend: a
// server with no other backend than the default, and tests.
func Single(q Querier) Backends { return single{q} }

type single struct{ q Querier }

func (s single) Querier(string) (Querier, bool) { return s.q, true }

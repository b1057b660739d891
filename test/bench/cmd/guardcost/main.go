// Command guardcost measures what the partial-window guard costs a real
// Prometheus: it sends a query and its guarded forms to Prometheus in
// interleaved rounds, with stats=all, and prints per form the evaluation time
// Prometheus reports, the samples it touched and the CPU its process spent
// (from /proc), each as a median or mean per query and as a ratio to the
// plain query's.
//
//	guardcost --prometheus=http://127.0.0.1:25410 --pid=$(pgrep -n prometheus) \
//	    --query='sum(rate(http_requests_total{namespace!="",pod!=""}[1m])) by (namespace,pod)'
//
// test/bench/guard-cost.sh runs it against Prometheus scraping the fake's
// model (make bench-guard).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/promgate/promgate/pkg/promql"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "guardcost:", err)
		os.Exit(1)
	}
}

// form is one way of sending the query.
type form struct {
	name, text string
}

// result is what one form cost over the rounds.
type result struct {
	eval    []float64 // Prometheus' evalTotalTime per query, seconds
	samples []float64 // totalQueryableSamples per query
	series  int       // series in the last answer
	cpu     float64   // Prometheus process CPU, seconds, over all rounds
}

func run() error {
	base := flag.String("prometheus", "http://127.0.0.1:25410", "Prometheus' URL (loopback)")
	pid := flag.Int("pid", 0, "Prometheus' process id, for its CPU (0: not measured)")
	query := flag.String("query", `sum(rate(http_requests_total{namespace!="",pod!=""}[1m])) by (namespace,pod)`, "the rule's query, as promgate sends it unguarded")
	rounds := flag.Int("rounds", 20, "rounds; each sends every form once")
	timeout := flag.Duration("timeout", 2*time.Minute, "timeout of one query")
	only := flag.String("forms", "", "the forms to send besides plain, comma-separated names as printed (empty: all); leaving out strict keeps its garbage out of the others' CPU")
	flag.Parse()

	expr, err := promql.Parse(*query)
	if err != nil {
		return fmt.Errorf("--query: %w", err)
	}
	forms := []form{{"plain", expr.String()}}
	if g, ok := promql.RequireCompleteWindows(expr); ok {
		forms = append(forms, form{"strict", g.String()})
	} else {
		return errors.New("--query: the guard cannot rewrite this shape")
	}
	c := &client{base: strings.TrimRight(*base, "/"), http: &http.Client{Timeout: *timeout}}
	ctx := context.Background()
	checked, err := canaryForm(ctx, c, expr)
	if err != nil {
		return err
	}
	forms = append(forms, checked)
	floors, err := floorForms(ctx, c, *query)
	if err != nil {
		return err
	}
	forms = append(forms, floors...)
	if *only != "" {
		keep := map[string]bool{"plain": true}
		for _, n := range strings.Split(*only, ",") {
			keep[strings.TrimSpace(n)] = true
		}
		var kept []form
		for _, f := range forms {
			if keep[f.name] {
				kept = append(kept, f)
			}
		}
		forms = kept
	}
	res := make([]result, len(forms))
	rnd := rand.New(rand.NewPCG(1, 2))
	for r := 0; r < *rounds; r++ {
		// Each round in its own order: a form's garbage is collected during
		// the queries after it, and the strict form's is large, so no form
		// may always follow it.
		for _, i := range rnd.Perm(len(forms)) {
			f := forms[i]
			before, err := cpuSeconds(*pid)
			if err != nil {
				return err
			}
			st, err := c.query(ctx, f.text)
			if err != nil {
				return fmt.Errorf("%s: %w", f.name, err)
			}
			after, err := cpuSeconds(*pid)
			if err != nil {
				return err
			}
			res[i].eval = append(res[i].eval, st.eval)
			res[i].samples = append(res[i].samples, st.samples)
			res[i].series = st.series
			res[i].cpu += after - before
		}
	}

	fmt.Printf("query: %s\nrounds: %d, interleaved, each in its own random order; Prometheus' own timings (stats=all); CPU of its process from /proc\n\n", *query, *rounds)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "form\tseries\teval median\t×plain\tsamples\t×plain\tCPU per query\t×plain\tbytes of query\t")
	p := res[0]
	for i, f := range forms {
		r := res[i]
		fmt.Fprintf(w, "%s\t%d\t%s\t%.2f\t%.0f\t%.2f\t%s\t%s\t%d\t\n", f.name, r.series,
			dur(median(r.eval)), median(r.eval)/median(p.eval),
			median(r.samples), median(r.samples)/median(p.samples),
			dur(r.cpu/float64(*rounds)), ratio(r.cpu, p.cpu, *pid), len(f.text))
	}
	return w.Flush()
}

// canaryForm is the query as promgate's default guard sends it
// (--partial-window-guard=canary): the query with the windows of two of
// its metric's series checked beside it, the series with the newest and the
// oldest latest sample, as promgate's probe picks them.
func canaryForm(ctx context.Context, c *client, expr parser.Expr) (form, error) {
	reads, err := promql.Reads(expr)
	if err != nil || len(reads) == 0 {
		return form{}, fmt.Errorf("--query: no window to check (%v)", err)
	}
	var checks []promql.Check
	for i, rd := range reads {
		sel := (&parser.VectorSelector{Name: rd.Metric, LabelMatchers: []*labels.Matcher{
			labels.MustNewMatcher(labels.MatchEqual, model.MetricNameLabel, rd.Metric)}}).String()
		v, err := c.vector(ctx, "topk(1, timestamp("+sel+")) or bottomk(1, timestamp("+sel+"))")
		if err != nil || len(v) == 0 {
			return form{}, fmt.Errorf("canaries of %s: %v (%d series)", rd.Metric, err, len(v))
		}
		for j, s := range v {
			checks = append(checks, promql.Check{ID: fmt.Sprintf("%d.%d", i, j), Read: rd, Series: s.Metric})
		}
	}
	checked, err := promql.WithChecks(expr, checks)
	if err != nil {
		return form{}, err
	}
	return form{"canary", checked.String()}, nil
}

// floorForms are what other guards would cost at least, for choosing one:
//
//   - "and one window": the query and (the same query with its range function
//     replaced by count_over_time) > 0: one more read of every series' window,
//     the least that any guard costs that looks at each series at each
//     evaluation;
//   - "and one instant": the same with the call replaced by timestamp() of
//     its selector: one look at every series' newest sample;
//   - "ingredients": the five values today's guard computes its rule from
//     (the sample times before the window's start, middle and end, the
//     halves' sample counts), each read once, in one query: what the rule
//     costs Prometheus when the arithmetic is done outside it;
//   - "one series": the raw samples of one series over the window and a
//     half: what a check of one series costs (a gap of the whole backend
//     shows in any series); the series is one the selector selects.
func floorForms(ctx context.Context, c *client, query string) ([]form, error) {
	expr, err := promql.Parse(query)
	if err != nil {
		return nil, err
	}
	var ms *parser.MatrixSelector
	var call *parser.Call
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		if fn, ok := n.(*parser.Call); ok && call == nil {
			for _, a := range fn.Args {
				if m, ok := a.(*parser.MatrixSelector); ok {
					call, ms = fn, m
				}
			}
		}
		return nil
	})
	if ms == nil {
		return nil, errors.New("--query: no range function over a selector")
	}
	sel := ms.VectorSelector.(*parser.VectorSelector)
	r, h := ms.Range, ms.Range/2
	fn := call.Func
	call.Func = parser.Functions["count_over_time"]
	withCount := expr.String()
	call.Func = fn
	// The call replaced by its selector, read at one instant: the
	// instant is what it costs to look at each series' newest sample.
	args := call.Args
	call.Func, call.Args = parser.Functions["timestamp"], parser.Expressions{sel}
	withInstant := expr.String()
	call.Func, call.Args = fn, args

	at := func(offset time.Duration) *parser.VectorSelector {
		return &parser.VectorSelector{Name: sel.Name, LabelMatchers: sel.LabelMatchers, OriginalOffset: offset, Offset: offset}
	}
	timestamp := func(offset time.Duration) string { return "timestamp(" + at(offset).String() + ")" }
	count := func(offset time.Duration) string {
		return "count_over_time(" + (&parser.MatrixSelector{VectorSelector: at(offset), Range: h}).String() + ")"
	}
	tag := func(e, name string) string {
		return fmt.Sprintf(`label_replace(%s, "guard_part", %q, "", "")`, e, name)
	}
	ingredients := strings.Join([]string{
		tag(timestamp(r), "B"), tag(timestamp(h), "M"), tag(timestamp(0), "L"),
		tag(count(h), "c1"), tag(count(0), "c2"),
	}, " or ")

	one, err := c.oneSeries(ctx, sel.String())
	if err != nil {
		return nil, err
	}
	raw := (&parser.MatrixSelector{VectorSelector: one, Range: r + h}).String()
	return []form{
		{"and one window", fmt.Sprintf("(%s) and ((%s) > 0)", query, withCount)},
		{"and one instant", fmt.Sprintf("(%s) and ((%s) > 0)", query, withInstant)},
		{"ingredients", ingredients},
		{"one series", "last_over_time(" + raw + ")"},
	}, nil
}

// oneSeries returns a selector of exactly one of the series sel selects:
// its name and all its labels.
func (c *client) oneSeries(ctx context.Context, sel string) (*parser.VectorSelector, error) {
	v, err := c.vector(ctx, "topk(1, "+sel+")")
	if err != nil || len(v) == 0 {
		return nil, fmt.Errorf("one series of %s: %v (%d series)", sel, err, len(v))
	}
	var ms []*labels.Matcher
	for n, val := range v[0].Metric {
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, string(n), string(val)))
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
	return &parser.VectorSelector{LabelMatchers: ms}, nil
}

// vector runs an instant query and returns its samples.
func (c *client) vector(ctx context.Context, text string) (model.Vector, error) {
	var data struct {
		Result model.Vector `json:"result"`
	}
	err := c.post(ctx, url.Values{"query": {text}}, &data)
	return data.Result, err
}

// stats is what one query cost, from Prometheus' answer.
type stats struct {
	eval, samples float64
	series        int
}

type client struct {
	base string
	http *http.Client
}

// query sends text as an instant query at the current time with stats=all.
func (c *client) query(ctx context.Context, text string) (stats, error) {
	var data struct {
		Result []json.RawMessage `json:"result"`
		Stats  struct {
			Timings struct {
				Eval float64 `json:"evalTotalTime"`
			} `json:"timings"`
			Samples struct {
				Total float64 `json:"totalQueryableSamples"`
			} `json:"samples"`
		} `json:"stats"`
	}
	if err := c.post(ctx, url.Values{"query": {text}, "stats": {"all"}}, &data); err != nil {
		return stats{}, err
	}
	return stats{eval: data.Stats.Timings.Eval, samples: data.Stats.Samples.Total, series: len(data.Result)}, nil
}

// post sends form to /api/v1/query and decodes the answer's data into
// data; an answer whose status is not success is an error with its text.
func (c *client) post(ctx context.Context, form url.Values, data any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/api/v1/query", strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	var body struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("HTTP %d: %w", resp.StatusCode, err)
	}
	if body.Status != "success" {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, body.Error)
	}
	return json.Unmarshal(body.Data, data)
}

// cpuSeconds is the user and system CPU of process pid so far (0 when pid
// is 0), from /proc/pid/stat at the kernel's 100 ticks per second.
func cpuSeconds(pid int) (float64, error) {
	if pid == 0 {
		return 0, nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: fields count from the
	// closing parenthesis; utime and stime are fields 14 and 15.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var ticks float64
	for _, v := range f[11:13] {
		n, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return ticks / 100, nil
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

func dur(seconds float64) string {
	return time.Duration(seconds * float64(time.Second)).Round(10 * time.Microsecond).String()
}

func ratio(v, plain float64, pid int) string {
	if pid == 0 || plain == 0 {
		return "-"
	}
	return strconv.FormatFloat(v/plain, 'f', 2, 64)
}

package promql

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	promengine "github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"

	"github.com/promgate/promgate/pkg/internal/promtest"
)

// windowData is scraped every 15s at 10 requests/s; rate(...[1m]) reads 4
// samples per window. Sample i is at 15*i seconds.
const windowData = `
load 15s
	http_requests_total{pod="steady"}              0+150x40
	http_requests_total{pod="gap"}                 0+150x19 _x5 3750+150x15
	http_requests_total{pod="missed"}              0+150x25 _ 4050+150x13
	http_requests_total{pod="new"}                 _x30 4500+150x10
	http_requests_total{pod="mixed", code="200"}   0+150x40
	http_requests_total{pod="mixed", code="500"}   _x30 4500+150x10
	kube_pod_info{pod="steady", node="n1"}         1+0x40
	kube_pod_info{pod="gap", node="n2"}            1+0x40
	kube_pod_info{pod="new", node="n2"}            1+0x40
`

// The series of windowData, what happens to them, and when:
//   - gap: no samples from 300s to 360s (a 90s hole between 285s and 375s, as
//     when Prometheus is frozen); plain rate reads 3.75 at 390s.
//   - missed: one scrape missing at 390s.
//   - new: starts at 450s; plain rate reads 3.75 at 465s.
//   - mixed: one steady series and one new one (starting at 450s).

func TestRequireCompleteWindowsEngine(t *testing.T) {
	st := promtest.Load(t, windowData)
	ng := newEngine(t)

	const perPod = `sum by (pod) (rate(http_requests_total[1m]))`
	tests := []struct {
		name  string
		query string
		at    time.Duration
		// kept are the pods the guarded query returns, with the value
		// plain PromQL gives them (checked against the plain query too).
		kept map[string]float64
		// plainOnly are pods the plain query returns and the guard leaves
		// out, with the (wrong) value the plain query gives.
		plainOnly map[string]float64
	}{
		{
			name: "steady state", query: perPod, at: 280 * time.Second,
			kept: map[string]float64{"steady": 10, "gap": 10, "missed": 10, "mixed": 10},
		},
		{
			name: "gap just started: last sample 15s old is still fine", query: perPod, at: 300 * time.Second,
			kept: map[string]float64{"steady": 10, "gap": 10, "missed": 10, "mixed": 10},
		},
		{
			name: "gap: last sample 25s old, plain rate extrapolates the end by half an interval", query: perPod, at: 310 * time.Second,
			kept:      map[string]float64{"steady": 10, "missed": 10, "mixed": 10},
			plainOnly: map[string]float64{"gap": 42.5 / 6},
		},
		{
			name: "after the gap: 2 samples in the window", query: perPod, at: 390 * time.Second,
			kept:      map[string]float64{"steady": 10, "missed": 10, "mixed": 10},
			plainOnly: map[string]float64{"gap": 3.75},
		},
		{
			name: "after the gap: 3 samples, the first 30s after the window start", query: perPod, at: 405 * time.Second,
			kept:      map[string]float64{"steady": 10, "mixed": 10},
			plainOnly: map[string]float64{"gap": 6.25, "missed": 10},
		},
		{
			name: "missed scrape at the window end", query: perPod, at: 400 * time.Second,
			kept:      map[string]float64{"steady": 10, "mixed": 10},
			plainOnly: map[string]float64{"gap": 32.5 / 6, "missed": 42.5 / 6},
		},
		{
			// The window (360s, 420s] holds 4 samples from 375s: rate is right,
			// but the sample before the window is 90s older; the guard waits
			// one more interval. A missed sample inside the window is left
			// out as well.
			name: "one interval later than needed", query: perPod, at: 420 * time.Second,
			kept:      map[string]float64{"steady": 10, "mixed": 10},
			plainOnly: map[string]float64{"gap": 10, "missed": 10},
		},
		{
			name: "gap over", query: perPod, at: 435 * time.Second,
			kept: map[string]float64{"steady": 10, "gap": 10, "mixed": 10},
			// missed: (375s, 435s] starts with the hole at 390s.
			plainOnly: map[string]float64{"missed": 6.25},
		},
		{
			name: "new series and a pod with a new member", query: perPod, at: 465 * time.Second,
			kept:      map[string]float64{"steady": 10, "gap": 10, "missed": 10},
			plainOnly: map[string]float64{"new": 3.75, "mixed": 13.75},
		},
		{
			name: "new series one window later", query: perPod, at: 510 * time.Second,
			kept: map[string]float64{"steady": 10, "gap": 10, "missed": 10, "new": 10, "mixed": 20},
		},
		{
			name: "without", query: `sum without (code) (rate(http_requests_total[1m]))`, at: 465 * time.Second,
			kept:      map[string]float64{"steady": 10, "gap": 10, "missed": 10},
			plainOnly: map[string]float64{"new": 3.75, "mixed": 13.75},
		},
		{
			name: "no aggregation, arithmetic with numbers", query: `60 * rate(http_requests_total{code!="500"}[1m]) - 0`, at: 390 * time.Second,
			kept:      map[string]float64{"steady": 600, "missed": 600, "mixed": 600},
			plainOnly: map[string]float64{"gap": 225},
		},
		{
			name: "filter with a number", query: `increase(http_requests_total{code!="500"}[1m]) > 100`, at: 390 * time.Second,
			kept:      map[string]float64{"steady": 600, "missed": 600, "mixed": 600},
			plainOnly: map[string]float64{"gap": 225},
		},
		{
			name: "vector matching with an instant vector", at: 465 * time.Second,
			query:     `sum by (pod) (rate(http_requests_total[1m])) * on (pod) group_left (node) kube_pod_info`,
			kept:      map[string]float64{"steady": 10, "gap": 10},
			plainOnly: map[string]float64{"new": 3.75},
		},
		{
			name: "both sides guarded", at: 390 * time.Second,
			query:     `sum by (pod) (rate(http_requests_total[1m])) / on (pod) sum by (pod) (avg_over_time(http_requests_total[2m]) > 0)`,
			kept:      map[string]float64{"steady": 10.0 / 3375, "missed": 10.0 / 3300, "mixed": 10.0 / 3375},
			plainOnly: map[string]float64{"gap": 3.75 / 3500},
		},
		{
			name: "label_replace and round", at: 390 * time.Second,
			query:     `round(label_replace(sum by (pod) (rate(http_requests_total[1m])), "p", "$1", "pod", "(.*)"))`,
			kept:      map[string]float64{"steady": 10, "missed": 10, "mixed": 10},
			plainOnly: map[string]float64{"gap": 4},
		},
		{
			name: "offset", query: `sum by (pod) (rate(http_requests_total[1m] offset 1m))`, at: 450 * time.Second,
			kept:      map[string]float64{"steady": 10, "missed": 10, "mixed": 10},
			plainOnly: map[string]float64{"gap": 3.75},
		},
		{
			name: "irate reads the newest samples only", query: `sum by (pod) (irate(http_requests_total[1m]))`, at: 390 * time.Second,
			kept: map[string]float64{"steady": 10, "gap": 10, "missed": 10, "mixed": 10},
		},
		{
			name: "subquery: every step must be complete", at: 480 * time.Second,
			query:     `max_over_time(sum by (pod) (rate(http_requests_total[1m]))[1m:30s])`,
			kept:      map[string]float64{"steady": 10, "gap": 10},
			plainOnly: map[string]float64{"missed": 10, "new": 6.25, "mixed": 16.25},
		},
		{
			name: "subquery one window later", at: 540 * time.Second,
			query: `max_over_time(sum by (pod) (rate(http_requests_total[1m]))[1m:30s])`,
			kept:  map[string]float64{"steady": 10, "gap": 10, "missed": 10, "new": 10, "mixed": 20},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			expr, err := Parse(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			guarded, ok := RequireCompleteWindows(expr)
			if !ok {
				t.Fatalf("RequireCompleteWindows(%s): not supported", tc.query)
			}
			plain := evalByPod(t, ng, st, tc.query, tc.at)
			got := evalByPod(t, ng, st, guarded.String(), tc.at)

			want := map[string]float64{}
			for pod, v := range tc.kept {
				want[pod] = v
			}
			for pod, v := range tc.plainOnly {
				want[pod] = v
			}
			if !sameValues(plain, want) {
				t.Errorf("plain %s at %s = %v, want %v (test data or expectations are off)", tc.query, tc.at, plain, want)
			}
			if !sameValues(got, tc.kept) {
				t.Errorf("guarded at %s = %v, want %v", tc.at, got, tc.kept)
			}
			for pod, v := range got {
				if p, ok := plain[pod]; !ok || p != v {
					t.Errorf("guarded value of %s = %v, plain = %v: the guard must not change values", pod, v, p)
				}
			}
		})
	}
}

// TestPreviousWindowIndicator documents why the guard does not compare a
// window's sample count with the previous window's: after a gap longer than
// the window, the previous window is short too.
func TestPreviousWindowIndicator(t *testing.T) {
	st := promtest.Load(t, windowData)
	ng := newEngine(t)
	const sel = `http_requests_total{pod="gap"}`
	naive := fmt.Sprintf(`count_over_time(%[1]s[1m]) + 1 >= bool count_over_time(%[1]s[1m] offset 1m)`, sel)
	at := 390 * time.Second
	if got := evalByPod(t, ng, st, naive, at); got["gap"] != 1 {
		t.Fatalf("previous-window indicator at %s = %v, want 1 (it calls the window complete)", at, got)
	}
	if got := evalByPod(t, ng, st, `rate(`+sel+`[1m])`, at); got["gap"] != 3.75 {
		t.Fatalf("rate at %s = %v, want 3.75", at, got)
	}
	e, _ := Parse(`rate(` + sel + `[1m])`)
	g, _ := RequireCompleteWindows(e)
	if got := evalByPod(t, ng, st, g.String(), at); len(got) != 0 {
		t.Fatalf("guarded rate at %s = %v, want nothing", at, got)
	}
}

// TestRequireCompleteWindowsJitter checks, on samples scraped with jitter and
// with random missed scrapes and outages, that a steady series is never left
// out and that every value the guard keeps is close to the true rate.
func TestRequireCompleteWindowsJitter(t *testing.T) {
	tests := []struct {
		interval, window, jitter time.Duration
		// maxErr bounds the relative error of a kept rate when 5% of the
		// scrapes and, every 200 scrapes, up to a window and 4 scrapes in a row go
		// missing. Losses
		// that hit both halves of a window alike are not seen (see
		// docs/partial-windows.md): the bound is not 0.
		maxErr float64
	}{
		{15 * time.Second, time.Minute, 500 * time.Millisecond, 0.2},
		{15 * time.Second, 2 * time.Minute, 500 * time.Millisecond, 0.2},
		{time.Second, time.Minute, 100 * time.Millisecond, 0.1},
		{30 * time.Second, 5 * time.Minute, time.Second, 0.2},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("scrape %s window %s", tc.interval, tc.window), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(1, uint64(tc.interval)))
			st := &promtest.MemStorage{}
			const rate = 10.0
			n := max(int(40*time.Minute/tc.interval), 600)
			perWindow := int(tc.window / tc.interval)
			lost := map[string][]bool{}
			for _, pod := range []string{"steady", "lossy"} {
				ls := labels.FromStrings("__name__", "http_requests_total", "pod", pod)
				lost[pod] = make([]bool, n)
				outage := 0
				for i := range n {
					if i%200 == 0 {
						outage = rnd.IntN(perWindow + 4) // up to 4 scrapes longer than the window
					}
					if pod == "lossy" && (rnd.Float64() < 0.05 || (i%200 >= 100 && i%200 < 100+outage)) {
						lost[pod][i] = true // a missed scrape, or an outage
						continue
					}
					ts := time.Duration(i)*tc.interval + time.Duration((rnd.Float64()*2-1)*float64(tc.jitter))
					st.Add(ls, ts.Milliseconds(), rate*ts.Seconds())
				}
			}
			ng := newEngine(t)
			q := fmt.Sprintf(`rate(http_requests_total[%s])`, model.Duration(tc.window))
			e, err := Parse(q)
			if err != nil {
				t.Fatal(err)
			}
			g, _ := RequireCompleteWindows(e)
			var keptLossy, plainLossy, badPlain int
			worst, worstAt := 0.0, time.Duration(0)
			for range 300 {
				at := tc.window + 10*tc.interval + time.Duration(rnd.Int64N(int64(time.Duration(n-20)*tc.interval-tc.window)))
				at = at.Truncate(time.Millisecond)
				plain := evalByPod(t, ng, st, q, at)
				got := evalByPod(t, ng, st, g.String(), at)
				if _, ok := got["steady"]; !ok {
					t.Errorf("steady series left out at %s (plain %v)", at, plain["steady"])
				}
				if p, ok := plain["lossy"]; ok {
					plainLossy++
					if math.Abs(p-rate)/rate > tc.maxErr {
						badPlain++
					}
				}
				if v, ok := got["lossy"]; ok {
					keptLossy++
					if e := math.Abs(v-rate) / rate; e > worst {
						worst, worstAt = e, at
					}
				}
			}
			t.Logf("lossy series: plain answered %d times (%d off by more than %.0f%%), guarded kept %d, worst kept error %.1f%% at %s, lost scrapes in that window: %v",
				plainLossy, badPlain, 100*tc.maxErr, keptLossy, 100*worst, worstAt, lostIn(lost["lossy"], tc.interval, worstAt-tc.window-tc.interval, worstAt))
			if worst > tc.maxErr {
				t.Errorf("a kept rate is off by %.1f%%, more than %.0f%%", 100*worst, 100*tc.maxErr)
			}
			if badPlain == 0 {
				t.Errorf("no plain rate was off: the test data exercises nothing")
			}
		})
	}
}

func TestRequireCompleteWindowsShapes(t *testing.T) {
	tests := []struct {
		query string
		ok    bool
		// changed is false when the query must come back unchanged.
		changed bool
	}{
		{`up`, true, false},
		{`sum by (pod) (container_memory_working_set_bytes{container!=""})`, true, false},
		{`scalar(up) * 2`, true, false},
		{`sum by (pod) (rate(x[1m]))`, true, true},
		{`avg without (instance) (increase(x[5m])) / 60`, true, true},
		{`quantile by (pod) (0.9, max_over_time(x[1m]))`, true, true},
		{`count(delta(x[1m]))`, true, true},
		{`quantile_over_time(0.5, x[1m])`, true, true},
		{`predict_linear(x[5m], 60)`, true, true},
		{`histogram_quantile(0.9, sum by (le, pod) (rate(x_bucket[5m])))`, true, true},
		{`rate(x[1m]) / ignoring (code) group_left rate(y[1m])`, true, true},
		{`sum(rate(x[1m])) > bool 3`, true, true},
		{`-rate(x[1m])`, true, true},
		{`rate(x[1m]) and on (pod) kube_pod_status_ready == 1`, true, true},
		{`rate(x[1m]) unless y`, true, true},
		{`max_over_time(rate(x[1m])[5m:1m])`, true, true},
		{`rate(x[1m] offset 5m)`, true, true},
		{`irate(x[1m])`, true, true},

		{`x[5m]`, false, false},
		{`scalar(sum(rate(x[1m])))`, false, false},
		{`rate(x[1m]) * scalar(rate(y[1m]))`, false, false},
		{`topk(3, rate(x[1m]))`, false, false},
		{`count_values("v", rate(x[1m]))`, false, false},
		{`rate(x[1m]) or y`, false, false},
		{`y and rate(x[1m])`, false, false},
		{`rate(x[1m] @ 100)`, false, false},
		{`max_over_time(rate(x[1m])[5m:])`, false, false},
		{`max_over_time(rate(x[1m])[5m:2m])`, false, false},
		{`absent_over_time(x[1m])`, false, false},
		{`sort(rate(x[1m]))`, false, false},
		{`rate(x[1m]) > bool on (pod) group_left sum by (pod) (rate(y[1m]))`, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			expr, err := Parse(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			before := expr.String()
			guarded, ok := RequireCompleteWindows(expr)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v (got %s)", ok, tc.ok, guarded)
			}
			if expr.String() != before {
				t.Fatalf("the input was modified: %s", expr)
			}
			if changed := guarded.String() != before; changed != tc.changed {
				t.Fatalf("changed = %v, want %v: %s", changed, tc.changed, guarded)
			}
			if !tc.changed {
				return
			}
			again, err := Parse(guarded.String())
			if err != nil {
				t.Fatalf("the guarded query does not parse: %v\n%s", err, guarded)
			}
			if again.String() != guarded.String() {
				t.Fatalf("printing is not stable:\n%s\n%s", guarded, again)
			}
			if !strings.HasPrefix(guarded.String(), paren(expr).String()+" and (") {
				t.Fatalf("the guarded query does not start with the query: %s", guarded)
			}
		})
	}
}

// TestRequireCompleteWindowsGolden pins the rewritten text of small queries.
func TestRequireCompleteWindowsGolden(t *testing.T) {
	const ind = `((((timestamp(x offset 30s) - timestamp(x offset 1m)) * count_over_time(x[30s])) <= bool ((count_over_time(x[30s] offset 30s) * (timestamp(x) - timestamp(x offset 30s))) + ((((0.5 * (timestamp(x) - timestamp(x offset 30s))) + (3 * count_over_time(x[30s]))) + abs((0.5 * (timestamp(x) - timestamp(x offset 30s))) - (3 * count_over_time(x[30s])))) / 2))) * (((timestamp(x) - timestamp(x offset 30s)) * count_over_time(x[30s] offset 30s)) <= bool ((count_over_time(x[30s]) * (timestamp(x offset 30s) - timestamp(x offset 1m))) + ((((0.5 * (timestamp(x offset 30s) - timestamp(x offset 1m))) + (3 * count_over_time(x[30s] offset 30s))) + abs((0.5 * (timestamp(x offset 30s) - timestamp(x offset 1m))) - (3 * count_over_time(x[30s] offset 30s)))) / 2)))) * (((time() - timestamp(x)) * count_over_time(x[30s])) <= bool ((((1.1 * (timestamp(x) - timestamp(x offset 30s))) + ((0.5 * (timestamp(x) - timestamp(x offset 30s))) + (3 * count_over_time(x[30s])))) + abs((1.1 * (timestamp(x) - timestamp(x offset 30s))) - ((0.5 * (timestamp(x) - timestamp(x offset 30s))) + (3 * count_over_time(x[30s]))))) / 2))`
	tests := []struct{ query, want string }{
		{`rate(x[1m])`, `rate(x[1m]) and ((` + ind + `) == 1)`},
		{`sum by (pod) (rate(x[1m])) * 1000`,
			`(sum by (pod) (rate(x[1m])) * 1000) and (min by (pod) ((` + ind + `) or (rate(x[1m]) * 0)) == 1)`},
		{`irate(x[1m]) / on (pod) group_left (node) y`,
			`(irate(x[1m]) / on (pod) group_left (node) y) and ((((irate(x[1m]) * 0) + 1) * on (pod) group_left (node) ((y > bool y) + 1)) == 1)`},
	}
	for _, tc := range tests {
		expr, err := Parse(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := RequireCompleteWindows(expr)
		if !ok || got.String() != tc.want {
			t.Errorf("RequireCompleteWindows(%s) = %v,\n%s\nwant\n%s", tc.query, ok, got, tc.want)
		}
	}
}

// TestRequireCompleteWindowsCost measures how many samples the guard adds.
func TestRequireCompleteWindowsCost(t *testing.T) {
	st := promtest.Load(t, windowData)
	ng := newEngine(t)
	for _, q := range []string{`rate(http_requests_total{pod="steady"}[1m])`, `sum by (pod) (rate(http_requests_total{pod="steady"}[1m]))`} {
		e, _ := Parse(q)
		g, _ := RequireCompleteWindows(e)
		plain, guarded := samples(t, ng, st, q), samples(t, ng, st, g.String())
		t.Logf("%s: %d samples, guarded %d (%.2fx)", q, plain, guarded, float64(guarded)/float64(plain))
		if guarded > 16*plain {
			t.Errorf("%s: guarded reads %d samples, plain %d: more than 16x", q, guarded, plain)
		}
	}
}

func samples(t *testing.T, ng *promengine.Engine, st storage.Queryable, q string) int64 {
	t.Helper()
	qry, err := ng.NewInstantQuery(context.Background(), st, promengine.NewPrometheusQueryOpts(true, 0, nil), q, time.Unix(0, 0).Add(300*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer qry.Close()
	if res := qry.Exec(context.Background()); res.Err != nil {
		t.Fatal(res.Err)
	}
	return qry.Stats().Samples.TotalSamples
}

// evalByPod runs an instant query at the given time after the epoch and
// returns the value of each series by its pod label.
func evalByPod(t *testing.T, ng *promengine.Engine, st storage.Queryable, q string, at time.Duration) map[string]float64 {
	t.Helper()
	vec := evalVector(t, ng, st, q, at)
	out := map[string]float64{}
	for _, s := range vec {
		pod := s.Metric.Get("pod")
		if _, dup := out[pod]; dup {
			t.Fatalf("%s: two series for pod %q", q, pod)
		}
		out[pod] = s.F
	}
	return out
}

func sameValues(got, want map[string]float64) bool {
	if len(got) != len(want) {
		return false
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok || math.Abs(g-w) > 1e-9*math.Max(1, math.Abs(w)) {
			return false
		}
	}
	return true
}

// lostIn returns the indexes of the lost scrapes between from and to.
func lostIn(lost []bool, interval, from, to time.Duration) []string {
	var out []string
	for i, l := range lost {
		if at := time.Duration(i) * interval; l && at > from && at <= to {
			out = append(out, (at - to).String())
		}
	}
	return out
}

func newEngine(t *testing.T) *promengine.Engine {
	ng := promengine.NewEngine(promengine.EngineOpts{MaxSamples: 1e8, Timeout: time.Minute, EnablePerStepStats: true})
	t.Cleanup(func() { _ = ng.Close() })
	return ng
}

// TestGuardedReads: what explain shows of the guard is what
// RequireCompleteWindows does: the reads it checks, none, or why not.
func TestGuardedReads(t *testing.T) {
	tests := []struct {
		query string
		reads []string
		err   string // a part of the error; "" for none
	}{
		{`sum by (pod) (container_memory_working_set_bytes{container!=""})`, nil, ""},
		{`irate(x[1m])`, nil, ""},
		{`sum by (pod) (rate(x{pod="a"}[1m]))`, []string{`rate(x{pod="a"}[1m])`}, ""},
		{`rate(x[1m]) / ignoring (code) group_left rate(y[2m])`, []string{`rate(x[1m])`, `rate(y[2m])`}, ""},
		{`max_over_time(rate(x[1m])[5m:1m])`, []string{`max_over_time(rate(x[1m])[5m:1m])`, `rate(x[1m])`}, ""},
		{`sum(rate(x[1m])) or vector(0)`, nil, "or with a range function"},
		{`topk(3, rate(x[1m]))`, nil, "aggregation topk"},
		{`x[5m]`, nil, "the result is a matrix"},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			expr, err := Parse(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			reads, err := GuardedReads(expr)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("error %v, want one with %q", err, tc.err)
			}
			if strings.Join(reads, "; ") != strings.Join(tc.reads, "; ") {
				t.Errorf("reads %q, want %q", reads, tc.reads)
			}
			if _, ok := RequireCompleteWindows(expr); ok != (err == nil) {
				t.Errorf("RequireCompleteWindows ok = %v, GuardedReads error %v: they disagree", ok, err)
			}
		})
	}
}

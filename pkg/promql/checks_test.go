package promql

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	promengine "github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"

	"github.com/promgate/promgate/pkg/internal/promtest"
)

func TestReads(t *testing.T) {
	tests := []struct {
		query string
		reads []Read
		err   string
	}{
		{`sum by (pod) (container_memory_working_set_bytes{container!=""})`, nil, ""},
		{`irate(x[1m])`, nil, ""},
		{`sum by (pod) (rate(x{pod="a"}[1m]))`, []Read{{"x", time.Minute, 0}}, ""},
		{`rate(x[1m]) / ignoring (code) group_left rate(y[2m] offset 1m)`, []Read{{"x", time.Minute, 0}, {"y", 2 * time.Minute, time.Minute}}, ""},
		{`rate(x[1m]) + rate(x[1m])`, []Read{{"x", time.Minute, 0}}, ""},
		{`max_over_time(rate(x[1m])[5m:1m] offset 2m)`, []Read{{"x", 6 * time.Minute, 2 * time.Minute}}, ""},
		{`rate({__name__="x",pod="a"}[1m])`, []Read{{"x", time.Minute, 0}}, ""},
		{`rate({__name__=~"x|y"}[1m])`, nil, "names no one metric"},
		{`topk(3, rate(x[1m]))`, nil, "aggregation topk"},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			expr, err := Parse(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			reads, err := Reads(expr)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("error %v, want one with %q", err, tc.err)
			}
			if len(reads) != len(tc.reads) {
				t.Fatalf("reads %v, want %v", reads, tc.reads)
			}
			for i := range reads {
				if reads[i] != tc.reads[i] {
					t.Errorf("read %d: %v, want %v", i, reads[i], tc.reads[i])
				}
			}
		})
	}
}

// TestWithChecksEngine evaluates checks with Prometheus' engine over
// windowData: a check of a series says what the guard says of its window,
// and the query's own series come back unchanged beside the checks.
func TestWithChecksEngine(t *testing.T) {
	st := promtest.Load(t, windowData)
	ng := newEngine(t)
	const q = `sum by (pod) (rate(http_requests_total[1m]))`
	expr, err := Parse(q)
	if err != nil {
		t.Fatal(err)
	}
	reads, err := Reads(expr)
	if err != nil || len(reads) != 1 {
		t.Fatalf("reads %v, %v", reads, err)
	}
	pods := []string{"steady", "gap", "missed", "new", "gone"}
	var checks []Check
	for _, p := range pods {
		checks = append(checks, Check{ID: p, Read: reads[0], Series: model.Metric{"pod": model.LabelValue(p)}})
	}
	checked, err := WithChecks(expr, checks)
	if err != nil {
		t.Fatal(err)
	}
	text := checked.String()
	if _, err := Parse(text); err != nil {
		t.Fatalf("%s does not parse: %v", text, err)
	}
	// The guard's own verdict per pod (present: complete).
	guarded, _ := RequireCompleteWindows(expr)
	for _, at := range []time.Duration{280, 310, 390, 405, 435, 465, 510} {
		at *= time.Second
		plain := evalByPod(t, ng, st, q, at)
		strict := evalByPod(t, ng, st, guarded.String(), at)
		vec := evalVector(t, ng, st, text, at)
		seen := map[string]bool{}
		cov := map[string]*Coverage{}
		for _, s := range vec {
			v := s.Metric.Get(CheckLabel)
			if v == "" {
				pod := s.Metric.Get("pod")
				if want, ok := plain[pod]; !ok || want != s.F {
					t.Errorf("at %v: series %v = %v, the plain query gives %v", at, s.Metric, s.F, plain[pod])
				}
				seen[pod] = true
				continue
			}
			id, part, ok := SplitCheckLabel(v)
			if !ok || s.Metric.Get("pod") != id {
				t.Fatalf("at %v: check sample %v", at, s.Metric)
			}
			if cov[id] == nil {
				cov[id] = &Coverage{}
			}
			if !cov[id].Set(part, s.F) {
				t.Fatalf("at %v: check sample %v names no ingredient", at, s.Metric)
			}
		}
		for id, c := range cov {
			_, complete := strict[id]
			if got := c.Complete(float64(at/time.Millisecond)/1000, reads[0].Range, reads[0].Offset); got != complete {
				t.Errorf("at %v: check of %s says complete %v, the strict query %v", at, id, got, complete)
			}
			seen["check "+id] = c.Present()
		}
		for pod := range plain {
			if !seen[pod] {
				t.Errorf("at %v: the query's series of %s is missing", at, pod)
			}
		}
		if seen["check gone"] {
			t.Errorf("at %v: a series that never existed has a check sample", at)
		}
		if at >= 300*time.Second && !seen["check steady"] {
			t.Errorf("at %v: the steady series has no check sample", at)
		}
	}
}

// TestWithChecksSelectors: the checks' selectors hold the check's metric
// and series labels and nothing else; the query's own matchers, where
// request input lies, never enter them, whatever the query.
func TestWithChecksSelectors(t *testing.T) {
	expr, err := Parse(`sum by (pod) (rate(http_requests_total{namespace="shop",pod=~"a|b"}[1m]))`)
	if err != nil {
		t.Fatal(err)
	}
	series := model.Metric{"namespace": "other", "pod": `x"y`, "job": "web"}
	checked, err := WithChecks(expr, []Check{{ID: "0", Read: Read{"http_requests_total", time.Minute, 0}, Series: series}})
	if err != nil {
		t.Fatal(err)
	}
	reparsed, err := Parse(checked.String())
	if err != nil {
		t.Fatal(err)
	}
	top := reparsed.(*parser.BinaryExpr)
	if top.Op != parser.LOR || unparen(top.LHS).String() != expr.String() {
		t.Fatalf("not the query or the checks: %s", reparsed)
	}
	parser.Inspect(top.RHS, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		want := map[string]string{"__name__": "http_requests_total", "namespace": "other", "pod": `x"y`, "job": "web"}
		for _, m := range vs.LabelMatchers {
			if m.Type != labels.MatchEqual || want[m.Name] != m.Value {
				t.Errorf("check selector %s has matcher %s", vs, m)
			}
			delete(want, m.Name)
		}
		if len(want) > 0 {
			t.Errorf("check selector %s lacks %v", vs, want)
		}
		return nil
	})
}

// TestEstablished: the series of a query that are not new are those
// whose every window has a sample at or before its start; a series that
// went through a gap longer than the window is not new.
func TestEstablished(t *testing.T) {
	st := promtest.Load(t, windowData)
	ng := newEngine(t)
	const q = `sum by (pod) (rate(http_requests_total[1m]))`
	expr, err := Parse(q)
	if err != nil {
		t.Fatal(err)
	}
	est, err := Established(expr)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		at   time.Duration
		pods []string
	}{
		{280, []string{"gap", "missed", "mixed", "steady"}},
		// gap's last sample before the window's start is 285s.
		{390, []string{"gap", "missed", "mixed", "steady"}},
		// new starts at 450s; mixed has a member that does.
		{465, []string{"gap", "missed", "steady"}},
		{510, []string{"gap", "missed", "mixed", "new", "steady"}},
	}
	for _, tc := range tests {
		got := evalByPod(t, ng, st, est.String(), tc.at*time.Second)
		plain := evalByPod(t, ng, st, q, tc.at*time.Second)
		var pods []string
		for p, v := range got {
			pods = append(pods, p)
			if plain[p] != v {
				t.Errorf("at %ds: %s = %v, the query gives %v", tc.at, p, v, plain[p])
			}
		}
		slices.Sort(pods)
		if !slices.Equal(pods, tc.pods) {
			t.Errorf("at %ds: established %v, want %v", tc.at, pods, tc.pods)
		}
	}
}

func evalVector(t *testing.T, ng *promengine.Engine, st storage.Queryable, q string, at time.Duration) promengine.Vector {
	t.Helper()
	qry, err := ng.NewInstantQuery(context.Background(), st, nil, q, time.Unix(0, 0).Add(at))
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer qry.Close()
	res := qry.Exec(context.Background())
	if res.Err != nil {
		t.Fatalf("%s: %v", q, res.Err)
	}
	vec, err := res.Vector()
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return vec
}

// TestChecksAgreeWithStrict: over series with jitter, lost scrapes and
// outages, a check of a series decides at every evaluation as the strict
// query decides for it.
func TestChecksAgreeWithStrict(t *testing.T) {
	ng := newEngine(t)
	for _, tc := range []struct {
		interval, window, offset, jitter time.Duration
	}{
		{15 * time.Second, time.Minute, 0, 500 * time.Millisecond},
		{15 * time.Second, 2 * time.Minute, 30 * time.Second, 500 * time.Millisecond},
		{time.Second, time.Minute, 0, 100 * time.Millisecond},
		{30 * time.Second, 5 * time.Minute, 0, time.Second},
	} {
		t.Run(fmt.Sprintf("scrape %s window %s offset %s", tc.interval, tc.window, tc.offset), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(2, uint64(tc.interval+tc.offset)))
			st := &promtest.MemStorage{}
			const n = 300
			perWindow := int(tc.window / tc.interval)
			pods := []string{"a", "b", "c", "d", "e", "f"}
			for p, pod := range pods {
				ls := labels.FromStrings("__name__", "x", "pod", pod)
				outage, from := 0, 0
				for i := range n {
					if i%100 == p*10 {
						outage, from = rnd.IntN(perWindow+4), i
					}
					if i < p*20 || rnd.Float64() < 0.05 || i-from < outage {
						continue // not yet started, a missed scrape, an outage
					}
					ts := time.Duration(i)*tc.interval + time.Duration((rnd.Float64()*2-1)*float64(tc.jitter))
					st.Add(ls, ts.Milliseconds(), float64(i))
				}
			}
			q := fmt.Sprintf("rate(x[%s] offset %s)", model.Duration(tc.window), model.Duration(tc.offset))
			expr, err := Parse(q)
			if err != nil {
				t.Fatal(err)
			}
			guarded, _ := RequireCompleteWindows(expr)
			reads, err := Reads(expr)
			if err != nil || len(reads) != 1 {
				t.Fatal(reads, err)
			}
			var checks []Check
			for _, pod := range pods {
				checks = append(checks, Check{ID: pod, Read: reads[0], Series: model.Metric{"pod": model.LabelValue(pod)}})
			}
			checked, err := WithChecks(expr, checks)
			if err != nil {
				t.Fatal(err)
			}
			disagree, compared, complete := 0, 0, 0
			for i := perWindow; i < n; i += 3 {
				at := time.Duration(i)*tc.interval + tc.interval/3
				strict := evalByPod(t, ng, st, guarded.String(), at)
				cov := map[string]*Coverage{}
				for _, s := range evalVector(t, ng, st, checked.String(), at) {
					if id, part, ok := SplitCheckLabel(s.Metric.Get(CheckLabel)); ok {
						if cov[id] == nil {
							cov[id] = &Coverage{}
						}
						cov[id].Set(part, s.F)
					}
				}
				for _, pod := range pods {
					c := cov[pod]
					got := c != nil && c.Complete(float64(at/time.Millisecond)/1000, reads[0].Range, reads[0].Offset)
					_, want := strict[pod]
					compared++
					if want {
						complete++
					}
					if got != want {
						disagree++
						if disagree <= 5 {
							t.Errorf("at %v: %s complete by its check %v, by the strict query %v", at, pod, got, want)
						}
					}
				}
			}
			t.Logf("%d verdicts compared (%d complete), %d disagree", compared, complete, disagree)
			if complete == 0 || complete == compared {
				t.Error("the data gave only one verdict: the comparison tests nothing")
			}
		})
	}
}

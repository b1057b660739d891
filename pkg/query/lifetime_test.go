package query

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"k8s.io/component-base/metrics/testutil"

	"github.com/promgate/promgate/pkg/internal/promtest"
	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/promql"
)

// t0 is a multiple of a minute: scrape phases below are offsets from it.
var t0 = time.Unix(1_699_999_980, 0)

// target scrapes a metric's series every interval, at t0+phase+k*interval.
type target struct {
	instance string
	interval time.Duration
	phase    time.Duration
}

// targets returns n targets of one interval, their phases spread evenly
// over it (staggered, as Prometheus spreads a job's targets).
func staggered(n int, interval time.Duration) []target {
	out := make([]target, n)
	for i := range out {
		out[i] = target{fmt.Sprintf("10.0.0.%d:9100", i), interval, time.Duration(i) * interval / time.Duration(n)}
	}
	return out
}

// scrapeStore returns a storage in which each metric is scraped by the
// targets from from to to. A sample's value is its time in seconds, so
// that an answer tells which scrape it read.
func scrapeStore(metrics []string, targets []target, from, to time.Time) *promtest.MemStorage {
	st := &promtest.MemStorage{}
	for _, m := range metrics {
		for _, tg := range targets {
			ls := labels.FromStrings(model.MetricNameLabel, m, "job", "node", "instance", tg.instance)
			first := t0.Add(tg.phase)
			for first.After(from) {
				first = first.Add(-tg.interval)
			}
			for ts := first; !ts.After(to); ts = ts.Add(tg.interval) {
				if !ts.Before(from) {
					st.Add(ls, ts.UnixMilli(), float64(ts.UnixMilli())/1000)
				}
			}
		}
	}
	return st
}

func newClient(t testing.TB, url string) *prom.LimitedClient {
	t.Helper()
	c, err := prom.New(prom.Options{URL: url, Name: url, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c.WithLimits(prom.Limits{})
}

// failing fails the queries that fail selects, with a backend error.
type failing struct {
	*prom.LimitedClient
	fail func(q string) bool
}

var errInjected = errors.New("injected: server error: 503")

func (f failing) Query(ctx context.Context, q string, ts time.Time) (model.Vector, error) {
	if f.fail(q) {
		return nil, errInjected
	}
	return f.LimitedClient.Query(ctx, q, ts)
}

func (f failing) QuerySamples(ctx context.Context, q string, ts time.Time) (model.Matrix, error) {
	if f.fail(q) {
		return nil, errInjected
	}
	return f.LimitedClient.QuerySamples(ctx, q, ts)
}

// evalTimestamps answers timestamp() with the evaluation time, as
// VictoriaMetrics does.
type evalTimestamps struct{ *prom.LimitedClient }

func (b evalTimestamps) Query(ctx context.Context, q string, ts time.Time) (model.Vector, error) {
	v, err := b.LimitedClient.Query(ctx, q, ts)
	if strings.Contains(q, "timestamp(") {
		for _, s := range v {
			s.Value = model.SampleValue(float64(ts.UnixMilli()) / 1000)
		}
	}
	return v, err
}

// isProbe tells the engine's probe queries: latest sample times, or one
// series' raw samples.
// probeQueries counts the probe queries srv has evaluated.
func probeQueries(srv *promtest.Engine) int {
	n := 0
	for _, q := range srv.Queries() {
		if isProbe(q) {
			n++
		}
	}
	return n
}

func isProbe(q string) bool {
	return strings.HasPrefix(q, "topk(1, timestamp(") || strings.HasSuffix(q, "]") && !strings.Contains(q, "(")
}

func TestAutoLifetime(t *testing.T) {
	RegisterMetrics()
	const fallback = 5 * time.Second
	tests := []struct {
		name    string
		targets []target
		maxTTL  time.Duration
		fail    func(q string) bool
		evalTS  bool          // timestamp() is the evaluation time
		first   string        // a query run with max(m) first
		query   string        // the second query, on the same metric as the first
		at      time.Duration // when it runs, after t0
		// what is learned and the second query's lifetime
		interval time.Duration
		aligned  bool
		life     time.Duration
		mode     string
	}{
		// One target: the answer changes at its scrapes; visible a grace of
		// a fifth of the interval (at most 2s) after each.
		{name: "1s, one target", targets: []target{{"a", time.Second, 300 * time.Millisecond}}, at: 10 * time.Second,
			interval: time.Second, aligned: true, life: time.Second, mode: modeAligned}, // 0.5s to the next, raised to the 1s minimum
		{name: "15s, one target", targets: []target{{"a", 15 * time.Second, 7 * time.Second}}, at: 10 * time.Second,
			interval: 15 * time.Second, aligned: true, life: 14 * time.Second, mode: modeAligned}, // next scrape 22s, visible 24s
		{name: "15s, one target, just before a scrape is visible", targets: []target{{"a", 15 * time.Second, 7 * time.Second}}, at: 23*time.Second + 500*time.Millisecond,
			interval: 15 * time.Second, aligned: true, life: time.Second, mode: modeAligned},
		{name: "15s, one target, as a scrape becomes visible", targets: []target{{"a", 15 * time.Second, 7 * time.Second}}, at: 24 * time.Second,
			interval: 15 * time.Second, aligned: true, life: 15 * time.Second, mode: modeAligned},
		{name: "30s, one target", targets: []target{{"a", 30 * time.Second, 12 * time.Second}}, at: 20 * time.Second,
			interval: 30 * time.Second, aligned: true, life: 24 * time.Second, mode: modeAligned},
		{name: "60s, one target", targets: []target{{"a", time.Minute, 50 * time.Second}}, at: 10 * time.Second,
			interval: time.Minute, aligned: true, life: 42 * time.Second, mode: modeAligned},
		{name: "targets in step are one phase", targets: []target{{"a", 15 * time.Second, 7 * time.Second}, {"b", 15 * time.Second, 7 * time.Second}, {"c", 15 * time.Second, 7500 * time.Millisecond}}, at: 10 * time.Second,
			interval: 15 * time.Second, aligned: true, life: 14 * time.Second, mode: modeAligned},
		// Many targets at their own phases: the answer changes at each;
		// one interval from the query keeps every series within a scrape.
		{name: "15s, ten staggered targets", targets: staggered(10, 15*time.Second), at: 10 * time.Second,
			interval: 15 * time.Second, life: 15 * time.Second, mode: modeInterval},
		{name: "30s, two targets half an interval apart", targets: staggered(2, 30*time.Second), at: 10 * time.Second,
			interval: 30 * time.Second, life: 30 * time.Second, mode: modeInterval},
		{name: "1s, staggered", targets: staggered(4, time.Second), at: 10 * time.Second,
			interval: time.Second, life: time.Second, mode: modeInterval},
		{name: "maximum bound", targets: []target{{"a", time.Minute, 50 * time.Second}}, maxTTL: 30 * time.Second, at: 10 * time.Second,
			interval: time.Minute, aligned: true, life: 30 * time.Second, mode: modeAligned},
		{name: "maximum bound, staggered", targets: staggered(3, 2*time.Minute), maxTTL: time.Minute, at: 10 * time.Second,
			interval: 2 * time.Minute, life: time.Minute, mode: modeInterval},
		// The evaluation time (the probe's: t0) is 0.5s from the scrapes'
		// phase, within a tenth of the interval, yet not taken for it.
		{name: "timestamp() is the evaluation time: no phase", targets: []target{{"a", 15 * time.Second, 500 * time.Millisecond}}, evalTS: true, at: 10 * time.Second,
			interval: 15 * time.Second, life: 15 * time.Second, mode: modeInterval},
		// Unknown: the fixed TTL.
		{name: "no series", at: 10 * time.Second, life: fallback, mode: modeUnknown},
		// A metric without series beside learned ones: the interval most
		// of them are scraped at (m's here).
		{name: "a metric without series, another learned", targets: []target{{"a", 15 * time.Second, 7 * time.Second}}, first: `max(nothing)`, query: `sum(nothing)`, at: 10 * time.Second,
			interval: 15 * time.Second, aligned: true, life: 15 * time.Second, mode: modeNoSeries},
		{name: "interval longer than the probe's window", targets: []target{{"a", 10 * time.Minute, 0}}, at: 10 * time.Second,
			life: fallback, mode: modeUnknown},
		{name: "probe fails", targets: []target{{"a", 15 * time.Second, 7 * time.Second}}, fail: isProbe, at: 10 * time.Second,
			life: fallback, mode: modeUnknown},
		{name: "raw samples fail", targets: []target{{"a", 15 * time.Second, 7 * time.Second}}, fail: func(q string) bool { return isProbe(q) && !strings.Contains(q, "timestamp(") }, at: 10 * time.Second,
			life: fallback, mode: modeUnknown},
		{name: "a query without a metric name", targets: []target{{"a", 15 * time.Second, 7 * time.Second}}, query: `sum({job="node"})`, at: 10 * time.Second,
			interval: 15 * time.Second, aligned: true, life: fallback, mode: modeUnknown},
		{name: "two metrics, one not learned yet: the fixed TTL", targets: []target{{"a", 15 * time.Second, 7 * time.Second}}, query: `m / other`, at: 10 * time.Second,
			interval: 15 * time.Second, aligned: true, life: fallback, mode: modeUnknown},
		{name: "two metrics: the shorter lifetime", targets: []target{{"a", 15 * time.Second, 7 * time.Second}}, first: `max(other)`, query: `max(other) / max(m)`, at: 10 * time.Second,
			interval: 15 * time.Second, aligned: true, life: 14 * time.Second, mode: modeAligned},
		{name: "rate over a window", targets: []target{{"a", 15 * time.Second, 7 * time.Second}}, query: `sum by (instance) (rate(m{job="node"}[1m]))`, at: 10 * time.Second,
			interval: 15 * time.Second, aligned: true, life: 14 * time.Second, mode: modeAligned},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := promtest.NewEngineOver(t, scrapeStore([]string{"m", "other"}, tt.targets, t0.Add(-time.Hour), t0.Add(time.Hour)))
			var b Backend = newClient(t, srv.URL)
			if tt.fail != nil {
				b = failing{newClient(t, srv.URL), tt.fail}
			}
			if tt.evalTS {
				b = evalTimestamps{newClient(t, srv.URL)}
			}
			clk := &clock{t: t0}
			backend := fmt.Sprintf("lifetime-%d", i)
			e := New(b, Options{Auto: true, TTL: fallback, MaxTTL: tt.maxTTL, Now: clk.Now, Backend: backend})
			for _, q := range []string{`max(m)`, tt.first} {
				if q == "" {
					continue
				}
				if _, err := e.do(context.Background(), q); err != nil {
					t.Fatal(err)
				}
			}
			e.probes.Wait()
			interval, aligned := e.Learned("m")
			if interval != tt.interval || aligned != tt.aligned {
				t.Errorf("learned interval %v, aligned %v; want %v, %v", interval, aligned, tt.interval, tt.aligned)
			}
			got, err := testutil.GetGaugeMetricValue(scrapeInterval.WithLabelValues(backend, "m"))
			if tt.interval > 0 && (err != nil || got != tt.interval.Seconds()) {
				t.Errorf("promgate_query_scrape_interval_seconds = %v (%v), want %v", got, err, tt.interval.Seconds())
			}
			q := tt.query
			if q == "" {
				q = `sum(m)`
			}
			clk.Add(tt.at)
			// The lifetime given, from what promgate_query_cache_lifetime_seconds
			// observed, whatever holds the cache.
			hist := cacheLifetime.WithLabelValues(backend, tt.mode)
			before, _ := testutil.GetHistogramMetricCount(hist)
			sumBefore, _ := testutil.GetHistogramMetricValue(hist)
			if _, err := e.do(context.Background(), q); err != nil {
				t.Fatal(err)
			}
			e.probes.Wait()
			after, _ := testutil.GetHistogramMetricCount(hist)
			sumAfter, _ := testutil.GetHistogramMetricValue(hist)
			if after != before+1 {
				t.Fatalf("promgate_query_cache_lifetime_seconds{mode=%q} counted %d, want 1", tt.mode, after-before)
			}
			if life := time.Duration((sumAfter - sumBefore) * float64(time.Second)).Round(time.Millisecond); life != tt.life {
				t.Errorf("%s at t0+%v lives %v, want %v", q, tt.at, life, tt.life)
			}
		})
	}
}

// TestAutoProbesOncePerPeriod: a metric is probed once, whatever the
// queries reading it, then again after ProbeEvery, when a changed interval
// is learned; a failed relearning keeps the last interval.
func TestAutoProbesOncePerPeriod(t *testing.T) {
	st := scrapeStore([]string{"m"}, []target{{"a", 15 * time.Second, 0}}, t0.Add(-time.Hour), t0.Add(10*time.Minute))
	// From t0+10m the target is scraped every 30s.
	for ts := t0.Add(10*time.Minute + 30*time.Second); ts.Before(t0.Add(time.Hour)); ts = ts.Add(30 * time.Second) {
		st.Add(labels.FromStrings(model.MetricNameLabel, "m", "job", "node", "instance", "a"), ts.UnixMilli(), 1)
	}
	srv := promtest.NewEngineOver(t, st)
	failProbes := false
	b := failing{newClient(t, srv.URL), func(q string) bool { return failProbes && isProbe(q) }}
	clk := &clock{t: t0}
	e := New(b, Options{Auto: true, TTL: 5 * time.Second, Now: clk.Now, Backend: "probe-period"})
	probes := func() int { return probeQueries(srv) }
	step := func(d time.Duration, queries ...string) {
		t.Helper()
		clk.Add(d)
		for _, q := range queries {
			if _, err := e.do(context.Background(), q); err != nil {
				t.Fatal(err)
			}
		}
		e.probes.Wait()
	}
	step(0, `sum(m)`, `max(m)`, `sum by (instance) (rate(m[1m]))`)
	for i := 0; i < 30; i++ { // 9m30s of queries
		step(19*time.Second, `sum(m)`, `max(m)`)
	}
	if n := probes(); n != 2 {
		t.Errorf("%d probe queries within the period, want 2 (latest sample times, then one series' samples)", n)
	}
	if d, _ := e.Learned("m"); d != 15*time.Second {
		t.Fatalf("learned %v, want 15s", d)
	}
	step(5*time.Minute+30*time.Second, `sum(m)`) // t0+15m: past the period; scraped every 30s over the probe's window
	if d, _ := e.Learned("m"); d != 30*time.Second {
		t.Errorf("after ProbeEvery, learned %v, want the new 30s", d)
	}
	failProbes = true
	step(11*time.Minute, `sum(m)`)
	if d, _ := e.Learned("m"); d != 30*time.Second {
		t.Errorf("after a failed relearning, %v, want the last interval kept", d)
	}
	if n := probes(); n != 4 {
		t.Errorf("%d probe queries sent, want 4", n)
	}
}

func TestAutoErrorsAreNotCached(t *testing.T) {
	srv := promtest.NewEngineOver(t, scrapeStore([]string{"m"}, []target{{"a", 15 * time.Second, 0}}, t0.Add(-time.Hour), t0.Add(time.Hour)))
	fail := true
	b := failing{newClient(t, srv.URL), func(q string) bool { return fail && !isProbe(q) }}
	clk := &clock{t: t0}
	e := New(b, Options{Auto: true, TTL: 5 * time.Second, Now: clk.Now})
	if _, err := e.do(context.Background(), `sum(m)`); !errors.Is(err, errInjected) {
		t.Fatalf("err = %v", err)
	}
	fail = false
	r, err := e.do(context.Background(), `sum(m)`)
	if err != nil || r.Cached {
		t.Errorf("after an error: cached %v, err %v; want a fresh answer", r.Cached, err)
	}
}

// TestAutoWithoutSamples: a backend that cannot return raw samples keeps
// the fixed TTL.
func TestAutoWithoutSamples(t *testing.T) {
	clk := &clock{t: t0}
	b := &fakeBackend{}
	e := New(b, Options{Auto: true, TTL: 5 * time.Second, Now: clk.Now})
	for _, d := range []time.Duration{0, 4 * time.Second, time.Second} {
		clk.Add(d)
		if _, err := e.do(context.Background(), "m"); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.calls.Load(); n != 2 {
		t.Errorf("backend calls = %d, want 2 (5s TTL)", n)
	}
}

// hpaRun is the outcome of simulated HPAs polling through an engine.
type hpaRun struct {
	cycles   int           // 15s HPA sync periods simulated
	queries  int           // answered by the backend (probes not included)
	probes   int           // probe queries
	maxLag   time.Duration // longest a served answer lagged a fresh one, after the first cycle
	perCycle float64       // queries per cycle
	steady   float64       // queries per cycle after the first
}

// simulateHPAs runs hpas HPAs, each polling one of metrics metrics (the
// i-th HPA the i%metrics-th) every 15s at its own phase, for cycles sync
// periods, against a backend whose targets scrape each metric. It compares
// every served answer with the latest scrapes.
func simulateHPAs(t testing.TB, opts Options, targets []target, hpas, metrics, cycles int) hpaRun {
	t.Helper()
	names := make([]string, metrics)
	for i := range names {
		names[i] = fmt.Sprintf("m%d", i)
	}
	srv := promtest.NewEngineOver(t, scrapeStore(names, targets, t0.Add(-time.Hour), t0.Add(time.Duration(cycles+5)*15*time.Second)))
	byInstance := map[string]target{}
	for _, tg := range targets {
		byInstance[tg.instance] = tg
	}
	clk := &clock{t: t0}
	opts.Now = clk.Now
	e := New(newClient(t, srv.URL), opts)
	rnd := rand.New(rand.NewPCG(1, uint64(hpas)))
	type poll struct {
		at    time.Duration
		query string
	}
	var polls []poll
	for i := 0; i < hpas; i++ {
		phase := time.Duration(rnd.Int64N(int64(15*time.Second/time.Millisecond))) * time.Millisecond
		for c := 0; c < cycles; c++ {
			polls = append(polls, poll{phase + time.Duration(c)*15*time.Second, names[i%metrics]})
		}
	}
	sort.SliceStable(polls, func(i, j int) bool { return polls[i].at < polls[j].at })
	backend := opts.Backend
	start, _ := testutil.GetCounterMetricValue(queriesTotal.WithLabelValues(backend, "backend"))
	var run hpaRun
	warm := -1.0 // the counter when the first cycle ends
	for _, p := range polls {
		clk.t = t0.Add(p.at)
		if warm < 0 && p.at >= 15*time.Second {
			warm, _ = testutil.GetCounterMetricValue(queriesTotal.WithLabelValues(backend, "backend"))
		}
		served, err := e.do(context.Background(), p.query)
		if err != nil {
			t.Fatal(err)
		}
		e.probes.Wait()
		if len(served.Vector) != len(targets) {
			t.Fatalf("at t0+%v, %s answered %d series, want %d", p.at, p.query, len(served.Vector), len(targets))
		}
		for _, s := range served.Vector {
			// Values are sample times; the fresh answer is the latest
			// scrape of each target.
			tg := byInstance[string(s.Metric["instance"])]
			v, fresh := secondsTime(s.Value), latestScrape(tg, clk.t)
			if v.After(fresh) {
				t.Fatalf("at t0+%v, %s served a sample of %v, after the latest scrape %v", p.at, p.query, v, fresh)
			}
			// A served answer has been stale since the scrape after the
			// one it read. The first cycle's answers may live the fixed
			// TTL, before the interval is learned.
			if v.Before(fresh) && p.at >= 15*time.Second {
				run.maxLag = max(run.maxLag, clk.t.Sub(v.Add(tg.interval)))
			}
		}
	}
	end, _ := testutil.GetCounterMetricValue(queriesTotal.WithLabelValues(backend, "backend"))
	for _, q := range srv.Queries() {
		if isProbe(q) {
			run.probes++
		}
	}
	run.cycles = cycles
	run.queries = int(end - start) // probes are not counted there
	run.perCycle = float64(run.queries) / float64(cycles)
	run.steady = (end - warm) / float64(cycles-1)
	return run
}

// TestAutoHPAQueriesMany logs the queries per cycle of many HPAs per
// metric, where the fixed TTL sends one query per metric every 5s.
func TestAutoHPAQueriesMany(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	RegisterMetrics()
	const hpas, metrics, cycles = 400, 4, 20
	t.Logf("%d HPAs polling %d metrics every 15s, %d cycles; queries per 15s cycle", hpas, metrics, cycles)
	t.Logf("%-22s %5s | %-6s | %-6s | %s", "scrape", "floor", "fixed", "auto", "auto after the first cycle")
	for _, tc := range []struct {
		name    string
		targets []target
	}{
		{"1s, staggered", staggered(5, time.Second)},
		{"15s, one target", []target{{"a", 15 * time.Second, 7 * time.Second}}},
		{"15s, staggered", staggered(5, 15*time.Second)},
		{"30s, staggered", staggered(5, 30*time.Second)},
		{"60s, staggered", staggered(5, time.Minute)},
	} {
		s := tc.targets[0].interval
		fixed := simulateHPAs(t, Options{TTL: 5 * time.Second, Backend: "many-fixed-" + tc.name}, tc.targets, hpas, metrics, cycles)
		auto := simulateHPAs(t, Options{Auto: true, TTL: 5 * time.Second, Backend: "many-" + tc.name}, tc.targets, hpas, metrics, cycles)
		t.Logf("%-22s %5d | %6.2f | %6.2f | %6.2f", tc.name, floor(metrics, s), fixed.perCycle, auto.perCycle, auto.steady)
		if auto.steady > float64(floor(metrics, s)) {
			t.Errorf("%s: %.2f queries per cycle after the first, floor %d", tc.name, auto.steady, floor(metrics, s))
		}
		if limit := float64(floor(metrics, s)) + 3*float64(metrics)/float64(cycles); auto.perCycle > limit {
			t.Errorf("%s: %.2f queries per cycle, floor %d", tc.name, auto.perCycle, floor(metrics, s))
		}
	}
}

// latestScrape is the time of tg's latest scrape at or before at.
func latestScrape(tg target, at time.Time) time.Time {
	base := t0.Add(tg.phase)
	since := at.Sub(base)
	k := since / tg.interval
	if since < 0 && since%tg.interval != 0 {
		k--
	}
	return base.Add(k * tg.interval)
}

// floor is the fewest queries per 15s cycle that keep every answer within
// one scrape of the freshest: metrics × ⌈15s / interval⌉.
func floor(metrics int, interval time.Duration) int {
	return metrics * int((15*time.Second+interval-1)/interval)
}

// TestAutoHPAQueries: HPAs polling through the engine send at most the
// floor of queries per sync period, and no answer lags a fresh one by more
// than a scrape interval (aligned: the grace and the minimum lifetime). It
// logs the queries per cycle of the fixed 5s TTL and of auto (go test -v
// -run TestAutoHPAQueries ./pkg/query).
func TestAutoHPAQueries(t *testing.T) {
	RegisterMetrics()
	hpas, metrics, cycles := 40, 4, 40
	if testing.Short() {
		hpas, metrics, cycles = 12, 3, 12
	}
	t.Logf("%d HPAs polling %d metrics every 15s, %d cycles; queries per 15s cycle (floor: metrics × ⌈15s/interval⌉), the longest an answer lagged a fresh one", hpas, metrics, cycles)
	t.Logf("%-22s %5s | %-22s | %-40s", "scrape", "floor", "fixed --query-cache-ttl=5s", "auto: all, after the first cycle (probe queries)")
	for _, tc := range []struct {
		name    string
		targets []target
		maxLag  time.Duration
	}{
		{"1s, one target", []target{{"a", time.Second, 300 * time.Millisecond}}, 200*time.Millisecond + time.Second},
		{"1s, staggered", staggered(5, time.Second), time.Second},
		{"15s, one target", []target{{"a", 15 * time.Second, 7 * time.Second}}, 2*time.Second + time.Second},
		{"15s, staggered", staggered(5, 15*time.Second), 15 * time.Second},
		{"30s, one target", []target{{"a", 30 * time.Second, 12 * time.Second}}, 2*time.Second + time.Second},
		{"30s, staggered", staggered(5, 30*time.Second), 30 * time.Second},
		{"60s, one target", []target{{"a", time.Minute, 50 * time.Second}}, 2*time.Second + time.Second},
		{"60s, staggered", staggered(5, time.Minute), time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.targets[0].interval
			var fixed hpaRun
			if !testing.Short() {
				fixed = simulateHPAs(t, Options{TTL: 5 * time.Second, Backend: "hpa-fixed-" + tc.name}, tc.targets, hpas, metrics, cycles)
			}
			run := simulateHPAs(t, Options{Auto: true, TTL: 5 * time.Second, Backend: "hpa-" + tc.name}, tc.targets, hpas, metrics, cycles)
			t.Logf("%-22s %5d | %6.2f, lag %-12v | %6.2f, %6.2f (%d), lag %v", tc.name, floor(metrics, s), fixed.perCycle, fixed.maxLag, run.perCycle, run.steady, run.probes, run.maxLag)
			if run.steady > float64(floor(metrics, s)) {
				t.Errorf("%.2f queries per cycle after the first, floor %d", run.steady, floor(metrics, s))
			}
			// The first cycle's queries come before anything is learned
			// (the 5s TTL: up to 3 per metric).
			if limit := float64(floor(metrics, s)) + 3*float64(metrics)/float64(cycles); run.perCycle > limit {
				t.Errorf("%.2f queries per cycle, floor %d", run.perCycle, floor(metrics, s))
			}
			if run.maxLag >= tc.maxLag {
				t.Errorf("an answer lagged the fresh one by %v, want under %v", run.maxLag, tc.maxLag)
			}
			if run.probes != 2*metrics {
				t.Errorf("%d probe queries, want %d", run.probes, 2*metrics)
			}
			// A fixed TTL probes too, for the partial-window guard's
			// canaries, as often.
			if fixed.maxLag >= 5*time.Second || fixed.probes != 2*metrics {
				t.Errorf("fixed TTL: lag %v, %d probes, want %d", fixed.maxLag, fixed.probes, 2*metrics)
			}
		})
	}
}

func TestMeanSpacing(t *testing.T) {
	at := func(ms ...int64) []time.Time {
		out := make([]time.Time, len(ms))
		for i, m := range ms {
			out[i] = t0.Add(time.Duration(m) * time.Millisecond)
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		times []time.Time
		want  time.Duration
	}{
		{"none", nil, 0},
		{"one", at(0), 0},
		{"two", at(0, 15000), 15 * time.Second},
		{"jitter, whole seconds", at(0, 1998, 4006, 6000), 2 * time.Second},
		{"a missed scrape", at(0, 15000, 45000, 60000, 75000), 15 * time.Second},
		{"not whole seconds", at(0, 1500, 3000, 4500), 1500 * time.Millisecond},
		{"sub-second", at(0, 250, 500, 750, 1000), 250 * time.Millisecond},
		{"jitter, not whole seconds", at(0, 1503, 2997, 4500), 1500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := meanSpacing(tc.times); got != tc.want {
				t.Errorf("meanSpacing = %v, want %v", got, tc.want)
			}
		})
	}
}

// scrapes adds to st the samples of series ls scraped every interval at
// t0+phase+k×interval, from from to to; a sample's value is its time in
// seconds.
func scrapes(st *promtest.MemStorage, ls labels.Labels, interval, phase time.Duration, from, to time.Time) {
	ts := t0.Add(phase)
	for ts.After(from) {
		ts = ts.Add(-interval)
	}
	for ; !ts.After(to); ts = ts.Add(interval) {
		if !ts.Before(from) {
			st.Add(ls, ts.UnixMilli(), float64(ts.UnixMilli())/1000)
		}
	}
}

// probeSelectors parses the probe queries a backend received with the
// Prometheus parser and returns the matchers of their vector selectors:
// those of the latest sample times (topk/bottomk), and those of the raw
// samples (a matrix selector).
func probeSelectors(t *testing.T, queries []string) (latest, raw [][]*labels.Matcher) {
	t.Helper()
	p := parser.NewParser(parser.Options{})
	for _, q := range queries {
		if !isProbe(q) {
			continue
		}
		expr, err := p.ParseExpr(q)
		if err != nil {
			t.Fatalf("probe %q does not parse: %v", q, err)
		}
		parser.Inspect(expr, func(n parser.Node, path []parser.Node) error {
			vs, ok := n.(*parser.VectorSelector)
			if !ok {
				return nil
			}
			if len(path) > 0 {
				if _, ok := path[len(path)-1].(*parser.MatrixSelector); ok {
					raw = append(raw, vs.LabelMatchers)
					return nil
				}
			}
			latest = append(latest, vs.LabelMatchers)
			return nil
		})
	}
	return latest, raw
}

// matcherSet is the set of matchers as text, and the metric name they
// select by equality.
func matcherSet(ms []*labels.Matcher) (set map[string]bool, name string) {
	set = map[string]bool{}
	for _, m := range ms {
		set[m.String()] = true
		if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
			name = m.Value
		}
	}
	return set, name
}

// TestProbeSelectsByRuleNotRequest: a probe reads the metric's name and
// the matchers of the rule's selector, never the request's. A caller
// whose own series are scraped every minute queries first, with its
// namespace; another namespace's series of the rule are scraped every
// 15s, and its answers live at most 15s.
func TestProbeSelectsByRuleNotRequest(t *testing.T) {
	RegisterMetrics()
	const request = `namespace="attacker"`
	tests := []struct {
		name  string
		rule  string // WithRuleSelector; "" for none
		first string // the attacker's query, run first
		// want are the matchers every latest-sample-times selector of a
		// probe of each metric has, besides __name__="<metric>"
		want    []string
		metrics []string // the metrics probed (default m)
	}{
		{name: "no rule selector: the name alone", want: nil},
		{name: "rule selector with a name", rule: `m{job="node"}`, want: []string{`job="node"`}},
		{name: "rule selector with a regular expression on __name__", rule: `{__name__=~"m|other",job="node"}`, want: []string{`job="node"`}},
		{name: "regular expression on __name__ that does not match the metric: the name alone", rule: `{__name__=~"^container_.*",job="node"}`, want: nil},
		{name: "another metric's rule: the name alone", rule: `other{job="node"}`, want: nil},
		{name: "rule selector that does not parse: the name alone", rule: `m{job=`, want: nil},
		{name: "an expression is not a selector: the name alone", rule: `sum(m{job="node"})`, want: nil},
		{name: "rule selector with several matchers", rule: `{__name__=~"^m$",job="node",namespace!="",instance=~"a|b|c",pod!~"x.*"}`,
			want: []string{`job="node"`, `namespace!=""`, `instance=~"a|b|c"`, `pod!~"x.*"`}},
		{name: "rule selector without a name matcher", rule: `{job="node",namespace!=""}`, want: []string{`job="node"`, `namespace!=""`}},
		{name: "a query reading two metrics", rule: `{__name__=~"m|other",job="node"}`,
			first: `sum(m{namespace="attacker"}) / sum(other{namespace="attacker",instance!=""})`, want: []string{`job="node"`}, metrics: []string{"m", "other"}},
		{name: "a query reading two metrics, no rule selector",
			first: `sum(m{namespace="attacker"}) / sum(other{namespace="attacker",instance!=""})`, want: nil, metrics: []string{"m", "other"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &promtest.MemStorage{}
			from, to := t0.Add(-time.Hour), t0.Add(time.Hour)
			for _, m := range []string{"m", "other"} {
				// The attacker's series: every minute, latest at t0-30s;
				// the victim's: every 15s, latest at t0-8s, the newest.
				scrapes(st, labels.FromStrings(model.MetricNameLabel, m, "job", "node", "namespace", "attacker", "instance", "b"), time.Minute, 30*time.Second, from, to)
				scrapes(st, labels.FromStrings(model.MetricNameLabel, m, "job", "node", "namespace", "victim", "instance", "a"), 15*time.Second, 7*time.Second, from, to)
			}
			srv := promtest.NewEngineOver(t, st)
			clk := &clock{t: t0}
			backend := fmt.Sprintf("probe-selector-%d", i)
			e := New(newClient(t, srv.URL), Options{Auto: true, TTL: 5 * time.Second, Now: clk.Now, Backend: backend})
			ctx := context.Background()
			if tt.rule != "" {
				ctx = WithRuleSelector(ctx, tt.rule)
			}
			first := tt.first
			if first == "" {
				first = `sum(m{` + request + `})`
			}
			if _, err := e.do(ctx, first); err != nil {
				t.Fatal(err)
			}
			e.probes.Wait()
			sent := len(srvProbes(srv.Queries()))

			metrics := tt.metrics
			if metrics == nil {
				metrics = []string{"m"}
			}
			latest, raw := probeSelectors(t, srv.Queries())
			probed := map[string]int{}
			for _, ms := range latest {
				set, name := matcherSet(ms)
				probed[name]++
				want := map[string]bool{labels.MustNewMatcher(labels.MatchEqual, model.MetricNameLabel, name).String(): true}
				for _, w := range tt.want {
					want[w] = true
				}
				if !maps.Equal(set, want) {
					t.Errorf("a probe of %s selects %v, want exactly %v", name, slices.Sorted(maps.Keys(set)), slices.Sorted(maps.Keys(want)))
				}
			}
			for _, m := range metrics {
				if probed[m] != 2 { // topk(1, timestamp(sel)) or bottomk(1, timestamp(sel))
					t.Errorf("%s: %d latest-sample-times selectors, want 2 (probed: %v)", m, probed[m], probed)
				}
			}
			if len(probed) != len(metrics) {
				t.Errorf("probed %v, want %v", probed, metrics)
			}
			for _, ms := range append(latest, raw...) {
				for _, m := range ms {
					if m.Value == "attacker" {
						t.Errorf("a probe selects %s: %v", m, ms)
					}
				}
			}
			if len(raw) != len(metrics) {
				t.Errorf("%d raw-sample selectors, want %d", len(raw), len(metrics))
			}
			for _, m := range metrics {
				if d, _ := e.Learned(m); d != 15*time.Second {
					t.Errorf("learned %v for %s, want 15s (the newest series of the rule, the victim's)", d, m)
				}
			}

			// The victim's answers live at most its interval.
			clk.Add(10 * time.Second)
			q := `sum(m{namespace="victim"})`
			for _, d := range []time.Duration{0, 15*time.Second + time.Millisecond} {
				clk.Add(d)
				r, err := e.do(WithRuleSelector(context.Background(), `m{job="node"}`), q)
				if err != nil {
					t.Fatal(err)
				}
				e.probes.Wait()
				if r.Cached {
					t.Errorf("%s served from the cache %v after it was answered, want a lifetime of at most 15s", q, d)
				}
			}
			if n := len(srvProbes(srv.Queries())); n != sent {
				t.Errorf("%d probe queries after the second query, want the first's %d", n, sent)
			}
		})
	}
}

// srvProbes returns the probe queries of queries.
func srvProbes(queries []string) []string {
	var out []string
	for _, q := range queries {
		if isProbe(q) {
			out = append(out, q)
		}
	}
	return out
}

// probeBackend answers every query with no series. It records the probes'
// latest-sample-times queries, and holds them until release is closed
// when it is not nil.
type probeBackend struct {
	mu      sync.Mutex
	probes  []string
	release chan struct{}
}

func (b *probeBackend) Query(ctx context.Context, q string, _ time.Time) (model.Vector, error) {
	if !strings.HasPrefix(q, "topk(") {
		return nil, nil
	}
	b.mu.Lock()
	b.probes = append(b.probes, q)
	b.mu.Unlock()
	if b.release != nil {
		select {
		case <-b.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return nil, nil
}

func (b *probeBackend) QuerySamples(context.Context, string, time.Time) (model.Matrix, error) {
	return nil, nil
}

// probed returns the metrics probed so far, from the probes' selectors.
func (b *probeBackend) probed(t *testing.T) []string {
	t.Helper()
	b.mu.Lock()
	latest, _ := probeSelectors(t, b.probes)
	b.mu.Unlock()
	seen := map[string]bool{}
	for _, ms := range latest {
		_, name := matcherSet(ms)
		seen[name] = true
	}
	return slices.Sorted(maps.Keys(seen))
}

// TestLearnedMetricsAreBounded: the metrics an engine remembers, and
// those it is probing, are bounded in number and in the bytes of their
// names; past the bounds, new metrics are not probed (their results live
// the fixed TTL), and known ones are still probed again.
func TestLearnedMetricsAreBounded(t *testing.T) {
	long := strings.Repeat("x", 40)
	tests := []struct {
		name           string
		names, bytes   int      // the bounds
		queries        []string // in order
		probed         []string // the metrics probed
		relearn        string   // a known metric, probed again after ProbeEvery
		relearnRefused string   // a new metric, still not probed then
	}{
		{name: "count", names: 3, bytes: 1 << 20, queries: []string{"a", "b", "c", "d", "sum(e)", "a / f"},
			probed: []string{"a", "b", "c"}, relearn: "b", relearnRefused: "d"},
		{name: "bytes", names: 100, bytes: 50, queries: []string{"a", long, "b" + long, "c", "d"},
			probed: []string{"a", "c", "d", long}, relearn: long, relearnRefused: "b" + long},
		{name: "a name larger than the budget", names: 100, bytes: 10, queries: []string{long, "a"},
			probed: []string{"a"}, relearn: "a", relearnRefused: long},
		// Regular expressions on __name__ and queries that do not parse
		// name no metric.
		{name: "no name", names: 100, bytes: 100, queries: []string{`{__name__=~"a|b"}`, `sum({__name__="c"} or {job="x"})`, `sum(d) by (`, `e{`},
			probed: []string{"c"}, relearn: "c"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &probeBackend{}
			clk := &clock{t: t0}
			e := New(b, Options{Auto: true, TTL: 5 * time.Second, Now: clk.Now, Backend: fmt.Sprintf("bounded-%d", i)})
			setLearnerBounds(e, tt.names, tt.bytes)
			for _, q := range tt.queries {
				_, _ = e.do(context.Background(), q)
				e.probes.Wait()
			}
			if got := b.probed(t); !slices.Equal(got, tt.probed) {
				t.Errorf("probed %q, want %q", got, tt.probed)
			}
			checkLearnerBounds(t, e, tt.names, tt.bytes)
			b.probes = nil
			clk.Add(DefaultProbeEvery)
			for _, q := range []string{tt.relearn, tt.relearnRefused} {
				if q != "" {
					_, _ = e.do(context.Background(), q)
					e.probes.Wait()
				}
			}
			if got := b.probed(t); !slices.Equal(got, []string{tt.relearn}) {
				t.Errorf("after ProbeEvery, probed %q, want %q", got, tt.relearn)
			}
			checkLearnerBounds(t, e, tt.names, tt.bytes)
		})
	}
}

// TestProbesInFlightAreBounded: metrics being probed for the first time
// count against the bound while their probes run.
func TestProbesInFlightAreBounded(t *testing.T) {
	b := &probeBackend{release: make(chan struct{})}
	e := New(b, Options{Auto: true, TTL: 5 * time.Second, MaxConcurrent: 64, Backend: "bounded-in-flight"})
	const bound = 3
	setLearnerBounds(e, bound, 1<<20)
	for i := 0; i < 20; i++ {
		if _, err := e.do(context.Background(), fmt.Sprintf("m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	e.learner.mu.Lock()
	probing := len(e.learner.probing)
	e.learner.mu.Unlock()
	close(b.release)
	e.probes.Wait()
	if probing > bound {
		t.Errorf("%d metrics probed at once, want at most %d", probing, bound)
	}
	if got := b.probed(t); len(got) != bound {
		t.Errorf("probed %q, want %d metrics", got, bound)
	}
	checkLearnerBounds(t, e, bound, 1<<20)
}

// setLearnerBounds bounds the metrics e learns to names of them and bytes
// of their names.
func setLearnerBounds(e *Engine, names, bytes int) {
	e.learner.maxNames, e.learner.maxBytes = names, bytes
}

// checkLearnerBounds checks that e's learner keeps within names metrics
// and bytes of their names, and that it counts those bytes right.
func checkLearnerBounds(t *testing.T, e *Engine, names, bytes int) {
	t.Helper()
	l := &e.learner
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for name, s := range l.metrics {
		n += len(name) + s.canaryBytes()
	}
	if len(l.metrics) > names || n > bytes || n != l.bytes {
		t.Errorf("%d metrics, %d bytes of names and canaries (counted %d); bounds %d, %d", len(l.metrics), n, l.bytes, names, bytes)
	}
	for name := range l.probing {
		if _, ok := l.metrics[name]; !ok {
			t.Errorf("%s probed but not counted", name)
		}
	}
}

// TestProbeSelector: the selector a probe reads, as sent.
func TestProbeSelector(t *testing.T) {
	for _, tc := range []struct {
		name, rule string
		want       string
	}{
		{"m", "", `m`},
		{"m", `m{job="node"}`, `m{job="node"}`},
		{"m", `{__name__=~"m|n",job="node"}`, `m{job="node"}`},
		{"m", `{__name__=~"n.*",job="node"}`, `m`},
		{"m", `{__name__!="n",__name__=~".+",job="node"}`, `m{job="node"}`},
		{"m", `{__name__!="m",job="node"}`, `m`},
		{"m", `{job="node",namespace!=""}`, `m{job="node",namespace!=""}`},
		{"m", `m{job=`, `m`},
		{"m", `rate(m[1m])`, `m`},
		{"m", `{job="a\"b",path=~"/x\\.y"}`, `m{job="a\"b",path=~"/x\\.y"}`},
		{"container_cpu_usage_seconds_total", `{__name__=~"^container_.*",container!="POD",namespace!="",pod!=""}`,
			`container_cpu_usage_seconds_total{container!="POD",namespace!="",pod!=""}`},
		{"my.metric", `{"my.metric",job="node"}`, `{__name__="my.metric",job="node"}`},
	} {
		t.Run(tc.name+" "+tc.rule, func(t *testing.T) {
			got := probeSelector(tc.name, tc.rule).String()
			if got != tc.want {
				t.Errorf("probeSelector(%q, %q) = %s, want %s", tc.name, tc.rule, got, tc.want)
			}
			if _, err := parser.NewParser(parser.Options{}).ParseExpr(got); err != nil {
				t.Errorf("%s does not parse: %v", got, err)
			}
		})
	}
}

// TestCanaries: a probe leaves the newest and the oldest series of the
// metric as its canaries, within the learner's bound; a canary said gone
// makes the next query probe again, once MinTTL has passed.
func TestCanaries(t *testing.T) {
	st := scrapeStore([]string{"m"}, staggered(3, 15*time.Second), t0.Add(-time.Hour), t0.Add(time.Hour))
	srv := promtest.NewEngineOver(t, st)
	probes := func() int { return probeQueries(srv) }
	clk := &clock{t: t0}
	e := New(newClient(t, srv.URL), Options{Auto: true, TTL: 5 * time.Second, Now: clk.Now, Backend: "canaries"})
	if c := e.Canaries("m"); c != nil {
		t.Fatalf("canaries %v before any probe", c)
	}
	if _, err := e.do(context.Background(), `sum(rate(m[1m]))`); err != nil {
		t.Fatal(err)
	}
	e.probes.Wait()
	c := e.Canaries("m")
	if len(c) != 2 || c[0].Equal(c[1]) {
		t.Fatalf("canaries %v, want two series", c)
	}
	for _, m := range c {
		if m["job"] != "node" || m["instance"] == "" || m[model.MetricNameLabel] != "" {
			t.Errorf("canary %v: want the series' labels without its name", m)
		}
	}
	checkLearnerBounds(t, e, maxLearned, maxLearnedBytes)
	n := probes()
	e.CanaryGone("m")
	if got := e.Canaries("m"); len(got) != 2 {
		t.Errorf("canaries %v after one is gone, want them kept until the next probe", got)
	}
	clk.Add(e.opts.MinTTL)
	if _, err := e.do(context.Background(), `sum(rate(m[2m]))`); err != nil {
		t.Fatal(err)
	}
	e.probes.Wait()
	if probes() != n+2 {
		t.Errorf("%d probe queries after a canary is gone, want 2 more than %d", probes(), n)
	}
	checkLearnerBounds(t, e, maxLearned, maxLearnedBytes)

	// CanariesNow probes a metric not known yet and waits for it; with a
	// context done already, it waits for nothing.
	e3 := New(newClient(t, srv.URL), Options{TTL: 5 * time.Second, Now: clk.Now, Backend: "canaries-now"})
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if c := e3.CanariesNow(done, "m", `{job="node"}`); c != nil {
		t.Errorf("canaries %v with a context done", c)
	}
	e3.probes.Wait()
	e4 := New(newClient(t, srv.URL), Options{TTL: 5 * time.Second, Now: clk.Now, Backend: "canaries-now-2"})
	if c := e4.CanariesNow(context.Background(), "m", `{job="node"}`); len(c) != 2 {
		t.Errorf("CanariesNow of a metric not known: %v, want two series", c)
	}

	// Canaries that do not fit the bound are not kept.
	e2 := New(newClient(t, srv.URL), Options{Auto: true, TTL: 5 * time.Second, Now: clk.Now, Backend: "canaries-bounded"})
	setLearnerBounds(e2, 10, 40)
	if _, err := e2.do(context.Background(), `sum(rate(m[1m]))`); err != nil {
		t.Fatal(err)
	}
	e2.probes.Wait()
	if d, _ := e2.Learned("m"); d != 15*time.Second || e2.Canaries("m") != nil {
		t.Errorf("learned %v, canaries %v: want the interval and no canaries past the bound", d, e2.Canaries("m"))
	}
	checkLearnerBounds(t, e2, 10, 40)
}

// TestProbeWaitAndProber: a request waits for a metric's first probe at
// most ProbeWait (and half its own time); the probe goes on in the
// background on the Prober, past the request's timeout, and its canaries
// serve the next request.
func TestProbeWaitAndProber(t *testing.T) {
	st := scrapeStore([]string{"m"}, staggered(3, 15*time.Second), t0.Add(-time.Hour), t0.Add(time.Hour))
	srv := promtest.NewEngineOver(t, st)
	release := make(chan struct{})
	slow := &slowProber{LimitedClient: newClient(t, srv.URL), release: release}
	clk := &clock{t: t0}
	e := New(&probeBackend{}, Options{TTL: 5 * time.Second, Now: clk.Now, Backend: "prober", Timeout: time.Second,
		Prober: slow, ProbeTimeout: time.Minute, ProbeWait: 50 * time.Millisecond})
	start := time.Now()
	if c := e.CanariesNow(context.Background(), "m", `{job="node"}`); c != nil {
		t.Errorf("canaries %v while the probe is held", c)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("waited %v for the probe, want about ProbeWait (50ms)", d)
	}
	// With less time left, half of it.
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Millisecond)
	defer cancel()
	start = time.Now()
	e.CanariesNow(ctx, "m", `{job="node"}`)
	if d := time.Since(start); d > 35*time.Millisecond {
		t.Errorf("waited %v with 40ms left, want about 20ms", d)
	}
	time.Sleep(1500 * time.Millisecond) // past the engine's query Timeout: the probe is still running
	close(release)
	e.probes.Wait()
	if c := e.CanariesNow(context.Background(), "m", `{job="node"}`); len(c) != 2 {
		t.Errorf("canaries %v after the probe, want two series from the Prober", c)
	}
}

// slowProber holds the probes' latest-sample queries until release.
type slowProber struct {
	*prom.LimitedClient
	release chan struct{}
}

func (s *slowProber) Query(ctx context.Context, q string, ts time.Time) (model.Vector, error) {
	if strings.HasPrefix(q, "topk(") {
		select {
		case <-s.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.LimitedClient.Query(ctx, q, ts)
}

// indexBackend answers the probes' label-values question with values, and
// records the probes' selectors.
type indexBackend struct {
	probeBackend
	values []string
	err    error
	asked  []string // match[] of the label-values calls
}

func (b *indexBackend) LabelValues(_ context.Context, label, match string, _, _ time.Time) ([]string, error) {
	if label != "instance" {
		return nil, fmt.Errorf("label %q", label)
	}
	b.asked = append(b.asked, match)
	return slices.Clone(b.values), b.err
}

// TestProbeFewTargets: a probe reads at most four of a metric's scrape
// targets, taken from the backend's index evenly across its sorted values;
// the whole metric when it has few targets, when the rule names its
// targets, or when the backend has no index or it fails.
func TestProbeFewTargets(t *testing.T) {
	many := make([]string, 30)
	for i := range many {
		many[i] = fmt.Sprintf("10.0.0.%d:9100", i)
	}
	sel := probeSelector("m", `{job="node"}`)
	for _, tc := range []struct {
		name   string
		b      Backend
		sel    *parser.VectorSelector
		want   string
		nAsked int
	}{
		{"30 targets: four of them", &indexBackend{values: many}, sel,
			`m{instance=~"10\\.0\\.0\\.0:9100|10\\.0\\.0\\.18:9100|10\\.0\\.0\\.27:9100|10\\.0\\.0\\.9:9100",job="node"}`, 1},
		{"four targets: all", &indexBackend{values: many[:4]}, sel, `m{job="node"}`, 1},
		{"the index fails", &indexBackend{values: many, err: errors.New("404")}, sel, `m{job="node"}`, 1},
		{"the rule names its targets", &indexBackend{values: many}, probeSelector("m", `{instance="a"}`), `m{instance="a"}`, 0},
		{"no index", &probeBackend{}, sel, `m{job="node"}`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := fewTargets(context.Background(), tc.b, tc.sel, time.Minute, t0)
			// Compare on the parsed selector: matchers sorted by name.
			parsed, err := promql.ParseSelector(got.String())
			if err != nil {
				t.Fatal(err)
			}
			slices.SortFunc(parsed, func(a, b *labels.Matcher) int { return strings.Compare(a.Name, b.Name) })
			var ms []string
			for _, m := range parsed {
				if m.Name != model.MetricNameLabel {
					ms = append(ms, m.String())
				}
			}
			if s := "m{" + strings.Join(ms, ",") + "}"; s != tc.want {
				t.Errorf("probe selector %s, want %s", s, tc.want)
			}
			if ib, ok := tc.b.(*indexBackend); ok && len(ib.asked) != tc.nAsked {
				t.Errorf("index asked %d times (%q), want %d", len(ib.asked), ib.asked, tc.nAsked)
			}
		})
	}
}

// TestNoSeriesProbedAgain: a metric the probe found no series of is
// probed again when an answer reading it holds a series (at most once per
// MaxTTL), so that its first series get their own interval soon; while its
// answers are empty, only after ProbeEvery.
func TestNoSeriesProbedAgain(t *testing.T) {
	RegisterMetrics()
	srv := promtest.NewEngineOver(t, scrapeStore([]string{"m"}, []target{{"a", 15 * time.Second, 7 * time.Second}}, t0.Add(-time.Hour), t0.Add(time.Hour)))
	clk := &clock{t: t0}
	const backend = "no-series"
	e := New(newClient(t, srv.URL), Options{Auto: true, TTL: 5 * time.Second, MaxTTL: time.Minute, ProbeEvery: 10 * time.Minute, Now: clk.Now, Backend: backend})
	probes := func() float64 {
		v, _ := testutil.GetCounterMetricValue(probesTotal.WithLabelValues(backend, "unknown"))
		return v
	}
	steps := []struct {
		after time.Duration
		query string // reads "nothing", which has no series
		want  float64
		why   string
	}{
		{0, `max(nothing)`, 1, "the first answer probes"},
		{30 * time.Second, `sum(nothing)`, 1, "empty answers within MaxTTL"},
		{time.Minute, `count(nothing)`, 1, "empty answers after MaxTTL"},
		{time.Minute, `min(nothing) or vector(1)`, 2, "an answer with a series after MaxTTL"},
		{30 * time.Second, `max(nothing) or vector(2)`, 2, "an answer with a series within MaxTTL of the last probe"},
		{time.Minute, `sum(nothing) or vector(3)`, 3, "an answer with a series after MaxTTL again"},
		{5 * time.Minute, `avg(nothing)`, 3, "empty answers within ProbeEvery"},
		{6 * time.Minute, `stddev(nothing)`, 4, "empty answers after ProbeEvery"},
	}
	for _, s := range steps {
		clk.Add(s.after)
		if _, err := e.do(context.Background(), s.query); err != nil {
			t.Fatal(err)
		}
		e.probes.Wait()
		if got := probes(); got != s.want {
			t.Errorf("%s (%s): %v probes, want %v", s.why, s.query, got, s.want)
		}
	}
}

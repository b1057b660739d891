package provider

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/promgate/promgate/pkg/budget"
	"github.com/promgate/promgate/pkg/internal/promtest"
	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/promql"
)

// canaryData is scraped every 15s at 10 requests/s per pod; sample i is
// at 15*i seconds. The backend is frozen from 300s to 360s for every
// series but those of the "other" job (a second target set, not frozen):
//   - a, b: steady but for the freeze;
//   - late: a pod that starts at 450s;
//   - solo: scraped by another target, which missed the scrapes 300s-360s
//     alone (the freeze is not the backend's there).
const canaryData = `
load 15s
	http_requests_total{pod="a"}              0+150x19 _x5 3750+150x20
	http_requests_total{pod="b"}              0+150x19 _x5 3750+150x20
	http_requests_total{pod="late"}           _x30 4500+150x15
	http_requests_total{pod="c", job="other"} 0+150x45
	http_requests_total{pod="d", job="other"} 0+150x45
`

// canaryQuerier is a backend whose canaries the test sets.
type canaryQuerier struct {
	*prom.Client
	mu       sync.Mutex
	canaries map[string][]model.Metric
	gone     []string
}

func (c *canaryQuerier) CanariesNow(_ context.Context, metric, _ string) []model.Metric {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.canaries[metric]
}

func (c *canaryQuerier) CanaryGone(metric string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gone = append(c.gone, metric)
}

func canaryRunner(t *testing.T, canaries ...model.Metric) (*Runner, *canaryQuerier, *promtest.Engine) {
	t.Helper()
	e := promtest.NewEngine(t, canaryData)
	client, err := prom.New(prom.Options{Name: "default", URL: e.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c := &canaryQuerier{Client: client, canaries: map[string][]model.Metric{"http_requests_total": canaries}}
	return &Runner{Backends: Single(c), Budget: budget.New(1 << 20), Windows: GuardCanary}, c, e
}

func perPodQuery(t *testing.T) Query {
	t.Helper()
	const text = `sum by (pod) (rate(http_requests_total[1m]))`
	expr, err := promql.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	return Query{API: "custom", Metric: "http_requests_per_second", Backend: "default", Field: "rules[0].metricsQuery",
		Query: promql.Query{Text: text, Expr: expr, Checked: true}}
}

func byPod(vec model.Vector) map[string]float64 {
	out := map[string]float64{}
	for _, s := range vec {
		out[string(s.Metric["pod"])] = float64(s.Value)
	}
	return out
}

// TestCanaryGuard runs the canary guard over Prometheus' engine: it serves
// what the strict guard serves after a freeze of the backend, and new
// series once they have been in the answers for the query's window, while
// it sends the strict query only when its checks disagree.
func TestCanaryGuard(t *testing.T) {
	steady := []model.Metric{{"pod": "a"}, {"pod": "b"}}
	type step struct {
		at     time.Duration
		served map[string]float64 // nil: a 503 saying the backend has a gap
		strict bool               // the strict query was sent
		seed   bool               // the query a window earlier was sent
	}
	tests := []struct {
		name     string
		canaries []model.Metric
		steps    []step
	}{
		{
			name: "a freeze of the backend, then a new pod", canaries: steady,
			steps: []step{
				{at: 240, served: map[string]float64{"a": 10, "b": 10, "c": 10, "d": 10}, seed: true},
				{at: 255, served: map[string]float64{"a": 10, "b": 10, "c": 10, "d": 10}},
				{at: 300, served: map[string]float64{"a": 10, "b": 10, "c": 10, "d": 10}},
				// The last samples of a and b are 25s old: both checks fail.
				{at: 310, served: nil},
				// Unobserved for longer than the window: seeded again.
				{at: 390, served: nil, seed: true},
				{at: 420, served: nil},
				// The windows of a and b are full again; they had samples
				// before the freeze, so they are not new.
				{at: 435, served: map[string]float64{"a": 10, "b": 10, "c": 10, "d": 10}},
				// late is in the answers from 465s (two samples) and served a
				// window later.
				{at: 465, served: map[string]float64{"a": 10, "b": 10, "c": 10, "d": 10}},
				{at: 510, served: map[string]float64{"a": 10, "b": 10, "c": 10, "d": 10}},
				{at: 525, served: map[string]float64{"a": 10, "b": 10, "c": 10, "d": 10, "late": 10}},
			},
		},
		{
			name: "one target's gap: the checks disagree and the strict query decides", canaries: []model.Metric{{"pod": "a"}, {"pod": "c", "job": "other"}},
			steps: []step{
				{at: 240, served: map[string]float64{"a": 10, "b": 10, "c": 10, "d": 10}, seed: true},
				{at: 390, served: map[string]float64{"c": 10, "d": 10}, strict: true, seed: true},
				{at: 435, served: map[string]float64{"a": 10, "b": 10, "c": 10, "d": 10}},
			},
		},
		{
			name: "a canary gone: the other decides", canaries: []model.Metric{{"pod": "gone"}, {"pod": "c", "job": "other"}},
			steps: []step{
				{at: 240, served: map[string]float64{"a": 10, "b": 10, "c": 10, "d": 10}, seed: true},
				{at: 255, served: map[string]float64{"a": 10, "b": 10, "c": 10, "d": 10}},
			},
		},
		{
			name: "every canary gone: the strict query decides", canaries: []model.Metric{{"pod": "gone"}},
			steps: []step{
				{at: 390, served: map[string]float64{"c": 10, "d": 10}, strict: true, seed: true},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, c, e := canaryRunner(t, tc.canaries...)
			q := perPodQuery(t)
			strict, seedText := r.Text(q), r.guardOf(q.Query, q.Field).seed
			for _, st := range tc.steps {
				e.Reset()
				ans, err := r.Run(context.Background(), q, time.Unix(0, 0).Add(st.at*time.Second))
				sent := e.Queries()
				var sentStrict, sentSeed bool
				for _, s := range sent {
					sentStrict = sentStrict || s == strict
					sentSeed = sentSeed || s == seedText
				}
				if sentStrict != st.strict || sentSeed != st.seed {
					t.Errorf("at %ds: strict query sent %v, seed %v; want %v, %v; sent %q", st.at, sentStrict, sentSeed, st.strict, st.seed, sent)
				}
				if st.served == nil {
					if !apierrors.IsServiceUnavailable(err) || !strings.Contains(err.Error(), `backend "default" has a gap`) {
						t.Errorf("at %ds: %v, %v; want a 503 saying the backend has a gap", st.at, byPod(ans.Vector), err)
					}
					// The canaries are learned again (the same in an outage;
					// live ones where a backend still answers for deleted
					// series, as VictoriaMetrics does for a while).
					if c.mu.Lock(); len(c.gone) == 0 {
						t.Errorf("at %ds: a gap, and the engine was not told to learn the canaries again", st.at)
					}
					c.mu.Unlock()
					continue
				}
				if err != nil {
					t.Fatalf("at %ds: %v", st.at, err)
				}
				if got := byPod(ans.Vector); !sameFloats(got, st.served) {
					t.Errorf("at %ds: served %v, want %v", st.at, got, st.served)
				}
				for _, s := range ans.Vector {
					if _, ok := s.Metric[promql.CheckLabel]; ok {
						t.Errorf("at %ds: a check's sample is served: %v", st.at, s)
					}
				}
			}
			if tc.name == "a canary gone: the other decides" && len(c.gone) == 0 {
				t.Error("the engine was not told that a canary is gone")
			}
		})
	}
}

// TestCanaryWithheld: a new series the canary guard leaves out is one the
// providers say is withheld (a 503), not missing (a 404).
func TestCanaryWithheld(t *testing.T) {
	r, _, _ := canaryRunner(t, model.Metric{"pod": "a"}, model.Metric{"pod": "b"})
	q := perPodQuery(t)
	for _, at := range []time.Duration{435, 465} {
		if _, err := r.Run(context.Background(), q, time.Unix(0, 0).Add(at*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	ts := time.Unix(465, 0)
	if !r.Withheld(context.Background(), q, ts, func(s *model.Sample) bool { return s.Metric["pod"] == "late" }) {
		t.Error("late is not said to be withheld")
	}
	if r.Withheld(context.Background(), q, ts, func(s *model.Sample) bool { return s.Metric["pod"] == "nope" }) {
		t.Error("a pod without series is said to be withheld")
	}
}

func sameFloats(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range b {
		if w, ok := a[k]; !ok || w-v > 1e-9 || v-w > 1e-9 {
			return false
		}
	}
	return true
}

// TestPlanCanary: explain shows the query with its checks when the
// canaries are known, and the strict query when not, and says so.
func TestPlanCanary(t *testing.T) {
	r, c, _ := canaryRunner(t, model.Metric{"pod": "a"}, model.Metric{"pod": "b"})
	q := perPodQuery(t)
	p := r.Plan(q)
	if !strings.HasPrefix(p.Sent, q.Query.Text+" or ") || !strings.Contains(p.Sent, promql.CheckLabel) {
		t.Errorf("sent %q, want the query with its checks", p.Sent)
	}
	if !strings.Contains(p.Guard, "checked on one or two series per metric") || !strings.Contains(p.Guard, "1m0s") {
		t.Errorf("guard %q", p.Guard)
	}
	c.canaries = nil
	if p := r.Plan(q); p.Sent != r.Text(q) {
		t.Errorf("without canaries, sent %q, want the strict query", p.Sent)
	}
}

// TestCanaryEstablish: a series the strict query served while the checks
// disagreed is not held back as new once they agree.
func TestCanaryEstablish(t *testing.T) {
	r, _, _ := canaryRunner(t, model.Metric{"pod": "a"})
	q := perPodQuery(t)
	g := r.guardOf(q.Query, q.Field)
	h := r.history(q)
	late := model.Metric{"pod": "late"}
	t0 := time.Unix(465, 0)
	h.mu.Lock()
	h.update(t0, model.Vector{{Metric: late, Timestamp: model.TimeFromUnixNano(t0.UnixNano())}}, nil, g.lookback, false, nil)
	h.mu.Unlock()
	t1 := time.Unix(510, 0)
	r.establish(q, g, model.Vector{{Metric: late, Timestamp: model.TimeFromUnixNano(t1.UnixNano())}})
	h.mu.Lock()
	out := h.update(time.Unix(515, 0), model.Vector{{Metric: late}}, nil, g.lookback, false, nil)
	h.mu.Unlock()
	if len(out) != 1 {
		t.Errorf("the series the strict query served at 510s is held back at 515s as new")
	}
}

// TestCanaryFamily: a new text of a query family (a shared query that
// namespaces or objects joined) starts from the histories of the family's
// recent texts: when they saw every series of its answer, the backend is
// not asked which are new; when one is unknown to all of them, it is, and
// a new series is held back as in any history.
func TestCanaryFamily(t *testing.T) {
	query := func(pods, family string) Query {
		text := `sum by (pod) (rate(http_requests_total{pod=~"` + pods + `"}[1m]))`
		expr, err := promql.Parse(text)
		if err != nil {
			t.Fatal(err)
		}
		return Query{API: "custom", Metric: "http_requests_per_second", Backend: "default", Field: "rules[0].metricsQuery",
			Query: promql.Query{Text: text, Expr: expr, Checked: true}, Family: family}
	}
	r, _, e := canaryRunner(t, model.Metric{"pod": "c", "job": "other"}, model.Metric{"pod": "d", "job": "other"})
	for _, st := range []struct {
		at     time.Duration
		q      Query
		seed   bool
		served map[string]float64
	}{
		{240, query("a|b", "f"), true, map[string]float64{"a": 10, "b": 10}},
		{241, query("c|d", "f"), true, map[string]float64{"c": 10, "d": 10}}, // c, d unknown to the family
		{255, query("a|b|c|d", "f"), false, map[string]float64{"a": 10, "b": 10, "c": 10, "d": 10}},
		{256, query("d|c|b|a", ""), true, map[string]float64{"a": 10, "b": 10, "c": 10, "d": 10}}, // no family
		{256, query("a|c|d", "g"), true, map[string]float64{"a": 10, "c": 10, "d": 10}},           // another family
		{480, query("c|late", "f"), true, map[string]float64{"c": 10}},                            // the family's texts are stale
		{490, query("c|d|late", "f"), true, map[string]float64{"c": 10, "d": 10}},                 // d unknown to the fresh texts
		{495, query("d|late", "f"), false, map[string]float64{"d": 10}},                           // late still new
		{545, query("d|late", "f"), false, map[string]float64{"d": 10, "late": 10}},               // a window after the family first saw it
	} {
		e.Reset()
		ans, err := r.Run(context.Background(), st.q, time.Unix(0, 0).Add(st.at*time.Second))
		if err != nil {
			t.Fatalf("%s at %ds: %v", st.q.Query.Text, st.at, err)
		}
		seedText := r.guardOf(st.q.Query, st.q.Field).seed
		seed := false
		for _, s := range e.Queries() {
			seed = seed || s == seedText
		}
		if seed != st.seed {
			t.Errorf("%s (family %q) at %ds: seed sent %v, want %v", st.q.Query.Text, st.q.Family, st.at, seed, st.seed)
		}
		if got := byPod(ans.Vector); !sameFloats(got, st.served) {
			t.Errorf("%s (family %q) at %ds: served %v, want %v", st.q.Query.Text, st.q.Family, st.at, got, st.served)
		}
	}
}

// failingSeed is a canary backend whose next seed query (which series of
// an answer are not new) fails.
type failingSeed struct {
	*canaryQuerier
	fail atomic.Bool
}

func (f *failingSeed) Query(ctx context.Context, query string, ts time.Time) (model.Vector, error) {
	if strings.Contains(query, "offset 1m) * 0) + 1)") && f.fail.CompareAndSwap(true, false) {
		return nil, apierrors.NewServiceUnavailable("seed failed")
	}
	return f.canaryQuerier.Query(ctx, query, ts)
}

// A new text of a family is judged against what the family saw, but
// until its own answer is judged it stays unknown: a request that finds
// it half-judged (the seed failed, or is still running in another
// request) judges it again rather than taking the family's series for
// its own and holding back the rest as new. (The scale run's 5,000 HPAs
// held back every pod of every text that joined a family so.)
func TestCanaryFamilyNotPremature(t *testing.T) {
	query := func(pods string) Query {
		text := `sum by (pod) (rate(http_requests_total{pod=~"` + pods + `"}[1m]))`
		expr, err := promql.Parse(text)
		if err != nil {
			t.Fatal(err)
		}
		return Query{API: "custom", Metric: "http_requests_per_second", Backend: "default", Field: "rules[0].metricsQuery",
			Query: promql.Query{Text: text, Expr: expr, Checked: true}, Family: "f"}
	}
	r, c, _ := canaryRunner(t, model.Metric{"pod": "c", "job": "other"}, model.Metric{"pod": "d", "job": "other"})
	f := &failingSeed{canaryQuerier: c}
	r.Backends = Single(f)
	at := time.Unix(240, 0)
	if ans, err := r.Run(context.Background(), query("a"), at); err != nil || !sameFloats(byPod(ans.Vector), map[string]float64{"a": 10}) {
		t.Fatalf("a: %v %v", byPod(ans.Vector), err)
	}
	f.fail.Store(true)
	if _, err := r.Run(context.Background(), query("b"), at); err == nil {
		t.Fatal("b: want the seed's error")
	}
	ans, err := r.Run(context.Background(), query("b"), at)
	if err != nil || !sameFloats(byPod(ans.Vector), map[string]float64{"b": 10}) {
		t.Errorf("b again: served %v, %v; want b (steady for minutes)", byPod(ans.Vector), err)
	}
}

// overlapQuerier tells whether the seed of a query arrived while the query
// itself was in flight.
type overlapQuerier struct {
	*canaryQuerier
	seed    string
	arrived chan struct{}
	once    sync.Once
	seeds   atomic.Int32
	beside  atomic.Bool
}

func (o *overlapQuerier) Query(ctx context.Context, text string, ts time.Time) (model.Vector, error) {
	switch {
	case text == o.seed:
		o.seeds.Add(1)
		o.once.Do(func() { close(o.arrived) })
	case strings.Contains(text, promql.CheckLabel):
		select {
		case <-o.arrived:
			o.beside.Store(true)
		case <-time.After(2 * time.Second):
		}
	}
	return o.canaryQuerier.Query(ctx, text, ts)
}

// TestCanarySeedBeside: a text without history sends its seed beside its
// query, so that its first request waits for the longer of the two and
// not their sum; a text with a recent history sends none.
func TestCanarySeedBeside(t *testing.T) {
	r, c, _ := canaryRunner(t, model.Metric{"pod": "a"}, model.Metric{"pod": "b"})
	q := perPodQuery(t)
	o := &overlapQuerier{canaryQuerier: c, seed: r.guardOf(q.Query, q.Field).seed, arrived: make(chan struct{})}
	r.Backends = Single(o)
	vec, err := r.Run(context.Background(), q, time.Unix(240, 0))
	if err != nil {
		t.Fatal(err)
	}
	if !o.beside.Load() {
		t.Error("the seed was not sent while the query was in flight")
	}
	if got, want := byPod(vec.Vector), map[string]float64{"a": 10, "b": 10, "c": 10, "d": 10}; !sameFloats(got, want) {
		t.Errorf("served %v, want %v", got, want)
	}
	if _, err := r.Run(context.Background(), q, time.Unix(255, 0)); err != nil {
		t.Fatal(err)
	}
	if n := o.seeds.Load(); n != 1 {
		t.Errorf("%d seeds sent, want 1 (none once the text has a history)", n)
	}
}

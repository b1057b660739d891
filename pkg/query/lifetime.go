package query

import (
	"context"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"k8s.io/klog/v2"

	"github.com/promgate/promgate/pkg/promql"
)

// SampleQuerier runs an instant query whose answer is a matrix (a
// range-vector selector) and returns its raw samples. The engine learns
// scrape intervals through it; prom.Client implements it.
type SampleQuerier interface {
	QuerySamples(ctx context.Context, query string, ts time.Time) (model.Matrix, error)
}

// Defaults of the Auto lifetime.
const (
	// DefaultTTL is the lifetime of a result whose metrics' interval is
	// not known, with Auto (promgate's --query-cache-ttl=auto).
	DefaultTTL        = 5 * time.Second
	DefaultMinTTL     = time.Second
	DefaultMaxTTL     = time.Minute
	DefaultProbeEvery = 10 * time.Minute
	// maxLearned and maxLearnedBytes bound the metrics whose interval an
	// engine remembers or is probing, in number and in the bytes of their
	// names: the names come from query text, which a query sent unchecked
	// or a rule whose metrics are many may fill with any number of them.
	// Past either, new metrics are not probed and keep the fixed TTL.
	maxLearned      = 4096
	maxLearnedBytes = 1 << 20
)

// Lifetime modes, the "mode" label of promgate_query_cache_lifetime_seconds.
const (
	modeFixed    = "fixed"     // Options.TTL, Auto off
	modeUnknown  = "unknown"   // Auto, but an interval of the query's metrics is not known
	modeAligned  = "aligned"   // until the next scrape of a metric scraped at one phase
	modeInterval = "interval"  // one interval from the query: many targets at their own phases
	modeNoSeries = "no series" // the metric had no series: the interval most metrics are scraped at
)

// scrape is what a probe learned about one metric's samples.
type scrape struct {
	interval time.Duration // 0: unknown
	// phase is a scrape time of the metric when all its series are scraped
	// at one phase (one target, or targets in step); zero when they are not.
	phase time.Time
	at    time.Time // when learned (or when the probe failed)
	// canaries are up to two series of the metric (their labels without
	// __name__), the newest and the oldest by latest sample: the series
	// whose windows the partial-window guard checks for the metric's
	// (Engine.Canaries). They come from the backend's answer; their bytes
	// count in the learner's bound.
	canaries []model.Metric
	// relearn is set when a canary was found gone: the next query probes
	// again, once MinTTL has passed since the last probe.
	relearn bool
	// noSeries: the probe found no series of the metric (its answers are
	// empty until a target exports it); probed again after ProbeEvery, or
	// on an answer that holds a series (startProbe).
	noSeries bool
}

// maxCanaryBytes bounds the labels of one canary: a series with larger
// ones stands for no metric (its checks would make every query long).
const maxCanaryBytes = 2048

// metricBytes is what the labels of m count in the learner's bound.
func metricBytes(m model.Metric) int {
	n := 0
	for k, v := range m {
		n += len(k) + len(v) + 16
	}
	return n
}

// canaryBytes is what the canaries of s count in the learner's bound.
func (s *scrape) canaryBytes() int {
	n := 0
	for _, m := range s.canaries {
		n += metricBytes(m)
	}
	return n
}

// learner remembers, per metric name, the scrape interval and phase.
//
// Both maps are bounded by maxLearned names and maxLearnedBytes of them
// (or maxNames, maxBytes): a metric enters metrics, counted, when its first
// probe starts, and probing only holds metrics already in metrics; neither
// forgets a name, so the bounds hold for the engine's life.
type learner struct {
	mu      sync.Mutex
	metrics map[string]*scrape       // what was learned; the zero scrape while the first probe runs
	probing map[string]chan struct{} // metrics whose probe runs, closed when it ends
	bytes   int                      // of the names in metrics
	// typical is the interval most of the learned metrics are scraped at
	// (the shorter of two as common): the lifetime of the answers of a
	// metric without series, whose targets, once there, are most likely
	// scraped at it too. Zero: none learned.
	typical time.Duration

	// maxNames and maxBytes override maxLearned and maxLearnedBytes
	// (tests).
	maxNames, maxBytes int
}

// admit reports whether a metric name not yet in l.metrics may enter it;
// l.mu is held.
func (l *learner) admit(name string) bool {
	names, bytes := maxLearned, maxLearnedBytes
	if l.maxNames > 0 {
		names = l.maxNames
	}
	if l.maxBytes > 0 {
		bytes = l.maxBytes
	}
	return len(l.metrics) < names && l.bytes+len(name) <= bytes
}

// fits reports whether n more bytes stay within the learner's bound; l.mu
// is held.
func (l *learner) fits(n int) bool {
	bytes := maxLearnedBytes
	if l.maxBytes > 0 {
		bytes = l.maxBytes
	}
	return l.bytes+n <= bytes
}

// lifetime returns how long the result of query, evaluated at at, is
// served. With Auto off it is Options.TTL. With Auto, it is the shortest
// of the lifetimes of the metrics the query reads (see the package doc);
// a metric whose interval is not known yet counts as Options.TTL, and is
// probed in the background (at most once per Options.ProbeEvery). Of the
// query, only the names of its metrics are used: a probe selects a metric
// by its name and the matchers of rule, the selector of the rule the
// query serves (WithRuleSelector, "" if none), never by the query's own
// matchers, which carry request input. found says whether the backend's
// answer held a series: a metric the last probe found no series of is
// probed again on such an answer (see scrapeOf).
func (e *Engine) lifetime(query, rule string, at time.Time, found bool) (time.Duration, string) {
	var names []string
	if e.samples != nil {
		names = metricNames(query)
	}
	if !e.opts.Auto {
		for _, name := range names {
			e.scrapeOf(name, rule, at, found) // the canaries (Canaries)
		}
		return e.opts.TTL, modeFixed
	}
	if len(names) == 0 {
		return e.opts.TTL, modeUnknown
	}
	life, mode := time.Duration(math.MaxInt64), ""
	for _, name := range names {
		s, ok := e.scrapeOf(name, rule, at, found)
		l, m := e.opts.TTL, modeUnknown
		switch {
		case ok:
			l, m = s.lifetime(at, e.opts.MinTTL, e.opts.MaxTTL)
		case s.noSeries:
			// Queried each fixed TTL, a metric no target exports (swap on
			// nodes without it, say) cost two or three queries per HPA
			// cycle for empty answers (make bench's row 40, 2026-12-07).
			// Its first series are served within one interval of the
			// cluster's usual one, the bound every answer keeps; a new
			// series waits for its window anyway when the query is guarded.
			if t := e.typicalInterval(); t > 0 {
				l, m = clamp(t, e.opts.MinTTL, e.opts.MaxTTL), modeNoSeries
			}
		}
		if l < life || (l == life && m == modeUnknown) {
			life, mode = l, m
		}
	}
	return life, mode
}

// lifetime returns how long an answer evaluated at t stays what a fresh
// query would answer, within [min, max].
func (s scrape) lifetime(t time.Time, min, max time.Duration) (time.Duration, string) {
	life, mode := s.interval, modeInterval
	if !s.phase.IsZero() {
		// A scrape at phase+kS is visible once ingested, some time after
		// its timestamp; grace is the time allowed for that.
		base := s.phase.Add(grace(s.interval))
		since := t.Sub(base)
		k := since / s.interval // the next visible scrape is the (floor(since/S)+1)th after base
		if since < 0 && since%s.interval != 0 {
			k--
		}
		life, mode = base.Add((k+1)*s.interval).Sub(t), modeAligned
	}
	return clamp(life, min, max), mode
}

// grace is how long after a scrape's timestamp its samples are taken to be
// visible to queries: the scrape's own duration and the ingestion. A fifth
// of the interval, at most 2s.
func grace(interval time.Duration) time.Duration {
	return clamp(interval/5, 0, 2*time.Second)
}

func clamp(d, min, max time.Duration) time.Duration {
	if d < min {
		d = min
	}
	if d > max {
		d = max
	}
	return d
}

// scrapeOf returns what is known of metric name's scrapes, and starts a
// probe, of the series of name that rule selects (probeSelector), when
// nothing is known or what is known is older than ProbeEvery; for a metric
// the last probe found no series of, also when an answer reading it held
// a series (found) and that probe is older than MaxTTL. A metric not known
// yet is probed only if the learner admits it; it is counted then, while
// its first probe runs.
func (e *Engine) scrapeOf(name, rule string, now time.Time, found bool) (scrape, bool) {
	l := &e.learner
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.metrics[name]
	if !ok {
		if !l.admit(name) {
			return scrape{}, false
		}
		s = &scrape{}
		l.metrics[name] = s
		l.bytes += len(name)
	}
	e.startProbe(name, rule, s, ok, found, now)
	if s.interval <= 0 {
		return scrape{noSeries: s.noSeries}, false
	}
	return *s, true
}

// typicalInterval returns learner.typical.
func (e *Engine) typicalInterval() time.Duration {
	e.learner.mu.Lock()
	defer e.learner.mu.Unlock()
	return e.learner.typical
}

// startProbe starts a probe of metric name, known or not yet, if one is
// due: nothing known, what is known older than ProbeEvery, a canary gone
// and MinTTL passed, or no series known, an answer that held a series
// (found) and MaxTTL passed. It returns the channel the running probe
// closes when it ends, nil when none runs; l.mu is held.
//
// A metric without series is not probed on a clock of its own: the
// answers that read it (each typical interval while requests ask) say
// when it has series, and only then is a probe worth its queries. Its
// first series get their interval and canaries within MaxTTL of the first
// answer that holds them, as with a probe each MaxTTL, which cost a
// query a minute for every such metric (make bench's row 40, 2026-12-07).
func (e *Engine) startProbe(name, rule string, s *scrape, known, found bool, now time.Time) chan struct{} {
	l := &e.learner
	if done := l.probing[name]; done != nil {
		return done
	}
	if known && now.Sub(s.at) < e.opts.ProbeEvery && (!s.relearn || now.Sub(s.at) < e.opts.MinTTL) &&
		(!s.noSeries || !found || now.Sub(s.at) < e.opts.MaxTTL) {
		return nil
	}
	done := make(chan struct{})
	l.probing[name] = done
	e.probes.Add(1)
	go e.probe(name, rule)
	return done
}

// probe learns the scrape interval and phase of metric name from the
// series of it that rule selects (probeSelector), and remembers it; a
// failed probe is remembered too, so that the metric is probed again only
// after ProbeEvery.
func (e *Engine) probe(name, rule string) {
	defer e.probes.Done()
	ctx, cancel := context.WithTimeout(context.Background(), e.opts.ProbeTimeout)
	defer cancel()
	s, err := scrape{}, error(nil)
	select {
	case e.sem <- struct{}{}:
		s, err = learn(ctx, e.prober, e.samples, name, probeSelector(name, rule), 4*e.opts.MaxTTL, e.opts.Now())
		<-e.sem
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.at = e.opts.Now()
	result := "learned"
	switch {
	case err != nil:
		result = "error"
		klog.V(2).InfoS("Could not learn a metric's scrape interval; its results live the fixed TTL", "backend", e.opts.Backend, "metric", name, "err", err)
	case s.interval <= 0:
		result = "unknown"
	}
	probesTotal.WithLabelValues(e.opts.Backend, result).Inc()
	l := &e.learner
	l.mu.Lock()
	defer l.mu.Unlock()
	close(l.probing[name])
	delete(l.probing, name)
	old, ok := l.metrics[name]
	if ok && s.interval <= 0 && old.interval > 0 && s.at.Sub(old.at) < 2*e.opts.ProbeEvery {
		// A failed relearning keeps what was learned for one more period.
		old.at, old.relearn = s.at, false
		return
	}
	if ok {
		l.bytes -= old.canaryBytes()
	}
	if add := s.canaryBytes(); !l.fits(add) {
		s.canaries = nil
	} else {
		l.bytes += add
	}
	l.metrics[name] = &s
	l.typical = typical(l.metrics)
	if s.interval > 0 {
		scrapeInterval.WithLabelValues(e.opts.Backend, name).Set(s.interval.Seconds())
	} else {
		scrapeInterval.DeleteLabelValues(e.opts.Backend, name)
	}
}

// learn runs the two probe queries of metric name at time now:
//
//  1. topk(1, timestamp(sel)) or bottomk(1, timestamp(sel)): the newest
//     and the oldest of the latest sample times of the series sel selects
//     (timestamp of a vector selector is the sample's own time), and the
//     labels of the newest series; at most two samples, whatever the
//     metric's size;
//  2. that one series' raw samples over window, name{labels...}[window]:
//     their spacing gives the scrape interval (meanSpacing).
//
// When the newest and oldest latest samples lie within a tenth of the
// interval of each other, and the one series' newest raw sample agrees
// with step 1 (within 50ms), all series are scraped at one phase and the
// oldest latest sample's time is kept as the phase: the first of them to
// change is the next scrape of that one. An interval that cannot be
// learned (no series, a series with fewer than two samples in the window)
// is the zero scrape and no error. Both queries are built on the syntax
// tree: label values come from sel (probeSelector: the name and the
// rule's selector) and the backend's answer, and are quoted by the
// printer.
func learn(ctx context.Context, b Backend, sq SampleQuerier, name string, sel *parser.VectorSelector, window time.Duration, now time.Time) (scrape, error) {
	if sq == nil {
		return scrape{}, nil
	}
	sel = fewTargets(ctx, b, sel, window, now)
	latest, err := b.Query(ctx, latestQuery(sel), now)
	if err != nil {
		return scrape{}, err
	}
	if len(latest) == 0 {
		return scrape{noSeries: true}, nil
	}
	newest, oldest := newestOldest(latest)
	m, err := sq.QuerySamples(ctx, samplesQuery(name, newest.Metric, window), now)
	if err != nil {
		return scrape{}, err
	}
	times := longestTimes(m)
	interval := meanSpacing(times)
	if interval <= 0 {
		return scrape{}, nil
	}
	s := scrape{interval: interval}
	for _, c := range []*model.Sample{newest, oldest} {
		if metricBytes(c.Metric) <= maxCanaryBytes && (len(s.canaries) == 0 || !s.canaries[0].Equal(c.Metric)) {
			s.canaries = append(s.canaries, c.Metric)
		}
	}
	// timestamp() gives the newest series' latest sample time to the
	// millisecond, so its raw samples agree with it within the jitter of
	// a scrape (one may have come in between). A backend whose timestamp()
	// is the evaluation time (VictoriaMetrics) seldom agrees: its phase is
	// not trusted.
	last := times[len(times)-1]
	tol := interval / 10
	if secondsTime(newest.Value).Sub(secondsTime(oldest.Value)) <= tol && phaseDistance(last, secondsTime(newest.Value), interval) <= min(tol, 50*time.Millisecond) {
		s.phase = secondsTime(oldest.Value)
	}
	return s, nil
}

// LabelValuer is a backend that lists a label's values among the series a
// selector matches, from its index (Prometheus' /api/v1/label/<name>/values
// with match[]): no sample is read.
type LabelValuer interface {
	LabelValues(ctx context.Context, label, match string, start, end time.Time) ([]string, error)
}

// Probes read at most maxProbeTargets of a metric's scrape targets.
const (
	targetLabel     = "instance" // Prometheus' label of the scrape target
	maxProbeTargets = 4
)

// fewTargets narrows sel, a probe's selector, to at most maxProbeTargets of
// the scrape targets (instance values) that have series of it, taken from
// the backend's index evenly across the sorted values: a probe reads every
// series it selects (their latest samples), which at hundreds of thousands
// of series takes Prometheus tens of seconds (21-24 s for 450,000 series
// of 30 targets on the bench's busy 2 cores, against 0.05 s for the index
// and 0.5 s for 3 targets' series), while the canaries and the interval it
// learns need a few targets only. sel is returned as it is when the
// backend has no such index, when it fails, or when sel's series have no
// instance label or few enough targets. The values come from the backend
// and enter the selector as a matcher of the syntax tree, quoted.
func fewTargets(ctx context.Context, b Backend, sel *parser.VectorSelector, window time.Duration, now time.Time) *parser.VectorSelector {
	lv, ok := b.(LabelValuer)
	if !ok {
		return sel
	}
	for _, m := range sel.LabelMatchers {
		if m.Name == targetLabel {
			return sel // the rule picks its targets already
		}
	}
	values, err := lv.LabelValues(ctx, targetLabel, sel.String(), now.Add(-window), now)
	if err != nil || len(values) <= maxProbeTargets {
		return sel
	}
	slices.Sort(values)
	picked := make([]string, 0, maxProbeTargets)
	for i := range maxProbeTargets {
		picked = append(picked, regexp.QuoteMeta(values[i*(len(values)-1)/(maxProbeTargets-1)]))
	}
	m, err := labels.NewMatcher(labels.MatchRegexp, targetLabel, strings.Join(picked, "|"))
	if err != nil {
		return sel
	}
	out := *sel
	out.LabelMatchers = append(slices.Clone(sel.LabelMatchers), m)
	return &out
}

// latestQuery is learn's first probe: topk(1, timestamp(sel)) or
// bottomk(1, timestamp(sel)).
func latestQuery(sel *parser.VectorSelector) string {
	ts := func() parser.Expr {
		return &parser.Call{Func: parser.Functions["timestamp"], Args: parser.Expressions{sel}}
	}
	k := &parser.NumberLiteral{Val: 1}
	q := &parser.BinaryExpr{
		Op:             parser.LOR,
		LHS:            &parser.AggregateExpr{Op: parser.TOPK, Param: k, Expr: ts()},
		RHS:            &parser.AggregateExpr{Op: parser.BOTTOMK, Param: k, Expr: ts()},
		VectorMatching: &parser.VectorMatching{Card: parser.CardManyToMany},
	}
	return q.String()
}

// newestOldest returns the samples of latest, which is not empty, with
// the greatest and the least value (latest sample times).
func newestOldest(latest model.Vector) (newest, oldest *model.Sample) {
	newest, oldest = latest[0], latest[0]
	for _, s := range latest[1:] {
		if s.Value > newest.Value {
			newest = s
		}
		if s.Value < oldest.Value {
			oldest = s
		}
	}
	return newest, oldest
}

// samplesQuery is learn's second probe: the raw samples over window of
// the one series of metric name with the labels of metric,
// name{labels...}[window].
func samplesQuery(name string, metric model.Metric, window time.Duration) string {
	ms := []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, model.MetricNameLabel, name)}
	for _, n := range sortedKeys(metric) {
		if n != model.MetricNameLabel {
			ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, string(n), string(metric[n])))
		}
	}
	q := &parser.MatrixSelector{VectorSelector: nameSelector(name, ms), Range: window}
	return q.String()
}

// longestTimes returns the sample times of the series of m with the most
// samples (the first of those with as many).
func longestTimes(m model.Matrix) []time.Time {
	var times []time.Time
	for _, ss := range m {
		if len(ss.Values) > len(times) {
			times = times[:0]
			for _, p := range ss.Values {
				times = append(times, p.Timestamp.Time())
			}
		}
	}
	return times
}

// meanSpacing is the scrape interval of samples at times: the median
// spacing tells how many scrapes the span from first to last covers
// (missed scrapes leave gaps of several), and the span divided by that
// count is the interval to within the scrape jitter over the count. An
// interval within 0.5% of whole seconds, as configured almost always, is
// taken to be them. It is 0 with fewer than two times.
func meanSpacing(times []time.Time) time.Duration {
	med := medianSpacing(times)
	if med <= 0 {
		return 0
	}
	span := times[len(times)-1].Sub(times[0])
	n := (span + med/2) / med
	if n < 1 {
		return 0
	}
	d := span / n
	if s := d.Round(time.Second); s > 0 && (d-s).Abs() <= d/200 {
		return s
	}
	return d.Round(time.Millisecond)
}

// medianSpacing is the median of the differences of consecutive times, 0
// with fewer than two.
func medianSpacing(times []time.Time) time.Duration {
	if len(times) < 2 {
		return 0
	}
	d := make([]time.Duration, 0, len(times)-1)
	for i := 1; i < len(times); i++ {
		d = append(d, times[i].Sub(times[i-1]))
	}
	slices.Sort(d)
	if len(d)%2 == 1 {
		return d[len(d)/2]
	}
	return (d[len(d)/2-1] + d[len(d)/2]) / 2
}

// phaseDistance is how far apart a and b are modulo interval.
func phaseDistance(a, b time.Time, interval time.Duration) time.Duration {
	d := a.Sub(b) % interval
	if d < 0 {
		d += interval
	}
	return min(d, interval-d)
}

// secondsTime converts a timestamp() value, in seconds, to a time, to the
// millisecond.
func secondsTime(v model.SampleValue) time.Time {
	return time.UnixMilli(int64(math.Round(float64(v) * 1000)))
}

// metricNames returns the names of the metrics query selects, sorted:
// those of its vector selectors with a name or a __name__ equality
// matcher (a regular expression names no one metric). A query that does
// not parse has none. The set lives for one call; it is as large as the
// query.
func metricNames(query string) []string {
	expr, err := promql.Parse(query)
	if err != nil {
		return nil
	}
	out := map[string]bool{}
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		if name == "" {
			for _, m := range vs.LabelMatchers {
				if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
					name = m.Value
				}
			}
		}
		if name != "" {
			out[name] = true
		}
		return nil
	})
	return sortedKeys(out)
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Canaries returns up to two series of metric (labels without __name__)
// whose windows stand for the metric's in the partial-window guard's
// checks: the series with the newest and the oldest latest sample when the
// metric was last probed, of the rule whose query first read it. None
// while nothing is learned. The slice is shared and must not be changed;
// it is the same until the metric is probed again.
func (e *Engine) Canaries(metric string) []model.Metric {
	e.learner.mu.Lock()
	defer e.learner.mu.Unlock()
	if s, ok := e.learner.metrics[metric]; ok {
		return s.canaries
	}
	return nil
}

// CanariesNow is Canaries, but when the metric is due a probe (nothing
// is known of it, or a canary is gone), it probes it first and waits for
// the probe, at most until ctx is done: the first query of a metric after
// a start need not go without canaries. rule is the rule's series
// selector (WithRuleSelector), "" for none; a metric the learner's bounds
// do not admit has none.
func (e *Engine) CanariesNow(ctx context.Context, metric, rule string) []model.Metric {
	if e.samples == nil {
		return nil
	}
	l := &e.learner
	l.mu.Lock()
	s, ok := l.metrics[metric]
	if !ok {
		if !l.admit(metric) {
			l.mu.Unlock()
			return nil
		}
		s = &scrape{}
		l.metrics[metric] = s
		l.bytes += len(metric)
	}
	done := e.startProbe(metric, rule, s, ok, false, e.opts.Now())
	canaries := s.canaries
	l.mu.Unlock()
	if done == nil || len(canaries) > 0 {
		return canaries
	}
	wait := e.opts.ProbeWait
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl)/2)
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-done:
		return e.Canaries(metric)
	case <-ctx.Done():
	case <-t.C: // the probe goes on; this request is sent without canaries
	}
	return nil
}

// CanaryGone tells the engine that a canary of metric has no samples any
// more (its pod was deleted): the metric's next query probes it again,
// once the minimum lifetime has passed since the last probe; the
// canaries stay what they are until then.
func (e *Engine) CanaryGone(metric string) {
	e.learner.mu.Lock()
	defer e.learner.mu.Unlock()
	if s, ok := e.learner.metrics[metric]; ok {
		s.relearn = true
	}
}

// Learned returns the scrape interval the engine learned for metric, and
// whether its series are scraped at one phase; zero if not known.
func (e *Engine) Learned(metric string) (interval time.Duration, aligned bool) {
	e.learner.mu.Lock()
	defer e.learner.mu.Unlock()
	if s, ok := e.learner.metrics[metric]; ok {
		return s.interval, !s.phase.IsZero()
	}
	return 0, false
}

// typical is the interval most of metrics are scraped at, the shorter of
// two as common; zero when none is known.
func typical(metrics map[string]*scrape) time.Duration {
	count := map[time.Duration]int{}
	for _, s := range metrics {
		if s.interval > 0 {
			count[s.interval.Round(time.Second)]++
		}
	}
	var best time.Duration
	for d, n := range count {
		if n > count[best] || n == count[best] && d < best {
			best = d
		}
	}
	return best
}

// Command soak runs promgate under steady load against a failing backend
// for a long time (make soak; see test/soak/soak.sh and docs/soak.md), and
// tells whether its memory and goroutines stay flat.
//
//	soak --run-dir=.cache/soak-run --fakeprom=http://127.0.0.1:49400 --duration=1h --rps=200
//
// It needs the loopback world of test/e2e/hack/world.sh with promgate
// registered and pointed at the fake Prometheus of test/bench/cmd/fakeprom
// (started with --fail-ratio), and the pods of --layout created (loadgen
// pods). It sends --rps requests per second, open loop, across the three
// APIs (custom.metrics.k8s.io Pods metric lists, external.metrics.k8s.io,
// metrics.k8s.io pod lists) and, with a hostile share in --mix, Pods metric
// lists with a distinct metricLabelSelector at promgate's request limits
// (one in 20 over them, which must be refused with a 400); every --interval
// it prints the outcomes and latencies of that interval and promgate's RSS,
// goroutines and memory budget, read from promgate's own /metrics; at the
// end it prints the totals and the verdict (see criterion) and exits 1 if
// RSS or goroutines grew, if a 2xx answer was incomplete, if a selector over
// the limits was answered, or if promgate's /metrics could not be read.
//
// All traffic goes to 127.0.0.1; the run is bounded by --duration.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/promgate/promgate/test/bench/fakeprom"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := run(ctx, os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	if !ok {
		os.Exit(1)
	}
}

// options are the flags.
type options struct {
	runDir, fakepromURL, target, layout, mix, out string
	duration, interval, warmup                    time.Duration
	rps                                           float64
	appMetrics, queues, maxInFlight               int
	rss, goroutines                               criterion
}

func parseFlags(args []string) (options, error) {
	var o options
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.StringVar(&o.runDir, "run-dir", ".cache/soak-run", "world.sh run directory (E2E_RUN_DIR)")
	fs.StringVar(&o.fakepromURL, "fakeprom", "http://127.0.0.1:49400", "fake Prometheus URL (for its counters)")
	fs.StringVar(&o.target, "target", "direct", "direct (promgate's port, as kube-apiserver's front proxy) or aggregated (through kube-apiserver)")
	fs.StringVar(&o.layout, "layout", "ns-[0-9]=100", "the pods created (loadgen pods --layout): the requests' namespaces and expected answer sizes")
	fs.StringVar(&o.mix, "mix", "pods=2,external=1,resource=1", "relative shares of the APIs: pods (custom.metrics.k8s.io Pods metric lists), external, resource (metrics.k8s.io pod lists), hostile (pods with a distinct metricLabelSelector at the request limits, 1 in 20 over them)")
	fs.StringVar(&o.out, "out", "", "file to write the samples and totals to, as JSON")
	fs.DurationVar(&o.duration, "duration", time.Hour, "measured time")
	fs.DurationVar(&o.interval, "interval", 0, "time between reports (0: 30s, or duration/12 if shorter, so that every quarter has 3 samples)")
	fs.DurationVar(&o.warmup, "warmup", 10*time.Second, "unmeasured load first")
	fs.Float64Var(&o.rps, "rps", 200, "requests per second")
	fs.IntVar(&o.appMetrics, "app-metrics", 12, "app_metric_<m> Pods metrics the fake Prometheus serves (fakeprom --app-metrics)")
	fs.IntVar(&o.queues, "queues", 20, "queues per namespace the fake Prometheus serves (fakeprom --queues)")
	fs.IntVar(&o.maxInFlight, "max-in-flight", 2000, "requests outstanding at most; more are dropped and counted")
	fs.Float64Var(&o.rss.Rel, "rss-tolerance", 0.10, "RSS is flat if the last quarter's median is at most this fraction above the second quarter's")
	fs.Float64Var(&o.goroutines.Abs, "goroutine-tolerance", 10, "goroutines are flat if the last quarter's median is at most this many above the second quarter's")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.duration <= 0 || o.rps <= 0 || o.maxInFlight <= 0 {
		return o, fmt.Errorf("--duration, --rps and --max-in-flight must be positive")
	}
	if o.interval <= 0 {
		o.interval = min(30*time.Second, o.duration/12)
	}
	return o, nil
}

// report is what --out holds.
type report struct {
	Duration   string         `json:"duration"`
	Target     string         `json:"target"`
	RPS        float64        `json:"rps"`
	Requests   int            `json:"requests"`
	Dropped    int            `json:"dropped"`
	Classes    map[string]int `json:"classes"`
	Other      map[string]int `json:"other,omitempty"`
	Incomplete int            `json:"incomplete"`
	TooLarge   int            `json:"tooLarge"` // 503s: a backend answer too large
	// Hostile are the hostile share's classes by selector ("at the
	// limits", "over the limits"); Unrefused counts over-limit selectors
	// answered 2xx.
	Hostile    map[string]map[string]int       `json:"hostile,omitempty"`
	Unrefused  int                             `json:"unrefused"`
	Latency    fakeprom.Percentiles            `json:"latency"`
	ByAPI      map[string]fakeprom.Percentiles `json:"byAPI"`
	Queries    int64                           `json:"backendQueries"`
	Injected   map[string]int64                `json:"injected"`
	Samples    []sample                        `json:"samples"`
	ScrapeErrs int                             `json:"scrapeErrors"`
	Trends     []trend                         `json:"trends"`
	Peaks      peaks                           `json:"peaks"`
	Pass       bool                            `json:"pass"`
	hostile    bool                            // the mix has a hostile share
}

// peaks are the largest readings of promgate's memory over the samples
// (informational: the verdict is on the trends).
type peaks struct {
	RSSBytes     float64            `json:"rssBytes"`
	RSSAt        time.Duration      `json:"rssAtNs"`
	BudgetBytes  float64            `json:"budgetBytes"` // sum over kinds
	BudgetAt     time.Duration      `json:"budgetAtNs"`
	BudgetByKind map[string]float64 `json:"budgetByKind,omitempty"` // at BudgetAt
	BudgetLimit  float64            `json:"budgetLimitBytes"`
}

// peaksOf returns the peaks of samples.
func peaksOf(samples []sample) peaks {
	var p peaks
	for _, s := range samples {
		if s.RSSBytes > p.RSSBytes {
			p.RSSBytes, p.RSSAt = s.RSSBytes, s.At
		}
		if s.BudgetBytes > p.BudgetBytes {
			p.BudgetBytes, p.BudgetAt, p.BudgetByKind = s.BudgetBytes, s.At, s.BudgetByKind
		}
		p.BudgetLimit = max(p.BudgetLimit, s.BudgetLimit)
	}
	return p
}

func run(ctx context.Context, args []string) (bool, error) {
	o, err := parseFlags(args)
	if err != nil {
		return false, err
	}
	layout, err := fakeprom.ParseLayout(o.layout)
	if err != nil {
		return false, fmt.Errorf("--layout: %w", err)
	}
	plan, err := newPlanner(layout, o.mix, o.appMetrics, o.queues)
	if err != nil {
		return false, err
	}
	w, err := loadWorld(o.runDir, o.fakepromURL)
	if err != nil {
		return false, err
	}
	t, err := w.target(o.target)
	if err != nil {
		return false, err
	}
	if _, err := w.scrape(ctx); err != nil {
		return false, err
	}
	// Every API answers before the load starts (informers synced, metrics
	// discovered); a try may meet an injected failure, so a few are allowed.
	for k := range plan.cycle {
		if err := firstSuccess(ctx, t, plan.at(k)); err != nil {
			return false, err
		}
	}
	// The load goes on from the requests just sent.
	l := &loader{t: t, plan: plan, rps: o.rps, maxInFlight: o.maxInFlight, next: len(plan.cycle)}
	if o.warmup > 0 {
		logf("warming up: %.0f req/s for %v", o.rps, o.warmup)
		l.run(ctx, o.warmup)
		_ = l.swap()
	}
	if err := w.resetBackendStats(ctx); err != nil {
		return false, err
	}

	rep := report{Duration: o.duration.String(), Target: o.target, RPS: o.rps, hostile: plan.hostile()}
	total := newTally()
	logf("soaking: %.0f req/s (%s) to promgate %s for %v, a report every %v", o.rps, o.mix, o.target, o.duration, o.interval)
	start := time.Now()
	takeSample := func(at time.Duration) (string, bool) {
		m, err := w.scrape(ctx)
		if err != nil {
			rep.ScrapeErrs++
			return "promgate /metrics: " + err.Error(), false
		}
		rep.Samples = append(rep.Samples, sample{At: at, selfMetrics: m})
		line := fmt.Sprintf("RSS %.1f MiB  heap %.1f MiB  goroutines %.0f  fds %.0f", m.RSSBytes/(1<<20), m.HeapBytes/(1<<20), m.Goroutines, m.OpenFDs)
		if m.BudgetLimit > 0 || m.BudgetBytes > 0 {
			line += fmt.Sprintf("  budget %.1f MiB", m.BudgetBytes/(1<<20))
		}
		return line, true
	}
	s0, _ := takeSample(0)
	logf("at start: %s", s0)

	done := make(chan struct{})
	go func() {
		defer close(done)
		l.run(ctx, o.duration)
	}()
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	line := func(at time.Duration) {
		iv := l.swap()
		total.merge(iv)
		s, _ := takeSample(at)
		fmt.Printf("[soak %7s] %s | %s\n", at.Round(time.Second), summaryLine(iv, o.interval, rep.hostile), s)
	}
	fmt.Printf("%-14s %s | %s\n", "", "requests in the interval: outcomes, latency", "promgate's own /metrics at its end")
loop:
	for {
		select {
		case <-tick.C:
			if at := time.Since(start); at < o.duration-o.interval/2 {
				line(at)
			}
		case <-done:
			break loop
		}
	}
	elapsed := time.Since(start)
	line(elapsed)
	if ctx.Err() != nil {
		return false, fmt.Errorf("interrupted after %v", elapsed.Round(time.Second))
	}

	rep.Requests, rep.Dropped, rep.Classes, rep.Incomplete = total.requests(), total.dropped, total.classes, total.incomplete
	rep.TooLarge, rep.Unrefused = total.tooLarge, total.unrefused
	if rep.hostile {
		rep.Hostile = total.hostile
	}
	if len(total.details) > 0 {
		rep.Other = total.details
	}
	rep.Latency = total.percentiles()
	rep.ByAPI = map[string]fakeprom.Percentiles{}
	for k, ds := range total.byAPI {
		rep.ByAPI[k] = fakeprom.PercentilesOf(ds)
	}
	if st, err := w.backendStats(ctx); err == nil {
		rep.Queries, rep.Injected = st.Queries, st.Injected
	} else {
		logf("%v", err)
	}
	rss := judge("RSS", rep.Samples, elapsed, o.rss, func(m selfMetrics) float64 { return m.RSSBytes })
	gor := judge("goroutines", rep.Samples, elapsed, o.goroutines, func(m selfMetrics) float64 { return m.Goroutines })
	// Informational, not part of the verdict: a connection leak shows here.
	// (The heap in use is left out: it saws up and down with every GC.)
	fds := judge("open fds", rep.Samples, elapsed, o.goroutines, func(m selfMetrics) float64 { return m.OpenFDs })
	rep.Trends = []trend{rss, gor, fds}
	rep.Peaks = peaksOf(rep.Samples)
	rep.Pass = rss.Flat && gor.Flat && rep.Incomplete == 0 && rep.Unrefused == 0 && rep.ScrapeErrs == 0

	printTotals(os.Stdout, &rep, elapsed)
	if o.out != "" {
		b, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return false, err
		}
		if err := os.WriteFile(o.out, append(b, '\n'), 0o644); err != nil {
			return false, err
		}
	}
	return rep.Pass, nil
}

func firstSuccess(ctx context.Context, t target, r request) error {
	var last outcome
	for range 20 {
		if last = r.do(ctx, t); last.class == class2xx {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("GET %s: no success in 20 tries; the last: %s %s", r.path, last.class, last.detail)
}

// summaryLine is an interval's outcomes and latencies; with hostile, also
// the 400s of selectors over the limits and the 503s of answers too large.
func summaryLine(t *tally, interval time.Duration, hostile bool) string {
	p := t.percentiles()
	s := fmt.Sprintf("%6d req %5.1f/s  2xx %6d  503 %4d", t.requests(), float64(t.requests())/interval.Seconds(),
		t.classes[class2xx], t.classes[class503])
	if hostile {
		s += fmt.Sprintf(" (too large %3d)  400 expected %3d", t.tooLarge, t.classes[class400])
	}
	s += fmt.Sprintf("  other %3d", t.classes[classOther])
	if t.dropped > 0 {
		s += fmt.Sprintf(" (+%d dropped)", t.dropped)
	}
	return s + fmt.Sprintf("  p50 %s p90 %s p99 %s max %s", ms(p.P50), ms(p.P90), ms(p.P99), ms(p.Max))
}

// printTotals writes the totals of r, its peaks and the verdict to w.
func printTotals(w io.Writer, r *report, elapsed time.Duration) {
	fmt.Fprintf(w, "\nsoak: %d requests in %v (%.1f/s, target %s), %d dropped\n", r.Requests, elapsed.Round(time.Second),
		float64(r.Requests)/elapsed.Seconds(), r.Target, r.Dropped)
	pct := func(n int) float64 { return 100 * float64(n) / float64(max(1, r.Requests)) }
	fmt.Fprintf(w, "  outcomes    2xx %d (%.2f%%)  503 %d (%.2f%%)", r.Classes[class2xx], pct(r.Classes[class2xx]), r.Classes[class503], pct(r.Classes[class503]))
	if r.hostile {
		fmt.Fprintf(w, ", too large %d  400 expected %d (%.2f%%)", r.TooLarge, r.Classes[class400], pct(r.Classes[class400]))
	}
	fmt.Fprintf(w, "  other %d (%.2f%%)\n", r.Classes[classOther], pct(r.Classes[classOther]))
	for _, k := range sortedKeys(r.Other) {
		fmt.Fprintf(w, "    other: %d× %s\n", r.Other[k], k)
	}
	if r.hostile {
		var parts []string
		for _, sel := range []string{atLimits, overLimits} {
			cs := r.Hostile[sel]
			n := 0
			var byClass []string
			for _, k := range sortedKeys(cs) {
				n += cs[k]
				byClass = append(byClass, fmt.Sprintf("%s %d", k, cs[k]))
			}
			parts = append(parts, fmt.Sprintf("%s %d (%s)", sel, n, strings.Join(byClass, ", ")))
		}
		fmt.Fprintf(w, "  hostile     selectors %s\n", strings.Join(parts, "; "))
	}
	fmt.Fprintf(w, "  latency     all       p50 %s p90 %s p99 %s max %s\n", ms(r.Latency.P50), ms(r.Latency.P90), ms(r.Latency.P99), ms(r.Latency.Max))
	for _, k := range apis {
		if p, ok := r.ByAPI[k]; ok {
			fmt.Fprintf(w, "              %-9s p50 %s p90 %s p99 %s max %s (%d)\n", k, ms(p.P50), ms(p.P90), ms(p.P99), ms(p.Max), p.N)
		}
	}
	injected := int64(0)
	var parts []string
	for _, k := range sortedKeys(r.Injected) {
		injected += r.Injected[k]
		parts = append(parts, fmt.Sprintf("%s %d", k, r.Injected[k]))
	}
	fmt.Fprintf(w, "  backend     %d queries, %d failed by injection (%.2f%%): %s\n", r.Queries, injected,
		100*float64(injected)/float64(max(1, r.Queries)), strings.Join(parts, ", "))
	if r.ScrapeErrs > 0 {
		fmt.Fprintf(w, "  promgate's /metrics could not be read %d times\n", r.ScrapeErrs)
	}
	if p := r.Peaks; p.RSSBytes > 0 {
		line := fmt.Sprintf("  peaks       RSS %.1f MiB (at %v)", p.RSSBytes/(1<<20), p.RSSAt.Round(time.Second))
		if p.BudgetLimit > 0 || p.BudgetBytes > 0 {
			var kinds []string
			for _, k := range sortedKeys(p.BudgetByKind) {
				kinds = append(kinds, fmt.Sprintf("%s %.1f", k, p.BudgetByKind[k]/(1<<20)))
			}
			line += fmt.Sprintf("; memory budget %.1f MiB of %.0f MiB (at %v: %s)", p.BudgetBytes/(1<<20), p.BudgetLimit/(1<<20),
				p.BudgetAt.Round(time.Second), strings.Join(kinds, ", "))
			if p.BudgetLimit > 0 && p.BudgetBytes > p.BudgetLimit {
				// The gauges are read one by one, and a put counts before
				// its evictions: a sample may catch one entry in passing.
				line += fmt.Sprintf(" over it by %.1f KiB", (p.BudgetBytes-p.BudgetLimit)/(1<<10))
			}
		}
		fmt.Fprintln(w, line+"  (informational, of the samples)")
	}
	fmt.Fprintf(w, "  criterion   the last quarter's median vs the second quarter's, %d samples in all\n", len(r.Samples))
	for i, t := range r.Trends {
		note := ""
		if i >= 2 {
			note = "  (informational)"
		}
		fmt.Fprintf(w, "    %s%s\n", t, note)
	}
	verdict := "PASS: RSS and goroutines ended flat; every 2xx answer was complete"
	if r.hostile {
		verdict += "; no selector over the limits was answered"
	}
	if !r.Pass {
		var why []string
		for _, t := range r.Trends[:2] {
			if !t.Flat {
				why = append(why, t.Name+" not flat")
			}
		}
		if r.Incomplete > 0 {
			why = append(why, fmt.Sprintf("%d incomplete 2xx answers", r.Incomplete))
		}
		if r.Unrefused > 0 {
			why = append(why, fmt.Sprintf("%d selectors over the limits answered", r.Unrefused))
		}
		if r.ScrapeErrs > 0 {
			why = append(why, "promgate's /metrics unreadable")
		}
		verdict = "FAIL: " + strings.Join(why, "; ")
	}
	fmt.Fprintf(w, "soak verdict: %s\n", verdict)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func ms(seconds float64) string {
	switch {
	case seconds == 0:
		return "0"
	case seconds < 0.01:
		return fmt.Sprintf("%.2fms", seconds*1000)
	case seconds < 1:
		return fmt.Sprintf("%.1fms", seconds*1000)
	}
	return fmt.Sprintf("%.2fs", seconds)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[soak %s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

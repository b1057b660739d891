package main

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/promgate/promgate/test/bench/fakeprom"
)

// Result is one row of the benchmark table, written as JSON by each
// scenario and read back by the report.
type Result struct {
	// Order sorts rows in the report; Scenario is A, B, C or D.
	Order    int    `json:"order"`
	Scenario string `json:"scenario"`
	Name     string `json:"name"`
	Target   string `json:"target"` // direct, aggregated, kubectl
	Path     string `json:"path,omitempty"`
	Load     string `json:"load"` // e.g. "concurrency 20, 20s"
	// PromgateArgs are the flags promgate ran with beyond the world's.
	PromgateArgs string `json:"promgateArgs,omitempty"`
	// Comparison marks a row run with non-default settings to compare
	// with, not to check against the targets.
	Comparison bool   `json:"comparison,omitempty"`
	Layout     string `json:"layout"`
	Pods       int    `json:"pods"`

	Requests          int                             `json:"requests"`
	Errors            int                             `json:"errors"`
	ErrorKinds        map[string]int                  `json:"errorKinds,omitempty"`
	Dropped           int                             `json:"dropped,omitempty"`
	MeasuredSeconds   float64                         `json:"measuredSeconds"`
	RequestsPerSecond float64                         `json:"requestsPerSecond"`
	Latency           fakeprom.Percentiles            `json:"latency"`
	ByKind            map[string]fakeprom.Percentiles `json:"byKind,omitempty"`

	PromQueries     int64 `json:"promQueries"`
	PromQueryErrors int64 `json:"promQueryErrors"`
	DistinctQueries int   `json:"distinctQueries"`
	// Queries counts the backend's queries by their text's first
	// queryTextBytes bytes, so a report can say which queries a cycle sent.
	Queries map[string]int64 `json:"queries,omitempty"`
	Cycles  int              `json:"cycles,omitempty"`
	// WarmCycles ran before the measured Cycles; Metrics is the number of
	// metrics the HPAs polled.
	WarmCycles      int     `json:"warmCycles,omitempty"`
	Metrics         int     `json:"metrics,omitempty"`
	QueriesPerCycle float64 `json:"queriesPerCycle,omitempty"`
	// QueriesByCycle are the backend's queries in each measured cycle's
	// period (requests a cycle sends late count in the next).
	QueriesByCycle []int64 `json:"queriesByCycle,omitempty"`
	// Counters are promgate's guard and query counters after the run
	// (since its start), by series.
	Counters map[string]float64 `json:"counters,omitempty"`
	// Scrapes is the real Prometheus' scraping during an HPA row.
	Scrapes        *scrapeHealth        `json:"scrapes,omitempty"`
	Runs           int                  `json:"runs,omitempty"`
	QueriesPerRun  float64              `json:"queriesPerRun,omitempty"`
	BackendLatency string               `json:"backendLatency"`
	BackendSeconds fakeprom.Percentiles `json:"backendSeconds"`
	// AddedP99Seconds is the request p99 minus the configured backend latency.
	AddedP99Seconds float64 `json:"addedP99Seconds,omitempty"`
	// APILatency is, for kubectl top, the same request sent without kubectl.
	APILatency *fakeprom.Percentiles `json:"apiLatency,omitempty"`
	// GetPodsLatency is, for kubectl top, kubectl get pods -A's time.
	GetPodsLatency *fakeprom.Percentiles `json:"getPodsLatency,omitempty"`

	Lists               listCounts `json:"lists"`
	PromgateCPUSeconds  float64    `json:"promgateCPUSeconds"`
	APIServerCPUSeconds float64    `json:"apiserverCPUSeconds"`
	// Backend is what answered promgate's queries: "fake" (the model) or
	// "prometheus" (a real one behind the fake, see fakeprom --upstream),
	// and BackendCPUSeconds the real one's CPU time.
	Backend           string  `json:"backend"`
	BackendCPUSeconds float64 `json:"backendCPUSeconds,omitempty"`
	// Floor marks a row measured on test/bench/cmd/staticapi (the apiserver
	// library serving a prepared answer) in promgate's place.
	Floor bool `json:"floor,omitempty"`
	// Protobuf marks a row whose requests asked for Kubernetes protobuf,
	// as the HPA controller does (else JSON, as kubectl does).
	Protobuf           bool    `json:"protobuf,omitempty"`
	LoadgenCPUSeconds  float64 `json:"loadgenCPUSeconds"`
	PromgatePeakRSSMiB float64 `json:"promgatePeakRSSMiB"`
	WallSeconds        float64 `json:"wallSeconds"`
}

// podsRequest is the first target: one Pods metric for every pod of
// a namespace.
func podsRequest(ns, metric string, pods int) request {
	return request{
		kind:   "pods",
		path:   "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + ns + "/pods/*/" + metric,
		marker: "describedObject",
		want:   pods,
	}
}

// runClosed is scenario A: a fixed concurrency for a fixed time.
func runClosed(ctx context.Context, w *world, r *Result, tgt string, req request, workers int, warmup, d time.Duration, profile string) error {
	t, err := w.target(tgt)
	if err != nil {
		return err
	}
	r.Target, r.Path = tgt, req.path
	r.Load = fmt.Sprintf("concurrency %d, %v", workers, d)
	if warmup > 0 {
		logf("%s: warming up for %v", r.Name, warmup)
		rec := closedLoop(ctx, t, req, workers, warmup, 1_000_000)
		if err := firstError(rec); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	m, err := w.startMeter(ctx)
	if err != nil {
		return err
	}
	logf("%s: %s for %v", r.Name, r.Load, d)
	prof := w.cpuProfile(ctx, profile, d)
	start := time.Now()
	rec := closedLoop(ctx, t, req, workers, d, 10_000_000)
	summarize(rec, time.Since(start), r)
	if err := <-prof; err != nil {
		logf("%s: CPU profile: %v", r.Name, err)
	}
	return m.stop(ctx, r)
}

// runRate is scenario C: a fixed request rate, the fake Prometheus adding
// latency to every query.
func runRate(ctx context.Context, w *world, r *Result, tgt string, req request, rps float64, latency, warmup, d time.Duration) error {
	t, err := w.target(tgt)
	if err != nil {
		return err
	}
	r.Target, r.Path = tgt, req.path
	r.Load = fmt.Sprintf("%.0f req/s open loop, %v, backend latency %v", rps, d, latency)
	if err := w.setLatency(ctx, latency); err != nil {
		return err
	}
	defer func() { _ = w.setLatency(context.Background(), 0) }()
	schedule := func(d time.Duration) []scheduled {
		n := int(rps * d.Seconds())
		plan := make([]scheduled, n)
		for i := range plan {
			plan[i] = scheduled{at: time.Duration(float64(i) / rps * float64(time.Second)), req: req}
		}
		return plan
	}
	if warmup > 0 {
		logf("%s: warming up for %v", r.Name, warmup)
		if err := firstError(openLoop(ctx, t, schedule(warmup), 1000)); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	m, err := w.startMeter(ctx)
	if err != nil {
		return err
	}
	logf("%s: %s", r.Name, r.Load)
	start := time.Now()
	rec := openLoop(ctx, t, schedule(d), 1000)
	summarize(rec, time.Since(start), r)
	if err := m.stop(ctx, r); err != nil {
		return err
	}
	r.AddedP99Seconds = r.Latency.P99 - latency.Seconds()
	return nil
}

// hpaMetric is one of the 20 metrics the simulated HPAs use.
type hpaMetric struct {
	kind string // resource, pods, external
	name string
}

// hpaMetrics: 2 Resource, 14 Pods and 4 External metrics.
func hpaMetrics(apps int) []hpaMetric {
	ms := []hpaMetric{{"resource", "cpu"}, {"resource", "memory"},
		{"pods", "http_requests_per_second"}, {"pods", "http_requests_5xx_per_second"}}
	for i := range apps {
		ms = append(ms, hpaMetric{"pods", fmt.Sprintf("app_metric_%d_per_second", i)})
	}
	for _, q := range fakeprom.QueueMetrics {
		ms = append(ms, hpaMetric{"external", q})
	}
	return ms
}

// hpaRequest is what the HPA controller sends for HPA i of n: its
// namespace is i mod namespaces, its metric i / namespaces mod 20, its
// target the pods with app=app-<metric index> (or, for an External metric,
// the series with queue=q-<metric index>).
func hpaRequest(i int, namespaces []string, ms []hpaMetric) request {
	ns := namespaces[i%len(namespaces)]
	k := (i / len(namespaces)) % len(ms)
	m := ms[k]
	sel := url.Values{}
	switch m.kind {
	case "resource":
		sel.Set("labelSelector", "app="+fakeprom.AppName(k))
		return request{kind: m.kind, marker: "containers",
			path: "/apis/metrics.k8s.io/v1beta1/namespaces/" + ns + "/pods?" + sel.Encode()}
	case "pods":
		sel.Set("labelSelector", "app="+fakeprom.AppName(k))
		return request{kind: m.kind, marker: "describedObject",
			path: "/apis/custom.metrics.k8s.io/v1beta2/namespaces/" + ns + "/pods/*/" + m.name + "?" + sel.Encode()}
	default:
		sel.Set("labelSelector", "queue="+fakeprom.QueueName(k))
		return request{kind: m.kind, marker: "metricName",
			path: "/apis/external.metrics.k8s.io/v1beta1/namespaces/" + ns + "/" + m.name + "?" + sel.Encode()}
	}
}

// runHPAs is scenario B: n simulated HPAs, each polling its metric once per
// period, their polls spread evenly over the period, for a number of
// cycles.
func runHPAs(ctx context.Context, w *world, r *Result, tgt string, n int, namespaces []string, ms []hpaMetric, period time.Duration, cycles, warmCycles int, coldWait time.Duration, heapProfile string) error {
	t, err := w.target(tgt)
	if err != nil {
		return err
	}
	r.Target = tgt
	r.Load = fmt.Sprintf("%d HPAs, %d metrics, %d namespaces, every %v, %d cycles", n, len(ms), len(namespaces), period, cycles)
	// Warm-up: one call per API starts promgate's informers; then wait for
	// its cache to expire, so that the measured cycles start cold. A busy
	// backend may fail a first call (at 5,000 HPAs on 2 cores, Prometheus
	// answers in seconds): each is tried up to three times, 10 s apart.
	for _, i := range []int{0, 2 * len(namespaces), (len(ms) - 1) * len(namespaces)} {
		req := hpaRequest(i, namespaces, ms)
		for try := 1; ; try++ {
			o := req.do(ctx, t)
			if o.err == "" {
				break
			}
			if try == 3 {
				return fmt.Errorf("warm-up %s: %s (3 tries)", req.path, o.err)
			}
			logf("%s: warm-up %s: %s; trying again in 10s", r.Name, req.path, o.err)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Second):
			}
		}
	}
	logf("%s: warm-up done; waiting %v for promgate's query cache to expire", r.Name, coldWait)
	select {
	case <-time.After(coldWait):
	case <-ctx.Done():
		return ctx.Err()
	}
	planOf := func(cycles int) []scheduled {
		var plan []scheduled
		for c := range cycles {
			for i := range n {
				// Slot (i * 7919) mod n: consecutive polls go to different metrics and namespaces.
				slot := (i * 7919) % n
				at := time.Duration(c)*period + time.Duration(float64(slot)/float64(n)*float64(period))
				plan = append(plan, scheduled{at: at, req: hpaRequest(i, namespaces, ms)})
			}
		}
		return plan
	}
	if warmCycles > 0 {
		// Steady state: the first cycles (scrape intervals learned, series
		// histories seeded, demand joined) are run but not measured.
		logf("%s: %d cycles before the measured ones", r.Name, warmCycles)
		openLoop(ctx, t, planOf(warmCycles), 2000)
		r.Load += fmt.Sprintf(" after %d unmeasured", warmCycles)
	}
	plan := planOf(cycles)
	m, err := w.startMeter(ctx)
	if err != nil {
		return err
	}
	logf("%s: %s", r.Name, r.Load)
	start := time.Now()
	byCycle := w.queriesByCycle(ctx, start, period, cycles)
	rec := openLoop(ctx, t, plan, 2000)
	summarize(rec, time.Since(start), r)
	r.QueriesByCycle = <-byCycle
	if err := m.stop(ctx, r); err != nil {
		return err
	}
	if err := w.heapProfile(ctx, heapProfile); err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	if r.Counters, err = w.counters(ctx, "promgate_window_guard_", "promgate_queries_total", "promgate_query_scrape_probes_total"); err != nil {
		return fmt.Errorf("promgate's metrics: %w", err)
	}
	r.Cycles, r.WarmCycles, r.Metrics = cycles, warmCycles, len(ms)
	r.QueriesPerCycle = float64(r.PromQueries) / float64(cycles)
	r.Scrapes = w.scrapeHealth(ctx, time.Since(start))
	return nil
}

// runTop is scenario D: `kubectl top pod -A`, runs times in a row, and the
// same API request without kubectl. A failed run is counted, and the rest
// is measured all the same (kubectl get pods -A's time above all, which
// the runs are compared with). With profile, the backend's CPU profile of
// the first 30 s of the runs is written there (a real Prometheus at
// backendURL).
func runTop(ctx context.Context, w *world, r *Result, runs int, backendURL, profile string) error {
	r.Target = "kubectl"
	r.Load = fmt.Sprintf("kubectl top pod -A, %d runs in a row", runs)
	r.Path = "/apis/metrics.k8s.io/v1beta1/pods"
	kubectl := func(args ...string) (time.Duration, int, error) {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(cctx, w.kubectl, append([]string{"--kubeconfig", w.kubeconfig}, args...)...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		start := time.Now()
		err := cmd.Run()
		d := time.Since(start)
		if err != nil {
			return d, 0, fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
		}
		return d, bytes.Count(out.Bytes(), []byte("\n")), nil
	}
	top := func() (time.Duration, int, error) { return kubectl("top", "pod", "-A", "--no-headers") }
	logf("%s: warm-up run", r.Name)
	if d, _, err := top(); err != nil {
		logf("%s: the warm-up run failed after %s: %v", r.Name, d.Round(time.Millisecond), err)
	}
	m, err := w.startMeter(ctx)
	if err != nil {
		return err
	}
	prof := backendProfile(ctx, backendURL, profile, 30*time.Second)
	logf("%s: %s", r.Name, r.Load)
	rec := &recorder{}
	start := time.Now()
	linesSeen := -1 // no run printed anything
	for range runs {
		d, lines, err := top()
		o := outcome{kind: "kubectl", latency: d}
		if err != nil {
			o.err = classify(err)
			logf("%s: a run failed after %s: %v", r.Name, d.Round(time.Millisecond), err)
		} else {
			linesSeen = lines // checked against kubectl get pods below
		}
		rec.outcomes = append(rec.outcomes, o)
	}
	measured := time.Since(start)
	st, err := w.stats(ctx)
	if err != nil {
		return err
	}
	kubectlQueries := st.Queries
	summarize(rec, measured, r)
	r.Pods = max(linesSeen, 0)

	// The same request, without kubectl.
	t, err := w.target("aggregated")
	if err != nil {
		return err
	}
	api := &recorder{}
	for range runs {
		api.add(request{kind: "api", path: r.Path, marker: "containers"}.do(ctx, t))
	}
	var ds []time.Duration
	for _, o := range api.outcomes {
		ds = append(ds, o.latency)
		if o.err != "" {
			r.Errors++
		}
	}
	p := fakeprom.PercentilesOf(ds)
	r.APILatency = &p
	if err := m.stop(ctx, r); err != nil {
		return err
	}
	// What kubectl takes to list the same pods from kube-apiserver, for
	// comparison (outside the measured time).
	// The cluster's pods all have series (the series layout begins with
	// the pods'), so kubectl top prints as many lines as get pods.
	ds = ds[:0]
	clusterPods := 0
	for range runs {
		d, lines, err := kubectl("get", "pods", "-A", "--no-headers")
		if err != nil {
			return err
		}
		ds = append(ds, d)
		clusterPods = lines
	}
	g := fakeprom.PercentilesOf(ds)
	r.GetPodsLatency = &g
	r.Runs = runs
	r.QueriesPerRun = float64(kubectlQueries) / float64(runs)
	if err := <-prof; err != nil {
		logf("%s: the backend's CPU profile: %v", r.Name, err)
	}
	if linesSeen >= 0 && linesSeen != clusterPods {
		r.Errors++
		if r.ErrorKinds == nil {
			r.ErrorKinds = map[string]int{}
		}
		r.ErrorKinds[fmt.Sprintf("kubectl top printed %d pods, get pods %d", linesSeen, clusterPods)]++
	}
	return nil
}

func firstError(rec *recorder) error {
	kinds := map[string]int{}
	for _, o := range rec.outcomes {
		if o.err != "" {
			kinds[o.err]++
		}
	}
	if len(kinds) == 0 {
		return nil
	}
	var parts []string
	for k, n := range kinds {
		parts = append(parts, fmt.Sprintf("%d× %s", n, k))
	}
	sort.Strings(parts)
	return fmt.Errorf("%d of %d requests failed: %s", len(rec.outcomes)-countOK(rec), len(rec.outcomes), strings.Join(parts, "; "))
}

func countOK(rec *recorder) int {
	n := 0
	for _, o := range rec.outcomes {
		if o.err == "" {
			n++
		}
	}
	return n
}

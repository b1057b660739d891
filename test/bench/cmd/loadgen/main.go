// Command loadgen drives promgate's whole-system benchmark (make bench, see
// test/bench/bench.sh and docs/performance.md) against a loopback world
// started by test/e2e/hack/world.sh, with promgate pointed at the fake
// Prometheus of test/bench/cmd/fakeprom. Each scenario writes one JSON
// result; `loadgen report` prints them as tables.
//
//	loadgen pods   --layout='ns-[0-9]=300' --nodes=100          create the pods, Running, and set fakeprom's layout
//	loadgen closed --target=direct --concurrency=20 ...        scenario A: fixed concurrency
//	loadgen rate   --rps=200 --latency=20ms ...                scenario C: fixed rate, backend latency
//	loadgen hpa    --hpas=1000 --namespaces='ns-[0-49]' ...    scenario B: simulated HPAs
//	loadgen top    --runs=10                                   scenario D: kubectl top pod -A
//	loadgen report --dir=RESULTS                               print the tables
//
// All traffic goes to 127.0.0.1; every loop is bounded in time and count.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/promgate/promgate/test/bench/fakeprom"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case "pods", "closed", "rate", "hpa", "top":
		err = runScenario(ctx, cmd, args)
	case "report":
		err = runReport(args)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: loadgen pods|closed|rate|hpa|top|report [flags] (see -h of each)")
	os.Exit(2)
}

func runScenario(ctx context.Context, cmd string, args []string) error {
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	runDir := fs.String("run-dir", ".cache/bench-run", "world.sh run directory (E2E_RUN_DIR)")
	fakepromURL := fs.String("fakeprom", "http://127.0.0.1:25400", "fake Prometheus URL")
	backendPID := fs.Int("backend-pid", 0, "process ID of the real Prometheus behind the fake one (fakeprom --upstream), whose CPU time is reported; 0: the fake answers")
	out := fs.String("out", "", "file to write the JSON result to (scenarios)")
	var r Result
	fs.IntVar(&r.Order, "order", 0, "row order in the report")
	fs.StringVar(&r.Scenario, "scenario", "", "scenario letter")
	fs.StringVar(&r.Name, "name", cmd, "row name")
	fs.StringVar(&r.PromgateArgs, "promgate-args", "", "promgate's extra flags, for the report")
	fs.BoolVar(&r.Floor, "floor", false, "the row measures test/bench/cmd/staticapi (the library's floor) in promgate's place")
	fs.BoolVar(&r.Comparison, "comparison", false, "the row is for comparison (non-default settings), not checked against the targets")
	protobuf := fs.Bool("protobuf", false, "ask for Kubernetes protobuf as the HPA controller does (Accept: application/vnd.kubernetes.protobuf, */*); false: JSON, as kubectl does")
	http2 := fs.Bool("http2", true, "send requests over HTTP/2 (one multiplexed connection, as client-go does); false: HTTP/1.1, one connection per concurrent request")
	tgt := fs.String("target", "direct", "direct (promgate's port, front-proxy identity) or aggregated (through kube-apiserver)")
	// pods
	layout := fs.String("layout", "ns-[0-9]=300", "pods: namespaces and pods to create")
	seriesLayout := fs.String("series-layout", "", "pods: the fake Prometheus' namespaces and pods (default: --layout); it must begin with --layout's")
	nodes := fs.Int("nodes", 100, "pods: number of kwok nodes (E2E_NODES)")
	timeout := fs.Duration("timeout", 10*time.Minute, "bound on this command")
	// closed, rate
	namespace := fs.String("namespace", "ns-0", "closed, rate: namespace of the Pods request")
	metric := fs.String("metric", "http_requests_per_second", "closed, rate: metric of the Pods request")
	pods := fs.Int("pods", 300, "closed, rate: pods in that namespace (the answer's expected size)")
	concurrency := fs.Int("concurrency", 20, "closed: concurrent clients")
	cpuProfile := fs.String("cpu-profile", "", "closed: write promgate's CPU profile of the measured time (its /debug/pprof/profile) to this file")
	duration := fs.Duration("duration", 20*time.Second, "closed, rate: measured duration")
	warmup := fs.Duration("warmup", 3*time.Second, "closed, rate: unmeasured load first")
	rps := fs.Float64("rps", 200, "rate: requests per second")
	latency := fs.Duration("latency", 20*time.Millisecond, "rate: latency the fake Prometheus adds to every query")
	// hpa
	hpas := fs.Int("hpas", 1000, "hpa: number of simulated HPAs")
	hpaNamespaces := fs.String("namespaces", "ns-[0-49]", "hpa: namespaces the HPAs live in, NAME[FROM-TO]")
	onlyMetric := fs.String("hpa-metric", "", "hpa: poll only this one of the 20 metrics (say http_requests_per_second); empty: all")
	appMetrics := fs.Int("app-metrics", 12, "hpa: app_metric_<m>_per_second metrics polled (fakeprom --app-metrics; negative: none)")
	period := fs.Duration("period", 15*time.Second, "hpa: polling period (the HPA controller's sync period)")
	cycles := fs.Int("cycles", 2, "hpa: periods measured")
	warmCycles := fs.Int("warm-cycles", 0, "hpa: periods run before the measured ones (steady state)")
	heapProfile := fs.String("heap-profile", "", "hpa: write promgate's heap profile (its /debug/pprof/heap) after the measured cycles to this file")
	coldWait := fs.Duration("cold-wait", 6*time.Second, "hpa: wait after warm-up, longer than promgate's query cache TTL")
	// top
	runs := fs.Int("runs", 10, "top: kubectl runs")
	backendProfile := fs.String("backend-cpu-profile", "", "top: write the real Prometheus' CPU profile (--backend-url's /debug/pprof/profile, 30 s from the first measured run) to this file")
	backendURL := fs.String("backend-url", "", "the real Prometheus behind the fake one: its CPU profile (top, --backend-cpu-profile) and its scrapes' health (hpa) are read there")
	_ = fs.Parse(args)

	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	w, err := loadWorld(*runDir, *fakepromURL, *http2)
	if err != nil {
		return err
	}
	w.backendPID = *backendPID
	w.backendURL = *backendURL
	if *protobuf {
		w.accept = "application/vnd.kubernetes.protobuf, */*"
		r.Protobuf = true
	}
	switch cmd {
	case "pods":
		return ensurePods(ctx, w, *layout, *seriesLayout, *nodes, *timeout)
	case "closed":
		err = runClosed(ctx, w, &r, *tgt, podsRequest(*namespace, *metric, *pods), *concurrency, *warmup, *duration, *cpuProfile)
	case "rate":
		err = runRate(ctx, w, &r, *tgt, podsRequest(*namespace, *metric, *pods), *rps, *latency, *warmup, *duration)
	case "hpa":
		var l fakeprom.Layout
		if l, err = fakeprom.ParseLayout(*hpaNamespaces + "=0"); err != nil {
			return fmt.Errorf("--namespaces: %w", err)
		}
		names := make([]string, len(l))
		for i, ns := range l {
			names[i] = ns.Name
		}
		ms := hpaMetrics(*appMetrics)
		if *onlyMetric != "" {
			ms = slices.DeleteFunc(ms, func(m hpaMetric) bool { return m.name != *onlyMetric })
			if len(ms) == 0 {
				return fmt.Errorf("--hpa-metric=%s: not one of the metrics the HPAs poll", *onlyMetric)
			}
		}
		err = runHPAs(ctx, w, &r, *tgt, *hpas, names, ms, *period, *cycles, *warmCycles, *coldWait, *heapProfile)
	case "top":
		err = runTop(ctx, w, &r, *runs, *backendURL, *backendProfile)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", r.Name, err)
	}
	logf("%s: %s", r.Name, oneLine(&r))
	if *out == "" {
		return json.NewEncoder(os.Stdout).Encode(r)
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(*out, append(b, '\n'), 0o644)
}

func oneLine(r *Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d requests (%d errors) %.0f/s p50 %s p90 %s p99 %s; %d Prometheus queries; %.0f LISTs; promgate %.2f CPU-s, peak RSS %.0f MiB",
		r.Requests, r.Errors, r.RequestsPerSecond, ms(r.Latency.P50), ms(r.Latency.P90), ms(r.Latency.P99),
		r.PromQueries, r.Lists.Total, r.PromgateCPUSeconds, r.PromgatePeakRSSMiB)
	for k, n := range r.ErrorKinds {
		fmt.Fprintf(&b, "; %d× %s", n, k)
	}
	return b.String()
}

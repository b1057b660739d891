package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// discoResult is what test/bench/cmd/discobench prints.
type discoResult struct {
	Series          int       `json:"series"`
	RefreshSeconds  []float64 `json:"refreshSeconds"`
	PeakRSSMiB      float64   `json:"peakRSSMiB"`
	HeapInUseMiB    float64   `json:"heapInUseMiB"`
	CustomMetrics   int       `json:"customMetrics"`
	ExternalMetrics int       `json:"externalMetrics"`
	Shapes          int       `json:"shapes"`
	Kept            int       `json:"kept"`
	Errors          int       `json:"errors"`
}

func runReport(args []string) error {
	fs := flag.NewFlagSet("report", flag.ExitOnError)
	dir := fs.String("dir", ".cache/bench-results", "directory of the scenario (*.json) and discovery (disco-*.json) results")
	_ = fs.Parse(args)
	var rows []Result
	var disco []discoResult
	files, err := filepath.Glob(filepath.Join(*dir, "*.json"))
	if err != nil {
		return err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if strings.HasPrefix(filepath.Base(f), "disco-") {
			var d discoResult
			if err := json.Unmarshal(b, &d); err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			disco = append(disco, d)
			continue
		}
		var r Result
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		rows = append(rows, r)
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Order < rows[j].Order })
	sort.Slice(disco, func(i, j int) bool { return disco[i].Series < disco[j].Series })
	printReport(os.Stdout, rows, disco)
	return nil
}

func ms(seconds float64) string {
	switch {
	case seconds == 0:
		return "0"
	case seconds < 0.01:
		return fmt.Sprintf("%.2f ms", seconds*1000)
	case seconds < 1:
		return fmt.Sprintf("%.1f ms", seconds*1000)
	}
	return fmt.Sprintf("%.2f s", seconds)
}

func machine() string {
	model := ""
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
		_ = f.Close()
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %f kB", &kb); err == nil {
			mem = fmt.Sprintf(", %.0f GiB", kb/(1<<20))
		}
	}
	return fmt.Sprintf("%d cores (%s)%s, %s", runtime.NumCPU(), model, mem, runtime.Version())
}

func printReport(out io.Writer, rows []Result, disco []discoResult) {
	p := func(format string, args ...any) { fmt.Fprintf(out, format, args...) }
	p("\npromgate benchmark — %s — %s\n\n", time.Now().Format("2006-01-02 15:04"), machine())
	if len(rows) > 0 {
		p("| scenario | backend | via | load | pods | requests | req/s | p50 | p90 | p99 | errors | Prometheus queries | per cycle / run | kube-apiserver LISTs | promgate CPU | CPU / request: promgate | kube-apiserver | Prometheus | promgate peak RSS |\n")
		p("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, r := range rows {
			per := ""
			switch {
			case r.Cycles > 0:
				per = fmt.Sprintf("%.1f / cycle", r.QueriesPerCycle)
			case r.Runs > 0:
				per = fmt.Sprintf("%.1f / run", r.QueriesPerRun)
			}
			cpuPer, apiPer, backendPer := "", "", ""
			if r.Requests > 0 {
				cpuPer = ms(r.PromgateCPUSeconds / float64(r.Requests))
				if r.Target == "aggregated" {
					apiPer = ms(r.APIServerCPUSeconds / float64(r.Requests))
				}
				if r.Backend == "prometheus" {
					backendPer = ms(r.BackendCPUSeconds / float64(r.Requests))
				}
			}
			errs := fmt.Sprint(r.Errors)
			if r.Dropped > 0 {
				errs += fmt.Sprintf(" (+%d dropped)", r.Dropped)
			}
			p("| %s %s | %s | %s | %s | %d | %d | %.0f | %s | %s | %s | %s | %d | %s | %.0f | %.2f s | %s | %s | %s | %.0f MiB |\n",
				r.Scenario, r.Name, r.Backend, r.Target, r.Load, r.Pods, r.Requests, r.RequestsPerSecond,
				ms(r.Latency.P50), ms(r.Latency.P90), ms(r.Latency.P99), errs,
				r.PromQueries, per, r.Lists.Total, r.PromgateCPUSeconds, cpuPer, apiPer, backendPer, r.PromgatePeakRSSMiB)
		}
		p("\n")
		for _, r := range rows {
			var notes []string
			if r.PromgateArgs != "" {
				notes = append(notes, "promgate "+r.PromgateArgs)
			}
			if r.Path != "" {
				notes = append(notes, "GET "+r.Path)
			}
			notes = append(notes, fmt.Sprintf("backend: latency %s, query time p50 %s p99 %s total %s, %d distinct queries",
				r.BackendLatency, ms(r.BackendSeconds.P50), ms(r.BackendSeconds.P99), ms(r.BackendSeconds.Sum), r.DistinctQueries))
			if len(r.ByKind) > 0 {
				var ks []string
				for k := range r.ByKind {
					ks = append(ks, k)
				}
				sort.Strings(ks)
				for _, k := range ks {
					v := r.ByKind[k]
					notes = append(notes, fmt.Sprintf("%s: %d requests p50 %s p90 %s p99 %s", k, v.N, ms(v.P50), ms(v.P90), ms(v.P99)))
				}
			}
			if r.APILatency != nil {
				notes = append(notes, fmt.Sprintf("the same GET without kubectl: p50 %s p90 %s max %s", ms(r.APILatency.P50), ms(r.APILatency.P90), ms(r.APILatency.Max)))
			}
			if r.GetPodsLatency != nil {
				notes = append(notes, fmt.Sprintf("kubectl get pods -A: p50 %s p90 %s max %s", ms(r.GetPodsLatency.P50), ms(r.GetPodsLatency.P90), ms(r.GetPodsLatency.Max)))
			}
			if h := r.Scrapes; h != nil {
				note := fmt.Sprintf("Prometheus' scrapes during the row: %.0f failed, slowest %.1f s, container CPU series with fewer than two samples in a minute (left out of a rate) up to %.0f", h.FailedScrapes, h.SlowestScrapeSeconds, h.ThinWindows)
				if len(h.Errors) > 0 {
					note += fmt.Sprintf(" (%d readings failed: %s)", len(h.Errors), h.Errors[0])
				}
				notes = append(notes, note)
			}
			if r.AddedP99Seconds != 0 {
				notes = append(notes, fmt.Sprintf("added p99 = p99 − backend latency = %s (− backend query p99: %s)", ms(r.AddedP99Seconds), ms(r.Latency.P99-r.BackendSeconds.P99)))
			}
			notes = append(notes, fmt.Sprintf("CPU: kube-apiserver %.2f s, load generator %.2f s", r.APIServerCPUSeconds, r.LoadgenCPUSeconds))
			if r.Backend == "prometheus" {
				notes = append(notes, fmt.Sprintf("real Prometheus CPU %.2f s", r.BackendCPUSeconds))
			}
			if len(r.Lists.ByResource) > 0 {
				var ls []string
				for k, v := range r.Lists.ByResource {
					ls = append(ls, fmt.Sprintf("%s %.0f", k, v))
				}
				sort.Strings(ls)
				notes = append(notes, "LISTs by resource (any client): "+strings.Join(ls, ", "))
			}
			for k, n := range r.ErrorKinds {
				notes = append(notes, fmt.Sprintf("error %d× %s", n, k))
			}
			p("- %s %s: %s\n", r.Scenario, r.Name, strings.Join(notes, "; "))
		}
	}
	if len(disco) > 0 {
		p("\nDiscovery (config/promgate.yaml's broad rules; catalog Refresh in its own process; fake Prometheus in another)\n\n")
		p("| series | first refresh | second refresh | peak RSS | Go heap after | metrics (custom / external) | shapes kept | errors |\n")
		p("|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, d := range disco {
			r2 := ""
			if len(d.RefreshSeconds) > 1 {
				r2 = ms(d.RefreshSeconds[1])
			}
			r1 := ""
			if len(d.RefreshSeconds) > 0 {
				r1 = ms(d.RefreshSeconds[0])
			}
			p("| %d | %s | %s | %.0f MiB | %.0f MiB | %d / %d | %d of %d | %d |\n",
				d.Series, r1, r2, d.PeakRSSMiB, d.HeapInUseMiB, d.CustomMetrics, d.ExternalMetrics, d.Kept, d.Shapes, d.Errors)
		}
	}
	printTargets(p, rows, disco)
}

func printTargets(p func(string, ...any), rows []Result, disco []discoResult) {
	type check struct {
		target, measured string
		ok, na           bool
	}
	var checks []check
	add := func(target, measured string, ok bool) {
		checks = append(checks, check{target: target, measured: measured, ok: ok})
	}
	floors := map[string]Result{} // by target and encoding
	floorKey := func(r Result) string { return fmt.Sprint(r.Target, r.Protobuf) }
	for _, r := range rows {
		if r.Floor && r.Scenario == "A" {
			floors[floorKey(r)] = r
		}
	}
	for _, r := range rows {
		if r.Scenario == "A" && !r.Comparison && !r.Floor && r.Requests > 0 {
			cpu := r.PromgateCPUSeconds / float64(r.Requests)
			if f, ok := floors[floorKey(r)]; ok && r.Target == "direct" && f.Latency.P99 > 0 {
				add(fmt.Sprintf("A %s, direct: p99 ≤ 2× the static floor's p99 (issue 12)", r.Name),
					fmt.Sprintf("p99 %s vs %s: %.2f×", ms(r.Latency.P99), ms(f.Latency.P99), r.Latency.P99/f.Latency.P99),
					r.Latency.P99 <= 2*f.Latency.P99)
			}
			if r.Target == "aggregated" && r.APIServerCPUSeconds > 0 {
				api := r.APIServerCPUSeconds / float64(r.Requests)
				add(fmt.Sprintf("A %s, through kube-apiserver: promgate CPU per request ≤ 0.5× kube-apiserver's (issue 12)", r.Name),
					fmt.Sprintf("%s vs %s: %.2f×", ms(cpu), ms(api), cpu/api), cpu <= 0.5*api)
			}
		}
	}
	// Per-request CPU as the series grow (make bench-scale): the A rows of
	// one target and encoding at their smallest and largest size.
	sizes := map[string][2]Result{}
	for _, r := range rows {
		if r.Scenario != "A" || r.Floor || r.Comparison || r.Requests == 0 {
			continue
		}
		k := floorKey(r)
		s, ok := sizes[k]
		if !ok {
			s = [2]Result{r, r}
		}
		if r.Pods < s[0].Pods {
			s[0] = r
		}
		if r.Pods > s[1].Pods {
			s[1] = r
		}
		sizes[k] = s
	}
	for _, s := range sizes {
		if s[0].Pods == s[1].Pods {
			continue
		}
		cpu := func(r Result) float64 { return r.PromgateCPUSeconds / float64(r.Requests) }
		ratio := cpu(s[1]) / cpu(s[0])
		add(fmt.Sprintf("A, %s: promgate CPU per request at %d pods' series within 20%% of %d pods' (issue 18)", s[1].Target, s[1].Pods, s[0].Pods),
			fmt.Sprintf("%s vs %s: %.2f×", ms(cpu(s[1])), ms(cpu(s[0])), ratio), ratio <= 1.2)
	}
	for _, r := range rows {
		if r.Floor {
			checks = append(checks, check{target: fmt.Sprintf("%s %s, %s: the static floor (staticapi)", r.Scenario, r.Name, r.Target), measured: comparisonText(r) + fmt.Sprintf(", CPU %s/request", ms(r.PromgateCPUSeconds/max(1, float64(r.Requests)))), ok: true, na: true})
			continue
		}
		if r.Comparison {
			checks = append(checks, check{target: fmt.Sprintf("%s %s (%s): for comparison only", r.Scenario, r.Name, r.PromgateArgs), measured: comparisonText(r), ok: true, na: true})
			continue
		}
		switch r.Scenario {
		case "A":
			listsPer := 0.0
			if r.Requests > 0 {
				listsPer = r.Lists.Total / float64(r.Requests)
			}
			add(
				fmt.Sprintf("A %s, %s: ≥ 500 req/s at concurrency 20, p99 ≤ 50 ms, 0 LISTs per request", r.Name, r.Target),
				fmt.Sprintf("%.0f req/s, p99 %s, %.3f LISTs/request, %d errors", r.RequestsPerSecond, ms(r.Latency.P99), listsPer, r.Errors),
				r.RequestsPerSecond >= 500 && r.Latency.P99 <= 0.050 && r.Lists.Total == 0 && r.Errors == 0,
			)
		case "B":
			add(
				fmt.Sprintf("B %s: ≤ 100 Prometheus queries per 15 s cycle", r.Name),
				fmt.Sprintf("%.1f per cycle, %d errors", r.QueriesPerCycle, r.Errors),
				r.QueriesPerCycle <= 100 && r.Errors == 0,
			)
			if r.WarmCycles > 0 && r.Metrics > 0 {
				// issue 18: after the first cycle, one query per metric and
				// scrape interval (the HPAs' period is 15 s; the bench's
				// intervals are 15 or 30 s, so ⌈15 s / interval⌉ = 1).
				add(fmt.Sprintf("B %s: queries per cycle after the first ≤ %d metrics × ⌈15 s / scrape interval⌉ (issue 18)", r.Name, r.Metrics),
					fmt.Sprintf("%.1f per cycle (%d cycles after %d unmeasured; by cycle %v)", r.QueriesPerCycle, r.Cycles, r.WarmCycles, r.QueriesByCycle),
					r.QueriesPerCycle <= float64(r.Metrics))
			}
			for _, c := range rows {
				if c.Scenario != "B" || !c.Comparison || !strings.Contains(c.PromgateArgs, "--query-batching=false") || c.Cycles == 0 || r.Cycles == 0 || c.Pods != r.Pods {
					continue
				}
				per := func(r Result) float64 { return r.BackendSeconds.Sum / float64(r.Cycles) }
				measured := fmt.Sprintf("query time %s vs %s per cycle: %.2f×", ms(per(r)), ms(per(c)), per(r)/max(per(c), 1e-9))
				if r.Backend == "prometheus" {
					cpu := func(r Result) float64 { return r.BackendCPUSeconds / float64(r.Cycles) }
					measured += fmt.Sprintf("; Prometheus CPU (with scraping) %s vs %s per cycle", ms(cpu(r)), ms(cpu(c)))
				}
				add(fmt.Sprintf("B %s: Prometheus work per cycle ≤ 0.1× one query per poll (issue 18)", r.Name), measured, per(r) <= 0.1*per(c))
			}
		case "E":
			// Prometheus' work for one metric polled by a few HPAs, against
			// the same HPAs' per-poll queries (prometheus-adapter's).
			for _, c := range rows {
				if c.Scenario != "E" || !c.Comparison || !strings.Contains(c.PromgateArgs, "--query-batching=false") || c.Cycles == 0 || r.Cycles == 0 {
					continue
				}
				per := func(r Result) float64 { return r.BackendSeconds.Sum / float64(r.Cycles) }
				cpu := func(r Result) float64 { return r.BackendCPUSeconds / float64(r.Cycles) }
				measured := fmt.Sprintf("query time %s vs %s per cycle: %.2f×", ms(per(r)), ms(per(c)), per(r)/max(per(c), 1e-9))
				if r.Backend == "prometheus" {
					measured += fmt.Sprintf("; Prometheus CPU (with scraping) %s vs %s per cycle", ms(cpu(r)), ms(cpu(c)))
				}
				add(fmt.Sprintf("E %s: Prometheus query time per cycle ≤ 1× one query per poll (issue 18)", r.Name),
					measured+fmt.Sprintf(", %.1f vs %.1f queries per cycle, %d errors", r.QueriesPerCycle, c.QueriesPerCycle, r.Errors),
					per(r) <= per(c) && r.Errors == 0)
			}
		case "C":
			add(
				fmt.Sprintf("C %s: added p99 ≤ 5 ms at 200 req/s", r.Name),
				fmt.Sprintf("%s (p99 %s − %s), %.0f req/s, %d errors", ms(r.AddedP99Seconds), ms(r.Latency.P99), r.BackendLatency, r.RequestsPerSecond, r.Errors),
				r.AddedP99Seconds <= 0.005 && r.Errors == 0 && r.Dropped == 0,
			)
		case "D":
			limit := 0.150
			if r.Pods > 5000 {
				limit = 0.500
			}
			add(
				fmt.Sprintf("D %s: ≤ 2 queries per run, median ≤ %s (%d pods)", r.Name, ms(limit), r.Pods),
				fmt.Sprintf("%.1f queries/run, median %s, %d errors", r.QueriesPerRun, ms(r.Latency.P50), r.Errors),
				r.QueriesPerRun <= 2 && r.Latency.P50 <= limit && r.Errors == 0,
			)
		}
	}
	for _, d := range disco {
		worst := 0.0
		for _, s := range d.RefreshSeconds {
			worst = max(worst, s)
		}
		switch d.Series {
		case 210_000:
			add("discovery 210,000 series: ≤ 100 MiB peak RSS",
				fmt.Sprintf("%.0f MiB", d.PeakRSSMiB), d.PeakRSSMiB <= 100 && d.Errors == 0)
		case 1_050_000:
			add("discovery 1,050,000 series: ≤ 15 s, ≤ 400 MiB",
				fmt.Sprintf("%s (slowest refresh), %.0f MiB", ms(worst), d.PeakRSSMiB), worst <= 15 && d.PeakRSSMiB <= 400 && d.Errors == 0)
		}
	}
	if len(checks) == 0 {
		return
	}
	p("\nTargets (issues 5 and 12)\n\n| target | measured | met |\n|---|---|---|\n")
	for _, c := range checks {
		met := "yes"
		switch {
		case c.na:
			met = "—"
		case !c.ok:
			met = "**no**"
		}
		p("| %s | %s | %s |\n", c.target, c.measured, met)
	}
}

// comparisonText summarizes a comparison row by its scenario's measure.
func comparisonText(r Result) string {
	switch {
	case r.Cycles > 0:
		return fmt.Sprintf("%.1f queries per cycle", r.QueriesPerCycle)
	case r.AddedP99Seconds != 0:
		return fmt.Sprintf("added p99 %s", ms(r.AddedP99Seconds))
	}
	return fmt.Sprintf("%.0f req/s, p99 %s", r.RequestsPerSecond, ms(r.Latency.P99))
}

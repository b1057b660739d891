// Command discobench measures one series discovery the way promgate runs it
// (pkg/catalog's Discoverer.Refresh over pkg/prom's client, with the rules
// of a promgate config and a static REST mapper) against a Prometheus in
// another process (the fake, or a real one), and prints the time each
// refresh took and the peak RSS of this process (getrusage maxrss) as one
// JSON object:
//
//	discobench --prometheus-url=http://127.0.0.1:25400/disco/1050000/ --config=config/promgate.yaml
//	discobench --prometheus-url=http://127.0.0.1:29710/ --discovery=index --start=1764680000 --end=1764680120
//
// --discovery chooses the method (series: /api/v1/series; index: the
// index endpoints; auto). --start and --end fix the time range asked (a
// backfilled Prometheus' blocks); by default it is the last minute.
// Run it once per series count and method: peak RSS is per process.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/promgate/promgate/pkg/catalog"
	"github.com/promgate/promgate/pkg/config"
	"github.com/promgate/promgate/pkg/prom"
	"github.com/promgate/promgate/pkg/rules"
)

// Result is what discobench prints.
type Result struct {
	Series int `json:"series"`
	// Method is the --discovery method; Methods the methods that ran, per
	// rule; Requests the requests the last refresh sent.
	Method   string   `json:"method"`
	Methods  []string `json:"methods"`
	Requests int      `json:"requests"`
	// RefreshSeconds is the duration of each refresh, first one first.
	RefreshSeconds []float64 `json:"refreshSeconds"`
	// PeakRSSMiB is getrusage(RUSAGE_SELF).ru_maxrss at the end.
	PeakRSSMiB float64 `json:"peakRSSMiB"`
	// HeapInUseMiB is the Go heap in use after the last refresh.
	HeapInUseMiB    float64 `json:"heapInUseMiB"`
	CustomMetrics   int     `json:"customMetrics"`
	ExternalMetrics int     `json:"externalMetrics"`
	// Shapes and Kept add up RuleReport.Series and .Kept over the rules.
	Shapes int `json:"shapes"`
	Kept   int `json:"kept"`
	Errors int `json:"errors"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "discobench:", err)
		os.Exit(1)
	}
}

func run() error {
	url := flag.String("prometheus-url", "", "fake Prometheus URL, e.g. http://127.0.0.1:25400/disco/1050000/")
	cfgFile := flag.String("config", "config/promgate.yaml", "promgate config whose rules discover")
	series := flag.Int("series", 0, "series count, echoed in the result")
	refreshes := flag.Int("refreshes", 2, "number of refreshes (relists) to run")
	timeout := flag.Duration("timeout", 2*time.Minute, "bound on the whole run")
	method := flag.String("discovery", "series", "discovery method: series, index or auto")
	startS := flag.Float64("start", 0, "start of the time range, Unix seconds (with --end; default: the last minute)")
	endS := flag.Float64("end", 0, "end of the time range, Unix seconds")
	flag.Parse()
	m, err := config.ParseMethod(*method)
	if err != nil {
		return err
	}
	if *url == "" || *refreshes < 1 {
		return fmt.Errorf("--prometheus-url is required and --refreshes must be at least 1")
	}
	maxAge, clock := time.Minute, func() time.Time { return time.Now() }
	if *endS > 0 {
		end := time.UnixMilli(int64(*endS * 1000))
		maxAge, clock = end.Sub(time.UnixMilli(int64(*startS*1000))), func() time.Time { return end }
	}
	cfg, err := config.Load(*cfgFile)
	if err != nil {
		return err
	}
	custom, external, err := rules.Compile(cfg)
	if err != nil {
		return err
	}
	client, err := prom.New(prom.Options{URL: *url, Timeout: *timeout})
	if err != nil {
		return err
	}
	d := catalog.New(custom, external, catalog.Single(client.WithLimits(prom.Limits{})), staticMapper(), maxAge).WithMethod(m).WithClock(clock)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	res := Result{Series: *series, Method: string(m)}
	var snap *catalog.Snapshot
	for range *refreshes {
		start := time.Now()
		snap = d.Refresh(ctx)
		res.RefreshSeconds = append(res.RefreshSeconds, time.Since(start).Seconds())
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("discovery did not finish: %w", err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapInUseMiB = float64(ms.HeapInuse) / (1 << 20)
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return err
	}
	res.PeakRSSMiB = float64(ru.Maxrss) / 1024 // KiB on Linux
	res.CustomMetrics = len(snap.CustomMetrics())
	res.ExternalMetrics = len(snap.ExternalMetrics())
	seen := map[string]bool{}
	for _, r := range snap.Reports {
		if !seen[string(r.Method)] {
			seen[string(r.Method)] = true
			res.Methods = append(res.Methods, string(r.Method))
		}
		if q := r.Backend + "\x00" + r.SeriesQuery; !seen[q] {
			seen[q] = true
			res.Requests += r.Requests
		}
		res.Shapes += r.Series
		res.Kept += r.Kept
		if r.Err != "" {
			res.Errors++
			fmt.Fprintf(os.Stderr, "discobench: %s: %s\n", r.Path, r.Err)
		}
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// staticMapper knows the core resources promgate's default rules name.
func staticMapper() apimeta.RESTMapper {
	m := apimeta.NewDefaultRESTMapper([]schema.GroupVersion{{Version: "v1"}})
	for _, k := range []struct {
		kind  string
		scope apimeta.RESTScope
	}{
		{"Pod", apimeta.RESTScopeNamespace}, {"Service", apimeta.RESTScopeNamespace},
		{"Namespace", apimeta.RESTScopeRoot}, {"Node", apimeta.RESTScopeRoot},
	} {
		m.Add(schema.GroupVersionKind{Version: "v1", Kind: k.kind}, k.scope)
	}
	return m
}
